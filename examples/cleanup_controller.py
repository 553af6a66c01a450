"""A controller that deletes finished Jobs some time after they finished.

What ``spec.ttlSecondsAfterFinished`` does for Jobs that set it, for every Job of a
namespace (or of the cluster), written on a kubeasync informer:

    python examples/cleanup_controller.py --namespace batch --ttl 3600
    python examples/cleanup_controller.py --all-namespaces --ttl 600 --selector team=data --dry-run
    python examples/cleanup_controller.py --kubeconfig ./fake.kubeconfig --ttl 5

It is written the way controllers are: level-triggered. The informer's changes only tell
it *which* Job to look at and when; the decision is always made on the Job's current
state in the informer's store, right before acting, and the delete carries the Job's uid
as a precondition, so a Job re-created under the same name is never deleted by mistake.
A consumer that falls behind resyncs from the store, and a restart of the controller
starts from the current state: nothing is lost by missing a change.

Import it to run it elsewhere (its test runs it against the embedded API server):

    controller = CleanupController(kube, ttl=3600, namespace="batch")
    await controller.run()          # until cancelled
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime

import kubeasync
from kubeasync.models import Job, parse_time

log = logging.getLogger("cleanup_controller")

Key = tuple[str, str]


def finished_at(job: Job) -> datetime | None:
    """When the Job finished (Complete or Failed), or ``None`` while it has not."""
    status = job.status
    if status is None:
        return None
    for condition in status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            when = (
                status.completion_time if condition.type == "Complete" else None
            ) or condition.last_transition_time
            return parse_time(when) if when else None
    return None


class CleanupController:
    """Deletes Jobs ``ttl`` seconds after they finished.

    Args:
        kube: the client.
        ttl: seconds a finished Job is kept.
        namespace / all_namespaces: the scope (default: the client's namespace).
        label_selector: only Jobs it selects (str or mapping).
        dry_run: log what would be deleted, delete nothing (a server-side dry run).
        clock: seconds since the epoch (``time.time``); replaceable in tests.

    Attributes:
        deleted: ``(namespace, name)`` of every Job it deleted, in order.
    """

    def __init__(
        self,
        kube: kubeasync.Client,
        *,
        ttl: float,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: object = None,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0:
            raise ValueError(f"ttl must be a number of seconds >= 0, got {ttl!r}")
        self.kube = kube
        self.ttl = float(ttl)
        self.dry_run = dry_run
        self.clock = clock
        # Jobs change often while they run; only their metadata and status matter here,
        # and managedFields are the largest part of a Job nobody here reads.
        self.jobs = kube.jobs.informer(
            namespace=namespace,
            all_namespaces=all_namespaces,
            label_selector=label_selector,
            transform=kubeasync.drop_managed_fields,
        )
        self.due: dict[Key, float] = {}  # Job -> when it may be deleted (epoch seconds)
        self.deleted: list[Key] = []

    async def run(self) -> None:
        """Run until cancelled (or until the informer fails: its error is raised)."""
        async with self.jobs:
            await self.jobs.wait_synced()
            log.info("watching %d jobs; finished ones go after %.0f s", len(self.jobs), self.ttl)
            while True:
                try:
                    await self._follow(self.jobs.changes())
                    return  # the informer was stopped
                except kubeasync.ChangesLagged:
                    # The next changes() replays the store: every Job is looked at again.
                    log.warning("fell behind the job informer; resyncing from its store")
                    self.due.clear()

    async def _follow(self, changes: kubeasync.ChangeStream[Job]) -> None:
        async with changes:
            next_change = asyncio.ensure_future(changes.__anext__())
            try:
                while True:
                    wait = max(0.0, min(self.due.values()) - self.clock()) if self.due else None
                    done, _ = await asyncio.wait({next_change}, timeout=wait)
                    if done:
                        try:
                            change = next_change.result()
                        except StopAsyncIteration:
                            return
                        self._observe(change)
                        next_change = asyncio.ensure_future(changes.__anext__())
                    for key in [k for k, when in self.due.items() if when <= self.clock()]:
                        await self._clean_up(key)
            finally:
                next_change.cancel()

    def _observe(self, change: kubeasync.Change[Job]) -> None:
        """Note when a Job may go; the decision itself is made in _clean_up."""
        finished = finished_at(change.object) if change.type != "deleted" else None
        if finished is None:
            self.due.pop(change.key, None)
        else:
            self.due[change.key] = finished.timestamp() + self.ttl

    async def _clean_up(self, key: Key) -> None:
        del self.due[key]
        namespace, name = key
        job = self.jobs.get(name, namespace=namespace)  # the current state, not the change's
        finished = finished_at(job) if job is not None else None
        if job is None or job.metadata is None or finished is None:
            return
        if finished.timestamp() + self.ttl > self.clock():
            self.due[key] = finished.timestamp() + self.ttl
            return
        try:
            await self.kube.jobs.delete(
                name,
                namespace=namespace,
                propagation_policy="Background",  # its pods go too
                preconditions={"uid": job.metadata.uid or ""},
                dry_run=self.dry_run,
            )
        except (kubeasync.NotFound, kubeasync.Conflict):
            return  # already gone, or a new Job under the same name: not ours to delete
        self.deleted.append(key)
        log.info("%sdeleted job %s/%s (finished %s)",
                 "(dry run) " if self.dry_run else "", namespace, name, finished.isoformat())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttl", type=float, default=3600.0,
                        help="seconds a finished Job is kept (default 3600)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", help="default: the context's namespace")
    scope.add_argument("--all-namespaces", "-A", action="store_true")
    parser.add_argument("--selector", "-l", help="a label selector, e.g. team=data")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    parser.add_argument("--context", help="the kubeconfig context")
    parser.add_argument("--dry-run", action="store_true", help="delete nothing")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = (
        kubeasync.ClusterConfig.from_kubeconfig(args.kubeconfig, context=args.context)
        if args.kubeconfig else None
    )
    context = None if config is not None else args.context
    async with kubeasync.Client(config, context=context) as kube:
        controller = CleanupController(
            kube,
            ttl=args.ttl,
            namespace=args.namespace,
            all_namespaces=args.all_namespaces,
            label_selector=args.selector,
            dry_run=args.dry_run,
        )
        await controller.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
