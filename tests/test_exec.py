"""exec and attach through the public API, on the embedded API server and its virtual
kubelet (client -> FakeApiServer -> VirtualKubelet over real sockets, TLS to the kubelet);
the same tests on a real kube-apiserver are in tests/integration/test_real_exec.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from typing import Any

import pytest

import kubeasync
from kubeasync.api.capabilities import StatusApi
from kubeasync.api.capabilities.attach import attach_request
from kubeasync.api.capabilities.exec import exec_request
from kubeasync.core.params import ExecParams
from kubeasync.streams.channel import V4, V5
from kubeasync.streams.exec import ExitStatusUnknown
from kubeasync.testing import FakeApiServer, Process, Timings, VirtualKubelet
from kubeasync.testing.kubelet import NODES
from tests.helpers.pods import pod_body, running_pod, wait_running
from tests.helpers.waiting import eventually

FAST = Timings(schedule=0.01, start=0.01, run=0.05, terminate=0.01, restart=0.05)
pytestmark = pytest.mark.fake_apiserver(simulate=True, timings=FAST)


@pytest.fixture
async def web(kube: kubeasync.Client) -> str:
    await running_pod(kube, "web", env=[{"name": "GREETING", "value": "hello"}])
    return "web"


# ------------------------------------------------------------------ requests, no I/O


def test_the_exec_request() -> None:
    request = exec_request(kubeasync.PODS, "web-0", "shop",
                           ExecParams(["sh", "-c", "echo hi"], "app", stdin=True))
    assert request.method == "GET"
    assert request.path == "/api/v1/namespaces/shop/pods/web-0/exec"
    assert request.query == (("command", "sh"), ("command", "-c"), ("command", "echo hi"),
                             ("container", "app"), ("stdin", "true"), ("stdout", "true"),
                             ("stderr", "true"), ("tty", "false"))
    assert not request.idempotent  # a command runs once per request
    # a terminal has one output stream: stderr is not asked for
    tty = exec_request(kubeasync.PODS, "web-0", "shop", ExecParams(["sh"], tty=True))
    assert ("stderr", "false") in tty.query and ("tty", "true") in tty.query


def test_the_attach_request() -> None:
    request = attach_request(kubeasync.PODS, "web-0", "shop", ExecParams(stdin=True))
    assert request.path == "/api/v1/namespaces/shop/pods/web-0/attach"
    assert ("command", "sh") not in request.query and ("stdin", "true") in request.query
    with pytest.raises(ValueError, match="attach takes no command"):
        attach_request(kubeasync.PODS, "web-0", "shop", ExecParams(["sh"]))


@pytest.mark.parametrize(("command", "message"), [
    ("echo hi", "command must be a list of str"),
    ([], "command must not be empty"),
    (["echo", 3], r"command\[1\] must be a str"),
])
async def test_a_bad_command_is_refused_before_sending(kube: kubeasync.Client, command: Any,
                                                       message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await kube.pods.exec("web", command)
    with pytest.raises(ValueError, match=message):
        kube.pods.exec_stream("web", command)


async def test_bad_names_and_options_are_refused_before_sending(kube: kubeasync.Client) -> None:
    with pytest.raises(ValueError, match="name"):
        await kube.pods.exec("a/b", ["true"])
    with pytest.raises(ValueError, match="container"):
        await kube.pods.exec("web", ["true"], container="a/b")
    with pytest.raises(ValueError, match="stdin must be bytes or None"):
        await kube.pods.exec("web", ["cat"], stdin="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be"):
        await kube.pods.exec("web", ["true"], timeout=0)
    with pytest.raises(ValueError, match="at least one of stdin, stdout and stderr"):
        kube.pods.exec_stream("web", ["true"], stdout=False, stderr=False)


# ------------------------------------------------------------------ exec


async def test_exec_gives_output_and_the_exit_code(kube: kubeasync.Client, web: str) -> None:
    result = await kube.pods.exec(web, ["echo", "hi", "there"])
    assert (result.stdout, result.stderr, result.exit_code) == (b"hi there\n", b"", 0)
    failed = await kube.pods.exec(web, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (failed.stdout, failed.stderr, failed.exit_code) == (b"out\n", b"err\n", 3)
    assert (await kube.pods.exec(web, ["false"])).exit_code == 1
    assert (await kube.pods.exec(web, ["hostname"])).stdout == b"web\n"
    environment = (await kube.pods.exec(web, ["env"])).stdout.decode().splitlines()
    assert "GREETING=hello" in environment and "HOSTNAME=web" in environment


async def test_an_unknown_command_exits_127(kube: kubeasync.Client, web: str) -> None:
    result = await kube.pods.exec(web, ["no-such-tool", "--help"])
    assert result.exit_code == 127
    assert result.stderr == b"no-such-tool: command not found\n"


async def test_stdin_is_sent_and_half_closed(kube: kubeasync.Client, web: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    echoed = await kube.pods.exec(web, ["cat"], stdin=data)
    assert echoed.exit_code == 0 and echoed.stdout == data
    summed = await kube.pods.exec(web, ["sha256sum"], stdin=data)
    assert summed.stdout.decode() == f"{hashlib.sha256(data).hexdigest()}  -\n"
    assert (await kube.pods.exec(web, ["wc", "-c"], stdin=b"")).stdout == b"0\n"


async def test_stdin_nobody_reads(kube: kubeasync.Client, web: str) -> None:
    # the command ends at once: the rest of stdin has nowhere to go, and that is no error
    result = await kube.pods.exec(web, ["sh", "-c", "echo done"], stdin=os.urandom(8 << 20))
    assert (result.stdout, result.exit_code) == (b"done\n", 0)


async def test_an_interactive_stream(kube: kubeasync.Client, web: str) -> None:
    async with kube.pods.exec_stream(web, ["cat"], stdin=True) as proc:
        assert proc.protocol == V5
        await proc.stdin.write(b"one\n")
        assert await anext(proc.stdout) == b"one\n"
        await proc.stdin.write(b"two\n")
        assert await anext(proc.stdout) == b"two\n"
        await proc.stdin.close()
        assert await proc.stdout.read() == b""  # ends once cat has seen stdin close
        assert await proc.wait() == 0
        assert proc.exit_code == 0
        with pytest.raises(ValueError, match="stdin is already closed"):
            await proc.stdin.write(b"late")


async def test_a_terminal_and_its_size(kube: kubeasync.Client, web: str) -> None:
    async with kube.pods.exec_stream(web, ["sh"], stdin=True, tty=True) as proc:
        await proc.resize(120, 40)
        await proc.stdin.write(b"stty size; echo to-stderr >&2\r")
        seen = b""
        async for chunk in proc.stdout:
            seen += chunk
            if b"to-stderr\r\n" in seen:
                break
        # echoed input, the answer and stderr, all on the terminal with \r\n line ends
        assert b"stty size; echo to-stderr >&2\r\n40 120\r\nto-stderr\r\n" in seen
        await proc.resize(80, 24)
        await proc.stdin.write(b"stty size\rexit 4\r")
        assert await proc.wait() == 4
        rest = await proc.stdout.read()
    assert b"24 80\r\n" in rest
    assert await proc.stderr.read() == b""


async def test_resize_needs_a_terminal(kube: kubeasync.Client, web: str) -> None:
    async with kube.pods.exec_stream(web, ["sleep", "5"]) as proc:
        with pytest.raises(ValueError, match="resize needs a terminal"):
            await proc.resize(80, 24)
        with pytest.raises(ValueError, match="width must be an int from 1 to 65535"):
            await proc.resize(0, 24)
        with pytest.raises(ValueError, match="stdin was not requested"):
            await proc.stdin.write(b"x")


async def test_a_command_of_the_test(kube: kubeasync.Client, fake_apiserver: FakeApiServer,
                                     web: str) -> None:
    node = fake_apiserver.node
    assert node is not None

    async def shout(process: Process) -> int:
        data = await process.stdin.read()
        await process.stdout.write(data.upper())
        await process.stderr.write(f"{process.pod_name}/{process.container}".encode())
        return 7

    node.register_command("shout", shout)
    result = await kube.pods.exec(web, ["shout"], stdin=b"quiet")
    assert (result.stdout, result.stderr, result.exit_code) == (b"QUIET", b"web/app", 7)
    # the shell finds it too
    assert (await kube.pods.exec(web, ["sh", "-c", "echo x | shout; exit $?"])).exit_code == 7
    with pytest.raises(ValueError, match="command name"):
        node.register_command("a/b", shout)


async def test_leaving_the_block_ends_the_command(kube: kubeasync.Client,
                                                  fake_apiserver: FakeApiServer, web: str) -> None:
    node = fake_apiserver.node
    assert node is not None
    ended = asyncio.Event()

    async def forever(process: Process) -> int:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.set()
        return 0

    node.register_command("forever", forever)
    async with kube.pods.exec_stream(web, ["forever"]):
        pass
    await asyncio.wait_for(ended.wait(), 5)  # the kubelet stopped it when the client left

    ended.clear()
    task = asyncio.ensure_future(kube.pods.exec(web, ["forever"]))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(ended.wait(), 5)


# ------------------------------------------------------------------ faults


async def test_a_missing_pod_or_container(kube: kubeasync.Client, web: str) -> None:
    with pytest.raises(kubeasync.NotFound) as missing:
        await kube.pods.exec("nope", ["true"])
    assert missing.value.message == 'pods "nope" not found'
    with pytest.raises(kubeasync.BadRequest) as wrong:
        await kube.pods.exec(web, ["true"], container="sidecar")
    assert wrong.value.message == "container sidecar is not valid for pod web"
    await running_pod(kube, "two", containers=("a", "b"))
    with pytest.raises(kubeasync.BadRequest, match=r"choose one of: \[a b\]"):
        async with kube.pods.exec_stream("two", ["true"]):
            pass
    assert (await kube.pods.exec("two", ["hostname"], container="b")).stdout == b"two\n"


async def test_a_pod_on_no_node(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod_body("nowhere", pod_spec={"schedulerName": "nobody"}))
    with pytest.raises(kubeasync.BadRequest) as error:
        await kube.pods.exec("nowhere", ["true"])
    assert error.value.message == "pod nowhere does not have a host assigned"


async def test_forbidden(kube: kubeasync.Client, fake_apiserver: FakeApiServer,
                         web: str) -> None:
    message = ('pods "web" is forbidden: User "bob" cannot create resource "pods/exec" in API'
               ' group "" in the namespace "default"')
    fake_apiserver.faults.fail_next(status=403, path="/pods/web/exec", message=message)
    with pytest.raises(kubeasync.Forbidden) as error:
        await kube.pods.exec(web, ["true"])
    assert error.value.message == message


async def test_a_command_that_cannot_start(kube: kubeasync.Client,
                                           fake_apiserver: FakeApiServer, web: str) -> None:
    node = fake_apiserver.node
    assert node is not None

    async def broken(process: Process) -> int:
        raise OSError("exec format error")

    node.register_command("broken", broken)
    with pytest.raises(kubeasync.ServerError) as error:
        await kube.pods.exec(web, ["broken"])
    assert error.value.reason == "InternalError"
    assert "error executing command in container: exec format error" in error.value.message


async def test_a_container_that_is_not_running(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod_body("done", restart="Never"))

    async def finished() -> bool:
        return (await kube.pods.get("done")).status.phase == "Succeeded"  # type: ignore[union-attr]

    await eventually(finished, "pod done Succeeded", 10)
    with pytest.raises(kubeasync.ServerError) as error:
        await kube.pods.exec("done", ["true"])
    assert 'container not found ("app")' in error.value.message


async def test_the_connection_cut_mid_stream(kube: kubeasync.Client,
                                             fake_apiserver: FakeApiServer, web: str) -> None:
    node = fake_apiserver.node
    assert node is not None

    async def crash(process: Process) -> int:
        await process.stdout.write(b"partial output\n")
        await asyncio.sleep(0.2)
        process.drop_connection()
        await asyncio.sleep(3600)
        return 0

    node.register_command("crash", crash)
    with pytest.raises(ExitStatusUnknown) as error:
        await kube.pods.exec(web, ["crash"], timeout=10)
    assert "the connection closed before the exit status arrived" in str(error.value)
    assert error.value.stdout == b"partial output\n"  # what arrived is kept


async def test_a_kubelet_that_never_answers(kube: kubeasync.Client) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (the kernel does), never says a word
    try:
        nodes = kube.resource(NODES)
        await nodes.create({"metadata": {"name": "silent"}})
        assert isinstance(nodes, StatusApi)
        await nodes.patch_status("silent", {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": silent.getsockname()[1]}}}})
        await kube.pods.create(pod_body("stuck", node="silent"))
        with pytest.raises(kubeasync.RequestTimeout):
            await kube.pods.exec("stuck", ["true"], timeout=1)
    finally:
        silent.close()


async def test_a_node_that_speaks_only_v4(kube: kubeasync.Client) -> None:
    async with VirtualKubelet(kube, name="old-node", timings=FAST, v4_only=True):
        await running_pod(kube, "legacy", node="old-node")
        result = await kube.pods.exec("legacy", ["sh", "-c", "echo fine; exit 2"])
        assert (result.stdout, result.exit_code) == (b"fine\n", 2)
        async with kube.pods.exec_stream("legacy", ["sh", "-c", "echo ready; cat"],
                                         stdin=True) as proc:
            assert proc.protocol == V4
            assert await anext(proc.stdout) == b"ready\n"
            await proc.stdin.close()  # v4: the only way to end stdin is to close the socket
            with pytest.raises(ExitStatusUnknown, match="cannot half-close stdin"):
                await proc.wait()
        with pytest.raises(ExitStatusUnknown, match=r"v4\.channel\.k8s\.io cannot half-close"):
            await kube.pods.exec("legacy", ["cat"], stdin=b"lost")


# ------------------------------------------------------------------ attach


async def test_attach_to_the_containers_process(kube: kubeasync.Client,
                                                fake_apiserver: FakeApiServer) -> None:
    await running_pod(kube, "talker", restart="Never", stdin=True, stdinOnce=True,
                      annotations={"kubeasync.testing/run-seconds": "3600"})
    async with kube.pods.attach("talker", stdin=True) as proc:
        fake_apiserver.append_log("default", "talker", "app", "from the program")
        assert await anext(proc.stdout) == b"from the program\n"
        await proc.stdin.write(b"typed in\n")  # the container echoes its stdin to its log
        assert await anext(proc.stdout) == b"typed in\n"
        await proc.stdin.close()  # stdinOnce: the program sees the end of its input and exits
        assert await proc.wait() == 0
    logs = await kube.pods.logs("talker")
    assert logs.splitlines()[1:] == ["from the program", "typed in",
                                     "Container app exited with code 0"]


async def test_attach_ends_when_the_container_stops(kube: kubeasync.Client) -> None:
    await running_pod(kube, "brief", restart="Never",
                      annotations={"kubeasync.testing/run-seconds": "0.5"})
    async with kube.pods.attach("brief") as proc:
        assert await proc.wait() == 0
        assert b"Container app exited with code 0\n" in await proc.stdout.read()


# ------------------------------------------------------------------ no leaks


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
    return count


async def test_many_execs_leak_no_sockets_or_tasks(kube: kubeasync.Client, web: str) -> None:
    for _ in range(10):  # warm: the pools of client, server and kubelet proxy are filled
        await kube.pods.exec(web, ["true"])
    await asyncio.sleep(0.2)
    sockets, tasks = _open_sockets(), len(asyncio.all_tasks())
    for index in range(300):
        result = await kube.pods.exec(web, ["echo", str(index)])
        assert result.stdout == f"{index}\n".encode()
    await asyncio.sleep(0.2)
    # Client, API server and kubelet all run in this process: a leak on any side shows.
    assert _open_sockets() <= sockets + 2
    assert len(asyncio.all_tasks()) <= tasks


async def test_exec_on_a_restarted_container(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod_body("flaky", annotations={
        "kubeasync.testing/run-seconds": "0.3", "kubeasync.testing/exit-code": "1"}))

    async def restarted() -> bool:
        pod = await kube.pods.get("flaky")
        statuses = pod.status.container_statuses if pod.status else None
        return bool(statuses and statuses[0].restart_count and statuses[0].ready)

    await eventually(restarted, "flaky restarted and running", 10)
    await wait_running(kube, "flaky", "default")
    assert (await kube.pods.exec("flaky", ["true"])).exit_code == 0
