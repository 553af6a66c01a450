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


EVERY_KIND = REPO / "tests" / "data" / "manifests" / "every-kind.yaml"


def every_kind_for_kubectl(namespace: str, group: str) -> str:
    """The issue's manifest for ``serve``: the CronJob in batch/v1 (the catalogue's, of 1.37;
    1.20 has batch/v1beta1 only), and the CRD before its custom resource."""
    text = EVERY_KIND.read_text().replace("NAMESPACE", namespace).replace("GROUP", group)
    docs = text.replace("apiVersion: batch/v1beta1", "apiVersion: batch/v1").split("\n---\n")
    crd = next(d for d in docs if "kind: CustomResourceDefinition" in d)
    return "\n---\n".join([d for d in docs if d is not crd] + [crd])


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
@pytest.mark.parametrize("served", [("--fast",)], indirect=True)
def test_kubectl_apply_get_explain_delete_every_kind(served, tmp_path):
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(served.kubeconfig), "HOME": str(tmp_path)}
    text = every_kind_for_kubectl("demo", "example.com")
    docs = text.split("\n---\n")
    widget = next(d for d in docs if "kind: Widget\nmetadata" in d)
    manifest = tmp_path / "every-kind.yaml"
    # the custom resource last, after the CRD (a real kubectl maps every object first)
    manifest.write_text("\n---\n".join([d for d in docs if d is not widget] + [widget]))

    def kubectl(*args: str, ok: bool = True) -> str:
        result = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True,
                                timeout=60)
        if ok:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout + result.stderr

    # The first pass creates all but the custom resource, whose CRD did not exist when
    # kubectl read discovery and the OpenAPI documents: kube-apiserver 1.20 answers the
    # same way ("ensure CRDs are installed first"). The second pass creates it.
    first = kubectl("apply", "-f", str(manifest), ok=False)
    for created in ("namespace/demo", "deployment.apps/web", "statefulset.apps/db",
                    "service/web", "configmap/settings", "secret/credentials",
                    "cronjob.batch/nightly", "ingress.networking.k8s.io/web",
                    "lease.coordination.k8s.io/leader",
                    "customresourcedefinition.apiextensions.k8s.io/widgets.example.com"):
        assert f"{created} created" in first, first
    second = kubectl("apply", "-f", str(manifest))
    assert "widget.example.com/gear created" in second
    assert "deployment.apps/web unchanged" in second and "service/web unchanged" in second
    third = kubectl("apply", "-f", str(manifest))
    assert "widget.example.com/gear unchanged" in third

    listed = kubectl("get", "deployments,statefulsets,services,configmaps,secrets,cronjobs,"
                     "ingresses,leases,widgets", "-n", "demo")
    for name in ("deployment.apps/web", "statefulset.apps/db", "service/web",
                 "configmap/settings", "secret/credentials", "cronjob.batch/nightly",
                 "ingress.networking.k8s.io/web", "lease.coordination.k8s.io/leader",
                 "widget.example.com/gear"):
        assert name in listed, listed
    assert kubectl("get", "deployment", "web", "-n", "demo").split()[:5] == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    nodes = kubectl("get", "nodes")
    assert nodes.split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert "fake-node" in nodes
    explained = kubectl("explain", "deployment.spec")
    assert "DeploymentSpec" in explained and "revisionHistoryLimit" in explained
    assert "podManagementPolicy" in kubectl("explain", "statefulset.spec")
    assert "size" in kubectl("explain", "widgets.spec")

    # kubectl validates (through the server's fieldValidation, which the OpenAPI documents
    # offer): an unknown field is an error, and nothing is written
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad, namespace: demo}\n"
                   "dataz: {a: b}\n")
    refused = kubectl("apply", "-f", str(bad), ok=False)
    assert 'unknown field "dataz"' in refused, refused
    assert "NotFound" in kubectl("get", "configmap", "bad", "-n", "demo", ok=False)

    # kubectl deletes in the manifest's order: the namespace goes first and takes what is in
    # it (at once here; on a real server a moment later), the CRD takes its custom resource
    # (on both servers), so some deletes find nothing.
    deleted = kubectl("delete", "-f", str(manifest), "--ignore-not-found")
    assert 'namespace "demo" deleted' in deleted
    assert 'customresourcedefinition.apiextensions.k8s.io "widgets.example.com" deleted' in deleted
    assert kubectl("get", "namespace", "demo", ok=False).startswith("Error from server (NotFound)")
    assert "No resources found" in kubectl("get", "crds")
