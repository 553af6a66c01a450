"""The resources a virtual kubelet reads and writes, as plain-dict descriptors.

Pods are read as JSON dicts because that is what the simulation hands to command and port
handlers. Nodes and Leases are dicts too, written as dict patches and read only through
the object accessor: switching them to the catalogue's typed rows is
``NODES = kinds.CORE_V1_NODES`` and ``LEASES = kinds.COORDINATION_V1_LEASES`` (the embedded
server serves these rows, whose only subresource is ``status``, either way).
"""

from __future__ import annotations

from typing import TypeVar

from ...api.capabilities import StatusApi
from ...api.client import Client
from ...api.resource import ResourceApi
from ...core.descriptor import ResourceDescriptor, custom_resource

__all__ = ["LEASES", "NODES", "NODE_LEASE_NAMESPACE", "PODS", "dicts", "dicts_with_status"]

T = TypeVar("T")
L = TypeVar("L")

NODES = custom_resource(group="", version="v1", kind="Node", plural="nodes", namespaced=False,
                        subresources=("status",), short_names=("no",))
LEASES = custom_resource(group="coordination.k8s.io", version="v1", kind="Lease",
                         plural="leases", subresources=())
PODS = custom_resource(group="", version="v1", kind="Pod", plural="pods",
                       subresources=("status", "log"), short_names=("po",))
NODE_LEASE_NAMESPACE = "kube-node-lease"


def dicts(kube: Client, descriptor: ResourceDescriptor[T, L]) -> ResourceApi[T, L]:
    return kube.resource(descriptor)


def dicts_with_status(kube: Client, descriptor: ResourceDescriptor[T, L]) -> StatusApi[T, L]:
    """The API of a resource with a status subresource, typed as such."""
    api = kube.resource(descriptor)
    if not isinstance(api, StatusApi):
        raise TypeError(f"{descriptor.plural} have no status subresource")
    return api
