"""Run one scenario for one client, in this process, and print one JSON result line.

The harness (:mod:`benchmarks.run`) starts one worker process per (client, scenario), so
that clients never share an interpreter, an import, a heap or a garbage collector.

    python -m benchmarks.worker --client kubeasync --scenario list --size 10000 \\
        --server http://127.0.0.1:PORT --kubeconfig /tmp/.../kubeconfig

Scenarios:
  list      LIST ``--size`` pods into typed objects (``--dicts``: into dicts); seconds
  rss       one LIST of ``--size`` pods in a fresh process: peak RSS growth; MB
  get       ``--size`` GETs of one small pod at ``--concurrency``; requests/s
  watch     ``--size`` events through the client's watch API; events/s
  idle      ``--size`` concurrent idle watches: KB per watch, CPU while idle,
            delivery latency of an event

Timed samples are repeated (``--reps``) within a time budget (``--budget`` seconds). The
first call is a warm-up, unless it alone took more than ``WARMUP_LIMIT`` seconds: then it
is a sample (at that length, connection setup and first-call costs are noise, and a slow
client would not fit its budget otherwise). The result holds every sample, and with each
timed one the process's own CPU time over it (``cpu_s``: user+sys of every thread, from
``getrusage``), so that a server's share of the wall time can be taken out; the harness
reports their median. Results go to stdout as the last line.

By default each scenario reads the benchmark server's namespaces (``pods-N``,
``events-N``, ``bench``); ``--namespace``, ``--name``, ``--resource-version`` and
``--expect-last-rv`` point it at a real API server's objects instead
(:mod:`benchmarks.real_apiserver`).

``--client client-go`` (and ``client-go-protobuf``) is the Go program of
``benchmarks/clientgo``: the worker pins itself to one core and replaces itself with that
program, with ``GOMAXPROCS=1`` and the same arguments; it prints the same result line.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import http.client
import json
import os
import resource
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from .clients import (
    ADAPTERS,
    Adapter,
    ClientGo,
    Env,
    NotSupported,
    SyncAdapter,
    adapter_for,
    clientgo_binary,
)

WARMUP_LIMIT = 2.0
PAGE = os.sysconf("SC_PAGE_SIZE")
FIRST_EVENT_RV = 200000  # the server's events-N streams carry resourceVersions from here


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    """This process's CPU time so far, user + system, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def control(server: str, path: str) -> dict[str, Any]:
    """A request to the benchmark server's control endpoints (plain blocking http.client)."""
    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("GET", path)
        answer: dict[str, Any] = json.loads(conn.getresponse().read())
        return answer
    finally:
        conn.close()


class Samples:
    """Repeat a measurement up to ``reps`` times within ``budget`` seconds."""

    def __init__(self, reps: int, budget: float) -> None:
        self.reps = reps
        self.budget = budget
        self.started = time.perf_counter()
        self.values: list[float] = []
        self.cpu: list[float] = []
        self.warmed = False

    def warmed_up(self) -> None:
        self.warmed = True
        self.started = time.perf_counter()

    def more(self) -> bool:
        if not self.values:
            return True
        if len(self.values) >= self.reps:
            return False
        spent = time.perf_counter() - self.started
        return spent + spent / len(self.values) <= self.budget

    def add(self, seconds: float, value: float, cpu: float) -> None:
        """Record a sample and the CPU time it took, or drop it as the warm-up."""
        if not self.warmed:
            self.warmed = True
            if seconds < WARMUP_LIMIT:
                self.started = time.perf_counter()
                return
        self.values.append(value)
        self.cpu.append(cpu)

    def result(self, unit: str) -> dict[str, Any]:
        return {"samples": self.values, "cpu_s": self.cpu, "unit": unit}


def check_list(adapter: Adapter | SyncAdapter, items: list[Any], args: argparse.Namespace) -> None:
    if adapter.name == "aiohttp-raw":
        assert items and len(items[0]) > args.size * 1000, "short body"
        return
    assert len(items) == args.size, f"expected {args.size} items, got {len(items)}"
    if args.dicts:
        assert isinstance(items[-1], dict), type(items[-1])
    else:
        adapter.check_typed(items[-1])


def check_last_event(adapter: Adapter | SyncAdapter, seen: int, count: int, last: Any,
                     expect_rv: str | None) -> None:
    """``expect_rv``: the last event's resourceVersion (``None``: the benchmark server's
    ``events-{count}`` stream; ``""``: not checked, for a warm-up on part of a burst)."""
    assert seen == count, f"expected {count} events, got {seen}"
    rv = adapter.resource_version(last)
    expected = str(FIRST_EVENT_RV + count - 1) if expect_rv is None else expect_rv
    assert not expected or rv == expected, f"wrong last event: resourceVersion {rv}"


