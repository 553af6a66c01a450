"""The example controller (examples/cleanup_controller.py) against the embedded API
server with its simulated job controller and kubelet: imported, and run as a script."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from examples.cleanup_controller import CleanupController, parse_args
from kubeasync.testing import ANNOTATION_EXIT_CODE, ANNOTATION_RUN_SECONDS, FakeApiServer
from kubeasync.transport.policy import NO_RETRY

CHECKOUT = Path(__file__).resolve().parent.parent
EXAMPLE = CHECKOUT / "examples" / "cleanup_controller.py"

pytestmark = pytest.mark.fake_apiserver(simulate=True)


@pytest_asyncio.fixture
async def kube(fake_apiserver: FakeApiServer) -> AsyncIterator[kubeasync.Client]:
    async with kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY) as client:
        yield client


def job(name: str, *, run_seconds: float | None = None, exit_code: int = 0,
        **labels: str) -> dict[str, Any]:
    annotations = {ANNOTATION_EXIT_CODE: str(exit_code)}
    if run_seconds is not None:
        annotations[ANNOTATION_RUN_SECONDS] = str(run_seconds)
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "app", "image": "busybox"}]},
            },
        },
    }


def jobs_on(server: FakeApiServer) -> set[str]:
    return {obj["metadata"]["name"] for obj in server.list_objects("jobs.batch", "default")}


def job_pods_on(server: FakeApiServer, job_name: str) -> list[str]:
    return [p["metadata"]["name"] for p in server.list_objects("pods", "default")
            if (p["metadata"].get("labels") or {}).get("job-name") == job_name]


def finished(server: FakeApiServer, name: str) -> bool:
    obj = server.get_object("jobs.batch", name)
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


async def eventually(check: Callable[[], bool], what: str) -> None:
    # Generous: the script test starts a Python process, slow on a loaded 2-core machine.
    for _ in range(3000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def run_until(controller: CleanupController, check: Callable[[], bool], what: str) -> None:
    task = asyncio.create_task(controller.run())
    try:
        await eventually(lambda: check() or task.done(), what)
        if task.done():
            task.result()  # raise what stopped it
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_finished_jobs_are_deleted_after_the_ttl_and_running_ones_are_kept(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.jobs.create(job("done-before"))  # finished before the controller starts
    await eventually(lambda: finished(fake_apiserver, "done-before"), "done-before finishes")
    await kube.jobs.create(job("long", run_seconds=60))

    # A long TTL: the finished Job is scheduled, not deleted.
    patient = CleanupController(kube, ttl=3600, namespace="default")
    await run_until(patient, lambda: ("default", "done-before") in patient.due,
                    "the finished job is scheduled")
    assert patient.deleted == [] and "done-before" in jobs_on(fake_apiserver)

    controller = CleanupController(kube, ttl=0.2, namespace="default")
    task = asyncio.create_task(controller.run())
    try:
        await kube.jobs.create(job("quick"))
        await kube.jobs.create(job("failing", exit_code=1))
        await eventually(lambda: jobs_on(fake_apiserver) == {"long"}, "finished jobs deleted")
        # The server forgets a Job before the controller has read the answer to its delete.
        await eventually(lambda: len(controller.deleted) == 3, "the controller saw its deletes")
        assert not task.done()
        # Background propagation: the finished Jobs' pods are garbage-collected too.
        await eventually(lambda: not job_pods_on(fake_apiserver, "quick"), "quick's pods go")
        assert job_pods_on(fake_apiserver, "long")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sorted(controller.deleted) == [
        ("default", "done-before"), ("default", "failing"), ("default", "quick")
    ]
    assert not finished(fake_apiserver, "long")


async def test_a_dry_run_and_a_label_selector(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.jobs.create(job("mine", team="data"))
    await kube.jobs.create(job("theirs", team="web"))
    await eventually(lambda: finished(fake_apiserver, "mine") and finished(fake_apiserver, "theirs"),
                     "both finish")
    controller = CleanupController(kube, ttl=0, namespace="default",
                                   label_selector={"team": "data"}, dry_run=True)
    await run_until(controller, lambda: bool(controller.deleted), "a (dry) deletion")
    assert controller.deleted == [("default", "mine")]
    assert jobs_on(fake_apiserver) == {"mine", "theirs"}


async def test_it_runs_as_a_script_against_a_kubeconfig(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer, tmp_path: Path
) -> None:
    kubeconfig = fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    await kube.jobs.create(job("scripted"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "--kubeconfig", str(kubeconfig), "--ttl", "0",
        "--namespace", "default",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ,  # this checkout's kubeasync
             "PYTHONPATH": os.pathsep.join([str(CHECKOUT / "src"), str(CHECKOUT)])},
    )
    try:
        await eventually(lambda: "scripted" not in jobs_on(fake_apiserver) or
                         process.returncode is not None, "the script deletes the job")
    finally:
        if process.returncode is None:
            process.terminate()
        output, _ = await process.communicate()
    assert "deleted job default/scripted" in output.decode(), output.decode()


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--namespace", "a", "--all-namespaces"])
    assert parse_args(["-A", "--ttl", "5", "-l", "team=data"]).all_namespaces


async def test_a_negative_ttl_is_refused(kube: kubeasync.Client) -> None:
    with pytest.raises(ValueError, match="ttl"):
        CleanupController(kube, ttl=-1)
