"""kubectl exec, attach and logs -f against the embedded API server and its virtual kubelet
(kubectl from 1.31 speaks exec and attach over WebSockets, v5.channel.k8s.io)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import shutil
import struct
import termios
from pathlib import Path

import pytest

import kubeasync
from kubeasync.testing import FakeApiServer, Timings
from tests.helpers.pods import running_pod

KUBECTL = shutil.which("kubectl")
FAST = Timings(schedule=0.01, start=0.01, run=0.05, terminate=0.01)
pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine"),
    pytest.mark.fake_apiserver(simulate=True, timings=FAST),
]


@pytest.fixture
def kubeconfig(fake_apiserver: FakeApiServer, tmp_path: Path) -> Path:
    return fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")


async def kubectl(kubeconfig: Path, *args: str, stdin: bytes | None = None
                  ) -> tuple[int, bytes, bytes]:
    assert KUBECTL is not None
    process = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(kubeconfig.parent)})
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out, err


async def test_kubectl_exec(kube: kubeasync.Client, kubeconfig: Path) -> None:
    await running_pod(kube, "web")
    assert await kubectl(kubeconfig, "exec", "web", "--", "echo", "hi") == (0, b"hi\n", b"")
    code, out, _ = await kubectl(kubeconfig, "exec", "-i", "web", "--", "sha256sum",
                                 stdin=b"abc")
    assert code == 0  # kubectl half-closed stdin and got the exit status
    assert out == b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n"
    code, _, err = await kubectl(kubeconfig, "exec", "web", "--", "sh", "-c", "exit 3")
    assert code == 3 and b"command terminated with exit code 3" in err
    code, _, err = await kubectl(kubeconfig, "exec", "ghost", "--", "true")
    assert code == 1 and b'pods "ghost" not found' in err


async def test_kubectl_exec_with_a_terminal(kube: kubeasync.Client, kubeconfig: Path) -> None:
    await running_pod(kube, "web")
    assert KUBECTL is not None
    controller, terminal = pty.openpty()
    # 33 rows, 111 columns: kubectl sends its terminal's size as a resize message
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    process = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), "exec", "-it", "web", "--", "sh",
        stdin=terminal, stdout=terminal, stderr=terminal,
        env={**os.environ, "HOME": str(kubeconfig.parent)})
    os.close(terminal)
    loop = asyncio.get_running_loop()
    seen = bytearray()

    async def read_until(text: bytes) -> None:
        while text not in seen:
            try:
                chunk = await asyncio.wait_for(
                    loop.run_in_executor(None, os.read, controller, 4096), 30)
            except OSError:  # EIO once kubectl has closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"the terminal closed; it showed {bytes(seen)!r}")
            seen.extend(chunk)

    try:
        await read_until(b"$ ")
        os.write(controller, b"stty size\r")
        await read_until(b"33 111")
        os.write(controller, b"exit 5\r")
        assert await asyncio.wait_for(process.wait(), 30) == 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(controller)


async def test_kubectl_attach_and_logs_follow(kube: kubeasync.Client, kubeconfig: Path,
                                              fake_apiserver: FakeApiServer) -> None:
    await running_pod(kube, "talker", stdin=True, stdinOnce=True, annotations={
        "kubeasync.testing/log": "ready"})
    assert KUBECTL is not None
    follower = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), "logs", "-f", "talker",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(kubeconfig.parent)})
    try:
        assert follower.stdout is not None
        assert (await asyncio.wait_for(follower.stdout.readline(), 30)).startswith(b"Started")
        assert await asyncio.wait_for(follower.stdout.readline(), 30) == b"ready\n"
        # kubectl attach -i: its stdin goes to the container's process, which echoes it to
        # its log; closing it ends the container (stdinOnce), and the followed log with it
        code, out, _ = await kubectl(kubeconfig, "attach", "-i", "talker",
                                     stdin=b"typed into the container\n")
        assert code == 0 and b"typed into the container" in out
        assert await asyncio.wait_for(follower.stdout.readline(), 30) == (
            b"typed into the container\n")
        assert await asyncio.wait_for(follower.stdout.readline(), 30) == (
            b"Container app exited with code 0\n")
    finally:
        if follower.returncode is None:
            follower.kill()
        await follower.wait()
