"""A candidate process for the leader-election tests: campaigns, and logs its terms.

    python -m tests.helpers.campaigner KUBECONFIG LOG --identity a --namespace ns \\
        --lease-duration 4 --renew-deadline 3 --retry-period 0.5 [--shards N --objects ...]

Each line of LOG is ``<event> <time.monotonic()> [detail]``, flushed at once:
``start``/``stop`` when its work (leading) begins and ends, ``ready`` once it runs.
``time.monotonic()`` is the system-wide monotonic clock on Linux, so the test compares
the lines of several processes. SIGTERM ends the election (the Lease is released).

With ``--shards``, it runs a sharded controller over the ConfigMaps labelled
``sharded=<name>`` in the namespace instead, and logs ``begin <time> <key>`` and
``end <time> <key>`` around every reconcile and ``shards <time> <held shards>`` when its
shards change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import kubeasync  # noqa: E402
from kubeasync.kinds import CONFIG_MAPS  # noqa: E402


class Log:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - for the process's life

    def write(self, event: str, *details: object) -> None:
        # Flushed to the kernel at once: a SIGKILL then loses nothing already written.
        self.file.write(" ".join([event, repr(time.monotonic()), *map(str, details)]) + "\n")
        self.file.flush()


async def campaign(kube: kubeasync.Client, options: argparse.Namespace, log: Log) -> None:
    election = kubeasync.LeaderElection(
        kube, options.name, namespace=options.namespace, identity=options.identity,
        lease_duration=options.lease_duration, renew_deadline=options.renew_deadline,
        retry_period=options.retry_period)

    async def work() -> None:
        log.write("start")
        try:
            await asyncio.Event().wait()
        finally:
            log.write("stop")

    await election.run(work)


async def sharded(kube: kubeasync.Client, options: argparse.Namespace, log: Log) -> None:
    sharding = kubeasync.Sharding(
        kube, options.name, namespace=options.namespace, identity=options.identity,
        shards=options.shards, lease_duration=options.lease_duration,
        renew_deadline=options.renew_deadline, retry_period=options.retry_period)

    async def reconcile(key: kubeasync.ObjectKey) -> None:
        log.write("begin", f"{key.namespace}/{key.name}")
        try:
            await asyncio.sleep(options.reconcile_seconds)
        finally:
            log.write("end", f"{key.namespace}/{key.name}")

    controller = kubeasync.Controller(
        kube, CONFIG_MAPS, reconcile, namespace=options.namespace,
        label_selector={"sharded": options.name}, sharding=sharding, workers=4)

    async def report() -> None:
        held: frozenset[int] | None = None
        while True:
            if sharding.held != held:
                held = sharding.held
                log.write("shards", ",".join(map(str, sorted(held))) or "-")
            await asyncio.sleep(0.05)

    reporting = asyncio.ensure_future(report())
    try:
        await controller.run()
    finally:
        reporting.cancel()


async def main(options: argparse.Namespace) -> None:
    log = Log(options.log)
    config = kubeasync.ClusterConfig.from_kubeconfig(options.kubeconfig)
    async with kubeasync.Client(config, timeout=10) as kube:
        task = asyncio.ensure_future(
            sharded(kube, options, log) if options.shards else campaign(kube, options, log))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        log.write("ready", options.identity)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    log.write("exit")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("kubeconfig")
    parser.add_argument("log")
    parser.add_argument("--identity", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--name", default="lock")
    parser.add_argument("--lease-duration", type=float, default=4)
    parser.add_argument("--renew-deadline", type=float, default=3)
    parser.add_argument("--retry-period", type=float, default=0.5)
    parser.add_argument("--shards", type=int, default=0)
    parser.add_argument("--reconcile-seconds", type=float, default=0.002)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
