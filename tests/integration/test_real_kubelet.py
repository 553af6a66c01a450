"""A VirtualKubelet on a REAL kube-apiserver (with kube-scheduler and
kube-controller-manager): pods scheduled and run on it, and logs, exec, attach and
port-forward through the real server's kubelet proxy (issue 15, item 5).

Pods need a scheduler. On the server of ``../shared/tools/real-apiserver`` (named by
``KUBEASYNC_REAL_APISERVER_TOOLS``) this module runs the real kube-scheduler 1.20 itself,
for its own duration, unless the server was started with one (``KUBE_REAL_SCHEDULER=1``):
the rest of the tier pins down a cluster without a scheduler (a scheduler writes
``PodScheduled=False`` to every pod it cannot place, one more event and condition).
Build it once with ``KUBE_REAL_BINARIES=kube-scheduler build.sh``. Any other cluster is
expected to run its own. Each test gets a node of its own and pins its pods to it with a
nodeSelector; the scheduler binds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import pty
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import custom_resource
from kubeasync.streams.channel import V4, V5
from kubeasync.streams.exec import ExitStatusUnknown
from kubeasync.streams.portforward import PortForwardError
from kubeasync.testing import Process, Timings, VirtualKubelet
from tests.helpers.pods import pod_body, wait_running
from tests.helpers.waiting import eventually

TOOLS_ENV = "KUBEASYNC_REAL_APISERVER_TOOLS"
TIMINGS = Timings(start=0.1, run=0.5, terminate=0.1, restart=0.2)
DEPLOYMENTS = custom_resource(group="apps", version="v1", kind="Deployment",
                              plural="deployments", subresources=("status", "scale"))
KUBECTL = shutil.which("kubectl")
CHECKOUT = Path(__file__).resolve().parent.parent.parent


class Node:
    """The test's node and a way to run pods on it."""

    def __init__(self, kube: kubeasync.Client, kubelet: VirtualKubelet, namespace: str) -> None:
        self.kube = kube
        self.kubelet = kubelet
        self.namespace = namespace
        self.selector = {"kubernetes.io/hostname": kubelet.name}

    def body(self, name: str, **options: Any) -> dict[str, Any]:
        spec = {"nodeSelector": self.selector, **options.pop("pod_spec", {})}
        return pod_body(name, pod_spec=spec, **options)

    async def run(self, name: str, **options: Any) -> None:
        """Create a pod for this node and wait until it runs."""
        await self.kube.pods.create(self.body(name, **options), namespace=self.namespace)
        await wait_running(self.kube, name, self.namespace)


async def _empty(kube: kubeasync.Client, namespace: str) -> None:
    """Delete the namespace's pods while the node still runs them (graceful deletion needs
    a kubelet), so that the namespace can go at once."""
    with contextlib.suppress(kubeasync.ApiError):
        await kube.pods.delete_collection(namespace=namespace)

    async def none_left() -> bool:
        return not (await kube.pods.list(namespace=namespace)).items

    with contextlib.suppress(AssertionError):
        await eventually(none_left, f"pods of {namespace} gone", 30)


