"""The embedded Kubernetes API server and the virtual kubelet, for tests, demos and local
development.

    from kubeasync import Client
    from kubeasync.testing import FakeApiServer, VirtualKubelet

    async with FakeApiServer() as server:
        async with Client(server.config()) as kube:
            await kube.config_maps.create({"metadata": {"name": "settings"}})
            async with VirtualKubelet(kube, name="vk-1"):   # a node that runs pods
                ...

See ``docs/testing.md`` for the pytest plugin, the simulated cluster, fault injection and
the known differences from a real API server, and ``docs/exec.md`` for the virtual kubelet.
"""

from ..runtime.clock import FakeClock
from ._cluster import NODE_NAME
from ._faults import FaultRule, Faults
from ._server import DEFAULT_VERSION, SERVED_RESOURCES, FakeApiServer
from .kubelet import (
    ANNOTATION_EXIT_CODE,
    ANNOTATION_LOG,
    ANNOTATION_RUN_SECONDS,
    ANNOTATION_TERMINATION_SECONDS,
    PortConnection,
    Process,
    Timings,
    VirtualKubelet,
    tcp_forward,
)

__all__ = [
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_LOG",
    "ANNOTATION_RUN_SECONDS",
    "ANNOTATION_TERMINATION_SECONDS",
    "DEFAULT_VERSION",
    "NODE_NAME",
    "SERVED_RESOURCES",
    "FakeApiServer",
    "FakeClock",
    "FaultRule",
    "Faults",
    "PortConnection",
    "Process",
    "Timings",
    "VirtualKubelet",
    "tcp_forward",
]
