"""The runnable examples in examples/, each against the embedded API server.

(The cleanup controller has its own file: tests/test_informer_cleanup_controller.py.)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn

import kubeasync
from examples.fastapi_informer import create_app
from examples.job_runner import job_manifest, run_job
from examples.watch_checkpoint import follow, load_checkpoint
from examples.website_controller import CRD, WEBSITES
from kubeasync.testing import ANNOTATION_EXIT_CODE, ANNOTATION_LOG, FakeApiServer, Timings
from tests.helpers.waiting import eventually

CHECKOUT = Path(__file__).resolve().parent.parent


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}


# ------------------------------------------------------------------ watch_checkpoint


async def test_watch_checkpoint_resumes_after_the_last_handled_event(
    kube: kubeasync.Client, tmp_path: Path
) -> None:
    state = tmp_path / "pods.checkpoint"
    for name in ("a", "b"):
        await kube.pods.create(pod(name))

    first: list[tuple[str, str]] = []
    checkpoint = await follow(kube, namespace="default", state=state, stop_after=2,
                              handle=lambda e: first.append((e.type, e.object.metadata.name)))
    assert first == [("ADDED", "a"), ("ADDED", "b")]
    assert checkpoint is not None and load_checkpoint(state) == checkpoint

    # changes while the loop is not running
    await kube.pods.create(pod("c"))
    await kube.pods.patch("a", {"metadata": {"labels": {"seen": "later"}}})
    await kube.pods.delete("b", grace_period_seconds=0)

    second: list[tuple[str, str]] = []
    await follow(kube, namespace="default", state=state, stop_after=3,
                 handle=lambda e: second.append((e.type, e.object.metadata.name)))
    # exactly the changes made after the checkpoint, in order: nothing replayed
    assert second == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert load_checkpoint(state) != checkpoint


async def test_watch_checkpoint_runs_as_a_script(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client, tmp_path: Path
) -> None:
    await kube.pods.create(pod("web-0"))
    kubeconfig = fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECKOUT / "examples" / "watch_checkpoint.py"),
        "--kubeconfig", str(kubeconfig), "--state", str(tmp_path / "rv"),
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        # the event is printed first, then the checkpoint is saved
        for _ in range(500):
            if (tmp_path / "rv").exists():
                break
            await asyncio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()
    assert line.decode().split()[:2] == ["ADDED", "web-0"]
    assert (tmp_path / "rv").read_text()


# ------------------------------------------------------------------ job_runner


def with_log(job: dict[str, Any], lines: list[str], exit_code: int = 0) -> dict[str, Any]:
    job["spec"]["template"]["metadata"] = {"annotations": {
        ANNOTATION_LOG: "\n".join(lines), ANNOTATION_EXIT_CODE: str(exit_code)}}
    return job


@pytest.mark.fake_apiserver(simulate=True)
async def test_job_runner_streams_the_log_and_reports_success(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    printed: list[str] = []
    job = with_log(job_manifest("busybox", ["echo", "hi"]), ["hello", "done"])
    result = await run_job(kube, job, print_line=printed.append)
    assert result.succeeded
    assert result.name.startswith("run-") and result.pod is not None
    assert [line for line in printed if line in ("hello", "done")] == ["hello", "done"]
    assert printed == result.log
    # the Job and, through the propagation policy, its pod are gone
    for _ in range(100):
        if not fake_apiserver.list_objects("pods", "default"):
            break
        await asyncio.sleep(0.02)
    assert fake_apiserver.list_objects("jobs.batch", "default") == []
    assert fake_apiserver.list_objects("pods", "default") == []


@pytest.mark.fake_apiserver(simulate=True)
async def test_job_runner_reports_a_failed_job(kube: kubeasync.Client) -> None:
    job = with_log(job_manifest("busybox", ["false"]), ["about to fail"], exit_code=3)
    result = await run_job(kube, job, print_line=lambda line: None, keep=True)
    assert not result.succeeded
    assert "about to fail" in result.log
    assert (await kube.jobs.get(result.name)).metadata is not None  # --keep kept it


@pytest.mark.fake_apiserver(simulate=True)
async def test_job_runner_runs_as_a_script(
    fake_apiserver: FakeApiServer, tmp_path: Path
) -> None:
    kubeconfig = fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECKOUT / "examples" / "job_runner.py"),
        "--kubeconfig", str(kubeconfig), "--", "echo", "hello",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "Started container main" in out.decode()
    assert "succeeded" in err.decode()


# ------------------------------------------------------------------ fastapi_informer


async def test_fastapi_service_answers_from_the_informer(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.namespaces.create({"metadata": {"name": "shop"}})
    await kube.pods.create(pod("web-0", app="web"), namespace="shop")
    await kube.pods.create(pod("db-0", app="db"))

    config = uvicorn.Config(create_app(fake_apiserver.config()), host="127.0.0.1", port=0,
                            lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn stopped while starting"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as answer:
                assert answer.status == 200 and (await answer.json())["pods"] == 2
            async with http.get(f"{base}/pods", params={"selector": "app=web"}) as answer:
                assert [p["name"] for p in await answer.json()] == ["web-0"]
            async with http.get(f"{base}/pods/shop/web-0") as answer:
                body = await answer.json()
                assert body["metadata"]["name"] == "web-0" and "managedFields" not in body
            async with http.get(f"{base}/pods/shop/nope") as answer:
                assert answer.status == 404
            async with http.get(f"{base}/pods", params={"selector": "app in (web"}) as answer:
                assert answer.status == 400

            # a change on the server shows up in the service's answers
            await kube.pods.create(pod("web-1", app="web"), namespace="shop")
            for _ in range(200):
                async with http.get(f"{base}/pods", params={"selector": "app=web"}) as answer:
                    names = [p["name"] for p in await answer.json()]
                if names == ["web-0", "web-1"]:
                    break
                await asyncio.sleep(0.01)
            assert names == ["web-0", "web-1"]
    finally:
        server.should_exit = True
        await serving


# ------------------------------------------------------------------ the workload examples
# On the embedded server's default table: apps/v1 with its controllers, CRDs served when
# created, the simulated node running the pods.

FAST = Timings(schedule=0.01, start=0.02, run=0.05, terminate=0.02)


async def run_example(script: str, *args: str, timeout: float = 90) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECKOUT / "examples" / script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_apply_manifest_runs_as_a_script_until_its_deployment_is_available(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client, tmp_path: Path
) -> None:
    kubeconfig = fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    code, out, err = await run_example(
        "apply_manifest.py", str(CHECKOUT / "examples" / "manifests" / "web.yaml"),
        "--kubeconfig", str(kubeconfig), "--field-manager", "demo", "--timeout", "60")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "applied 4 objects"
    assert lines[-1] == "deployment web-demo/web: available (2/2)"
    web = await kube.deployments.get("web", namespace="web-demo")
    assert web.status is not None and web.status.available_replicas == 2
    pods = (await kube.pods.list(namespace="web-demo")).items
    assert len(pods) == 2 and all(p.status is not None and p.status.phase == "Running"
                                  for p in pods)


async def exists(api: Any, name: str, namespace: str | None) -> None:
    async def found() -> bool:
        try:
            await api.get(name, namespace=namespace)
        except kubeasync.NotFound:
            return False
        return True

    await eventually(found, f"{name} exists", 60)


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_website_controller_runs_as_a_script_installing_its_crd(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client, tmp_path: Path
) -> None:
    kubeconfig = fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECKOUT / "examples" / "website_controller.py"),
        "--kubeconfig", str(kubeconfig), "--namespace", "default", "--workers", "2",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        name = CRD["metadata"]["name"]
        # The server did not have it: the example installs it and waits until Established.
        await exists(kube.custom_resource_definitions, name, None)
        await kube.custom_resource_definitions.wait_for(
            name, kubeasync.conditions.crd_established, timeout=60)
        sites = kube.resource(WEBSITES)
        await sites.create({"metadata": {"name": "blog"},
                            "spec": {"image": "nginx:1.25", "replicas": 2}},
                           namespace="default")
        # The server's controllers make the Deployment available; the example reports it.
        await exists(kube.deployments, "blog", "default")
        deployment = await kube.deployments.wait_for(
            "blog", kubeasync.conditions.deployment_available, namespace="default",
            timeout=60)
        site = await sites.wait_for(
            "blog", lambda s: s.status is not None and s.status.available_replicas == 2,
            namespace="default", timeout=60)
        assert site.status.observed_generation == site.metadata.generation
        assert [(c.type, c.status) for c in site.status.conditions] == [("Available", "True")]
        [owner] = deployment.metadata.owner_references or []
        assert (owner.kind, owner.uid) == ("Website", site.metadata.uid)

        await sites.delete("blog", namespace="default")
        await sites.wait_for("blog", kubeasync.conditions.deleted, namespace="default",
                             timeout=60)

        async def gone() -> bool:
            return not ((await kube.deployments.list(namespace="default")).items
                        or (await kube.replica_sets.list(namespace="default")).items
                        or (await kube.pods.list(namespace="default")).items)

        await eventually(gone, "the Website's Deployment, ReplicaSet and pods gone", 60)
    finally:
        if process.returncode is None:
            process.terminate()
        _, err = await process.communicate()
    assert "installed the CRD websites.demo.kubeasync.io" in err.decode()


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_exec_and_forward_runs_as_a_script(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client, tmp_path: Path
) -> None:
    kubeconfig = fake_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    code, out, err = await run_example(
        "exec_and_forward.py", "--kubeconfig", str(kubeconfig), "-n", "default",
        "--deployment", "web", "--create", "--port", "80", "--", "sh", "-c",
        "hostname; exit 2")
    assert code == 2, err  # the command's exit code
    pod = out.strip()
    assert pod.startswith("web-")  # the hostname of a pod of the Deployment
    assert f"{pod}: sh -c hostname; exit 2 exited with 2" in err
    # the simulated node's echo server answers the forwarded port with the request itself
    assert f"{pod}:80 answered: GET / HTTP/1.0" in err
    # --create deleted the Deployment at the end (in the foreground: its pods first)
    assert not (await kube.deployments.list(namespace="default")).items