@contextlib.asynccontextmanager
async def a_node(kube: kubeasync.Client, namespace: str, **options: Any) -> AsyncIterator[Node]:
    name = f"vk-{uuid.uuid4().hex[:8]}"
    async with VirtualKubelet(kube, name=name, timings=TIMINGS, **options) as kubelet:
        try:
            yield Node(kube, kubelet, namespace)
            assert kubelet.errors == []
        finally:
            await _empty(kube, namespace)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def kube_scheduler(real_kubeconfig: str) -> Iterator[None]:
    """The real kube-scheduler, for this module (see the module docstring)."""
    if not os.environ.get(TOOLS_ENV) or os.environ.get("KUBE_REAL_SCHEDULER") == "1":
        yield  # the cluster schedules by itself
        return
    binary = Path(os.environ.get("KUBE_REAL_DIR", "/opt/kube-real")) / "bin" / "kube-scheduler"
    assert binary.is_file(), (f"{binary} is missing: build it once with"
                              " KUBE_REAL_BINARIES=kube-scheduler build.sh")
    with tempfile.TemporaryDirectory(prefix="kubeasync-scheduler-") as folder:
        log = open(Path(folder) / "kube-scheduler.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [str(binary), f"--kubeconfig={real_kubeconfig}",
             f"--authentication-kubeconfig={real_kubeconfig}",
             f"--authorization-kubeconfig={real_kubeconfig}", "--bind-address=127.0.0.1",
             f"--secure-port={_free_port()}", "--port=0", f"--cert-dir={folder}",
             "--leader-elect=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            log.close()


@pytest_asyncio.fixture
async def node(real_kube: kubeasync.Client, namespace: str,
               kube_scheduler: None) -> AsyncIterator[Node]:
    async with a_node(real_kube, namespace) as made:
        yield made


# ------------------------------------------------------------------ scheduling and running


async def test_pods_are_scheduled_and_run(node: Node) -> None:
    await node.run("web", ports=(80,), annotations={"kubeasync.testing/log": "serving"})
    pod = await node.kube.pods.get("web", namespace=node.namespace)
    assert pod.spec is not None and pod.spec.node_name == node.kubelet.name  # the real scheduler
    assert pod.status is not None and pod.status.pod_ip and pod.status.start_time
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    assert conditions == {"Initialized": "True", "Ready": "True", "ContainersReady": "True",
                          "PodScheduled": "True"}
    assert pod.status.container_statuses and pod.status.container_statuses[0].ready


async def test_a_deployments_pods_become_available(node: Node) -> None:
    deployments = node.kube.resource(DEPLOYMENTS)
    labels = {"app": "web"}
    await deployments.create({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeSelector": node.selector, "containers": [
                                  {"name": "app", "image": "nginx:1.25",
                                   "ports": [{"containerPort": 80}]}]}}},
    }, namespace=node.namespace)

    async def available() -> bool:
        status = (await deployments.get("web", namespace=node.namespace)).get("status") or {}
        return bool(status.get("availableReplicas") == 3)

    await eventually(available, "3 available replicas", 60)
    pods = await node.kube.pods.list(namespace=node.namespace, label_selector=labels)
    assert len(pods.items) == 3
    assert {p.spec.node_name for p in pods.items if p.spec} == {node.kubelet.name}
    # a command in one of its pods, and its port
    name = pods.items[0].metadata.name  # type: ignore[union-attr]
    assert name is not None
    assert (await node.kube.pods.exec(name, ["hostname"],
                                      namespace=node.namespace)).stdout == f"{name}\n".encode()
    async with node.kube.pods.port_forward(name, 80, namespace=node.namespace) as fwd:
        reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        writer.write(b"ping\n")
        await writer.drain()
        assert await reader.readline() == b"ping\n"
        writer.close()
        await writer.wait_closed()
    await deployments.delete("web", namespace=node.namespace, propagation_policy="Foreground")


async def test_restarts_and_graceful_deletion(node: Node) -> None:
    await node.run("flaky", annotations={"kubeasync.testing/run-seconds": "0.3",
                                         "kubeasync.testing/exit-code": "1"})

    async def restarted() -> bool:
        pod = await node.kube.pods.get("flaky", namespace=node.namespace)
        statuses = pod.status.container_statuses if pod.status else None
        return bool(statuses and statuses[0].restart_count)

    await eventually(restarted, "a restart", 30)
    previous = await node.kube.pods.logs("flaky", namespace=node.namespace, previous=True)
    assert previous.splitlines()[-1] == "Container app exited with code 1"

    await node.run("server", annotations={"kubeasync.testing/termination-seconds": "1"})
    deleting = await node.kube.pods.delete("server", namespace=node.namespace)
    assert deleting.metadata.deletion_grace_period_seconds == 30  # type: ignore[union-attr]

    async def gone() -> bool:
        try:
            await node.kube.pods.get("server", namespace=node.namespace)
        except kubeasync.NotFound:
            return True
        return False

    await eventually(gone, "the pod deleted by its kubelet", 20)  # after 1 s, not 30


# ------------------------------------------------------------------ logs


