"""Pod logs, and the simulated cluster: kubelet, job controller, garbage collection."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import kubeasync
from kubeasync.testing import FakeApiServer, Timings

PODS = "/api/v1/namespaces/default/pods"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
FAST = Timings(schedule=0.01, start=0.01, run=0.05, terminate=0.01)


def pod(name: str, *containers: str, restart: str = "Always", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": annotations},
            "spec": {"restartPolicy": restart,
                     "containers": [{"name": c, "image": f"{c}:1"} for c in containers or ["app"]]}}


def job(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"team": "a"}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "work", "image": "w:1"}]}},
                     **spec}}


async def eventually(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------ logs


async def test_logs_and_their_options(api, fake_apiserver):
    await api("POST", PODS, pod("p"))
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    fake_apiserver.append_log("default", "p", "app", "ancient", at=old)
    fake_apiserver.append_log("default", "p", "app", "one\ntwo")
    fake_apiserver.append_log("default", "p", "app", "three")
    status, text = await api("GET", f"{PODS}/p/log")
    assert status == 200 and text == "ancient\none\ntwo\nthree\n"
    assert (await api("GET", f"{PODS}/p/log?tailLines=2"))[1] == "two\nthree\n"
    assert (await api("GET", f"{PODS}/p/log?sinceSeconds=60"))[1] == "one\ntwo\nthree\n"
    assert (await api("GET", f"{PODS}/p/log?limitBytes=10"))[1] == "ancient\non"
    _, stamped = await api("GET", f"{PODS}/p/log?timestamps=true&tailLines=1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z three\n", stamped)
    status, body = await api("GET", f"{PODS}/p/log?previous=true")
    assert status == 400
    assert body["message"] == 'previous terminated container "app" in pod "p" not found'
    fake_apiserver.append_log("default", "p", "app", "before restart", previous=True)
    assert (await api("GET", f"{PODS}/p/log?previous=true"))[1] == "before restart\n"


async def test_log_container_selection(api, fake_apiserver):
    await api("POST", PODS, pod("multi", "app", "sidecar"))
    status, body = await api("GET", f"{PODS}/multi/log")
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ("a container name must be specified for pod multi, choose one of:"
                               " [app sidecar]")
    status, body = await api("GET", f"{PODS}/multi/log?container=nope")
    assert status == 400 and body["message"] == "container nope is not valid for pod multi"
    fake_apiserver.append_log("default", "multi", "sidecar", "from the sidecar")
    assert (await api("GET", f"{PODS}/multi/log?container=sidecar"))[1] == "from the sidecar\n"
    assert (await api("GET", f"{PODS}/nope/log"))[0] == 404


async def test_unscheduled_pod_has_no_log(api, kube):
    await api("POST", PODS, pod("pending"))
    response = await api.raw("GET", f"{PODS}/pending/log")
    async with response:
        assert response.status == 204
    assert await kube.pods.logs("pending", namespace="default") == ""


async def test_follow_streams_until_the_pod_finishes(api, fake_apiserver):
    await api("POST", PODS, pod("f"))
    fake_apiserver.append_log("default", "f", "app", "first")
    response, lines = await api.stream(f"{PODS}/f/log?follow=true")
    async with response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert await lines.line() == b"first"
        fake_apiserver.append_log("default", "f", "app", "second")
        assert await lines.line() == b"second"
        _, current = await api("GET", f"{PODS}/f")
        current["status"]["phase"] = "Succeeded"
        await api("PUT", f"{PODS}/f/status", current)
        assert await lines.line() is None  # the stream ends with the pod


async def test_follow_ends_when_the_client_leaves(api, fake_apiserver):
    await api("POST", PODS, pod("g"))
    fake_apiserver.append_log("default", "g", "app", "x")
    response, lines = await api.stream(f"{PODS}/g/log?follow=true")
    assert await lines.line() == b"x"
    response.close()
    await asyncio.sleep(0.05)
    fake_apiserver.append_log("default", "g", "app", "nobody reads this")  # must not fail


async def test_client_logs(kube, fake_apiserver):
    await kube.pods.create(pod("c", "app", "side"), namespace="default")
    fake_apiserver.append_log("default", "c", "side", "a\nb\nc")
    assert await kube.pods.logs("c", namespace="default", container="side", tail_lines=2) == "b\nc\n"
    with pytest.raises(kubeasync.BadRequest):
        await kube.pods.logs("c", namespace="default")


# ------------------------------------------------------------------ simulation


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_kubelet_runs_pods(api):
    response, lines = await api.stream(f"{PODS}?watch=1")
    async with response:
        await api("POST", PODS, pod("batch", restart="Never"))
        phases = []
        while "Succeeded" not in phases:
            event = await lines.event()
            phases.append(event["object"]["status"]["phase"])
        final = event["object"]
    assert phases[0] == "Pending" and "Running" in phases
    assert final["spec"]["nodeName"] == "fake-node"
    assert final["status"]["podIP"].startswith("10.244.")
    statuses = final["status"]["containerStatuses"]
    assert statuses[0]["state"]["terminated"]["exitCode"] == 0
    conditions = {c["type"]: c["status"] for c in final["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True" and conditions["Ready"] == "False"
    _, text = await api("GET", f"{PODS}/batch/log")
    assert text.splitlines() == ["Started container app (image app:1)",
                                 "Container app exited with code 0"]


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_servers_keep_running_and_delete_gracefully(api):
    await api("POST", PODS, pod("server", **{"kubeasync.testing/log": "listening on :80"}))
    await eventually(lambda: _phase(api, "server", "Running"))
    assert (await api("GET", f"{PODS}/server/log"))[1].endswith("listening on :80\n")
    response, lines = await api.stream(f"{PODS}?watch=1&fieldSelector=metadata.name%3Dserver")
    async with response:
        await lines.events(1)
        _, body = await api("DELETE", f"{PODS}/server")
        assert body["metadata"]["deletionGracePeriodSeconds"] == 30
        events = await lines.events(2)
    assert events[0]["type"] == "MODIFIED" and events[0]["object"]["metadata"]["deletionTimestamp"]
    assert events[1]["type"] == "DELETED"


async def _phase(api, name: str, phase: str) -> bool:
    _, body = await api("GET", f"{PODS}/{name}")
    return body.get("status", {}).get("phase") == phase


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_failed_pod(api):
    await api("POST", PODS, pod("bad", restart="Never", **{"kubeasync.testing/exit-code": "3"}))
    await eventually(lambda: _phase(api, "bad", "Failed"))


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_job_controller(api):
    _, created = await api("POST", JOBS, job("work", completions=2))
    uid = created["metadata"]["uid"]

    async def complete() -> dict[str, Any] | None:
        _, j = await api("GET", f"{JOBS}/work")
        return j if j["status"].get("succeeded") == 2 else None

    done = await eventually(complete)
    assert done["status"]["conditions"][0]["type"] == "Complete"
    assert done["status"]["conditions"][0]["status"] == "True"
    assert done["status"]["completionTime"] and done["status"]["startTime"]
    assert "active" not in done["status"]
    _, pods = await api("GET", f"{PODS}?labelSelector=job-name%3Dwork")
    assert len(pods["items"]) == 2
    for p in pods["items"]:
        assert p["metadata"]["name"].startswith("work-")
        assert p["metadata"]["labels"] == {"controller-uid": uid, "job-name": "work", "team": "a"}
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Job", "work", uid, True)
        assert p["status"]["phase"] == "Succeeded"


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_job_backoff_limit(api):
    failing = job("fails", backoffLimit=1)
    failing["spec"]["template"]["metadata"]["annotations"] = {"kubeasync.testing/exit-code": "1"}
    await api("POST", JOBS, failing)

    async def failed() -> dict[str, Any] | None:
        _, j = await api("GET", f"{JOBS}/fails")
        conditions = j["status"].get("conditions") or []
        return j if conditions and conditions[0]["type"] == "Failed" else None

    done = await eventually(failed)
    assert done["status"]["failed"] == 2
    assert done["status"]["conditions"][0]["reason"] == "BackoffLimitExceeded"


@pytest.mark.parametrize(("policy", "pods_left"), [("Background", 0), ("Foreground", 0),
                                                   ("Orphan", 1)])
async def test_job_deletion_by_policy(policy, pods_left):
    async with FakeApiServer(simulate=True, timings=FAST) as server, \
            kubeasync.Client(server.config()) as kube:
        await kube.jobs.create(job("gc"), namespace="default")

        async def finished() -> bool:
            current = await kube.jobs.get("gc", namespace="default")
            return bool(current.status.succeeded)

        await eventually(finished)
        await kube.jobs.delete("gc", namespace="default", propagation_policy=policy)

        async def settled() -> bool:
            jobs = await kube.jobs.list(namespace="default")
            pods = await kube.pods.list(namespace="default")
            return not jobs.items and len(pods.items) == pods_left

        await eventually(settled)
        if pods_left:
            orphan = (await kube.pods.list(namespace="default")).items[0]
            assert orphan.metadata.owner_references is None
        assert server.control_plane.errors == []


async def test_since_time(api, fake_apiserver):
    await api("POST", PODS, pod("s"))
    fake_apiserver.append_log("default", "s", "app", "old",
                              at=datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc))
    fake_apiserver.append_log("default", "s", "app", "new")
    _, text = await api("GET", f"{PODS}/s/log?sinceTime=2024-05-01T10:00:00.5Z")
    assert text == "new\n"
    status, _ = await api("GET", f"{PODS}/s/log?sinceTime=yesterday")
    assert status == 400
