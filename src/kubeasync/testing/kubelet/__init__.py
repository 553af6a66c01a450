"""A virtual kubelet: a Node of your own that runs simulated pods, on any API server.

    async with kubeasync.Client() as kube:
        async with VirtualKubelet(kube, name="vk-1") as node:
            ...  # pods scheduled to vk-1 run; logs, exec, attach and port-forward work

Built on the public kubeasync client only, it does what a kubelet does: registers its Node
(Ready, capacity, ``InternalIP`` 127.0.0.1 and ``daemonEndpoints.kubeletEndpoint.Port``),
keeps it alive with a Lease in ``kube-node-lease``, serves the kubelet API over TLS on
127.0.0.1 (:mod:`.api`: the endpoints kube-apiserver proxies ``pods/log``, ``exec``,
``attach`` and ``portforward`` to) and runs the pods bound to it (:mod:`.pods`).

The embedded API server's simulated node (``FakeApiServer(simulate=True)``) is one of these.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ...api.client import Client
from ...core.names import validate_dns_subdomain
from ...core.params import PatchType
from .api import KubeletApi
from .certificate import SelfSignedCertificate, default_ssl_context, self_signed_certificate
from .commands import BUILTIN_COMMANDS
from .logs import LogBook
from .node import NodeRegistration
from .pods import (
    ANNOTATION_EXIT_CODE,
    ANNOTATION_LOG,
    ANNOTATION_RUN_SECONDS,
    ANNOTATION_TERMINATION_SECONDS,
    PodRunner,
    PodRuntime,
    Timings,
    pod_status,
)
from .ports import PortConnection, PortHandler, echo, tcp_forward
from .process import CommandHandler, Output, Process, Terminal
from .resources import LEASES, NODE_LEASE_NAMESPACE, NODES, PODS, dicts_with_status

__all__ = [
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_LOG",
    "ANNOTATION_RUN_SECONDS",
    "ANNOTATION_TERMINATION_SECONDS",
    "BUILTIN_COMMANDS",
    "LEASES",
    "NODES",
    "NODE_LEASE_NAMESPACE",
    "CommandHandler",
    "LogBook",
    "Output",
    "PortConnection",
    "PortHandler",
    "Process",
    "SelfSignedCertificate",
    "Terminal",
    "Timings",
    "VirtualKubelet",
    "echo",
    "self_signed_certificate",
    "tcp_forward",
]

log = logging.getLogger("kubeasync.testing.kubelet")

DEFAULT_CAPACITY: Mapping[str, str] = {"cpu": "8", "memory": "32Gi", "pods": "110",
                                       "ephemeral-storage": "100Gi"}
_SUBNETS = itertools.count(1)


class VirtualKubelet:
    """A simulated node for a cluster: ``async with VirtualKubelet(kube) as node:``.

    Args:
        kube: a client of the API server to join.
        name: the Node's name.
        timings: how fast its pods start, run, restart and stop (:class:`Timings`).
        address: where the kubelet API listens (and the Node's ``InternalIP``).
        port: its port (default 0: any free port; see :attr:`port`).
        v4_only: speak only ``v4.channel.k8s.io`` for exec and attach, as kubelets before
            1.29 do (clients must fall back from v5).
        ssl_context: the TLS server context (default: a self-signed certificate for
            127.0.0.1, made once per process; the API server does not verify it).
        logs: the book of container logs (the embedded server shares its own).
        capacity: the Node's capacity and allocatable (``cpu``, ``memory``, ``pods``).
        labels: extra Node labels.
        heartbeat_interval: seconds between Lease renewals (a kubelet's default is 10).
        node_status_interval: seconds between Node status writes (``lastHeartbeatTime``).
        delete_node_on_exit: delete the Node and its Lease when the block ends (a real
            kubelet leaves them; tests should not).

    Attributes:
        errors: exceptions its pods' lifecycles raised (a test should find it empty).
    """

    def __init__(
        self,
        kube: Client,
        name: str = "vk-1",
        *,
        timings: Timings | None = None,
        address: str = "127.0.0.1",
        port: int = 0,
        v4_only: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        logs: LogBook | None = None,
        capacity: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        heartbeat_interval: float = 10.0,
        node_status_interval: float = 60.0,
        delete_node_on_exit: bool = True,
    ) -> None:
        if not isinstance(kube, Client):
            raise ValueError(f"kube must be a kubeasync.Client, not {type(kube).__name__}")
        self.name = validate_dns_subdomain(name, "name")
        if heartbeat_interval <= 0 or node_status_interval <= 0:
            raise ValueError("heartbeat_interval and node_status_interval must be > 0")
        self.kube = kube
        self.timings = timings or Timings()
        self.address = address
        self.port = port
        self.v4_only = v4_only
        self.logs = logs if logs is not None else LogBook()
        self.heartbeat_interval = heartbeat_interval
        self.node_status_interval = node_status_interval
        self.delete_node_on_exit = delete_node_on_exit
        self.errors: list[BaseException] = []
        self.commands: dict[str, CommandHandler] = dict(BUILTIN_COMMANDS)
        self.stopping = asyncio.Event()
        self._ssl = ssl_context
        self._capacity = dict(capacity or DEFAULT_CAPACITY)
        self._labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64", "type": "virtual-kubelet",
                        **dict(labels or {})}
        self._ports: dict[tuple[str | None, str | None, int], PortHandler] = {}
        self._pods = dicts_with_status(kube, PODS)
        self.runner = PodRunner(self.name, address, self.logs, self.timings,
                                self._write_status, self._delete_pod, self.errors,
                                subnet=next(_SUBNETS) % 250)
        self._registration: NodeRegistration | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:
        where = f"https://{self.address}:{self.port}" if self._runner else "not started"
        return f"<VirtualKubelet {self.name} {where}>"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> VirtualKubelet:
        if self._runner is not None:
            raise RuntimeError(f"virtual kubelet {self.name} is already running")
        self.stopping = asyncio.Event()
        runner = web.AppRunner(KubeletApi(self).application(), access_log=None,
                               handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, self.address, self.port,
                               ssl_context=self._ssl or default_ssl_context())
            await site.start()
            self.port = runner.addresses[0][1]
            self._registration = NodeRegistration(
                self.kube, self.name, address=self.address, port=self.port,
                capacity=self._capacity, labels=self._labels)
            await self._registration.register()
        except BaseException:
            await self._shutdown_server()
            raise
        self._tasks = [asyncio.create_task(self._watch_pods(), name=f"{self.name}: pods"),
                       asyncio.create_task(self._heartbeats(), name=f"{self.name}: heartbeats")]
        return self

    async def stop(self) -> None:
        """Stop running pods and serving, and (by default) remove the Node."""
        if self._runner is None:
            return
        self.stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.runner.stop()
        await self._shutdown_server()
        if self.delete_node_on_exit and self._registration is not None:
            try:
                await self._registration.remove()
            except Exception as error:  # the API server may be gone already
                log.info("virtual kubelet %s: could not remove its Node: %s", self.name, error)

    async def _shutdown_server(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> VirtualKubelet:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``: the kubelet API."""
        if self._runner is None:
            raise RuntimeError("the virtual kubelet is not running: use `async with`")
        return f"https://{self.address}:{self.port}"

    # ------------------------------------------------------------ for tests

    def register_command(self, name: str, handler: CommandHandler) -> None:
        """Make ``exec`` of ``name`` (in any pod of this node) run ``handler``: an
        ``async def handler(process: Process) -> int`` returning the exit code."""
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"name must be a command name without '/', got {name!r}")
        if not callable(handler):
            raise ValueError("handler must be an async function taking a Process")
        self.commands[name] = handler

    def register_port(self, port: int, handler: PortHandler, *, namespace: str | None = None,
                      pod: str | None = None) -> None:
        """Make port-forwards to ``port`` run ``handler`` (for every pod of this node, or
        only the pod named), declared as a containerPort or not. :func:`tcp_forward`
        makes a handler that forwards to a real TCP server."""
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
            raise ValueError(f"port must be an int from 1 to 65535, got {port!r}")
        if not callable(handler):
            raise ValueError("handler must be an async function taking a PortConnection")
        self._ports[(namespace, pod, port)] = handler

    def port_handler(self, runtime: PodRuntime, port: int) -> PortHandler | None:
        """What answers ``port`` in a pod: a registered handler, else the echo server of a
        declared containerPort, else nothing (the connection is refused)."""
        for key in ((runtime.namespace, runtime.name, port), (None, runtime.name, port),
                    (runtime.namespace, None, port), (None, None, port)):
            if key in self._ports:
                return self._ports[key]
        return echo if port in runtime.container_ports() else None

    def append_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Write a line (or several) to a container's log, as if the container had."""
        self.logs.append(namespace, pod, container, line)

    # ------------------------------------------------------------ the API server side

    async def _watch_pods(self) -> None:
        watcher = self._pods.watch(all_namespaces=True,
                                   field_selector={"spec.nodeName": self.name})
        async with watcher:
            async for event in watcher:
                pod: dict[str, Any] = event.object
                metadata = pod.get("metadata") or {}
                key = (str(metadata.get("namespace") or ""), str(metadata.get("name")))
                if event.type == "DELETED":
                    self.runner.forget(key)
                else:
                    self.runner.sync(pod)

    async def _heartbeats(self) -> None:
        assert self._registration is not None
        loop = asyncio.get_running_loop()
        next_status = loop.time() + self.node_status_interval
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._registration.renew_lease()
                if loop.time() >= next_status:
                    next_status = loop.time() + self.node_status_interval
                    await self._registration.heartbeat()
            except Exception as error:  # a kubelet keeps trying
                log.warning("virtual kubelet %s: heartbeat failed: %s", self.name, error)

    async def _write_status(self, runtime: PodRuntime) -> None:
        body = {"status": pod_status(runtime, self.address)}
        runtime.pod = await self._pods.patch_status(runtime.name, body,
                                                    namespace=runtime.namespace,
                                                    patch_type=PatchType.MERGE)

    async def _delete_pod(self, runtime: PodRuntime) -> None:
        await self._pods.delete(runtime.name, namespace=runtime.namespace,
                                grace_period_seconds=0, preconditions={"uid": runtime.uid})

