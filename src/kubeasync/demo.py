"""``python -m kubeasync demo``: a tour of kubeasync in about ten seconds.

With no arguments it starts the embedded API server (with its simulated node) in this
process; with ``--kubeconfig`` it runs against a real cluster. In a scratch namespace it
creates a Job, Pods, a Service and a PVC while watch loops print a live table of events,
streams a pod's logs, lists with selectors and pagination, deletes with DeleteOptions and
a delete collection, prints a summary, cleans up and exits 0.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .api.client import Client
from .config import ClusterConfig
from .core.descriptor import ResourceDescriptor
from .core.errors import ApiError
from .core.objects import accessor_of
from .models import Status

__all__ = ["DemoReport", "run_demo"]

LOG_LINES = ["loading 3 reports", "report 1/3 done", "report 2/3 done", "report 3/3 done"]
WAIT_FOR_POD = 20.0


@dataclass
class DemoReport:
    """What the demo did, for its summary (and for tests)."""

    namespace: str = ""
    events: collections.Counter[str] = field(default_factory=collections.Counter)
    log_lines: list[str] = field(default_factory=list)
    listed: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)


def _names(items: list[Any] | None) -> list[str]:
    return [accessor_of(item).key(item)[1] for item in items or []]


class _Table:
    """Prints rows as they happen, with the seconds since the demo began."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"\n== {text}", file=self.out, flush=True)

    def row(self, *cells: str) -> None:
        elapsed = f"{time.monotonic() - self.started:6.2f}s"
        widths = (10, 4, 22, 10, 8)
        text = "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))
        print(f"  {elapsed}  {text}".rstrip(), file=self.out, flush=True)


def _pod(name: str, labels: dict[str, str], *, restart: str = "Always",
         log: list[str] | None = None, command: list[str] | None = None) -> dict[str, Any]:
    annotations = {"kubeasync.testing/log": "\n".join(log)} if log else {}
    container: dict[str, Any] = {"name": "app", "image": "busybox:1.36"}
    if command:
        container["command"] = command
    return {
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                 "containers": [container]},
    }


async def _watch_into_table(
    kube: Client, descriptor: ResourceDescriptor[Any, Any], namespace: str,
    table: _Table, report: DemoReport,
) -> None:
    api = kube.resource(descriptor)
    async for event in api.watch(namespace=namespace, timeout_seconds=30):
        obj = event.object
        phase = ""
        status = getattr(obj, "status", None)
        if descriptor.kind == "Pod" and status is not None:
            phase = status.phase or ""
        elif descriptor.kind == "Job" and status is not None:
            phase = "Complete" if status.succeeded else ("Active" if status.active else "")
        report.events[event.type] += 1
        table.row(event.type, descriptor.kind, obj.metadata.name or "", phase,
                  obj.metadata.resource_version or "")


async def _wait_for_pod(kube: Client, namespace: str, selector: dict[str, str],
                        phases: set[str]) -> Any | None:
    deadline = time.monotonic() + WAIT_FOR_POD
    while time.monotonic() < deadline:
        pods = await kube.pods.list(namespace=namespace, label_selector=selector)
        for pod in pods.items or []:
            if pod.status is not None and pod.status.phase in phases:
                return pod
        await asyncio.sleep(0.1)
    return None


