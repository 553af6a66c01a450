"""One client's part of the load benchmark, in a process of its own; one JSON line out.

    python -m benchmarks.load_worker --client kubeasync --scenario mixed \\
        --kubeconfig K --namespace NS --pods 100 --groups 10 --tasks 200 --requests 5000
    python -m benchmarks.load_worker --client kubeasync --scenario idle \\
        --kubeconfig K --namespace NS --resource-version RV --watches 1000

``mixed``: ``--tasks`` concurrent tasks share ``--requests`` requests per sample
(``--reps`` samples, after a warm-up that opens the connections), each drawing its next
operation from a seeded random stream: GET 70% (a random seeded pod), LIST with a label
selector 10% (one of ``--groups`` groups), PATCH 10% (a merge patch of one annotation on
a random pod), CREATE 5% and DELETE 5% (a task deletes a pod it created; with none left it
creates). Every answer is checked (the name asked for, the group's pod count, the
annotation just written, the name created); a failed request or check is an error, and a
sample with errors fails the result. Figures: requests/s, latency p50/p99 (each request's
wall time, as its caller sees it, overall and per operation), the process's CPU time per
request (user+sys, ``getrusage``), RSS and open file descriptors.

``idle``: ``--watches`` concurrent watches of an empty namespace on one client. Once their
sockets are open (counted in ``/proc/self/fd``), a first pod is created there: when every
watch has received it, all of them are established (a socket counts before its TLS
handshake and its request are done). Then, once the process has gone quiet (half a second
under ``QUIET_MS_PER_S`` of CPU, at most ``QUIET_TIMEOUT`` seconds): RSS growth per watch
(after a GC), CPU while idle over ``--idle-seconds``, then a second pod, which every watch
must receive too, and the time until the last one has it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .clients import Adapter, Env, NotSupported, adapter_for
from .cluster import GROUP_LABEL, creatable_pod, pod_name
from .worker import cpu_seconds, peak_rss_bytes, rss_bytes

LOAD_ANNOTATION = "bench.kubeasync.dev/load"
CREATED_LABEL = "bench.kubeasync.dev/created-by"
WEIGHTS = (("get", 70), ("list", 10), ("patch", 10), ("create", 5), ("delete", 5))
QUIET_MS_PER_S = 5.0
QUIET_TIMEOUT = 30.0


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def quiesce(window: float = 0.5) -> float:
    """Wait until a ``window`` of wall time costs under ``QUIET_MS_PER_S`` of CPU (or
    ``QUIET_TIMEOUT`` passes: a client that never goes quiet is measured as it is);
    returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < QUIET_TIMEOUT:
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(window)
        if (cpu_seconds() - cpu0) / (time.perf_counter() - wall0) * 1000 < QUIET_MS_PER_S:
            break
    return time.monotonic() - started


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"count": len(ordered), "p50_ms": percentile(ordered, 0.50) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000, "max_ms": ordered[-1] * 1000}


def created_pod_template(namespace: str, token: str) -> dict[str, Any]:
    """The body of the pods the load creates: a seeded pod's shape, unscheduled (no
    nodeName: a real server deletes an unscheduled pod at once, without a kubelet) and
    without the group label (so that they never change a group's LIST)."""
    pod, _status = creatable_pod(0, namespace)
    del pod["spec"]["nodeName"]
    pod["metadata"]["labels"] = {CREATED_LABEL: token}
    del pod["metadata"]["generateName"]
    return pod


def with_name(template: dict[str, Any], name: str) -> dict[str, Any]:
    return {**template, "metadata": {**template["metadata"], "name": name}}


def small_pod(name: str, token: str) -> dict[str, Any]:
    """The idle cell's changes: a small pod (~0.3 KB), so that the last event each watch
    holds (as any ``async for`` loop does) weighs little next to the watch itself."""
    return {"metadata": {"name": name, "labels": {CREATED_LABEL: token}},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}


