"""Request building, with no I/O.

:class:`RequestBuilder` turns a descriptor and call arguments into a :class:`Request`
(method, path, query, headers, body). Everything a server would reject for a reason we
can see locally (an unsafe name, an unknown patch type, a body of the wrong kind) raises
``ValueError`` here, naming the argument, before anything is sent. Tests assert on the
built request without a server, as kube-rs does with ``kube-core``'s ``Request``.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from ..core.selectors import render_field_selector, render_label_selector
from .descriptor import ResourceDescriptor
from .names import validate_name, validate_namespace

__all__ = [
    "JSON",
    "PatchType",
    "PropagationPolicy",
    "Request",
    "RequestBuilder",
]

ObjT = TypeVar("ObjT")
ListT = TypeVar("ListT")

JSON = "application/json"


class PatchType(str, enum.Enum):
    """The patch flavours the API server accepts, by their exact content type."""

    JSON = "application/json-patch+json"
    """RFC 6902 JSON Patch: a list of ``{"op", "path", "value"}`` operations."""
    MERGE = "application/merge-patch+json"
    """RFC 7386 JSON Merge Patch: a partial object; ``None`` deletes a key; lists are replaced."""
    STRATEGIC = "application/strategic-merge-patch+json"
    """Kubernetes strategic merge: like MERGE, but lists such as containers merge by key.
    Built-in kinds only (not CRDs)."""
    APPLY = "application/apply-patch+yaml"
    """Server-side apply: the full intent of ``field_manager``; needs ``field_manager``."""


class PropagationPolicy(str, enum.Enum):
    """What happens to an object's dependents when it is deleted."""

    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


_PROPAGATION_POLICIES = {p.value for p in PropagationPolicy}
_PRECONDITION_KEYS = {"uid": "uid", "resource_version": "resourceVersion",
                      "resourceVersion": "resourceVersion"}


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
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": JSON})
    body: bytes | None = None
    idempotent: bool = True

    @property
    def target(self) -> str:
        """Path and query string, for messages and logs."""
        if not self.query:
            return self.path
        from urllib.parse import urlencode

        return f"{self.path}?{urlencode(self.query)}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _int(value: object, argument: str, *, minimum: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{argument} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, got {value}")
    return str(value)


