"""Resource descriptors: everything kubeasync knows about a kind of object.

A :class:`ResourceDescriptor` says where a resource lives on the REST API (group, version,
plural, scope), which verbs and subresources the server offers for it, and which model
types its objects and lists decode into. Request paths, the methods of a
:class:`~kubeasync.ResourceApi` (one per subresource capability, see
:mod:`kubeasync.api.capabilities`) and the embedded API server's routes all derive from
it, so a built-in kind is one row of the catalogue (:mod:`kubeasync.kinds`) and a CRD is
one :func:`custom_resource` call.

Models may be given as a type or as ``"module:Name"``: the catalogue names its models that
way so that importing it imports no model module until a resource is used.
"""

from __future__ import annotations

import enum
import importlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from .names import (
    quote_segment,
    validate_dns_label,
    validate_dns_subdomain,
    validate_namespace,
)

__all__ = [
    "ALL_VERBS",
    "Capability",
    "ResourceDescriptor",
    "Wire",
    "custom_resource",
]

T = TypeVar("T")
L = TypeVar("L")

ALL_VERBS: frozenset[str] = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)
"""The verbs of a typical resource, as discovery names them."""

_RESOLVE_LOCK = threading.Lock()


class Wire(enum.Enum):
    """How a capability talks to the server."""

    JSON = "json"
    """One request, one JSON answer (status, scale, eviction, binding, ...)."""
    TEXT_STREAM = "text-stream"
    """A streamed text answer (pod logs)."""
    WEBSOCKET = "websocket"
    """A WebSocket speaking ``v5/v4.channel.k8s.io`` (exec, attach, port-forward)."""


@dataclass(frozen=True)
class Capability:
    """What a subresource gives an API: the methods of one mixin class in
    :mod:`kubeasync.api.capabilities`, described here as data.

    Attributes:
        subresource: the path segment and discovery name (``"status"``, ``"eviction"``).
        wire: how it talks to the server.
        request: what is sent (a model, ``"the kind's model"``, or ``""`` for nothing).
        response: what comes back.
        methods: the API methods it adds.
    """

    subresource: str
    wire: Wire
    request: str
    response: str
    methods: tuple[str, ...]


def _resolve(ref: type[Any] | str, argument: str) -> type[Any]:
    if not isinstance(ref, str):
        return ref
    module_name, _, name = ref.partition(":")
    if not module_name or not name:
        raise ValueError(f"{argument} must be a type or 'module:Name', got {ref!r}")
    resolved: type[Any] = getattr(importlib.import_module(module_name), name)
    return resolved


