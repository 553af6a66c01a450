"""The resource descriptor table.

A :class:`ResourceDescriptor` is everything kubeasync needs to know about a kind of object:
where it lives on the REST API, which verbs and subresources it has, and which model types
its objects and lists decode into. Request paths, the generated :class:`~kubeasync.api.ResourceApi`
methods and the embedded API server are all derived from it, so adding a resource is one row
in :data:`BUILTIN_RESOURCES` (or one :func:`custom_resource` call for a CRD).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from ..models import (
    ConfigMap,
    ConfigMapList,
    Job,
    JobList,
    Namespace,
    NamespaceList,
    PersistentVolumeClaim,
    PersistentVolumeClaimList,
    Pod,
    PodList,
    Service,
    ServiceList,
)

__all__ = [
    "ALL_VERBS",
    "BUILTIN_RESOURCES",
    "CONFIG_MAPS",
    "JOBS",
    "NAMESPACES",
    "PERSISTENT_VOLUME_CLAIMS",
    "PODS",
    "SERVICES",
    "ResourceDescriptor",
    "custom_resource",
    "validate_name",
    "validate_namespace",
]

ObjT = TypeVar("ObjT")
ListT = TypeVar("ListT")

ALL_VERBS: frozenset[str] = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)
"""The verbs of a typical resource, as discovery names them."""

_DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ResourceDescriptor(Generic[ObjT, ListT]):
    """One row of the resource table.

    Attributes:
        kind: the object kind, e.g. ``"Pod"``.
        version: the API version without group, e.g. ``"v1"``.
        plural: the lower-case plural used in paths, e.g. ``"pods"``.
        model: the type objects decode into (a generated model, or ``dict``).
        list_model: the type lists decode into (e.g. ``PodList``, or ``dict``).
        group: the API group; ``""`` is the core group served under ``/api/v1``.
        namespaced: whether objects live in namespaces.
        subresources: e.g. ``{"status", "log"}``; decides which methods exist.
        verbs: the verbs the server supports (discovery's ``verbs``).
        short_names: kubectl short names (``po``, ``svc``), served in discovery.
        attribute: the :class:`~kubeasync.Client` attribute for built-in rows (``"pods"``).
    """

    kind: str
    version: str
    plural: str
    model: type[ObjT]
    list_model: type[ListT]
    group: str = ""
    namespaced: bool = True
    subresources: frozenset[str] = frozenset({"status"})
    verbs: frozenset[str] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    attribute: str = field(default="", compare=False)

    @property
    def api_version(self) -> str:
        """``"v1"`` for the core group, ``"{group}/{version}"`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

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


def quote_segment(segment: str) -> str:
    """Percent-encode one path segment (after validation, so ``/`` and ``%`` never occur)."""
    return quote(segment, safe="")


def validate_name(name: object, argument: str = "name") -> str:
    """Check an object name is safe as one URL path segment; return it.

    The API server's own rule (``IsValidPathSegmentName``): not empty, not ``.`` or ``..``,
    and no ``/`` or ``%``. Dots inside a name (``web.v1``) are fine. Stricter rules
    (DNS-1123) differ per kind and are left to the server, which answers 422 Invalid.
    """
    if not isinstance(name, str):
        raise ValueError(f"{argument} must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError(f"{argument} must not be empty")
    if name in (".", ".."):
        raise ValueError(f"{argument} may not be {name!r}")
    for bad in ("/", "%"):
        if bad in name:
            raise ValueError(f"{argument} {name!r} may not contain {bad!r}")
    if _CONTROL_CHARACTER.search(name):
        raise ValueError(f"{argument} {name!r} may not contain control characters")
    return name


def validate_namespace(namespace: object, argument: str = "namespace") -> str:
    """Check a namespace is a DNS-1123 label (what the server accepts); return it."""
    if not isinstance(namespace, str):
        raise ValueError(f"{argument} must be a str, not {type(namespace).__name__}")
    if not namespace:
        raise ValueError(f"{argument} must not be empty")
    if len(namespace) > _DNS_LABEL_MAX:
        raise ValueError(f"{argument} {namespace!r} is longer than {_DNS_LABEL_MAX} characters")
    if not _DNS_LABEL.fullmatch(namespace):
        raise ValueError(
            f"{argument} {namespace!r} is not a valid namespace: use lower-case letters, digits"
            " and '-', starting and ending with a letter or digit"
        )
    return namespace


def custom_resource(
    *,
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    subresources: Iterable[str] = ("status",),
    verbs: Iterable[str] = ALL_VERBS,
) -> ResourceDescriptor[dict[str, Any], dict[str, Any]]:
    """A descriptor for any other resource (a CRD, or a built-in kind without a model),
    whose objects are plain dicts. For typed objects build a :class:`ResourceDescriptor`
    with your own ``msgspec.Struct`` model and list model."""
    return ResourceDescriptor(
        kind=kind,
        version=version,
        plural=plural,
        model=dict,
        list_model=dict,
        group=group,
        namespaced=namespaced,
        subresources=frozenset(subresources),
        verbs=frozenset(verbs),
    )


# The table. Verbs and subresources are what kube-apiserver's discovery reports.
PODS = ResourceDescriptor(
    kind="Pod",
    version="v1",
    plural="pods",
    model=Pod,
    list_model=PodList,
    subresources=frozenset({"status", "log"}),
    short_names=("po",),
    attribute="pods",
)
JOBS = ResourceDescriptor(
    kind="Job",
    group="batch",
    version="v1",
    plural="jobs",
    model=Job,
    list_model=JobList,
    attribute="jobs",
)
SERVICES = ResourceDescriptor(
    kind="Service",
    version="v1",
    plural="services",
    model=Service,
    list_model=ServiceList,
    # Services have never had a collection delete (the server answers 405).
    verbs=ALL_VERBS - {"deletecollection"},
    short_names=("svc",),
    attribute="services",
)
PERSISTENT_VOLUME_CLAIMS = ResourceDescriptor(
    kind="PersistentVolumeClaim",
    version="v1",
    plural="persistentvolumeclaims",
    model=PersistentVolumeClaim,
    list_model=PersistentVolumeClaimList,
    short_names=("pvc",),
    attribute="persistent_volume_claims",
)
NAMESPACES = ResourceDescriptor(
    kind="Namespace",
    version="v1",
    plural="namespaces",
    model=Namespace,
    list_model=NamespaceList,
    namespaced=False,
    subresources=frozenset({"status", "finalize"}),
    verbs=ALL_VERBS - {"deletecollection"},
    short_names=("ns",),
    attribute="namespaces",
)
CONFIG_MAPS = ResourceDescriptor(
    kind="ConfigMap",
    version="v1",
    plural="configmaps",
    model=ConfigMap,
    list_model=ConfigMapList,
    subresources=frozenset(),
    short_names=("cm",),
    attribute="config_maps",
)

BUILTIN_RESOURCES: tuple[ResourceDescriptor[Any, Any], ...] = (
    PODS,
    JOBS,
    SERVICES,
    PERSISTENT_VOLUME_CLAIMS,
    NAMESPACES,
    CONFIG_MAPS,
)
"""Every resource with a :class:`~kubeasync.Client` attribute and a route in the embedded server."""
