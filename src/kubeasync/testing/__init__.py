"""The embedded Kubernetes API server, for tests, demos and local development.

    from kubeasync import Client
    from kubeasync.testing import FakeApiServer

    async with FakeApiServer() as server:
        async with Client(server.config()) as kube:
            await kube.config_maps.create({"metadata": {"name": "settings"}})

See ``docs/testing.md`` for the pytest plugin, the simulated cluster, fault injection and
the known differences from a real API server.
"""

from ._cluster import (
    ANNOTATION_EXIT_CODE,
    ANNOTATION_LOG,
    ANNOTATION_RUN_SECONDS,
    NODE_NAME,
    Timings,
)
from ._faults import FaultRule, Faults
from ._server import DEFAULT_VERSION, FakeApiServer

__all__ = [
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_LOG",
    "ANNOTATION_RUN_SECONDS",
    "DEFAULT_VERSION",
    "NODE_NAME",
    "FakeApiServer",
    "FaultRule",
    "Faults",
    "Timings",
]