class ResourceDescriptor(Generic[T, L]):
    """One resource of the API.

    Attributes:
        group: the API group; ``""`` is the core group served under ``/api/v1``.
        version: the API version without group, e.g. ``"v1"``.
        kind: the object kind, e.g. ``"Pod"``.
        plural: the lower-case plural used in paths, e.g. ``"pods"``.
        namespaced: whether objects live in namespaces.
        verbs: the verbs the server supports (discovery's ``verbs``).
        subresources: e.g. ``{"status", "log"}``; each one the client knows is a
            capability and gives the API its methods (``get_status``, ``logs``, ...).
        short_names: kubectl short names (``po``, ``svc``).
        attribute: the :class:`~kubeasync.Client` attribute of a built-in row (``"pods"``).
        model: the type objects decode into (a generated model, your own Struct, or ``dict``).
        list_model: the type lists decode into (``PodList``, or ``dict``).
    """

    __slots__ = (
        "_list_model",
        "_list_model_ref",
        "_model",
        "_model_ref",
        "attribute",
        "group",
        "kind",
        "namespaced",
        "plural",
        "short_names",
        "subresources",
        "verbs",
        "version",
    )

    @overload
    def __init__(
        self: ResourceDescriptor[T, L],
        *,
        kind: str,
        version: str,
        plural: str,
        model: type[T],
        list_model: type[L],
        group: str = "",
        namespaced: bool = True,
        subresources: Iterable[str] = (),
        verbs: Iterable[str] = ALL_VERBS,
        short_names: Iterable[str] = (),
        attribute: str = "",
    ) -> None: ...

    @overload
    def __init__(
        self: ResourceDescriptor[Any, Any],
        *,
        kind: str,
        version: str,
        plural: str,
        model: str,
        list_model: str,
        group: str = "",
        namespaced: bool = True,
        subresources: Iterable[str] = (),
        verbs: Iterable[str] = ALL_VERBS,
        short_names: Iterable[str] = (),
        attribute: str = "",
    ) -> None: ...

    def __init__(
        self,
        *,
        kind: str,
        version: str,
        plural: str,
        model: type[Any] | str,
        list_model: type[Any] | str,
        group: str = "",
        namespaced: bool = True,
        subresources: Iterable[str] = (),
        verbs: Iterable[str] = ALL_VERBS,
        short_names: Iterable[str] = (),
        attribute: str = "",
    ) -> None:
        # group, version and plural become path segments: checked like names.
        if group != "":
            validate_dns_subdomain(group, "group")
        validate_dns_label(version, "version", "an API version")
        validate_dns_label(plural, "plural", "a resource plural")
        if not isinstance(kind, str) or not kind.isidentifier():
            raise ValueError(f"kind must be a CamelCase identifier, got {kind!r}")
        if not isinstance(namespaced, bool):
            raise ValueError(f"namespaced must be a bool, got {namespaced!r}")
        for name, value in (("model", model), ("list_model", list_model)):
            if not isinstance(value, (str, type)):
                raise ValueError(f"{name} must be a type or 'module:Name', got {value!r}")
        subresources = _names(subresources, "subresources")
        for sub in subresources:
            validate_dns_label(sub, "subresources", "a subresource name")
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.subresources = subresources
        self.verbs = _names(verbs, "verbs")
        self.short_names = tuple(_names(short_names, "short_names"))
        self.attribute = attribute
        self._model_ref = model
        self._list_model_ref = list_model
        self._model: type[T] | None = None if isinstance(model, str) else model
        self._list_model: type[L] | None = None if isinstance(list_model, str) else list_model

    # ------------------------------------------------------------------ models

    @property
    def model(self) -> type[T]:
        """The type objects decode into (imported on first use when given by name)."""
        model = self._model
        if model is None:
            with _RESOLVE_LOCK:
                model = self._model = _resolve(self._model_ref, "model")
        return model

    @property
    def list_model(self) -> type[L]:
        """The type lists decode into (imported on first use when given by name)."""
        model = self._list_model
        if model is None:
            with _RESOLVE_LOCK:
                model = self._list_model = _resolve(self._list_model_ref, "list_model")
        return model

    @property
    def typed(self) -> bool:
        """Whether objects decode into a model rather than plain dicts."""
        return self._model_ref is not dict

    # ------------------------------------------------------------------ identity

    def _key(self) -> tuple[Any, ...]:
        return (self.group, self.version, self.plural, self.kind, self.namespaced,
                self.subresources, self.verbs, self._model_ref, self._list_model_ref)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResourceDescriptor):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        model = self._model_ref if isinstance(self._model_ref, str) else self._model_ref.__name__
        return f"<ResourceDescriptor {self.api_version} {self.kind} ({self.plural}) model={model}>"

    def __setattr__(self, name: str, value: Any) -> None:
        # Immutable once built; the two lazily resolved models are the only late writes.
        if name not in ("_model", "_list_model") and hasattr(self, name):
            raise AttributeError(f"ResourceDescriptor.{name} is read-only")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ paths

    @property
    def api_version(self) -> str:
        """``"v1"`` for the core group, ``"{group}/{version}"`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_prefix(self) -> str:
        """``/api/v1`` for the core group, ``/apis/{group}/{version}`` otherwise."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def collection_path(self, namespace: str | None) -> str:
        """The collection URL path; ``namespace=None`` means all namespaces (or cluster scope)."""
        if namespace is None or not self.namespaced:
            return f"{self.api_prefix}/{self.plural}"
        return f"{self.api_prefix}/namespaces/{quote_segment(namespace)}/{self.plural}"

    def object_path(self, name: str, namespace: str | None, subresource: str | None = None) -> str:
        """The URL path of one object, or of one of its subresources."""
        path = f"{self.collection_path(namespace)}/{quote_segment(name)}"
        return f"{path}/{subresource}" if subresource else path

    def has_subresource(self, subresource: str) -> bool:
        return subresource in self.subresources

    def supports(self, verb: str) -> bool:
        return verb in self.verbs

    # ------------------------------------------------------------------ scope

    def namespace_for(
        self,
        namespace: str | None,
        *,
        default: str | None,
        all_namespaces: bool = False,
    ) -> str | None:
        """The namespace one call uses, checked: the only place scope is decided.

        Cluster-scoped resources take no namespace (``None``). For namespaced ones,
        ``all_namespaces=True`` gives ``None`` (the cluster-wide path), an explicit
        ``namespace`` is validated, and otherwise ``default`` is used; with no default
        either, the call needs a namespace and ``ValueError`` says so.
        """
        if not self.namespaced:
            if namespace is not None:
                raise ValueError(
                    f"namespace: {self.plural} are cluster-scoped, give no namespace"
                    f" (got {namespace!r})"
                )
            return None
        if all_namespaces:
            if namespace is not None:
                raise ValueError("give namespace or all_namespaces=True, not both")
            return None
        if namespace is not None:
            return validate_namespace(namespace)
        if default is None:
            raise ValueError(f"namespace is required: {self.plural} are namespaced")
        return validate_namespace(default)


def _names(values: Iterable[str], argument: str) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError(f"{argument} must be a collection of str, not the str {values!r}")
    result = frozenset(values)
    for value in result:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{argument} must hold non-empty str, got {value!r}")
    return result


def custom_resource(
    *,
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    subresources: Iterable[str] = ("status",),
    verbs: Iterable[str] = ALL_VERBS,
    short_names: Iterable[str] = (),
) -> ResourceDescriptor[dict[str, Any], dict[str, Any]]:
    """A descriptor for any other resource (a CRD, or a built-in kind without a model),
    whose objects are plain dicts. For typed objects give a :class:`ResourceDescriptor`
    your own ``msgspec.Struct`` model and list model. ``group`` must be a DNS subdomain,
    ``version`` and ``plural`` DNS labels: they become path segments (``""`` is the core
    group)."""
    return ResourceDescriptor(
        kind=kind,
        version=version,
        plural=plural,
        model=dict,
        list_model=dict,
        group=group,
        namespaced=namespaced,
        subresources=subresources,
        verbs=verbs,
        short_names=short_names,
    )