def _str(value: object, argument: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{argument} must be a non-empty str, got {value!r}")
    return value


class RequestBuilder(Generic[ObjT, ListT]):
    """Builds every request for one resource descriptor.

    ``namespace`` arguments here are already resolved: a str for namespaced calls, or
    ``None`` for cluster-scoped resources and for list/watch across all namespaces.
    """

    def __init__(self, descriptor: ResourceDescriptor[ObjT, ListT]) -> None:
        self.descriptor = descriptor

    # ----------------------------------------------------------------- paths

    def _namespace(self, namespace: str | None, *, collection: bool = False) -> str | None:
        d = self.descriptor
        if not d.namespaced:
            if namespace is not None:
                raise ValueError(f"{d.plural} are cluster-scoped: namespace must not be given")
            return None
        if namespace is None:
            if collection:
                return None
            raise ValueError(f"{d.plural} are namespaced: a namespace is required")
        return validate_namespace(namespace)

    def _object_path(self, name: str, namespace: str | None, subresource: str | None) -> str:
        d = self.descriptor
        if subresource is not None and not d.has_subresource(subresource):
            raise ValueError(f"{d.plural} have no {subresource!r} subresource")
        return d.object_path(validate_name(name), self._namespace(namespace), subresource)

    def _require(self, verb: str) -> None:
        if not self.descriptor.supports(verb):
            raise ValueError(f"{self.descriptor.plural} do not support {verb!r}")

    # ----------------------------------------------------------------- verbs

    def get(
        self,
        name: str,
        namespace: str | None,
        *,
        subresource: str | None = None,
        resource_version: str | None = None,
    ) -> Request:
        self._require("get")
        query = []
        if resource_version is not None:
            query.append(("resourceVersion", _str_or_zero(resource_version)))
        return Request("GET", self._object_path(name, namespace, subresource), tuple(query))

    def list(
        self,
        namespace: str | None,
        *,
        label_selector: object = None,
        field_selector: object = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        timeout_seconds: int | None = None,
    ) -> Request:
        self._require("list")
        query = self._selectors(label_selector, field_selector)
        if limit is not None:
            query.append(("limit", _int(limit, "limit", minimum=1)))
        if continue_ is not None:
            query.append(("continue", _str(continue_, "continue_")))
        if resource_version is not None:
            query.append(("resourceVersion", _str_or_zero(resource_version)))
        if resource_version_match is not None:
            if resource_version is None:
                raise ValueError("resource_version_match needs resource_version")
            query.append(("resourceVersionMatch", _match(resource_version_match)))
        if timeout_seconds is not None:
            query.append(("timeoutSeconds", _int(timeout_seconds, "timeout_seconds", minimum=0)))
        path = self.descriptor.collection_path(self._namespace(namespace, collection=True))
        return Request("GET", path, tuple(query))

    def watch(
        self,
        namespace: str | None,
        *,
        label_selector: object = None,
        field_selector: object = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
    ) -> Request:
        self._require("watch")
        query = [("watch", "true"), *self._selectors(label_selector, field_selector)]
        if resource_version is not None:
            query.append(("resourceVersion", _str_or_zero(resource_version)))
        if resource_version_match is not None:
            query.append(("resourceVersionMatch", _match(resource_version_match)))
        if timeout_seconds is not None:
            query.append(("timeoutSeconds", _int(timeout_seconds, "timeout_seconds", minimum=0)))
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if send_initial_events:
            query.append(("sendInitialEvents", "true"))
        path = self.descriptor.collection_path(self._namespace(namespace, collection=True))
        return Request("GET", path, tuple(query))

    def create(
        self,
        namespace: str | None,
        body: bytes,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Request:
        self._require("create")
        path = self.descriptor.collection_path(self._namespace(namespace))
        query = _write_query(dry_run, field_manager)
        # A POST that reached the server may have created the object: never blind-retry it.
        return Request("POST", path, query, _json_headers(JSON), body, idempotent=False)

    def replace(
        self,
        name: str,
        namespace: str | None,
        body: bytes,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Request:
        self._require("update")
        path = self._object_path(name, namespace, subresource)
        query = _write_query(dry_run, field_manager)
        return Request("PUT", path, query, _json_headers(JSON), body)

    def patch(
        self,
        name: str,
        namespace: str | None,
        body: bytes,
        patch_type: PatchType,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> Request:
        self._require("patch")
        patch_type = coerce_patch_type(patch_type)
        if patch_type is PatchType.APPLY and not field_manager:
            raise ValueError("field_manager is required for server-side apply (PatchType.APPLY)")
        if force is not None and patch_type is not PatchType.APPLY:
            raise ValueError("force only applies to server-side apply (PatchType.APPLY)")
        path = self._object_path(name, namespace, subresource)
        query = list(_write_query(dry_run, field_manager))
        if force is not None:
            query.append(("force", _bool(force)))
        # JSON Patch operations such as "add to a list" change the result when repeated.
        return Request(
            "PATCH",
            path,
            tuple(query),
            _json_headers(patch_type.value),
            body,
            idempotent=patch_type is not PatchType.JSON,
        )

    def delete(
        self,
        name: str,
        namespace: str | None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> Request:
        self._require("delete")
        path = self._object_path(name, namespace, None)
        options = delete_options(
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        headers = _json_headers(JSON) if options is not None else {"Accept": JSON}
        return Request("DELETE", path, (), headers, options)

    def delete_collection(
        self,
        namespace: str | None,
        *,
        label_selector: object = None,
        field_selector: object = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        dry_run: bool = False,
    ) -> Request:
        self._require("deletecollection")
        query = self._selectors(label_selector, field_selector)
        path = self.descriptor.collection_path(self._namespace(namespace))
        options = delete_options(
            grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy,
            preconditions=None,
            dry_run=dry_run,
        )
        headers = _json_headers(JSON) if options is not None else {"Accept": JSON}
        return Request("DELETE", path, tuple(query), headers, options)

    def logs(
        self,
        name: str,
        namespace: str | None,
        *,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
        previous: bool = False,
        limit_bytes: int | None = None,
    ) -> Request:
        path = self._object_path(name, namespace, "log")
        query: builtins.list[tuple[str, str]] = []
        if container is not None:
            query.append(("container", validate_name(container, "container")))
        if follow:
            query.append(("follow", "true"))
        if tail_lines is not None:
            query.append(("tailLines", _int(tail_lines, "tail_lines", minimum=0)))
        if since_seconds is not None and since_time is not None:
            raise ValueError("give since_seconds or since_time, not both")
        if since_seconds is not None:
            query.append(("sinceSeconds", _int(since_seconds, "since_seconds", minimum=1)))
        if since_time is not None:
            query.append(("sinceTime", _str(since_time, "since_time")))
        if timestamps:
            query.append(("timestamps", "true"))
        if previous:
            query.append(("previous", "true"))
        if limit_bytes is not None:
            query.append(("limitBytes", _int(limit_bytes, "limit_bytes", minimum=1)))
        return Request("GET", path, tuple(query), {"Accept": "*/*"})

    # ----------------------------------------------------------------- parts

    @staticmethod
    def _selectors(
        label_selector: object, field_selector: object
    ) -> builtins.list[tuple[str, str]]:
        query: builtins.list[tuple[str, str]] = []
        if label_selector is not None:
            rendered = render_label_selector(label_selector)
            if rendered:
                query.append(("labelSelector", rendered))
        if field_selector is not None:
            rendered = render_field_selector(field_selector)
            if rendered:
                query.append(("fieldSelector", rendered))
        return query


def coerce_patch_type(patch_type: object) -> PatchType:
    """Accept a :class:`PatchType`, its name (``"merge"``) or its content type."""
    if isinstance(patch_type, PatchType):
        return patch_type
    if isinstance(patch_type, str):
        for member in PatchType:
            if patch_type.lower() in (member.name.lower(), member.value):
                return member
    choices = ", ".join(f"PatchType.{m.name}" for m in PatchType)
    raise ValueError(f"patch_type must be one of {choices}, got {patch_type!r}")


def _str_or_zero(resource_version: object) -> str:
    if not isinstance(resource_version, str):
        raise ValueError(
            f"resource_version must be a str (resourceVersions are opaque), got {resource_version!r}"
        )
    return resource_version


def _match(value: object) -> str:
    if value not in ("Exact", "NotOlderThan"):
        raise ValueError(f"resource_version_match must be 'Exact' or 'NotOlderThan', got {value!r}")
    return str(value)


def _json_headers(content_type: str) -> dict[str, str]:
    return {"Accept": JSON, "Content-Type": content_type}


def _write_query(dry_run: bool, field_manager: str | None) -> tuple[tuple[str, str], ...]:
    query = []
    if dry_run:
        query.append(("dryRun", "All"))
    if field_manager is not None:
        query.append(("fieldManager", _str(field_manager, "field_manager")))
    return tuple(query)


def delete_options(
    *,
    grace_period_seconds: int | None,
    propagation_policy: str | None,
    preconditions: Mapping[str, str] | None,
    dry_run: bool,
) -> bytes | None:
    """The encoded DeleteOptions body, or ``None`` when every option is at its default."""
    options: dict[str, Any] = {}
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = int(
            _int(grace_period_seconds, "grace_period_seconds", minimum=0)
        )
    if propagation_policy is not None:
        policy = (
            propagation_policy.value
            if isinstance(propagation_policy, PropagationPolicy)
            else propagation_policy
        )
        if policy not in _PROPAGATION_POLICIES:
            raise ValueError(
                "propagation_policy must be one of "
                f"{', '.join(sorted(_PROPAGATION_POLICIES))}, got {propagation_policy!r}"
            )
        options["propagationPolicy"] = policy
    if preconditions is not None:
        options["preconditions"] = _preconditions(preconditions)
    if dry_run:
        options["dryRun"] = ["All"]
    if not options:
        return None
    return msgspec.json.encode({"kind": "DeleteOptions", "apiVersion": "v1", **options})


def _preconditions(preconditions: object) -> dict[str, str]:
    if isinstance(preconditions, msgspec.Struct):
        preconditions = msgspec.to_builtins(preconditions)
    if not isinstance(preconditions, Mapping) or not preconditions:
        raise ValueError(
            "preconditions must be a non-empty mapping with 'uid' and/or 'resourceVersion'"
        )
    result = {}
    for key, value in preconditions.items():
        wire = _PRECONDITION_KEYS.get(key)
        if wire is None:
            raise ValueError(
                f"preconditions: unknown key {key!r} (use 'uid' and/or 'resourceVersion')"
            )
        result[wire] = _str(value, f"preconditions[{key!r}]")
    return result


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