class Load:
    """The mixed workload's state: which pods exist, what each task created."""

    def __init__(self, adapter: Adapter, args: argparse.Namespace) -> None:
        self.adapter = adapter
        self.args = args
        self.ns = args.namespace
        self.names = [pod_name(i) for i in range(args.pods)]
        self.group_sizes = [len(range(g, args.pods, args.groups)) for g in range(args.groups)]
        self.token = f"{args.client.replace('_', '-')}-{os.getpid()}"
        self.template = created_pod_template(self.ns, self.token)
        self.created: list[list[str]] = [[] for _ in range(args.tasks)]
        self.sequence = 0
        self.errors: list[str] = []
        self.error_count = 0

    async def one(self, task: int, rng: random.Random, latencies: dict[str, list[float]]) -> None:
        roll = rng.random() * 100
        kind = "get"
        for name, weight in WEIGHTS:
            if roll < weight:
                kind = name
                break
            roll -= weight
        if kind == "delete" and not self.created[task]:
            kind = "create"
        self.sequence += 1
        seq = self.sequence
        adapter = self.adapter
        start = time.perf_counter()
        try:
            if kind == "get":
                name = rng.choice(self.names)
                obj = await adapter.get(self.ns, name)
                assert adapter.name_of(obj) == name, f"GET {name}: got {adapter.name_of(obj)}"
            elif kind == "list":
                group = rng.randrange(self.args.groups)
                items = await adapter.list_selector(self.ns, {GROUP_LABEL: f"g{group}"})
                assert len(items) == self.group_sizes[group], (
                    f"LIST g{group}: {len(items)} pods, expected {self.group_sizes[group]}")
            elif kind == "patch":
                name, value = rng.choice(self.names), f"{self.token}-{seq}"
                obj = await adapter.patch(
                    self.ns, name, {"metadata": {"annotations": {LOAD_ANNOTATION: value}}})
                assert adapter.annotation(obj, LOAD_ANNOTATION) == value, f"PATCH {name}"
            elif kind == "create":
                name = f"load-{self.token}-{seq}"
                obj = await adapter.create(self.ns, with_name(self.template, name))
                assert adapter.name_of(obj) == name, f"CREATE {name}"
                self.created[task].append(name)
            else:
                await adapter.delete(self.ns, self.created[task].pop())
        except NotSupported:
            raise
        except Exception as exc:  # counted and reported; the sample fails
            self.error_count += 1
            if len(self.errors) < 3:
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
            return
        latencies[kind].append(time.perf_counter() - start)

    async def run(self, requests: int, seed: int) -> dict[str, list[float]]:
        latencies: dict[str, list[float]] = {kind: [] for kind, _ in WEIGHTS}
        remaining = requests

        async def task(index: int) -> None:
            nonlocal remaining
            rng = random.Random(seed * 100003 + index)
            while remaining > 0:
                remaining -= 1
                await self.one(index, rng, latencies)

        await asyncio.gather(*(task(i) for i in range(self.args.tasks)))
        return latencies

    async def cleanup(self) -> None:
        for names in self.created:
            for name in names:
                with contextlib.suppress(Exception):
                    await self.adapter.delete(self.ns, name)
            names.clear()


