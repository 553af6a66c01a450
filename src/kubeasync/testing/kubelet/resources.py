"""The resources a virtual kubelet reads and writes, as plain-dict descriptors.

Node and Lease have no typed models or Client attributes yet; pods are read as JSON dicts
because that is what the simulation hands to command and port handlers. When the
catalogue has typed rows for Node and Lease, :data:`NODES` and :data:`LEASES` become
``kinds.NODES`` and ``kinds.LEASES`` (and ``.create`` answers models instead of dicts).
"""

from __future__ import annotations

from typing import Any

from ...api.capabilities import StatusApi
from ...api.client import Client
from ...api.resource import ResourceApi
from ...core.descriptor import ResourceDescriptor, custom_resource

__all__ = ["LEASES", "NODES", "NODE_LEASE_NAMESPACE", "PODS", "dicts", "dicts_with_status"]

Dicts = ResourceDescriptor[dict[str, Any], dict[str, Any]]

NODES = custom_resource(group="", version="v1", kind="Node", plural="nodes", namespaced=False,
                        subresources=("status",), short_names=("no",))
LEASES = custom_resource(group="coordination.k8s.io", version="v1", kind="Lease",
                         plural="leases", subresources=())
PODS = custom_resource(group="", version="v1", kind="Pod", plural="pods",
                       subresources=("status", "log"), short_names=("po",))
NODE_LEASE_NAMESPACE = "kube-node-lease"


def dicts(kube: Client, descriptor: Dicts) -> ResourceApi[dict[str, Any], dict[str, Any]]:
    return kube.resource(descriptor)


def dicts_with_status(kube: Client,
                      descriptor: Dicts) -> StatusApi[dict[str, Any], dict[str, Any]]:
    """The API of a resource with a status subresource, typed as such."""
    api = kube.resource(descriptor)
    if not isinstance(api, StatusApi):
        raise TypeError(f"{descriptor.plural} have no status subresource")
    return api
