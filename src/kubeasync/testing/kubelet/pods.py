"""Running the pods bound to a virtual kubelet, as a kubelet does.

A pod goes Pending (containers ``ContainerCreating``) -> Running (containers started,
``podIP``, ``startTime``, conditions Ready) and then, when its simulated program ends,
Succeeded or Failed, or its containers restart as ``restartPolicy`` says (``Always``;
``OnFailure`` after a non-zero exit) with a growing back-off, ``restartCount`` and
``lastState``. A deleted pod gets its grace period: its containers stop (after
``Timings.terminate``, or the pod's ``kubeasync.testing/termination-seconds``, whichever
the grace period allows), then the kubelet deletes it with grace 0.

What the simulated program does is the pod's choice, by annotation (for every container):

- ``kubeasync.testing/log``: lines the container writes when it starts;
- ``kubeasync.testing/run-seconds``: it ends after this long (pods whose ``restartPolicy``
  is not ``Always`` end after ``Timings.run`` without it; ``Always`` pods run until deleted);
- ``kubeasync.testing/exit-code``: the exit code it ends with (default 0);
- ``kubeasync.testing/termination-seconds``: how long it takes to stop once the pod is
  deleted (capped by the grace period).

A container with ``stdin: true`` echoes each line written to its stdin (by ``attach``) into
its log; with ``stdinOnce: true`` as well, it exits 0 when the first attached client closes
stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ...core.errors import Conflict, NotFound
from ...models import format_time
from .logs import LogBook

__all__ = [
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_LOG",
    "ANNOTATION_RUN_SECONDS",
    "ANNOTATION_TERMINATION_SECONDS",
    "ContainerRuntime",
    "PodRuntime",
    "Timings",
    "pod_status",
]

log = logging.getLogger("kubeasync.testing.kubelet")

ANNOTATION_RUN_SECONDS = "kubeasync.testing/run-seconds"
ANNOTATION_EXIT_CODE = "kubeasync.testing/exit-code"
ANNOTATION_LOG = "kubeasync.testing/log"
ANNOTATION_TERMINATION_SECONDS = "kubeasync.testing/termination-seconds"
KILLED = 137  # 128 + SIGKILL: what an exec'd process returns when its container stops
Obj = dict[str, Any]


@dataclass(frozen=True)
class Timings:
    """How long the simulated cluster takes, in seconds.

    Attributes:
        schedule: from creation to being bound to a node (the embedded server's scheduler).
        start: from being bound to Running (pulling images, starting containers).
        run: from Running to Succeeded/Failed, for pods whose ``restartPolicy`` is not
            ``Always`` (those keep running); the pod annotation
            ``kubeasync.testing/run-seconds`` overrides it, for any pod.
        terminate: how long a container takes to stop when its pod is deleted (at most
            the grace period; the annotation ``kubeasync.testing/termination-seconds``
            overrides it).
        restart: the first back-off before a container that ended is restarted; it
            doubles with each restart (a kubelet starts at 10 s, up to 5 minutes).
    """

    schedule: float = 0.02
    start: float = 0.05
    run: float = 0.2
    terminate: float = 0.05
    restart: float = 0.1


def timestamp() -> str:
    return format_time(datetime.now(timezone.utc))


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@dataclass
class ContainerRuntime:
    """One container of a running pod."""

    name: str
    image: str
    spec: Obj
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    restart_count: int = 0
    last_terminated: Obj | None = None
    container_id: str = ""
    stdin: asyncio.StreamReader | None = None
    sessions: set[asyncio.Future[Any]] = field(default_factory=set)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def running(self) -> bool:
        return self.state == "running"

    def status(self) -> Obj:
        if self.state == "running":
            state: Obj = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": {
                "exitCode": self.exit_code, "reason": self.reason,
                "startedAt": self.started_at, "finishedAt": self.finished_at,
                "containerID": self.container_id}}
        else:
            state = {"waiting": {"reason": self.reason}}
            if self.message:
                state["waiting"]["message"] = self.message
        status: Obj = {
            "name": self.name,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
            "ready": self.running,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": f"docker.io/library/{self.image}@sha256:" + "0" * 64,
            "started": self.running,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status

    def stop_sessions(self) -> None:
        """The container stopped: processes exec'd in it die, attached clients end."""
        self.stopped.set()
        for session in list(self.sessions):
            session.cancel()


@dataclass
class PodRuntime:
    """A pod bound to this node, as the kubelet knows it."""

    pod: Obj
    uid: str
    ip: str
    containers: dict[str, ContainerRuntime]
    phase: str = "Pending"
    start_time: str = ""
    terminating: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # port-forward connections: they end with the pod
    sessions: set[asyncio.Future[Any]] = field(default_factory=set)

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"].get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.pod["metadata"].get("annotations") or {})

    @property
    def spec(self) -> Obj:
        spec: Obj = self.pod.get("spec") or {}
        return spec

    def stop_sessions(self) -> None:
        for container in self.containers.values():
            container.stop_sessions()
        for session in list(self.sessions):
            session.cancel()

    def container_ports(self) -> set[int]:
        return {int(p["containerPort"]) for c in self.containers.values()
                for p in c.spec.get("ports") or [] if isinstance(p.get("containerPort"), int)}

    def env(self, container: str) -> dict[str, str]:
        """The environment a process in ``container`` sees."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": str(self.spec.get("hostname") or self.name), "HOME": "/root"}
        spec = self.containers[container].spec
        for entry in spec.get("env") or []:
            if isinstance(entry, dict) and "name" in entry:
                env[str(entry["name"])] = self._env_value(entry)
        return env

    def _env_value(self, entry: Obj) -> str:
        if "value" in entry:
            return str(entry["value"])
        field_path = ((entry.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        values = {"metadata.name": self.name, "metadata.namespace": self.namespace,
                  "metadata.uid": self.uid, "status.podIP": self.ip,
                  "spec.nodeName": str(self.spec.get("nodeName") or "")}
        return values.get(str(field_path), "")


StatusWriter = Callable[[PodRuntime], Awaitable[None]]
Deleter = Callable[[PodRuntime], Awaitable[None]]


class PodRunner:
    """The pod lifecycles of one node."""

    def __init__(self, node_name: str, host_ip: str, logs: LogBook, timings: Timings,
                 write_status: StatusWriter, delete: Deleter, errors: list[BaseException],
                 subnet: int) -> None:
        self.node_name = node_name
        self.host_ip = host_ip
        self.logs = logs
        self.timings = timings
        self._write_status = write_status
        self._delete = delete
        self.errors = errors
        self.pods: dict[tuple[str, str], PodRuntime] = {}
        self._ips = itertools.count(2)
        self._subnet = subnet

    # ------------------------------------------------------------ what the watch says

    def sync(self, pod: Obj) -> None:
        """A pod bound to this node was added or changed."""
        metadata = pod.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name")))
        uid = str(metadata.get("uid"))
        runtime = self.pods.get(key)
        if runtime is not None and runtime.uid != uid:
            self.forget(key)  # the same name, a new pod
            runtime = None
        if runtime is None:
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") and not metadata.get("deletionTimestamp"):
                return  # it finished before this kubelet started: nothing to run
            runtime = self._admit(pod, uid)
            if not metadata.get("deletionTimestamp"):
                self._spawn(runtime, self._lifecycle(runtime))
        runtime.pod = pod
        if metadata.get("deletionTimestamp") and not runtime.terminating:
            runtime.terminating = True
            for task in list(runtime.tasks):
                task.cancel()
            self._spawn(runtime, self._terminate(runtime))

    def forget(self, key: tuple[str, str]) -> None:
        """A pod is gone from the API server."""
        runtime = self.pods.pop(key, None)
        if runtime is None:
            return
        for task in list(runtime.tasks):
            task.cancel()
        runtime.stop_sessions()
        self.logs.forget(*key)

    async def stop(self) -> None:
        tasks = [t for runtime in self.pods.values() for t in runtime.tasks]
        for runtime in self.pods.values():
            runtime.stop_sessions()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ internals

    def _admit(self, pod: Obj, uid: str) -> PodRuntime:
        containers = {}
        for spec in (pod.get("spec") or {}).get("containers") or []:
            if isinstance(spec, dict) and spec.get("name"):
                name = str(spec["name"])
                containers[name] = ContainerRuntime(name, str(spec.get("image") or ""), spec)
        ip = f"10.244.{self._subnet}.{next(self._ips) % 250 + 2}"
        runtime = PodRuntime(pod=pod, uid=uid, ip=ip, containers=containers)
        self.pods[(runtime.namespace, runtime.name)] = runtime
        return runtime

    def _spawn(self, runtime: PodRuntime, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        runtime.tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            runtime.tasks.discard(finished)
            error = None if finished.cancelled() else finished.exception()
            if error is not None:
                log.error("pod %s/%s: %r", runtime.namespace, runtime.name, error)
                self.errors.append(error)

        task.add_done_callback(done)

    async def _write(self, runtime: PodRuntime) -> None:
        with contextlib.suppress(NotFound):  # deleted meanwhile: the watch says so next
            await self._write_status(runtime)

    async def _lifecycle(self, runtime: PodRuntime) -> None:
        t = self.timings
        runtime.start_time = timestamp()
        await self._write(runtime)  # Pending, ContainerCreating
        await asyncio.sleep(t.start)
        while True:
            self._start_containers(runtime)
            runtime.phase = "Running"
            await self._write(runtime)
            code = await self._program(runtime)
            finished = timestamp()
            for container in runtime.containers.values():
                self.logs.append(runtime.namespace, runtime.name, container.name,
                                 f"Container {container.name} exited with code {code}")
                container.state, container.exit_code = "terminated", code
                container.reason = "Completed" if code == 0 else "Error"
                container.finished_at = finished
                container.stop_sessions()
            policy = runtime.spec.get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                runtime.phase = "Succeeded" if code == 0 else "Failed"
                await self._write(runtime)
                return
            restarts = max(c.restart_count for c in runtime.containers.values()) + 1
            for container in runtime.containers.values():
                # The instance that ended is the previous one from now on (its log is what
                # `logs --previous`, and `logs` during the back-off, show).
                self.logs.restart(runtime.namespace, runtime.name, container.name)
                container.last_terminated = container.status()["state"]["terminated"]
                container.restart_count = restarts
                container.state, container.reason = "waiting", "CrashLoopBackOff"
                delay = min(t.restart * 2 ** (restarts - 1), t.restart * 32)
                container.message = (f"back-off {delay:g}s restarting failed container="
                                     f"{container.name} pod={runtime.name}_{runtime.namespace}"
                                     f"({runtime.uid})")
            await self._write(runtime)
            await asyncio.sleep(delay)

    def _start_containers(self, runtime: PodRuntime) -> None:
        started = timestamp()
        for container in runtime.containers.values():
            container.state, container.reason, container.message = "running", "", ""
            container.started_at = started
            container.container_id = (f"containerd://{runtime.uid[:8]}-{container.name}-"
                                      f"{container.restart_count}")
            container.stopped = asyncio.Event()
            container.stdin = asyncio.StreamReader() if container.spec.get("stdin") else None
            self.logs.append(runtime.namespace, runtime.name, container.name,
                             f"Started container {container.name} (image {container.image})")
            for line in str(runtime.annotations.get(ANNOTATION_LOG, "")).splitlines():
                self.logs.append(runtime.namespace, runtime.name, container.name, line)

    async def _program(self, runtime: PodRuntime) -> int:
        """What the containers do until they end; their exit code."""
        annotations = runtime.annotations
        waits: list[asyncio.Future[int]] = []
        run = annotations.get(ANNOTATION_RUN_SECONDS)
        if run is not None or runtime.spec.get("restartPolicy", "Always") != "Always":
            code = int(_float(annotations.get(ANNOTATION_EXIT_CODE, 0), 0))
            waits.append(asyncio.ensure_future(self._after(_float(run, self.timings.run),
                                                           code)))
        for container in runtime.containers.values():
            if container.stdin is not None:
                waits.append(asyncio.ensure_future(self._echo_stdin(runtime, container)))
        if not waits:
            waits.append(asyncio.ensure_future(_forever()))
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    @staticmethod
    async def _after(seconds: float, code: int) -> int:
        await asyncio.sleep(seconds)
        return code

    async def _echo_stdin(self, runtime: PodRuntime, container: ContainerRuntime) -> int:
        assert container.stdin is not None
        while line := await container.stdin.readline():
            self.logs.append(runtime.namespace, runtime.name, container.name,
                             line.decode("utf-8", errors="replace").rstrip("\n"))
        if container.spec.get("stdinOnce"):
            return 0
        return await _forever()  # stdin closed, the program goes on

    async def _terminate(self, runtime: PodRuntime) -> None:
        grace = _float(runtime.pod["metadata"].get("deletionGracePeriodSeconds"), 0)
        takes = _float(runtime.annotations.get(ANNOTATION_TERMINATION_SECONDS),
                       self.timings.terminate)
        await asyncio.sleep(max(0.0, min(grace, takes)))
        runtime.stop_sessions()
        with contextlib.suppress(NotFound, Conflict):
            await self._delete(runtime)


async def _forever() -> int:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def pod_status(runtime: PodRuntime, host_ip: str) -> Obj:
    """The status a kubelet writes for a pod (``phase``, conditions, containers, IPs)."""
    now = timestamp()
    existing = {c.get("type"): c for c in (runtime.pod.get("status") or {}).get("conditions")
                or [] if isinstance(c, dict)}
    containers = list(runtime.containers.values())
    finished = runtime.phase in ("Succeeded", "Failed")
    ready = runtime.phase == "Running" and all(c.running for c in containers)
    unready = [c.name for c in containers if not c.running]

    def condition(kind: str, value: str, reason: str = "", message: str = "") -> Obj:
        old = existing.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == value else None
        entry: Obj = {"type": kind, "status": value, "lastProbeTime": None,
                      "lastTransitionTime": since or now}
        if reason:
            entry["reason"] = reason
        if message:
            entry["message"] = message
        return entry

    if ready:
        readiness = ("True", "", "")
    elif finished:
        readiness = ("False", "PodCompleted", "")
    else:
        readiness = ("False", "ContainersNotReady",
                     f"containers with unready status: [{' '.join(unready)}]")
    status: Obj = {
        "phase": runtime.phase,
        "conditions": [
            condition("Initialized", "True"),
            condition("Ready", *readiness),
            condition("ContainersReady", *readiness),
            condition("PodScheduled", "True"),
        ],
        "hostIP": host_ip,
        "startTime": runtime.start_time,
        "containerStatuses": [c.status() for c in containers],
    }
    if runtime.phase != "Pending":
        status["podIP"] = runtime.ip
        status["podIPs"] = [{"ip": runtime.ip}]
    return status
