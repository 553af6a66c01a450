"""The integration tier: kubeasync against a real cluster.

Every test under ``tests/integration`` carries the ``integration`` marker and runs only
when ``KUBEASYNC_TEST_KUBECONFIG`` names a kubeconfig (the real kube-apiserver of
``../shared/tools/real-apiserver``, or kind, k3s, any cluster you may create namespaces
in); otherwise it is skipped with that reason. Each test works in a namespace of its own
(the ``namespace`` fixture), which is deleted afterwards.

Tests that restart the API server or compact etcd also need the scripts that started it:
``KUBEASYNC_REAL_APISERVER_TOOLS`` names their folder, and the ``KUBE_REAL_*`` variables
the server was started with (ports, run folder) must be set the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import Forbidden, NotFound, ServerError

KUBECONFIG_ENV = "KUBEASYNC_TEST_KUBECONFIG"
TOOLS_ENV = "KUBEASYNC_REAL_APISERVER_TOOLS"
# ConfigMap watches read etcd directly, so a compaction expires them (see docs/integration.md).
WATCH_CACHE_FLAG = "--watch-cache-sizes=configmaps#0"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def real_kubeconfig() -> str:
    """The kubeconfig of the cluster under test; skips the test when there is none."""
    path = os.environ.get(KUBECONFIG_ENV)
    if not path:
        pytest.skip(f"integration tier: set {KUBECONFIG_ENV} to a kubeconfig to run it")
    return path


@pytest.fixture
def real_config(real_kubeconfig: str) -> kubeasync.ClusterConfig:
    return kubeasync.ClusterConfig.from_kubeconfig(real_kubeconfig)


@pytest_asyncio.fixture
async def real_kube(real_config: kubeasync.ClusterConfig) -> AsyncIterator[kubeasync.Client]:
    """A client for the cluster in ``KUBEASYNC_TEST_KUBECONFIG``."""
    async with kubeasync.Client(real_config) as kube:
        yield kube


@pytest_asyncio.fixture
async def namespace(
    real_kube: kubeasync.Client, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh namespace for one test, ready for pods, and deleted afterwards."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"ka-{stem}-{uuid.uuid4().hex[:6]}"
    await real_kube.namespaces.create({"metadata": {"name": name}})
    try:
        await wait_for_default_service_account(real_kube, name)
        yield name
    finally:
        with contextlib.suppress(NotFound):
            await real_kube.namespaces.delete(name)


async def wait_for_default_service_account(
    kube: kubeasync.Client, namespace: str, timeout: float = 60
) -> None:
    """A new namespace has no ``default`` ServiceAccount for a few seconds, and admission
    refuses pods until the controller manager has made it and its token. Admission reads
    its own cache, which can lag behind a GET, so the probe is what admission answers: a
    dry-run pod create."""
    probe = {
        "metadata": {"name": "admission-probe"},
        "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
    }
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await kube.pods.create(probe, namespace=namespace, dry_run=True)
            return
        except (Forbidden, ServerError) as exc:
            if loop.time() > deadline:
                raise AssertionError(
                    f"namespace {namespace}: pods still refused after {timeout:.0f} s "
                    f"(is kube-controller-manager running?): {exc}"
                ) from exc
        await asyncio.sleep(0.2)


class RealApiServer:
    """Stops, starts and compacts the API server started by ``../shared/tools/real-apiserver``.

    The scripts read ``KUBE_REAL_*`` from the environment, so a server started on other
    ports or with another run folder is controlled the same way.
    """

    def __init__(self, tools: Path, kubeconfig: str) -> None:
        self.tools = tools
        self.kubeconfig = kubeconfig

    @staticmethod
    async def _run(*command: str, **env: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *command,
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({process.returncode}): {err.decode()}"
            )
        return out.decode()

    async def stop(self) -> None:
        """Stop etcd, kube-apiserver and the controller manager; the data stays."""
        await self._run("bash", str(self.tools / "stop.sh"))

    async def start(self) -> None:
        """Start again on the same data, with the same token and certificates, and with
        the tier's one server flag even if the environment lost it (without it a compaction
        cannot expire a ConfigMap watch, and the 410 tests after a restart would fail)."""
        args = os.environ.get("KUBE_REAL_APISERVER_ARGS", "")
        if WATCH_CACHE_FLAG not in args:
            args = f"{args} {WATCH_CACHE_FLAG}".strip()
        await self._run("bash", str(self.tools / "start.sh"), self.kubeconfig,
                        KUBE_REAL_KEEP_DATA="1", KUBE_REAL_APISERVER_ARGS=args)

    async def etcd_revision(self) -> int:
        out = await self._etcdctl("endpoint", "status", "-w", "json")
        return int(json.loads(out)[0]["Status"]["header"]["revision"])

    async def compact(self) -> int:
        """Compact etcd to its current revision, so every older resourceVersion is gone
        (watches and lists from one answer 410 Gone). Returns the revision."""
        revision = await self.etcd_revision()
        await self._etcdctl("compact", str(revision), "--physical")
        return revision

    async def _etcdctl(self, *args: str) -> str:
        endpoint = f"http://127.0.0.1:{os.environ.get('KUBE_REAL_ETCD_PORT', '2379')}"
        return await self._run("etcdctl", "--endpoints", endpoint, *args, ETCDCTL_API="3")


@pytest.fixture
def real_apiserver(real_kubeconfig: str) -> RealApiServer:
    """Control of the real API server, for restart and compaction tests."""
    tools = os.environ.get(TOOLS_ENV)
    if not tools:
        pytest.skip(
            f"restarting or compacting the server needs {TOOLS_ENV} (the folder of "
            "../shared/tools/real-apiserver that started it)"
        )
    return RealApiServer(Path(tools), real_kubeconfig)