def rss_result(before: int, peak: int, after: int) -> dict[str, Any]:
    return {
        "samples": [(peak - before) / 2**20],
        "unit": "MB",
        "retained_mb": (after - before) / 2**20,
        "peak_mb": peak / 2**20,
        "before_mb": before / 2**20,
    }


async def idle_measure(
    args: argparse.Namespace,
    wait_open: Callable[[int, float], Awaitable[int]],
    before: int,
    latencies: list[float],
    received: Callable[[], int],
    errors: list[BaseException],
) -> dict[str, Any]:
    """Shared by the async and the threaded idle scenarios, once the watches are started.

    Memory per watch (RSS growth over the watches, after a GC), CPU while idle (process CPU
    time over ``--idle-seconds`` of wall time), then ``--fires`` events, each to one watch
    (the server picks them in turn) while the others stay idle: the delivery latency of an
    event. Last, one burst: an event to every watch at once, and the time until the last
    one is delivered.
    """
    opened = await wait_open(args.size, 120)
    await asyncio.sleep(args.settle)
    gc.collect()
    after = rss_bytes()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(args.idle_seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()

    async def fire(to: str, count: int) -> None:
        target = received() + count
        await asyncio.to_thread(control, args.server, f"/_bench/fire?to={to}")
        deadline = time.monotonic() + 30
        # a poll, not an Event: the threaded (sync client) watches count in other threads
        while received() < target and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    for _ in range(args.fires if opened else 0):
        await fire("one", 1)
        await asyncio.sleep(0.01)
    single = sorted(x * 1000 for x in latencies)
    del latencies[:]
    if opened:
        await fire("all", opened)
    burst = max(latencies) * 1000 if latencies else None
    return {
        "samples": [(after - before) / max(opened, 1) / 1024],
        "unit": "KB/watch",
        "opened": opened,
        "requested": args.size,
        "idle_cpu_ms_per_s": (cpu1 - cpu0) / (wall1 - wall0) * 1000,
        "latency_p50_ms": statistics.median(single) if single else None,
        "latency_max_ms": single[-1] if single else None,
        "delivered": len(single),
        "burst_ms": burst,
        "burst_delivered": len(latencies),
        "errors": [repr(e) for e in errors[:3]],
    }


# ====================================================================== async scenarios


async def async_list(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    ns = args.namespace or f"pods-{args.size}"
    call = adapter.list_dicts if args.dicts else adapter.list_typed
    samples = Samples(args.reps, args.budget)
    while samples.more():
        cpu0, start = cpu_seconds(), time.perf_counter()
        items = await call(ns)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        check_list(adapter, items, args)
        samples.add(seconds, seconds, cpu)
        del items
        gc.collect()
    return samples.result("s")


async def async_rss(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    call = adapter.list_dicts if args.dicts else adapter.list_typed
    warm = await call("pods-10")  # imports and connection, not counted
    del warm
    gc.collect()
    before = rss_bytes()
    items = await call(args.namespace or f"pods-{args.size}")
    peak = peak_rss_bytes()
    after = rss_bytes()
    check_list(adapter, items, args)
    return rss_result(before, peak, after)


async def async_get(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    ns, name = args.namespace or "bench", args.name

    async def run(total: int) -> None:
        remaining = total

        async def one_worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await adapter.get(ns, name)

        await asyncio.gather(*(one_worker() for _ in range(min(args.concurrency, total))))

    obj = await adapter.get(ns, name)
    if adapter.name != "aiohttp-raw":
        adapter.check_typed(obj)
    await run(min(200, args.size))  # warm up the connection pool
    samples = Samples(args.reps, args.budget)
    samples.warmed_up()
    while samples.more():
        cpu0, start = cpu_seconds(), time.perf_counter()
        await run(args.size)
        seconds = time.perf_counter() - start
        samples.add(seconds, args.size / seconds, cpu_seconds() - cpu0)
    return samples.result("req/s")


async def async_watch_once(adapter: Adapter, args: argparse.Namespace, count: int,
                           expect_rv: str | None = None) -> None:
    """Read ``count`` events from the ``events-{count}`` stream (or ``--namespace`` from
    ``--resource-version``) and check the last one."""
    seen = 0
    last = None
    if args.namespace:
        stream = adapter.watch(args.namespace, args.resource_version)
    else:
        stream = adapter.watch(f"events-{count}")
    try:
        async for obj in stream:
            seen += 1
            last = obj
            if seen >= count:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    check_last_event(adapter, seen, count, last, expect_rv)


def warmup_expectation(args: argparse.Namespace) -> str | None:
    """The warm-up reads the first events of a real server's burst: no last-event check."""
    return "" if args.namespace else None


async def async_watch(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await async_watch_once(adapter, args, args.warmup_events, warmup_expectation(args))
    samples = Samples(args.reps, args.budget)
    samples.warmed_up()
    while samples.more():
        cpu0, start = cpu_seconds(), time.perf_counter()
        await async_watch_once(adapter, args, args.size, args.expect_last_rv)
        seconds = time.perf_counter() - start
        samples.add(seconds, args.size / seconds, cpu_seconds() - cpu0)
        gc.collect()
    return samples.result("events/s")


async def async_idle(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    received = 0
    errors: list[BaseException] = []

    async def one_watch() -> None:
        nonlocal received
        try:
            async for obj in adapter.watch("idle"):
                latencies.append(time.monotonic() - adapter.sent(obj))
                received += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported, not hidden
            errors.append(exc)

    async def wait_open(count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            stats = await asyncio.to_thread(control, args.server, "/_bench/stats")
            now = time.monotonic()
            if stats["idle_open"] != last:
                last, last_change = int(stats["idle_open"]), now
            if last >= count or now > deadline or now - last_change > 5 or errors:
                return last
            await asyncio.sleep(0.1)

    # warm-up: one short watch stream, so that first-use imports and code are not counted
    await async_watch_once(adapter, args, args.warmup_events)
    gc.collect()
    before = rss_bytes()
    tasks = [asyncio.ensure_future(one_watch()) for _ in range(args.size)]
    try:
        result = await idle_measure(args, wait_open, before, latencies, lambda: received,
                                    errors)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if errors and not result["opened"]:
        raise errors[0]
    return result


ASYNC_SCENARIOS: dict[str, Callable[[Any, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "list": async_list,
    "rss": async_rss,
    "get": async_get,
    "watch": async_watch,
    "idle": async_idle,
}


# ====================================================================== sync scenarios


def sync_list(adapter: SyncAdapter, args: argparse.Namespace) -> dict[str, Any]:
    ns = args.namespace or f"pods-{args.size}"
    call = adapter.list_dicts if args.dicts else adapter.list_typed
    samples = Samples(args.reps, args.budget)
    while samples.more():
        cpu0, start = cpu_seconds(), time.perf_counter()
        items = call(ns)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        check_list(adapter, items, args)
        samples.add(seconds, seconds, cpu)
        del items
        gc.collect()
    return samples.result("s")


def sync_rss(adapter: SyncAdapter, args: argparse.Namespace) -> dict[str, Any]:
    call = adapter.list_dicts if args.dicts else adapter.list_typed
    warm = call("pods-10")
    del warm
    gc.collect()
    before = rss_bytes()
    items = call(args.namespace or f"pods-{args.size}")
    peak = peak_rss_bytes()
    after = rss_bytes()
    check_list(adapter, items, args)
    return rss_result(before, peak, after)


def sync_get(adapter: SyncAdapter, args: argparse.Namespace) -> dict[str, Any]:
    """``--concurrency`` threads, as the sync client is meant to be used concurrently."""
    ns, name = args.namespace or "bench", args.name
    adapter.check_typed(adapter.get(ns, name))
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:

        def run(total: int) -> None:
            for future in [pool.submit(adapter.get, ns, name) for _ in range(total)]:
                future.result()

        run(min(200, args.size))
        samples = Samples(args.reps, args.budget)
        samples.warmed_up()
        while samples.more():
            cpu0, start = cpu_seconds(), time.perf_counter()
            run(args.size)
            seconds = time.perf_counter() - start
            samples.add(seconds, args.size / seconds, cpu_seconds() - cpu0)
    return samples.result("req/s")


def sync_watch_once(adapter: SyncAdapter, args: argparse.Namespace, count: int,
                    expect_rv: str | None = None) -> None:
    seen = 0
    last = None
    if args.namespace:
        stream = adapter.watch(args.namespace, args.resource_version)
    else:
        stream = adapter.watch(f"events-{count}")
    try:
        for obj in stream:
            seen += 1
            last = obj
            if seen >= count:
                break
    finally:
        stream.close()  # type: ignore[attr-defined]
    check_last_event(adapter, seen, count, last, expect_rv)


def sync_watch(adapter: SyncAdapter, args: argparse.Namespace) -> dict[str, Any]:
    sync_watch_once(adapter, args, args.warmup_events, warmup_expectation(args))
    samples = Samples(args.reps, args.budget)
    samples.warmed_up()
    while samples.more():
        cpu0, start = cpu_seconds(), time.perf_counter()
        sync_watch_once(adapter, args, args.size, args.expect_last_rv)
        seconds = time.perf_counter() - start
        samples.add(seconds, args.size / seconds, cpu_seconds() - cpu0)
        gc.collect()
    return samples.result("events/s")


def sync_idle(adapter: SyncAdapter, args: argparse.Namespace) -> dict[str, Any]:
    """One thread per watch, as the sync client is meant to be used (daemon threads: their
    blocked reads end with the process)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    counter = [0]

    def one_watch() -> None:
        try:
            for obj in adapter.watch("idle"):
                latency = time.monotonic() - adapter.sent(obj)
                with lock:
                    latencies.append(latency)
                    counter[0] += 1
        except Exception as exc:
            errors.append(exc)

    def wait_open_blocking(count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            opened = int(control(args.server, "/_bench/stats")["idle_open"])
            now = time.monotonic()
            if opened != last:
                last, last_change = opened, now
            if last >= count or now > deadline or now - last_change > 5 or errors:
                return last
            time.sleep(0.1)

    async def wait_open(count: int, timeout: float) -> int:
        return await asyncio.to_thread(wait_open_blocking, count, timeout)

    sync_watch_once(adapter, args, args.warmup_events)
    gc.collect()
    before = rss_bytes()
    for _ in range(args.size):
        threading.Thread(target=one_watch, daemon=True).start()
    result = asyncio.run(
        idle_measure(args, wait_open, before, latencies, lambda: counter[0], errors)
    )
    if errors and not result["opened"]:
        raise errors[0]
    return result


SYNC_SCENARIOS: dict[str, Callable[[Any, argparse.Namespace], dict[str, Any]]] = {
    "list": sync_list,
    "rss": sync_rss,
    "get": sync_get,
    "watch": sync_watch,
    "idle": sync_idle,
}


# ====================================================================== entry point


async def _run_async(adapter: Adapter, args: argparse.Namespace, env: Env) -> dict[str, Any]:
    await adapter.open(env)
    try:
        return await ASYNC_SCENARIOS[args.scenario](adapter, args)
    finally:
        with contextlib.suppress(Exception):
            await adapter.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    adapter = adapter_for(args.client)
    env = Env(
        server=args.server,
        kubeconfig=args.kubeconfig,
        connections=args.size if args.scenario == "idle" else args.concurrency,
    )
    result: dict[str, Any] = {
        "client": args.client,
        "scenario": args.scenario,
        "size": args.size,
        "dicts": args.dicts,
    }
    try:
        if isinstance(adapter, SyncAdapter):
            adapter.open(env)
            try:
                result.update(SYNC_SCENARIOS[args.scenario](adapter, args))
            finally:
                adapter.close()
        else:
            result.update(asyncio.run(_run_async(adapter, args, env)))
        result["ok"] = True
    except NotSupported:
        result.update(ok=False, na="n/a (not offered)")
    except NotImplementedError:
        result.update(ok=False, na="n/a (not implemented)")
    except Exception as exc:
        result.update(
            ok=False,
            error=f"{type(exc).__name__}: {exc}"[:300],
            traceback=traceback.format_exc()[-3000:],
        )
    result["gc_enabled_after"] = gc.isenabled()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one benchmark scenario for one client.")
    parser.add_argument("--client", required=True)
    parser.add_argument("--scenario", required=True, choices=sorted(ASYNC_SCENARIOS))
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--dicts", action="store_true")
    parser.add_argument("--server", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup-events", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--fires", type=int, default=50)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds between the last watch opening and the memory reading")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile of the run to PATH")
    parser.add_argument("--namespace", help="read this namespace instead of the benchmark"
                        " server's pods-N / events-N / bench")
    parser.add_argument("--name", default="small", help="get: the pod's name")
    parser.add_argument("--resource-version", default="1",
                        help="watch --namespace: start after this resourceVersion")
    parser.add_argument("--expect-last-rv",
                        help="watch --namespace: the last event's resourceVersion (checked)")
    return parser.parse_args(argv)


def exec_go(client: type[ClientGo], argv: list[str]) -> None:
    """Become the client-go program: pinned to one core, GOMAXPROCS=1 (or the GOMAXPROCS
    of the environment, on that many cores), the same arguments; never returns."""
    binary = clientgo_binary()
    if not binary.exists():
        sys.stdout.write(json.dumps({"ok": False, "client": client.name,
                                     "error": f"{binary} is not built"}) + "\n")
        sys.stdout.flush()
        os._exit(0)
    procs = int(os.environ.get("GOMAXPROCS") or 1)
    cores = sorted(os.sched_getaffinity(0))[-procs:]
    os.sched_setaffinity(0, cores)
    env = {**os.environ, "GOMAXPROCS": str(len(cores))}
    os.execve(binary, [str(binary), *argv, *client.program_args], env)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    program = ADAPTERS.get(args.client)
    if program is not None and issubclass(program, ClientGo):
        exec_go(program, argv)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(run, args)
        profiler.dump_stats(args.profile)
    else:
        result = run(args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Daemon threads (the sync client's idle watches) may still block in reads: leave now.
    os._exit(0)


if __name__ == "__main__":
    main()
