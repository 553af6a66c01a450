"""``python -m kubeasync serve``, and kubectl against it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import kubeasync
from kubeasync.__main__ import main

REPO = Path(__file__).resolve().parent.parent
KUBECTL = shutil.which("kubectl")


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "serve" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


class Served:
    def __init__(self, process: subprocess.Popen[str], kubeconfig: Path) -> None:
        self.process = process
        self.kubeconfig = kubeconfig
        document = yaml.safe_load(kubeconfig.read_text())
        self.url = document["clusters"][0]["cluster"]["server"]
        self.token = document["users"][0]["user"].get("token")


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    kubeconfig = tmp_path / "kubeconfig"
    extra = getattr(request, "param", ("--fast",))
    process = subprocess.Popen(
        [sys.executable, "-m", "kubeasync", "serve", "--port", "0",
         "--kubeconfig", str(kubeconfig), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])},
    )
    try:
        deadline = time.monotonic() + 15
        while not kubeconfig.exists() or not kubeconfig.read_text().strip():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "serve did not write its kubeconfig"
            time.sleep(0.05)
        yield Served(process, kubeconfig)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        if process.stdout:
            process.stdout.close()


@pytest.mark.parametrize("served", [("--fast", "--token", "t0ken")], indirect=True)
def test_serve_until_sigterm(served):
    assert oct(served.kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert served.token == "t0ken"

    async def use() -> list[str]:
        config = kubeasync.ClusterConfig.from_token(served.url, served.token)
        async with kubeasync.Client(config) as kube:
            await kube.config_maps.create({"metadata": {"name": "hello"}})
            return [c.metadata.name for c in (await kube.config_maps.list()).items]

    assert asyncio.run(use()) == ["hello"]
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(10) == 0
    assert served.process.stdout is not None
    output = served.process.stdout.read()
    assert f"listening on {served.url}" in output and "stopping" in output


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: hello}
  annotations:
    kubeasync.testing/log: "hello from the fake node"
spec:
  containers:
  - name: main
    image: busybox:1.36
"""


# No --token here: kubectl (client-go) sends no bearer token to a plain-http server. The
# node runs at its real pace (not --fast), so the pod is still Pending when kubectl, which
# takes a moment to start, first sees it.
@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
@pytest.mark.parametrize("served", [("--run-seconds", "2")], indirect=True)
def test_kubectl_against_serve(served, tmp_path):
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(served.kubeconfig), "HOME": str(tmp_path)}
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD)

    def kubectl(*args: str) -> str:
        result = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout + result.stderr

    assert "No resources found in default namespace" in kubectl("get", "pods")
    # -v=6 logs each request once its answer's headers are in: the pod is created once the
    # watch is open (the node writes ContainerCreating soon after binding, as a kubelet does).
    watcher = subprocess.Popen([KUBECTL, "get", "pods", "-w", "-v=6"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # If "Running" never shows, the loop below must still end: kill the watch in time.
    guard = threading.Timer(30, watcher.kill)
    guard.start()
    try:
        assert watcher.stderr is not None
        for log_line in watcher.stderr:
            if "watch=true" in log_line:
                break
        assert watcher.stdout is not None
        assert "pod/hello created" in kubectl("apply", "-f", str(manifest))
        seen = []
        for line in watcher.stdout:
            seen.append(line)
            if "Running" in line:
                break
        assert seen[0].split()[:4] == ["NAME", "READY", "STATUS", "RESTARTS"]
        assert any(line.split()[:3] == ["hello", "0/1", "Pending"] for line in seen)
    finally:
        guard.cancel()
        watcher.kill()
        watcher.wait(5)
        for stream in (watcher.stdout, watcher.stderr):
            if stream:
                stream.close()
    assert "pod/hello unchanged" in kubectl("apply", "-f", str(manifest))
    wide = kubectl("get", "pods", "-o", "wide")
    assert "Running" in wide and "fake-node" in wide
    assert "hello from the fake node" in kubectl("logs", "hello")
    assert 'pod "hello" deleted' in kubectl("delete", "pod", "hello")
    assert "No resources found" in kubectl("get", "pods")