async def test_logs_and_followed_logs(node: Node) -> None:
    await node.run("job", restart="Never", annotations={
        "kubeasync.testing/run-seconds": "1", "kubeasync.testing/log": "one\ntwo"})
    kube, ns = node.kube, node.namespace
    assert (await kube.pods.logs("job", namespace=ns)).splitlines() == [
        "Started container app (image busybox:1.36)", "one", "two"]
    assert await kube.pods.logs("job", namespace=ns, tail_lines=1) == "two\n"
    node.kubelet.append_log(ns, "job", "app", "three")
    followed = [line async for line in kube.pods.stream_logs("job", namespace=ns, follow=True)]
    assert followed[-2:] == ["three", "Container app exited with code 0"]  # ends with it


async def test_logs_of_a_missing_container(node: Node) -> None:
    await node.run("web")
    with pytest.raises(kubeasync.BadRequest, match="container nope is not valid for pod web"):
        await node.kube.pods.logs("web", namespace=node.namespace, container="nope")


# ------------------------------------------------------------------ exec


async def test_exec_through_the_real_server(node: Node) -> None:
    await node.run("web")
    kube, ns = node.kube, node.namespace
    result = await kube.pods.exec("web", ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                  namespace=ns)
    assert (result.stdout, result.stderr, result.exit_code) == (b"out\n", b"err\n", 3)
    data = os.urandom(1024 * 1024)
    echoed = await kube.pods.exec("web", ["cat"], namespace=ns, stdin=data)  # half-close
    assert echoed.stdout == data and echoed.exit_code == 0
    async with kube.pods.exec_stream("web", ["cat"], namespace=ns, stdin=True) as proc:
        assert proc.protocol == V5  # the 1.20 server passes the offer through to the kubelet
        await proc.stdin.write(b"line\n")
        assert await anext(proc.stdout) == b"line\n"
        await proc.stdin.close()
        assert await proc.wait() == 0
    unknown = await kube.pods.exec("web", ["nope"], namespace=ns)
    assert (unknown.exit_code, unknown.stderr) == (127, b"nope: command not found\n")


async def test_a_terminal_and_resize(node: Node) -> None:
    await node.run("web")
    async with node.kube.pods.exec_stream("web", ["sh"], namespace=node.namespace, stdin=True,
                                          tty=True) as proc:
        await proc.resize(132, 43)
        await proc.stdin.write(b"stty size\r")
        seen = b""
        async for chunk in proc.stdout:
            seen += chunk
            if b"43 132\r\n" in seen:
                break
        await proc.resize(80, 25)
        await proc.stdin.write(b"stty size; exit 9\r")
        assert await proc.wait() == 9
        assert b"25 80\r\n" in await proc.stdout.read()


async def test_attach(node: Node) -> None:
    await node.run("talker", stdin=True, stdinOnce=True)
    async with node.kube.pods.attach("talker", namespace=node.namespace, stdin=True) as proc:
        await proc.stdin.write(b"hello from the test\n")
        assert await anext(proc.stdout) == b"hello from the test\n"
        await proc.stdin.close()
        assert await proc.wait() == 0  # the container ended with its stdin


async def test_a_node_that_speaks_only_v4(real_kube: kubeasync.Client, namespace: str,
                                          kube_scheduler: None) -> None:
    async with a_node(real_kube, namespace, v4_only=True) as node:
        await node.run("legacy")
        result = await real_kube.pods.exec("legacy", ["sh", "-c", "echo ok; exit 4"],
                                           namespace=namespace)
        assert (result.stdout, result.exit_code) == (b"ok\n", 4)
        async with real_kube.pods.exec_stream("legacy", ["sh", "-c", "echo ready; cat"],
                                              namespace=namespace, stdin=True) as proc:
            assert proc.protocol == V4
            assert await anext(proc.stdout) == b"ready\n"  # kept after the socket closes
            await proc.stdin.close()
            with pytest.raises(ExitStatusUnknown, match="cannot half-close stdin"):
                await proc.wait()


# ------------------------------------------------------------------ port-forward


