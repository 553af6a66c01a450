"""The controller runtime's costs: the work queue per item, and the example controller's
reconciles per second.

    python benchmarks/controllers.py                        # both, on the embedded server
    python benchmarks/controllers.py --queue-items 200000   # more queue items
    python benchmarks/controllers.py --websites 500 --kubeconfig /tmp/kubeconfig   # a real
                                                             # cluster (a namespace of its own)

**Queue overhead**: ``add`` + ``get`` + ``done`` of N distinct keys through a
:class:`kubeasync.WorkQueue`, against ``put_nowait`` + ``get`` of the same keys through a
plain ``asyncio.Queue`` in the same run: the figure is the difference per item, and the
ratio. Then the same with each key added three times before it is taken (the dedup path)
and with every key retried once through ``add_rate_limited`` (the delaying path, on a
fake clock so that no real time passes).

**Reconciles per second**: ``examples/website_controller.py`` with ``--workers`` (4) workers over N
Websites that exist before it starts: the time from start until every Website's status has
caught up with its generation (each one costs a finalizer write, two server-side applies
and a status write, and the changes of its Deployment and Service bring it back once more),
then the same after a spec change of every Website. On the embedded server (in this
process: the server's work is part of the figure) or on a real cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path[:1]:
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's kubeasync, not an installed one
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import kubeasync  # noqa: E402
from examples.website_controller import WEBSITES, WebsiteController, install_crd  # noqa: E402
from kubeasync.kinds import (  # noqa: E402
    APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS,
    APPS_V1_DEPLOYMENTS,
    COORDINATION_V1_LEASES,
    EVENTS_V1_EVENTS,
    SEED_RESOURCES,
)
from kubeasync.runtime.clock import FakeClock  # noqa: E402
from kubeasync.testing import FakeApiServer  # noqa: E402

# --------------------------------------------------------------------------- the queue


async def _plain(keys: list[tuple[str, str]]) -> float:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    start = time.perf_counter()
    for key in keys:
        queue.put_nowait(key)
    for _ in keys:
        await queue.get()
    return time.perf_counter() - start


async def _workqueue(keys: list[tuple[str, str]], adds: int) -> float:
    queue: kubeasync.WorkQueue[tuple[str, str]] = kubeasync.WorkQueue("bench")
    start = time.perf_counter()
    for _ in range(adds):
        for key in keys:
            queue.add(key)
    for _ in keys:
        key = await queue.get()
        queue.done(key)
    return time.perf_counter() - start


async def _retried(keys: list[tuple[str, str]]) -> float:
    clock = FakeClock()
    queue: kubeasync.WorkQueue[tuple[str, str]] = kubeasync.WorkQueue(
        "bench", clock=clock, rate_limiter=kubeasync.ExponentialBackoff(0.005, 1.0))
    start = time.perf_counter()
    for key in keys:
        queue.add_rate_limited(key)  # each waits 5 ms (fake): the delaying path
    clock.advance(1.0)
    for _ in keys:
        key = await queue.get()
        queue.done(key)
    await queue.shutdown()
    return time.perf_counter() - start


async def queue_overhead(items: int, rounds: int) -> dict[str, float]:
    keys = [("default", f"object-{i}") for i in range(items)]
    samples: dict[str, list[float]] = {"asyncio.Queue": [], "WorkQueue": [],
                                       "WorkQueue, 3 adds": [], "WorkQueue, retried": []}
    for _ in range(rounds):  # the rows take turns: a busy machine slows them all alike
        gc.collect()
        samples["asyncio.Queue"].append(await _plain(keys))
        samples["WorkQueue"].append(await _workqueue(keys, 1))
        samples["WorkQueue, 3 adds"].append(await _workqueue(keys, 3))
        samples["WorkQueue, retried"].append(await _retried(keys))
    return {label: statistics.median(values) / items for label, values in samples.items()}


# --------------------------------------------------------------------------- reconciles


def _caught_up(site: Any) -> bool:
    return site.status is not None and site.status.observed_generation == site.metadata.generation


async def _measure(controller: WebsiteController, count: int) -> float:
    """Seconds until every Website's status has caught up, as the controller's own cache
    sees it (no polling of the server: that would load it during the measurement)."""
    start = time.perf_counter()
    informer = controller.controller.informer
    pending = {site.metadata.name for site in informer.list() if not _caught_up(site)}
    if len(informer) == count and not pending:
        return time.perf_counter() - start
    async for change in informer.changes():
        if change.type != "deleted" and _caught_up(change.object):
            pending.discard(change.name)
        elif change.type != "deleted":
            pending.add(change.name)
        if len(informer) == count and not pending:
            break
    return time.perf_counter() - start


async def reconciles_per_second(kube: kubeasync.Client, namespace: str, count: int,
                                workers: int) -> dict[str, float]:
    websites = kube.resource(WEBSITES)
    semaphore = asyncio.Semaphore(16)

    async def create(i: int) -> None:
        async with semaphore:
            await websites.create({"metadata": {"name": f"site-{i:04d}"},
                                   "spec": {"replicas": 1}}, namespace=namespace)

    await asyncio.gather(*(create(i) for i in range(count)))
    controller = WebsiteController(kube, namespace=namespace, workers=workers)
    running = asyncio.ensure_future(controller.run())
    try:
        await controller.controller.informer.start()  # the controller's own, shared
        first = await _measure(controller, count)
        first_reconciles = controller.controller.stats.reconciles

        async def change(i: int) -> None:
            async with semaphore:
                await websites.patch(f"site-{i:04d}", {"spec": {"replicas": 2}},
                                     namespace=namespace)

        await asyncio.gather(*(change(i) for i in range(count)))
        second = await _measure(controller, count)
        second_reconciles = controller.controller.stats.reconciles - first_reconciles
    finally:
        running.cancel()
        await asyncio.wait({running})
        await controller.controller.informer.stop()
    return {"websites": count, "workers": workers, "initial_seconds": first, "initial_reconciles": first_reconciles,
            "change_seconds": second, "change_reconciles": second_reconciles}


async def on_embedded(count: int, workers: int) -> dict[str, float]:
    resources = (*SEED_RESOURCES, WEBSITES, APPS_V1_DEPLOYMENTS, EVENTS_V1_EVENTS,
                 COORDINATION_V1_LEASES)
    async with FakeApiServer(resources=resources) as server, \
            kubeasync.Client(server.config()) as kube:
        return await reconciles_per_second(kube, "default", count, workers)


async def on_cluster(kubeconfig: str, count: int, workers: int) -> dict[str, float]:
    config = kubeasync.ClusterConfig.from_kubeconfig(kubeconfig)
    async with kubeasync.Client(config) as kube:
        await install_crd(kube)
        namespace = f"bench-websites-{uuid.uuid4().hex[:6]}"
        await kube.namespaces.create({"metadata": {"name": namespace}})
        try:
            return await reconciles_per_second(kube, namespace, count, workers)
        finally:
            websites = kube.resource(WEBSITES)
            for site in (await websites.list(namespace=namespace)).items:
                with contextlib.suppress(kubeasync.NotFound):  # let the namespace go
                    await websites.patch(site.metadata.name or "",
                                         {"metadata": {"finalizers": None}},
                                         namespace=namespace)
            await kube.namespaces.delete(namespace)
            with contextlib.suppress(kubeasync.NotFound):
                await kube.resource(APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS).delete(
                    "websites.demo.kubeasync.io")


# --------------------------------------------------------------------------- main


def _report_queue(figures: dict[str, float]) -> None:
    base = figures["asyncio.Queue"]
    print("work queue, per item (median):")
    for label, seconds in figures.items():
        extra = "" if label == "asyncio.Queue" else \
            f"  (+{(seconds - base) * 1e6:.2f} us, {seconds / base:.1f}x asyncio.Queue)"
        print(f"  {label:22} {seconds * 1e6:7.2f} us{extra}")


def _report_reconciles(where: str, figures: dict[str, Any]) -> None:
    print(f"example controller on {where}: {figures['websites']} Websites,"
          f" {figures['workers']} workers")
    for phase in ("initial", "change"):
        seconds, reconciles = figures[f"{phase}_seconds"], figures[f"{phase}_reconciles"]
        print(f"  {phase:8} {seconds:6.2f} s  {reconciles:5d} reconciles"
              f"  {reconciles / seconds:7.1f} reconciles/s"
              f"  {figures['websites'] / seconds:7.1f} Websites/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--websites", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kubeconfig", help="measure the example on this cluster instead")
    parser.add_argument("--skip-queue", action="store_true")
    parser.add_argument("--skip-reconciles", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_queue:
        _report_queue(asyncio.run(queue_overhead(args.queue_items, args.rounds)))
    if not args.skip_reconciles:
        if args.kubeconfig:
            figures = asyncio.run(on_cluster(args.kubeconfig, args.websites, args.workers))
            _report_reconciles("the cluster", figures)
        else:
            figures = asyncio.run(on_embedded(args.websites, args.workers))
            _report_reconciles("the embedded server (same process)", figures)


if __name__ == "__main__":
    main()