async def mixed(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    load = Load(adapter, args)
    # warm-up: a GET on every task's connection, then one round of the mix
    await asyncio.gather(*(adapter.get(load.ns, load.names[i % len(load.names)])
                           for i in range(args.tasks)))
    await load.run(args.tasks * 2, seed=0)
    if load.error_count:
        raise RuntimeError(f"errors in the warm-up: {load.errors}")
    samples, cpu, per_rep = [], [], []
    pooled: dict[str, list[float]] = {kind: [] for kind, _ in WEIGHTS}
    try:
        for rep in range(args.reps):
            gc.collect()
            cpu0, start = cpu_seconds(), time.perf_counter()
            latencies = await load.run(args.requests, seed=args.seed + rep)
            seconds, used = time.perf_counter() - start, cpu_seconds() - cpu0
            done = sum(len(v) for v in latencies.values())
            samples.append(done / seconds)
            cpu.append(used)
            every = [x for values in latencies.values() for x in values]
            per_rep.append({"requests": done, "seconds": seconds,
                            "cpu_us_per_request": used / max(done, 1) * 1e6,
                            **latency_figures(every)})
            for kind, values in latencies.items():
                pooled[kind] += values
    finally:
        rss, peak, fds = rss_bytes(), peak_rss_bytes(), fd_count()
        await load.cleanup()
    if load.error_count:
        raise RuntimeError(f"{load.error_count} failed requests or checks, e.g. {load.errors}")
    every = [x for values in pooled.values() for x in values]
    return {
        "samples": samples, "unit": "req/s", "cpu_s": cpu, "per_rep": per_rep,
        "requests_per_rep": args.requests, "tasks": args.tasks,
        "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in per_rep),
        "latency": latency_figures(every),
        "latency_by_op": {kind: latency_figures(v) for kind, v in pooled.items() if v},
        "rss_mb": rss / 2**20, "peak_rss_mb": peak / 2**20, "fds": fds,
    }


async def idle(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    ns = args.namespace
    token = f"{args.client.replace('_', '-')}-{os.getpid()}"
    probe, change = f"idle-probe-{token}", f"idle-change-{token}"
    seen: dict[str, int] = {}  # events per object name
    last_seen = 0.0
    errors: list[BaseException] = []

    async def one_watch() -> None:
        nonlocal last_seen
        try:
            async for obj in adapter.watch(ns, args.resource_version):
                name = adapter.name_of(obj)
                seen[name] = seen.get(name, 0) + 1
                last_seen = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported, not hidden
            errors.append(exc)

    async def settle_open(count: int, base: int, timeout: float) -> int:
        """Wait until ``count`` more sockets are open (or their number stops growing)."""
        deadline = time.monotonic() + timeout
        last, changed = -1, time.monotonic()
        while True:
            opened = fd_count() - base
            now = time.monotonic()
            if opened != last:
                last, changed = opened, now
            if opened >= count or now > deadline or now - changed > 5 or errors:
                return max(0, min(opened, count))
            await asyncio.sleep(0.1)

    async def reach_all(name: str, timeout: float) -> tuple[int, float]:
        """Create pod ``name``; wait until every watch has its event: (delivered, ms)."""
        sent = time.monotonic()
        await adapter.create(ns, small_pod(name, token))
        deadline = sent + timeout
        while seen.get(name, 0) < args.watches and time.monotonic() < deadline and not errors:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return seen.get(name, 0), (last_seen - sent) * 1000

    # warm-up: one watch opened and closed, so that first-use imports are not counted
    warm = asyncio.ensure_future(one_watch())
    await asyncio.sleep(0.5)
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    gc.collect()
    base, before = fd_count(), rss_bytes()
    tasks = [asyncio.ensure_future(one_watch()) for _ in range(args.watches)]
    try:
        opened = await settle_open(args.watches, base, 120)
        # A socket counts before its handshake and its request are done: a first change,
        # once every watch has it, says that all of them are established.
        probed, _ = await reach_all(probe, 120)
        quiet_after = await quiesce()
        await asyncio.sleep(args.settle)
        gc.collect()
        after, fds = rss_bytes(), fd_count()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(args.idle_seconds)
        idle_cpu = (cpu_seconds() - cpu0) / (time.perf_counter() - wall0) * 1000
        delivered, burst_ms = await reach_all(change, 30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in (probe, change):
            with contextlib.suppress(Exception):
                await adapter.delete(ns, name)
    if errors and not delivered:
        raise errors[0]
    if probed != args.watches or delivered != args.watches:
        raise RuntimeError(f"only {probed} and {delivered} of {args.watches} watches received "
                           f"the changes ({opened} sockets opened); errors: {errors[:3]}")
    return {
        "samples": [(after - before) / args.watches / 1024], "unit": "KB/watch",
        "watches": args.watches, "sockets_opened": opened, "delivered": delivered,
        "total_mb": (after - before) / 2**20, "idle_cpu_ms_per_s": idle_cpu, "fds": fds,
        "burst_ms": burst_ms, "quiet_after_s": quiet_after,
        "errors": [repr(e) for e in errors[:3]],
    }


SCENARIOS: dict[str, Callable[[Adapter, argparse.Namespace], Any]] = {
    "mixed": mixed, "idle": idle,
}


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    adapter = adapter_for(args.client)
    if not isinstance(adapter, Adapter) or not adapter.is_async:
        raise NotSupported
    connections = args.watches if args.scenario == "idle" else args.tasks
    await adapter.open(Env(server="", kubeconfig=args.kubeconfig, connections=connections))
    try:
        result: dict[str, Any] = await SCENARIOS[args.scenario](adapter, args)
        return result
    finally:
        with contextlib.suppress(Exception):
            await adapter.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"client": args.client, "scenario": args.scenario}
    try:
        result.update(asyncio.run(_run(args)))
        result["ok"] = True
    except NotSupported:
        result.update(ok=False, na="n/a (not offered)")
    except Exception as exc:
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:400],
                      traceback=traceback.format_exc()[-3000:])
    result["gc_enabled_after"] = gc.isenabled()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="One client's part of the load benchmark.")
    parser.add_argument("--client", required=True)
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pods", type=int, default=100, help="mixed: seeded pods 0..N-1")
    parser.add_argument("--groups", type=int, default=10, help="mixed: label groups")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5000, help="mixed: per sample")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1,
                        help="mixed: sample i draws its operations from seed + i")
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--resource-version", default="0",
                        help="idle: watch from this resourceVersion")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile of the run to PATH")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(run, args)
        profiler.dump_stats(args.profile)
    else:
        result = run(args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