async def test_port_forward_two_connections_and_64_mib(node: Node) -> None:
    await node.run("web", ports=(80,))
    data = os.urandom(64 * 1024 * 1024)
    async with node.kube.pods.port_forward("web", 80, namespace=node.namespace) as fwd:
        first = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        second = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        second[1].write(b"second connection\n")
        await second[1].drain()

        async def send() -> None:
            first[1].write(data)
            await first[1].drain()

        sending = asyncio.ensure_future(send())
        digest, received = hashlib.sha256(), 0
        while received < len(data):
            chunk = await first[0].read(1 << 20)
            assert chunk, "the connection ended early"
            digest.update(chunk)
            received += len(chunk)
        await sending
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
        assert await second[0].readline() == b"second connection\n"
        assert fwd.connections_served == 2
        for _, writer in (first, second):
            writer.close()
            await writer.wait_closed()


async def test_a_port_nobody_listens_on(node: Node) -> None:
    await node.run("web", ports=(80,))
    reader, writer = await node.kube.pods.open_port("web", 81, namespace=node.namespace)
    with pytest.raises(PortForwardError) as error:
        await reader.read()
    assert "error forwarding port 81 to pod" in error.value.message
    assert "connection refused" in error.value.message
    await writer.aclose()


# ------------------------------------------------------------------ faults


async def test_a_missing_pod_or_container(node: Node) -> None:
    kube, ns = node.kube, node.namespace
    with pytest.raises(kubeasync.NotFound) as missing:
        await kube.pods.exec("ghost", ["true"], namespace=ns)
    assert missing.value.message == 'pods "ghost" not found'
    await node.run("web")
    with pytest.raises(kubeasync.BadRequest) as wrong:
        await kube.pods.exec("web", ["true"], namespace=ns, container="sidecar")
    assert wrong.value.message == "container sidecar is not valid for pod web"
    with pytest.raises(kubeasync.NotFound):
        await kube.pods.open_port("ghost", 80, namespace=ns)


async def test_a_command_that_cannot_start(node: Node) -> None:
    async def broken(process: Process) -> int:
        raise OSError("exec format error")

    node.kubelet.register_command("broken", broken)
    await node.run("web")
    with pytest.raises(kubeasync.ServerError, match="exec format error"):
        await node.kube.pods.exec("web", ["broken"], namespace=node.namespace)


async def test_the_connection_cut_mid_stream(node: Node) -> None:
    async def crash(process: Process) -> int:
        await process.stdout.write(b"before the crash\n")
        await asyncio.sleep(0.3)
        process.drop_connection()
        await asyncio.sleep(3600)
        return 0

    node.kubelet.register_command("crash", crash)
    await node.run("web")
    with pytest.raises(ExitStatusUnknown) as error:
        await node.kube.pods.exec("web", ["crash"], namespace=node.namespace, timeout=30)
    assert error.value.stdout == b"before the crash\n"


async def test_a_kubelet_that_never_answers(real_kube: kubeasync.Client, namespace: str) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    nodes = real_kube.resource(kubeasync.testing.kubelet.NODES)
    name = f"silent-{uuid.uuid4().hex[:6]}"
    try:
        await nodes.create({"metadata": {"name": name}})
        assert isinstance(nodes, kubeasync.api.capabilities.StatusApi)
        await nodes.patch_status(name, {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": silent.getsockname()[1]}}}})
        await real_kube.pods.create(pod_body("stuck", node=name), namespace=namespace)
        with pytest.raises(kubeasync.RequestTimeout):
            await real_kube.pods.exec("stuck", ["true"], namespace=namespace, timeout=2)
    finally:
        silent.close()
        with contextlib.suppress(kubeasync.ApiError):
            await real_kube.pods.delete("stuck", namespace=namespace, grace_period_seconds=0)
        with contextlib.suppress(kubeasync.NotFound):
            await nodes.delete(name)


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


async def test_a_thousand_execs_leak_nothing(node: Node) -> None:
    await node.run("web")
    kube, ns = node.kube, node.namespace
    for _ in range(10):
        await kube.pods.exec("web", ["true"], namespace=ns)
    await asyncio.sleep(0.5)
    sockets, tasks = _open_sockets(), len(asyncio.all_tasks())
    for index in range(1000):
        result = await kube.pods.exec("web", ["echo", str(index)], namespace=ns)
        assert result.stdout == f"{index}\n".encode()
    await asyncio.sleep(0.5)
    # client and kubelet (the API server's connections to it) live in this process
    assert _open_sockets() <= sockets + 2
    assert len(asyncio.all_tasks()) <= tasks


# ------------------------------------------------------------------ kubectl


def _kubectl(kubeconfig: str, *args: str, input: bytes | None = None
             ) -> subprocess.CompletedProcess[bytes]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, *args], input=input,
                          capture_output=True, timeout=60)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
