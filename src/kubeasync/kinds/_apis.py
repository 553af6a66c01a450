"""The Client's typed attributes and the declared API classes of the kinds.

For mypy, ``kube.pods`` is a :class:`PodApi` and ``kube.config_maps`` a plain
:class:`~kubeasync.ResourceApi`: the same classes the capability registry gives them at run
time. Every attribute of the catalogue is served (made on first use); the ones declared
here are typed.
"""

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
from ..core.descriptor import ResourceDescriptor
from ._catalogue import BUILTIN_RESOURCES, BY_ATTRIBUTE, SEED_RESOURCES

if TYPE_CHECKING:
    from ..models import batch_v1, core_v1, policy_v1

__all__ = ["ATTRIBUTES", "KindAttributes", "PodApi", "descriptor_for_model"]

T = TypeVar("T")
L = TypeVar("L")

ATTRIBUTES: dict[str, ResourceDescriptor[Any, Any]] = {
    **BY_ATTRIBUTE,
    **{d.attribute: d for d in SEED_RESOURCES},
}
"""Every Client attribute, with its row: the seed rows for the six the embedded server has
always served, the preferred row of the catalogue for every other."""


def descriptor_for_model(model: type[Any]) -> ResourceDescriptor[Any, Any] | None:
    """The row whose objects decode into ``model`` (an attribute's row first), if any."""
    for descriptor in (*ATTRIBUTES.values(), *BUILTIN_RESOURCES):
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

    pods: PodApi[core_v1.Pod, core_v1.PodList]
    jobs: StatusApi[batch_v1.Job, batch_v1.JobList]
    services: StatusApi[core_v1.Service, core_v1.ServiceList]
    persistent_volume_claims: StatusApi[
        core_v1.PersistentVolumeClaim, core_v1.PersistentVolumeClaimList
    ]
    namespaces: StatusApi[core_v1.Namespace, core_v1.NamespaceList]
    config_maps: ResourceApi[core_v1.ConfigMap, core_v1.ConfigMapList]
    pod_disruption_budgets: StatusApi[
        policy_v1.PodDisruptionBudget, policy_v1.PodDisruptionBudgetList
    ]