async def run_demo(kube: Client, *, out: TextIO = sys.stdout,
                   append_log: Callable[[str, str, str, str], None] | None = None,
                   namespace: str | None = None) -> DemoReport:
    """Run the tour on a connected client; returns what it did.

    ``append_log`` (the embedded server's) lets the demo show log lines arriving while it
    follows a pod's log; on a real cluster the container writes them itself.
    """
    report = DemoReport(namespace=namespace or f"kubeasync-demo-{secrets.token_hex(3)}")
    ns = report.namespace
    table = _Table(out)
    watchers: list[asyncio.Task[None]] = []

    table.say(f"namespace {ns}")
    await kube.namespaces.create({"metadata": {"name": ns}})
    try:
        table.say("watching pods and jobs (live table of events)")
        print("  " + "  ".join(["  time ", "EVENT".ljust(10), "KIND", "NAME".ljust(22),
                                 "STATUS".ljust(10), "RV"]), file=out)
        for descriptor in (kube.pods.descriptor, kube.jobs.descriptor):
            watchers.append(asyncio.create_task(
                _watch_into_table(kube, descriptor, ns, table, report)))
        await asyncio.sleep(0.3)

        report.steps.append("create")
        job_command = ["sh", "-c", "for r in 1 2 3; do echo report $r/3 done; sleep 1; done"]
        await kube.jobs.create({
            "metadata": {"name": "reports", "labels": {"app": "reports"}},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": {"app": "reports"},
                             "annotations": {"kubeasync.testing/run-seconds": "1.5"}},
                "spec": {"restartPolicy": "Never", "containers": [
                    {"name": "app", "image": "busybox:1.36", "command": job_command}]},
            }},
        }, namespace=ns)
        for index, tier in enumerate(["front", "front", "back"]):
            await kube.pods.create(_pod(f"web-{index}", {"app": "web", "tier": tier}),
                                   namespace=ns)
        await kube.services.create({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }, namespace=ns)
        await kube.persistent_volume_claims.create({
            "metadata": {"name": "reports-data", "labels": {"app": "reports"}},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
        }, namespace=ns)
        table.say("created Job reports, Pods web-0..2, Service web, PVC reports-data")

        report.steps.append("logs")
        table.say("following the job's pod log")
        job_pod = await _wait_for_pod(kube, ns, {"job-name": "reports"},
                                      {"Running", "Succeeded", "Failed"})
        if job_pod is None:
            print("  the job's pod did not start (no node in this cluster?): no logs",
                  file=out)
        else:
            name = job_pod.metadata.name
            writer = (asyncio.create_task(_write_lines(append_log, ns, name))
                      if append_log is not None else None)
            with contextlib.suppress(ApiError, asyncio.TimeoutError):
                await asyncio.wait_for(_follow_log(kube, ns, name, report, out), 6)
            if writer is not None:
                await writer

        report.steps.append("list")
        table.say("listing with selectors and pagination")
        front = await kube.pods.list(namespace=ns, label_selector={"app": "web", "tier": "front"})
        report.listed["app=web,tier=front"] = _names(front.items)
        print(f"  app=web,tier=front     -> {report.listed['app=web,tier=front']}", file=out)
        pages: list[list[str]] = []
        token: str | None = None
        while True:
            page = await kube.pods.list(namespace=ns, label_selector="app=web", limit=2,
                                        continue_=token)
            pages.append(_names(page.items))
            token = page.metadata.continue_ if page.metadata is not None else None
            if not token:
                break
        report.listed["pages of 2"] = [n for p in pages for n in p]
        print(f"  app=web, limit=2       -> pages {pages}", file=out)
        running = await kube.pods.list(namespace=ns, field_selector={"status.phase": "Running"})
        report.listed["status.phase=Running"] = _names(running.items)
        print(f"  status.phase=Running   -> {report.listed['status.phase=Running']}", file=out)

        report.steps.append("delete")
        table.say("deleting with DeleteOptions, then a delete collection")
        web0 = await kube.pods.get("web-0", namespace=ns)
        uid = web0.metadata.uid if web0.metadata is not None else None
        await kube.pods.delete("web-0", namespace=ns, grace_period_seconds=0,
                               preconditions={"uid": uid or ""})
        report.deleted.append("pod/web-0")
        answer = await kube.jobs.delete("reports", namespace=ns, propagation_policy="Background")
        report.deleted.append("job/reports")
        if isinstance(answer, Status):
            print(f"  job/reports: server answered Status {answer.status}", file=out)
        gone = await kube.pods.delete_collection(namespace=ns, label_selector={"app": "web"},
                                                 grace_period_seconds=0)
        if not isinstance(gone, Status):
            report.deleted += [f"pod/{n}" for n in _names(gone.items)]
        services = await kube.services.delete_collection(namespace=ns,
                                                         label_selector={"app": "web"})
        if not isinstance(services, Status):
            report.deleted += [f"service/{n}" for n in _names(services.items)]
        await kube.persistent_volume_claims.delete("reports-data", namespace=ns)
        report.deleted.append("persistentvolumeclaim/reports-data")
        print(f"  deleted: {', '.join(report.deleted)}", file=out)
        await asyncio.sleep(0.5)  # let the watch loops print the deletions
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        with contextlib.suppress(ApiError):
            await kube.namespaces.delete(ns)

    table.say("summary")
    events = ", ".join(f"{n} {t}" for t, n in sorted(report.events.items()))
    print(f"  watch events: {events}", file=out)
    print(f"  log lines followed: {len(report.log_lines)}", file=out)
    print(f"  objects deleted: {len(report.deleted)}; namespace {ns} removed", file=out)
    print(f"  done in {time.monotonic() - table.started:.1f}s", file=out, flush=True)
    return report


async def _follow_log(kube: Client, namespace: str, pod: str, report: DemoReport,
                      out: TextIO) -> None:
    async for line in kube.pods.stream_logs(pod, namespace=namespace, follow=True):
        report.log_lines.append(line)
        print(f"  {pod} | {line}", file=out, flush=True)


async def _write_lines(append_log: Callable[[str, str, str, str], None], namespace: str,
                       pod: str) -> None:
    for line in LOG_LINES:
        await asyncio.sleep(0.25)
        append_log(namespace, pod, "app", line)


async def demo_main(kubeconfig: str | None = None, context: str | None = None,
                    out: TextIO = sys.stdout) -> DemoReport:
    """The ``demo`` command: the embedded server unless a kubeconfig is given."""
    if kubeconfig is not None:
        config = ClusterConfig.from_kubeconfig(kubeconfig, context=context)
        print(f"kubeasync demo against {config.server}", file=out)
        async with Client(config) as kube:
            return await run_demo(kube, out=out)

    from .testing import FakeApiServer, Timings

    timings = Timings(schedule=0.1, start=0.3, run=1.5, terminate=0.2)
    async with FakeApiServer(simulate=True, timings=timings) as server:
        print(f"kubeasync demo on the embedded API server at {server.url}", file=out)
        async with Client(server.config()) as kube:
            return await run_demo(kube, out=out, append_log=server.append_log)