async def test_kubectl_exec_and_logs(node: Node, real_kubeconfig: str) -> None:
    await node.run("web", annotations={"kubeasync.testing/log": "hello from the node"})
    ns = node.namespace
    run = asyncio.to_thread
    done = await run(_kubectl, real_kubeconfig, "-n", ns, "exec", "web", "--", "echo", "hi")
    assert (done.returncode, done.stdout) == (0, b"hi\n"), done.stderr
    piped = await run(_kubectl, real_kubeconfig, "-n", ns, "exec", "-i", "web", "--", "wc",
                      "-c", input=b"12345")
    assert piped.stdout == b"5\n", piped.stderr  # kubectl half-closed stdin (v5)
    failed = await run(_kubectl, real_kubeconfig, "-n", ns, "exec", "web", "--", "sh", "-c",
                       "exit 3")
    assert failed.returncode == 3
    assert b"command terminated with exit code 3" in failed.stderr
    logs = await run(_kubectl, real_kubeconfig, "-n", ns, "logs", "web")
    assert b"hello from the node" in logs.stdout

    follow = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", real_kubeconfig, "-n", ns, "logs", "-f", "web",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert follow.stdout is not None
        assert (await asyncio.wait_for(follow.stdout.readline(), 30)).startswith(b"Started")
        await asyncio.wait_for(follow.stdout.readline(), 30)
        node.kubelet.append_log(ns, "web", "app", "a line while following")
        assert await asyncio.wait_for(follow.stdout.readline(), 30) == b"a line while following\n"
    finally:
        follow.kill()
        await follow.wait()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
async def test_kubectl_exec_with_a_terminal(node: Node, real_kubeconfig: str) -> None:
    await node.run("web")
    controller, terminal = pty.openpty()
    # 30 rows, 100 columns: kubectl sends the terminal's size as a resize message
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    process = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", real_kubeconfig, "-n", node.namespace, "exec", "-it", "web",
        "--", "sh", stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    loop = asyncio.get_running_loop()
    seen = bytearray()

    async def read_until(text: bytes) -> None:
        while text not in seen:
            try:
                chunk = await asyncio.wait_for(loop.run_in_executor(None, os.read, controller,
                                                                    4096), 30)
            except OSError:  # EIO: kubectl has closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"the terminal closed; it showed {bytes(seen)!r}")
            seen.extend(chunk)

    try:
        await read_until(b"$ ")
        os.write(controller, b"stty size\r")
        await read_until(b"30 100")
        os.write(controller, b"exit 6\r")
        assert await asyncio.wait_for(process.wait(), 30) == 6
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(controller)


# ------------------------------------------------------------------ the example


async def test_the_exec_and_forward_example(node: Node, real_kubeconfig: str) -> None:
    checkout = CHECKOUT
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(checkout / "examples" / "exec_and_forward.py"),
        "--kubeconfig", real_kubeconfig, "-n", node.namespace, "--deployment", "web",
        "--create", "--port", "80", "--", "sh", "-c", "hostname; exit 2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": f"{checkout / 'src'}{os.pathsep}{checkout}"})
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2, err.decode()  # the command's exit code
    pod = out.decode().strip()
    assert pod.startswith("web-")  # the hostname of a pod of the Deployment
    assert f"{pod}: sh -c hostname; exit 2 exited with 2" in err.decode()
    # the node's echo server answers the forwarded port with the request itself
    assert f"{pod}:80 answered: GET / HTTP/1.0" in err.decode()
