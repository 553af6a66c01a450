"""exec round-trip latency and port-forward throughput, on the embedded API server or a
real one (through its kubelet proxy), both with a VirtualKubelet as the node.

    python benchmarks/exec_portforward.py                      # embedded server
    python benchmarks/exec_portforward.py --kubeconfig PATH    # a real API server
    python benchmarks/exec_portforward.py --execs 500 --mib 64 --json out.json

- **exec**: ``kube.pods.exec(pod, ["true"])`` one after another, each a full session (the
  WebSocket upgrade through the API server to the kubelet, the command, the exit status,
  the close); the figure is the latency of one, p50 and p99.
- **port-forward**: ``--mib`` MiB of random bytes written into one forwarded connection to
  the pod's echo port and read back while writing (``kube.pods.port_forward``: local
  socket -> client -> API server -> kubelet -> echo and back); the figure is MB/s of payload
  (each byte crosses every hop twice), with a SHA-256 check of what came back.

Everything of kubeasync (client, embedded server, virtual kubelet) shares this process and
its event loop, as in the test suite: the figures are for one core doing all the work. Not
run in CI; ``tests/test_benchmarks_smoke.py`` runs it at a tiny size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubeasync
from kubeasync.testing import FakeApiServer, Timings, VirtualKubelet

TIMINGS = Timings(schedule=0.01, start=0.05, run=1.0, terminate=0.05)


@contextlib.asynccontextmanager
async def cluster(kubeconfig: str | None) -> AsyncIterator[tuple[kubeasync.Client, str, str]]:
    """A client, a namespace and the name of the node to run the pod on."""
    if kubeconfig is None:
        async with FakeApiServer(simulate=True, timings=TIMINGS) as server, \
                kubeasync.Client(server.config()) as kube:
            yield kube, "default", "fake-node"
        return
    config = kubeasync.ClusterConfig.from_kubeconfig(kubeconfig)
    async with kubeasync.Client(config) as kube:
        namespace = f"bench-exec-{uuid.uuid4().hex[:6]}"
        await kube.namespaces.create({"metadata": {"name": namespace}})
        try:
            async with VirtualKubelet(kube, name=f"bench-{uuid.uuid4().hex[:6]}",
                                      timings=TIMINGS) as node:
                yield kube, namespace, node.name
                with contextlib.suppress(kubeasync.ApiError):
                    await kube.pods.delete_collection(namespace=namespace)
                await asyncio.sleep(1)  # the node completes the graceful deletions
        finally:
            with contextlib.suppress(kubeasync.ApiError):
                await kube.namespaces.delete(namespace)


async def start_pod(kube: kubeasync.Client, namespace: str, node: str) -> str:
    # Bound to the node at once: the figures are about exec and port-forward, and a bare
    # API server (the tools' one) has no scheduler.
    body = {"metadata": {"name": "bench"},
            "spec": {"nodeName": node,
                     "containers": [{"name": "app", "image": "busybox",
                                     "ports": [{"containerPort": 7}]}]}}
    deadline = time.monotonic() + 60
    while True:  # a new namespace refuses pods until its service account exists
        try:
            await kube.pods.create(body, namespace=namespace)
            break
        except (kubeasync.Forbidden, kubeasync.ServerError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
    while True:
        pod = await kube.pods.get("bench", namespace=namespace)
        if pod.status is not None and pod.status.phase == "Running":
            return "bench"
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark pod never ran")
        await asyncio.sleep(0.05)


async def exec_latency(kube: kubeasync.Client, namespace: str, pod: str,
                       count: int) -> dict[str, float]:
    for _ in range(min(20, count)):  # warm the pools
        await kube.pods.exec(pod, ["true"], namespace=namespace)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        result = await kube.pods.exec(pod, ["true"], namespace=namespace)
        samples.append(time.perf_counter() - started)
        assert result.exit_code == 0
    samples.sort()
    return {"execs": count, "p50_ms": 1000 * statistics.median(samples),
            "p99_ms": 1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))],
            "mean_ms": 1000 * statistics.fmean(samples)}


async def forward_throughput(kube: kubeasync.Client, namespace: str, pod: str,
                             mib: int) -> dict[str, float]:
    data = os.urandom(mib * 1024 * 1024)
    async with kube.pods.port_forward(pod, 7, namespace=namespace) as fwd:
        reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        started = time.perf_counter()

        async def send() -> None:
            writer.write(data)
            await writer.drain()

        sending = asyncio.ensure_future(send())
        digest, received = hashlib.sha256(), 0
        while received < len(data):
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise RuntimeError("the forwarded connection ended early")
            digest.update(chunk)
            received += len(chunk)
        await sending
        elapsed = time.perf_counter() - started
        writer.close()
        await writer.wait_closed()
    if digest.hexdigest() != hashlib.sha256(data).hexdigest():
        raise RuntimeError("port-forward: the bytes that came back differ")
    return {"mib": mib, "seconds": elapsed, "mb_per_s": len(data) / elapsed / 1e6}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--kubeconfig", help="a real API server (default: the embedded one)")
    parser.add_argument("--execs", type=int, default=300, help="exec sessions (default 300)")
    parser.add_argument("--mib", type=int, default=64, help="MiB to forward (default 64)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    async with cluster(args.kubeconfig) as (kube, namespace, node):
        pod = await start_pod(kube, namespace, node)
        figures = {
            "server": "real (" + args.kubeconfig + ")" if args.kubeconfig else "embedded",
            "exec": await exec_latency(kube, namespace, pod, args.execs),
            "port_forward": await forward_throughput(kube, namespace, pod, args.mib),
        }
    e, f = figures["exec"], figures["port_forward"]
    print(f"{figures['server']}: exec p50 {e['p50_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms"
          f" ({e['execs']} execs); port-forward {f['mb_per_s']:.1f} MB/s"
          f" ({f['mib']} MiB echoed in {f['seconds']:.2f} s)")
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    figures = asyncio.run(measure(args))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
