"""The catalogue of built-in resources: one :class:`~kubeasync.core.descriptor.ResourceDescriptor`
row per kind. Each row's ``attribute`` is its :class:`~kubeasync.Client` attribute, and the
embedded API server serves every row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from ..api.capabilities import (
    AttachApi,
    EvictionApi,
    ExecApi,
    LogApi,
    PortForwardApi,
    StatusApi,
    combination,
)
from ..api.resource import ResourceApi
from ..core.descriptor import ALL_VERBS, ResourceDescriptor

if TYPE_CHECKING:
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
    "ATTRIBUTES",
    "BUILTIN_RESOURCES",
    "CONFIG_MAPS",
    "JOBS",
    "NAMESPACES",
    "PERSISTENT_VOLUME_CLAIMS",
    "PODS",
    "POD_DISRUPTION_BUDGETS",
    "SERVICES",
    "KindAttributes",
    "PodApi",
    "descriptor_for_model",
]

T = TypeVar("T")
L = TypeVar("L")

_CORE = "kubeasync.models"

PODS: ResourceDescriptor[Pod, PodList] = ResourceDescriptor(
    kind="Pod",
    version="v1",
    plural="pods",
    model=f"{_CORE}:Pod",
    list_model=f"{_CORE}:PodList",
    subresources={"status", "log", "eviction", "exec", "attach", "portforward"},
    short_names=("po",),
    attribute="pods",
)
JOBS: ResourceDescriptor[Job, JobList] = ResourceDescriptor(
    kind="Job",
    group="batch",
    version="v1",
    plural="jobs",
    model=f"{_CORE}:Job",
    list_model=f"{_CORE}:JobList",
    subresources={"status"},
    attribute="jobs",
)
SERVICES: ResourceDescriptor[Service, ServiceList] = ResourceDescriptor(
    kind="Service",
    version="v1",
    plural="services",
    model=f"{_CORE}:Service",
    list_model=f"{_CORE}:ServiceList",
    subresources={"status"},
    # Services have never had a collection delete (the server answers 405).
    verbs=ALL_VERBS - {"deletecollection"},
    short_names=("svc",),
    attribute="services",
)
PERSISTENT_VOLUME_CLAIMS: ResourceDescriptor[PersistentVolumeClaim, PersistentVolumeClaimList] = (
    ResourceDescriptor(
        kind="PersistentVolumeClaim",
        version="v1",
        plural="persistentvolumeclaims",
        model=f"{_CORE}:PersistentVolumeClaim",
        list_model=f"{_CORE}:PersistentVolumeClaimList",
        subresources={"status"},
        short_names=("pvc",),
        attribute="persistent_volume_claims",
    )
)
NAMESPACES: ResourceDescriptor[Namespace, NamespaceList] = ResourceDescriptor(
    kind="Namespace",
    version="v1",
    plural="namespaces",
    model=f"{_CORE}:Namespace",
    list_model=f"{_CORE}:NamespaceList",
    namespaced=False,
    subresources={"status", "finalize"},
    verbs=ALL_VERBS - {"deletecollection"},
    short_names=("ns",),
    attribute="namespaces",
)
CONFIG_MAPS: ResourceDescriptor[ConfigMap, ConfigMapList] = ResourceDescriptor(
    kind="ConfigMap",
    version="v1",
    plural="configmaps",
    model=f"{_CORE}:ConfigMap",
    list_model=f"{_CORE}:ConfigMapList",
    short_names=("cm",),
    attribute="config_maps",
)

POD_DISRUPTION_BUDGETS: ResourceDescriptor[dict[str, Any], dict[str, Any]] = ResourceDescriptor(
    kind="PodDisruptionBudget",
    group="policy",
    version="v1",
    plural="poddisruptionbudgets",
    model=dict,
    list_model=dict,
    subresources={"status"},
    short_names=("pdb",),
    attribute="pod_disruption_budgets",
)

BUILTIN_RESOURCES: tuple[ResourceDescriptor[Any, Any], ...] = (
    PODS,
    JOBS,
    SERVICES,
    PERSISTENT_VOLUME_CLAIMS,
    NAMESPACES,
    CONFIG_MAPS,
    POD_DISRUPTION_BUDGETS,
)
"""Every resource with a :class:`~kubeasync.Client` attribute and a route in the embedded server."""

ATTRIBUTES: dict[str, ResourceDescriptor[Any, Any]] = {
    d.attribute: d for d in BUILTIN_RESOURCES if d.attribute
}
"""The Client attribute of each built-in resource that has one."""


def descriptor_for_model(model: type[Any]) -> ResourceDescriptor[Any, Any] | None:
    """The built-in row whose objects decode into ``model``, if any."""
    for descriptor in BUILTIN_RESOURCES:
        if descriptor.model is model:
            return descriptor
    return None


@combination
class PodApi(LogApi[T, L], EvictionApi[T, L], StatusApi[T, L], ExecApi[T, L], AttachApi[T, L],
             PortForwardApi[T, L]):
    """The API of pods: the core verbs, status, logs, eviction, exec, attach and
    port-forward."""


class KindAttributes:
    """The typed Client attributes of the built-in resources (made on first use)."""

    pods: PodApi[Pod, PodList]
    jobs: StatusApi[Job, JobList]
    services: StatusApi[Service, ServiceList]
    persistent_volume_claims: StatusApi[PersistentVolumeClaim, PersistentVolumeClaimList]
    namespaces: StatusApi[Namespace, NamespaceList]
    config_maps: ResourceApi[ConfigMap, ConfigMapList]
    pod_disruption_budgets: StatusApi[dict[str, Any], dict[str, Any]]
