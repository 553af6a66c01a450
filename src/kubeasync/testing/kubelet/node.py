"""The Node a virtual kubelet registers, and the Lease that keeps it alive (as plain
dicts: see :mod:`.resources`)."""

from __future__ import annotations

import contextlib
import logging
import platform
import uuid
from datetime import datetime, timezone
from typing import Any

from ..._version import __version__
from ...api.client import Client
from ...core.errors import AlreadyExists, Conflict, NotFound
from ...core.objects import accessor_of
from ...models import format_time
from .resources import LEASES, NODE_LEASE_NAMESPACE, NODES, dicts, dicts_with_status

__all__ = ["LEASE_DURATION", "NodeRegistration"]

log = logging.getLogger("kubeasync.testing.kubelet")

LEASE_DURATION = 40  # seconds, as a kubelet's default nodeLeaseDurationSeconds

_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory",
     "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def _now() -> str:
    return format_time(datetime.now(timezone.utc))


def _micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeRegistration:
    """Registers the Node, writes its status, renews its Lease, and removes them."""

    def __init__(self, kube: Client, name: str, *, address: str, port: int,
                 capacity: dict[str, str], labels: dict[str, str]) -> None:
        self.name = name
        self.address = address
        self.port = port
        self.capacity = dict(capacity)
        self.labels = labels
        self.nodes = dicts_with_status(kube, NODES)
        self.leases = dicts(kube, LEASES)
        self.uid = ""
        self._transitions: dict[str, str] = {}
        self._boot_id = str(uuid.uuid4())

    def _status(self) -> dict[str, Any]:
        now = _now()
        conditions = []
        for kind, value, reason, message in _CONDITIONS:
            since = self._transitions.setdefault(kind, now)
            conditions.append({"type": kind, "status": value, "reason": reason,
                               "message": message, "lastHeartbeatTime": now,
                               "lastTransitionTime": since})
        return {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": conditions,
            # Only the IP: kube-apiserver prefers a Hostname address, and the node's name
            # resolves nowhere.
            "addresses": [{"type": "InternalIP", "address": self.address}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": self._boot_id.replace("-", ""),
                "systemUUID": self._boot_id,
                "bootID": self._boot_id,
                "kernelVersion": platform.release(),
                "osImage": "kubeasync virtual kubelet",
                "containerRuntimeVersion": f"kubeasync://{__version__}",
                "kubeletVersion": f"v{__version__}-kubeasync",
                "kubeProxyVersion": f"v{__version__}-kubeasync",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    async def register(self) -> None:
        """Create the Node (or take over one left by an earlier run), mark it Ready, and
        take its Lease."""
        body = {"metadata": {"name": self.name, "labels": self.labels}, "spec": {}}
        try:
            node = await self.nodes.create(body)
        except AlreadyExists:
            node = await self.nodes.patch(self.name, {"metadata": {"labels": self.labels}})
        # (through the accessor, as for typed Nodes: see .resources)
        self.uid = str(accessor_of(node).identity(node)[1])
        await self.heartbeat()
        try:
            await self.renew_lease()
        except NotFound as error:  # no kube-node-lease namespace: status heartbeats only
            log.warning("node %s: cannot take its Lease (%s); heartbeats by status only",
                        self.name, error.message)

    async def heartbeat(self) -> None:
        """Write the node's status: Ready, with a fresh ``lastHeartbeatTime``."""
        await self.nodes.patch_status(self.name, {"status": self._status()})

    async def renew_lease(self) -> None:
        """Renew (or create) the node's Lease in ``kube-node-lease``."""
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION,
                "renewTime": _micro_now()}
        try:
            await self.leases.patch(self.name, {"spec": spec}, namespace=NODE_LEASE_NAMESPACE)
        except NotFound:
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}
            body = {"metadata": {"name": self.name, "namespace": NODE_LEASE_NAMESPACE,
                                 "ownerReferences": [owner]}, "spec": spec}
            with contextlib.suppress(AlreadyExists, Conflict):
                await self.leases.create(body, namespace=NODE_LEASE_NAMESPACE)

    async def remove(self) -> None:
        """Delete the Lease and the Node (the API server's pod GC then removes pods that
        were still bound to it)."""
        with contextlib.suppress(NotFound):
            await self.leases.delete(self.name, namespace=NODE_LEASE_NAMESPACE)
        with contextlib.suppress(NotFound):
            await self.nodes.delete(self.name)
