"""Run a command as a Kubernetes Job, stream its pod's log, and exit with its result.

    python examples/job_runner.py --image busybox -- sh -c 'echo hello; sleep 1; echo done'

It creates a Job (with a generated name), waits for the Job's pod with a watch, follows
the pod's log line by line while it runs, then waits for the Job to complete or fail and
deletes it (and its pod) unless ``--keep`` is given. The exit status is 0 when the Job
succeeded and 1 when it failed.

Import it to run it elsewhere (its test runs it against the embedded API server):

    result = await run_job(kube, job, print_line=print)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kubeasync
from kubeasync.models import Job, Pod


@dataclass
class JobResult:
    name: str
    succeeded: bool
    pod: str | None = None
    log: list[str] = field(default_factory=list)


def job_manifest(image: str, command: list[str], *, name_prefix: str = "run-") -> dict[str, Any]:
    return {
        "metadata": {"generateName": name_prefix},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": image, "command": command}],
            }},
        },
    }


def _job_finished(job: Job) -> bool | None:
    """True when the Job completed, False when it failed, None while it runs."""
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.status == "True" and condition.type == "Complete":
            return True
        if condition.status == "True" and condition.type == "Failed":
            return False
    return None


async def _wait_for_pod(kube: kubeasync.Client, namespace: str, job_name: str) -> Pod:
    """The Job's pod, once it runs (or already finished): its log exists from then on."""
    async with kube.pods.watch(namespace=namespace,
                               label_selector={"job-name": job_name}) as pods:
        async for event in pods:
            status = event.object.status
            if event.type != "DELETED" and status is not None and status.phase in (
                "Running", "Succeeded", "Failed"
            ):
                return event.object
    raise RuntimeError(f"the watch on job {job_name}'s pods ended")


async def _wait_for_job(kube: kubeasync.Client, namespace: str, name: str) -> bool:
    async with kube.jobs.watch(namespace=namespace,
                               field_selector={"metadata.name": name}) as jobs:
        async for event in jobs:
            if event.type == "DELETED":
                raise RuntimeError(f"job {name} was deleted before it finished")
            finished = _job_finished(event.object)
            if finished is not None:
                return finished
    raise RuntimeError(f"the watch on job {name} ended")


async def run_job(
    kube: kubeasync.Client,
    job: dict[str, Any],
    *,
    namespace: str | None = None,
    print_line: Callable[[str], Any] = print,
    keep: bool = False,
) -> JobResult:
    created = await kube.jobs.create(job, namespace=namespace)
    if created.metadata is None or not created.metadata.name:
        raise RuntimeError("the server answered the create without a name")
    name = created.metadata.name
    ns = created.metadata.namespace or kube.namespace
    result = JobResult(name=name, succeeded=False)
    try:
        pod = await _wait_for_pod(kube, ns, name)
        result.pod = pod.metadata.name if pod.metadata else None
        if result.pod is not None:
            async for line in kube.pods.stream_logs(result.pod, namespace=ns, follow=True):
                result.log.append(line)
                print_line(line)
        result.succeeded = await _wait_for_job(kube, ns, name)
    finally:
        if not keep:
            await kube.jobs.delete(name, namespace=ns, propagation_policy="Background")
    return result


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="busybox:1.36")
    parser.add_argument("--namespace", "-n", help="default: the context's namespace")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    parser.add_argument("--keep", action="store_true", help="do not delete the Job afterwards")
    parser.add_argument("command", nargs="+", help="the command to run (after --)")
    args = parser.parse_args(argv)
    config = kubeasync.ClusterConfig.from_kubeconfig(args.kubeconfig) if args.kubeconfig else None
    async with kubeasync.Client(config) as kube:
        result = await run_job(kube, job_manifest(args.image, args.command),
                               namespace=args.namespace, keep=args.keep)
    print(f"job {result.name}: {'succeeded' if result.succeeded else 'failed'}",
          file=sys.stderr)
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
