"""Request building, with no I/O.

:class:`RequestBuilder` turns a descriptor and call arguments into a :class:`Request`
(method, path, query, headers, body). Everything a server would reject for a reason we
can see locally (an unsafe name, an unknown patch type, a body of the wrong kind) raises
``ValueError`` here, naming the argument, before anything is sent. Tests assert on the
built request without a server, as kube-rs does with ``kube-core``'s ``Request``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import msgspec

from .descriptor import ResourceDescriptor
from .metadata import PARTIAL_LIST_ACCEPT, PARTIAL_OBJECT_ACCEPT, is_metadata_only
from .names import quote_segment, validate_name, validate_namespace
from .params import (
    DeleteParams,
    GetParams,
    ListParams,
    PatchParams,
    PatchType,
    Query,
    WatchParams,
    WriteParams,
)

__all__ = [
    "JSON",
    "Request",
    "RequestBuilder",
    "encode_object",
    "encode_patch",
]

ObjT = TypeVar("ObjT")
ListT = TypeVar("ListT")

JSON = "application/json"

_GET = GetParams()
_LIST = ListParams()
_WRITE = WriteParams()
_DELETE = DeleteParams()


@dataclass(frozen=True)
class Request:
    """One HTTP request, ready to send.

    Attributes:
        method: ``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
        path: the URL path, already percent-encoded.
        query: query parameters, in order.
        headers: request headers (auth is added by the session, never here).
        body: the encoded body, or ``None``.
        idempotent: sending it twice has the same effect as once, so the session may
            retry it after a connection failure or a 5xx.
    """

    method: str
    path: str
    query: Query = ()
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": JSON})
    body: bytes | None = None
    idempotent: bool = True

    @property
    def target(self) -> str:
        """Path and query string, for messages and logs."""
        if not self.query:
            return self.path
        return f"{self.path}?{urlencode(self.query)}"


class RequestBuilder(Generic[ObjT, ListT]):
    """Builds every core-verb request for one resource descriptor.

    ``namespace`` arguments here are already resolved by
    :meth:`~kubeasync.core.descriptor.ResourceDescriptor.namespace_for`: a str for
    namespaced calls, ``None`` for cluster-scoped resources and for calls across all
    namespaces. Each verb takes its params object (:mod:`kubeasync.core.params`), whose
    query was rendered and checked when it was built.
    """

    def __init__(self, descriptor: ResourceDescriptor[ObjT, ListT]) -> None:
        self.descriptor = descriptor
        # Reads of a metadata-only descriptor ask for PartialObjectMetadata(List).
        metadata_only = is_metadata_only(descriptor)
        self._object_read: Mapping[str, str] = (
            {"Accept": PARTIAL_OBJECT_ACCEPT} if metadata_only else {"Accept": JSON}
        )
        self._list_read: Mapping[str, str] = (
            {"Accept": PARTIAL_LIST_ACCEPT} if metadata_only else {"Accept": JSON}
        )

    # ----------------------------------------------------------------- paths

    def collection_path(self, namespace: str | None, *, all_namespaces_ok: bool) -> str:
        d = self.descriptor
        if d.namespaced and namespace is None and not all_namespaces_ok:
            raise ValueError(f"{d.plural} are namespaced: a namespace is required")
        if not d.namespaced and namespace is not None:
            raise ValueError(f"{d.plural} are cluster-scoped: namespace must not be given")
        if namespace is not None:
            validate_namespace(namespace)
        return d.collection_path(namespace)

    def object_path(self, name: str, namespace: str | None, subresource: str | None = None) -> str:
        d = self.descriptor
        if subresource is not None and not d.has_subresource(subresource):
            raise ValueError(f"{d.plural} have no {subresource!r} subresource")
        path = self.collection_path(namespace, all_namespaces_ok=False)
        return f"{path}/{quote_segment(validate_name(name))}" + (
            f"/{subresource}" if subresource else ""
        )

    def require(self, verb: str) -> None:
        if not self.descriptor.supports(verb):
            raise ValueError(f"{self.descriptor.plural} do not support {verb!r}")

    # ----------------------------------------------------------------- verbs

    def get(
        self,
        name: str,
        namespace: str | None,
        params: GetParams = _GET,
        *,
        subresource: str | None = None,
    ) -> Request:
        self.require("get")
        return Request("GET", self.object_path(name, namespace, subresource), params.query,
                       self._object_read if subresource is None else {"Accept": JSON})

    def list(self, namespace: str | None, params: ListParams = _LIST) -> Request:
        self.require("list")
        return Request("GET", self.collection_path(namespace, all_namespaces_ok=True),
                       params.query, self._list_read)

    def watch(self, namespace: str | None, params: WatchParams) -> Request:
        self.require("watch")
        return Request("GET", self.collection_path(namespace, all_namespaces_ok=True),
                       params.query, self._object_read)

    def create(self, namespace: str | None, body: bytes, params: WriteParams = _WRITE) -> Request:
        self.require("create")
        path = self.collection_path(namespace, all_namespaces_ok=False)
        # A POST that reached the server may have created the object: never blind-retry it.
        return Request("POST", path, params.query, _json_headers(JSON), body, idempotent=False)

    def replace(
        self,
        name: str,
        namespace: str | None,
        body: bytes,
        params: WriteParams = _WRITE,
        *,
        subresource: str | None = None,
    ) -> Request:
        self.require("update")
        path = self.object_path(name, namespace, subresource)
        return Request("PUT", path, params.query, _json_headers(JSON), body)

    def patch(
        self,
        name: str,
        namespace: str | None,
        body: bytes,
        params: PatchParams,
        *,
        subresource: str | None = None,
    ) -> Request:
        self.require("patch")
        path = self.object_path(name, namespace, subresource)
        # JSON Patch operations such as "add to a list" change the result when repeated.
        return Request(
            "PATCH",
            path,
            params.query,
            _json_headers(params.patch_type.value),
            body,
            idempotent=params.patch_type is not PatchType.JSON,
        )

    def delete(self, name: str, namespace: str | None, params: DeleteParams = _DELETE) -> Request:
        self.require("delete")
        path = self.object_path(name, namespace, None)
        return _delete_request(path, (), params)

    def delete_collection(
        self, namespace: str | None, selectors: ListParams, params: DeleteParams = _DELETE
    ) -> Request:
        """One DELETE of the collection: only for resources whose verbs include
        ``deletecollection`` (``ResourceApi.delete_collection`` lists and deletes one
        by one for the others)."""
        self.require("deletecollection")
        path = self.collection_path(namespace, all_namespaces_ok=False)
        return _delete_request(path, selectors.query, params)


def _delete_request(path: str, query: Query, params: DeleteParams) -> Request:
    headers = _json_headers(JSON) if params.body is not None else {"Accept": JSON}
    return Request("DELETE", path, query, headers, params.body)


def _json_headers(content_type: str) -> dict[str, str]:
    return {"Accept": JSON, "Content-Type": content_type}


def json_patch_operations(patch: object) -> Sequence[Mapping[str, Any]]:
    """Check a JSON Patch is a list of operations with ``op`` and ``path``."""
    if isinstance(patch, (str, bytes)) or not isinstance(patch, Sequence):
        raise ValueError("patch: a JSON patch must be a list of operations")
    valid_ops = {"add", "remove", "replace", "move", "copy", "test"}
    for index, op in enumerate(patch):
        if not isinstance(op, Mapping) or op.get("op") not in valid_ops or "path" not in op:
            raise ValueError(
                f"patch[{index}] must be a mapping with 'op' (one of {', '.join(sorted(valid_ops))})"
                f" and 'path', got {op!r}"
            )
    return patch


def encode_object(
    descriptor: ResourceDescriptor[Any, Any],
    obj: object,
    *,
    argument: str = "obj",
    name: str | None = None,
    namespace: str | None = None,
    require_name: bool = False,
) -> bytes:
    """Encode a model instance or a plain dict as a request body.

    ``kind`` and ``apiVersion`` are filled in from the descriptor when missing and must match
    it when present; ``metadata.name`` must match ``name`` (the URL's) and
    ``metadata.namespace`` must match ``namespace``, which is what the server would check,
    but here the error names the argument and nothing is sent.
    """
    if isinstance(obj, msgspec.Struct):
        expected = descriptor.model
        if expected is not dict and not isinstance(obj, expected):
            raise ValueError(
                f"{argument} must be a {expected.__name__} or a dict, not {type(obj).__name__}"
            )
        kind = getattr(obj, "kind", None)
        api_version = getattr(obj, "api_version", None)
        metadata = getattr(obj, "metadata", None)
        meta_name = getattr(metadata, "name", None)
        meta_generate_name = getattr(metadata, "generate_name", None)
        meta_namespace = getattr(metadata, "namespace", None)
    elif isinstance(obj, Mapping):
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        metadata = obj.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(f"{argument}['metadata'] must be a mapping, not {type(metadata).__name__}")
        metadata = metadata or {}
        meta_name = metadata.get("name")
        meta_generate_name = metadata.get("generateName")
        meta_namespace = metadata.get("namespace")
    else:
        raise ValueError(
            f"{argument} must be a Kubernetes object (a model instance or a dict),"
            f" not {type(obj).__name__}"
        )

    if kind is not None and kind != descriptor.kind:
        raise ValueError(f"{argument} has kind {kind!r}, expected {descriptor.kind!r}")
    if api_version is not None and api_version != descriptor.api_version:
        raise ValueError(
            f"{argument} has apiVersion {api_version!r}, expected {descriptor.api_version!r}"
        )
    if name is not None and meta_name is not None and meta_name != name:
        raise ValueError(f"{argument} is named {meta_name!r} but name is {name!r}")
    if require_name and name is None and not meta_name and not meta_generate_name:
        raise ValueError(f"{argument} needs metadata.name or metadata.generateName")
    if meta_namespace is not None and namespace is not None and meta_namespace != namespace:
        raise ValueError(
            f"{argument} is in namespace {meta_namespace!r} but namespace is {namespace!r}"
        )
    if meta_name is not None:
        validate_name(meta_name, f"{argument} metadata.name")

    fill: dict[str, Any] = {}
    if kind is None:
        fill["kind"] = descriptor.kind
    if api_version is None:
        fill["apiVersion"] = descriptor.api_version
    if name is not None and meta_name is None:
        fill["metadata"] = name

    if isinstance(obj, msgspec.Struct):
        return _encode_struct(obj, fill)
    body = dict(obj)
    for key, value in fill.items():
        if key == "metadata":
            body["metadata"] = {**body.get("metadata", {}), "name": value}
        else:
            body[key] = value
    try:
        return msgspec.json.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValueError(f"{argument} cannot be encoded as JSON: {exc}") from None


def _encode_struct(obj: msgspec.Struct, fill: dict[str, Any]) -> bytes:
    if not fill:
        return msgspec.json.encode(obj)
    # Encode once, then splice the missing top-level keys in; cheaper and simpler than
    # copying the struct tree (and works for user-defined Structs without those fields).
    encoded = msgspec.json.encode(obj)
    data = msgspec.json.decode(encoded)
    if not isinstance(data, dict):
        raise ValueError(f"{type(obj).__name__} does not encode as a JSON object")
    for key, value in fill.items():
        if key == "metadata":
            data["metadata"] = {**(data.get("metadata") or {}), "name": value}
        else:
            data[key] = value
    return msgspec.json.encode(data)


def encode_patch(
    descriptor: ResourceDescriptor[Any, Any],
    patch: object,
    patch_type: PatchType,
    *,
    name: str,
    namespace: str | None,
) -> bytes:
    """Encode a patch body after checking its shape fits ``patch_type``."""
    if patch_type is PatchType.JSON:
        return msgspec.json.encode(list(json_patch_operations(patch)))
    if patch_type is PatchType.APPLY:
        # Apply takes a full object (JSON is valid YAML): same checks as a replace.
        return encode_object(descriptor, patch, argument="patch", name=name, namespace=namespace)
    if isinstance(patch, msgspec.Struct):
        return msgspec.json.encode(patch)
    if not isinstance(patch, Mapping):
        raise ValueError(
            f"patch: a {patch_type.name} patch must be a mapping or a model instance,"
            f" not {type(patch).__name__}"
        )
    try:
        return msgspec.json.encode(patch)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValueError(f"patch cannot be encoded as JSON: {exc}") from None
