"""A real kube-apiserver for the benchmarks, and apiserver-shaped pods created in it.

:func:`real_apiserver` starts kube-apiserver 1.20 and etcd with the scripts of
``../shared/tools/real-apiserver`` (no controller-manager: nothing here needs one), on
ports of its own so that it does not meet the integration tier's server, or uses the
cluster of a kubeconfig it is given. :func:`seed_pods` fills a namespace with the pods of
:mod:`benchmarks.data` through the API server's own create path: each pod is created by
the field manager ``kube-controller-manager`` and its status written by ``kubelet``
(``patch_status``), so that it carries the two managedFields entries and the status of a
running Deployment pod, as the server itself records them. The server's create path is
the slow part (about 200 pods/s on 2 cores, whatever the client's concurrency), so
seeding is idempotent: pods that exist are kept, and ``--keep`` keeps server and pods for
the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import data

ROOT = Path(__file__).resolve().parent.parent
TOOLS_ENV = "KUBEASYNC_REAL_APISERVER_TOOLS"
# Ports and a run folder of the benchmarks' own (start.sh's defaults are the integration
# tier's); the environment overrides each of them.
SERVER_ENV = {
    "KUBE_REAL_PORT": "6543",
    "KUBE_REAL_ETCD_PORT": "2579",
    "KUBE_REAL_ETCD_PEER_PORT": "2580",
    "KUBE_REAL_KCM_PORT": "10557",
    "KUBE_REAL_SCHED_PORT": "10559",
    "KUBE_REAL_RUN": "/tmp/kube-run-bench",
    "KUBE_REAL_CONTROLLERS": "0",
}
GROUP_LABEL = "bench.kubeasync.dev/group"
CREATE_MANAGER = "kube-controller-manager"
STATUS_MANAGER = "kubelet"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tools_dir() -> Path:
    return Path(os.environ.get(TOOLS_ENV) or ROOT.parent / "shared" / "tools" / "real-apiserver")


def server_env(keep: bool, apiserver_args: str = "") -> dict[str, str]:
    env = {**os.environ}
    for key, default in SERVER_ENV.items():
        env.setdefault(key, default)
    if apiserver_args:
        env.setdefault("KUBE_REAL_APISERVER_ARGS", apiserver_args)
    if keep:
        env["KUBE_REAL_KEEP_DATA"] = "1"
    return env


@contextlib.contextmanager
def real_apiserver(kubeconfig: str | None = None, *, keep: bool = False,
                   apiserver_args: str = "") -> Iterator[str]:
    """Yield the path of a kubeconfig for a real API server.

    With ``kubeconfig``: that cluster, untouched. Otherwise start kube-apiserver and etcd
    (``start.sh``; with ``keep`` on the data of the last run, and left running afterwards;
    without it on fresh data, and stopped at the end), with ``apiserver_args`` unless the
    environment's ``KUBE_REAL_APISERVER_ARGS`` says otherwise. A server that is already
    running (from a ``--keep`` run) is used as it is.
    """
    if kubeconfig:
        yield kubeconfig
        return
    tools = tools_dir()
    if not (tools / "start.sh").exists():
        raise SystemExit(f"no real-apiserver scripts in {tools} (set {TOOLS_ENV})")
    env = server_env(keep, apiserver_args)
    path = Path(env["KUBE_REAL_RUN"]) / "kubeconfig"
    started = time.perf_counter()
    proc = subprocess.run(["bash", str(tools / "start.sh"), str(path)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"start.sh failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    log(f"real kube-apiserver {proc.stdout.strip()} ready in "
        f"{time.perf_counter() - started:.1f} s (run folder {env['KUBE_REAL_RUN']})")
    try:
        yield str(path)
    finally:
        if keep:
            log(f"--keep: the server stays up; stop it with KUBE_REAL_RUN={env['KUBE_REAL_RUN']}"
                f" bash {tools / 'stop.sh'}")
        else:
            subprocess.run(["bash", str(tools / "stop.sh")], env=env, capture_output=True)


def creatable_pod(i: int, namespace: str,
                  labels: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pod ``i`` of :mod:`benchmarks.data` as a client creates it, and its status apart:
    what the server sets (uid, resourceVersion, creationTimestamp, managedFields) removed."""
    pod = data.make_pod(i, namespace=namespace)
    meta = pod["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        del meta[key]
    if labels:
        meta["labels"] = {**meta["labels"], **labels}
    status = pod.pop("status")
    return pod, status


def pod_name(i: int) -> str:
    return str(data.make_pod(i)["metadata"]["name"])


@dataclass
class Seeded:
    namespace: str
    pods: int
    created: int
    seconds: float

    def describe(self) -> str:
        if not self.created:
            return f"namespace {self.namespace}: {self.pods} pods already there"
        return (f"namespace {self.namespace}: created {self.created} pods (+ their status) in "
                f"{self.seconds:.1f} s, {self.created / self.seconds:.0f} pods/s")


async def ensure_namespace(kube: Any, namespace: str) -> None:
    import kubeasync

    with contextlib.suppress(kubeasync.AlreadyExists):
        await kube.namespaces.create({"metadata": {"name": namespace}})
    # A cluster with ServiceAccount admission accepts pods once the namespace's default
    # service account exists: a dry-run create says when. (Not of a benchmark pod: they
    # carry generateName, and for such a pod a real server answers a create of an existing
    # name with 500 ServerTimeout, "try again", instead of 409 AlreadyExists.)
    probe = {"metadata": {"name": "kubeasync-bench-probe"},
             "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}
    deadline = time.monotonic() + 60
    while True:
        try:
            await kube.pods.create(probe, namespace=namespace, dry_run=True)
            return
        except kubeasync.AlreadyExists:
            return
        except (kubeasync.Forbidden, kubeasync.ServerError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def seed_pods(kube: Any, namespace: str, count: int, *, concurrency: int = 64,
                    groups: int = 0) -> Seeded:
    """Make ``namespace`` hold pods 0..count-1 (created, then their status written).

    ``groups``: also label pod i ``bench.kubeasync.dev/group=g{i % groups}``, for label
    selectors. Pods that exist are kept; returns what was done and how long it took.
    """
    import kubeasync

    await ensure_namespace(kube, namespace)
    existing = {p.metadata.name for p in (await kube.pods.list(namespace=namespace)).items or []}
    todo = [i for i in range(count) if pod_name(i) not in existing]
    started = time.perf_counter()
    done = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal done
        labels = {GROUP_LABEL: f"g{i % groups}"} if groups else None
        pod, status = creatable_pod(i, namespace, labels)
        async with gate:
            with contextlib.suppress(kubeasync.AlreadyExists):
                await kube.pods.create(pod, namespace=namespace, field_manager=CREATE_MANAGER)
            await kube.pods.patch_status(pod["metadata"]["name"], {"status": status},
                                         namespace=namespace, field_manager=STATUS_MANAGER)
        done += 1
        if done % 2000 == 0:
            log(f"  {namespace}: {done}/{len(todo)} pods created "
                f"({time.perf_counter() - started:.0f} s)")

    await asyncio.gather(*(one(i) for i in todo))
    return Seeded(namespace, count, len(todo), time.perf_counter() - started)


def client_for(kubeconfig: str, connections: int = 100) -> Any:
    """The harness's own kubeasync client (for setup; never measured)."""
    import kubeasync

    return kubeasync.Client(kubeasync.ClusterConfig.from_kubeconfig(kubeconfig),
                            max_connections=connections)
