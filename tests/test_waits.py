"""``api.wait_for(name, condition)`` against the embedded API server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kubeasync
from kubeasync import NotFound, WaitTimeout, conditions
from kubeasync.testing import ANNOTATION_EXIT_CODE, ANNOTATION_RUN_SECONDS, FakeApiServer


def pod(name: str, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": annotations},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "app", "image": "busybox"}]}}


def watches(server: FakeApiServer) -> list[str]:
    """The watches of the test's namespace (the virtual kubelet watches its node's pods
    across namespaces)."""
    return [path for method, path in server.requests
            if "watch=" in path and "/namespaces/default/" in path]


def gets(server: FakeApiServer, name: str) -> list[str]:
    return [path for method, path in server.requests
            if method == "GET" and path.split("?")[0].endswith(f"/{name}")]


@pytest.mark.fake_apiserver(simulate=True)
async def test_named_conditions_on_a_simulated_pod_and_job(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.pods.create(pod("web", **{ANNOTATION_RUN_SECONDS: "30"}))
    running = await kube.pods.wait_for("web", conditions.pod_running, timeout=30)
    assert running.status is not None and running.status.phase == "Running"
    ready = await kube.pods.wait_for("web", conditions.pod_ready, timeout=30)
    assert conditions.condition_status(ready, "Ready") == "True"
    # one GET each, then one watch of that pod alone: no polling
    assert len(gets(fake_apiserver, "web")) == 2
    assert watches(fake_apiserver)
    assert all("fieldSelector=metadata.name%3Dweb" in w for w in watches(fake_apiserver))

    await kube.jobs.create({
        "metadata": {"name": "nightly"},
        "spec": {"template": {
            "metadata": {"annotations": {ANNOTATION_EXIT_CODE: "1"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "busybox"}]}},
            "backoffLimit": 0}})
    job = await kube.jobs.wait_for("nightly", conditions.job_finished, timeout=30)
    assert conditions.job_failed(job) and not conditions.job_complete(job)


async def test_a_change_between_the_get_and_the_watch_is_not_missed(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.config_maps.create({"metadata": {"name": "c"}, "data": {"step": "0"}})
    # The watch request is held back; meanwhile the object reaches the state waited for
    # (and leaves it again). A watch from "now" would miss it; one from the GET's
    # resourceVersion delivers it.
    fake_apiserver.faults.delay_next(seconds=0.5, method="GET", path=r"/configmaps$")

    async def change() -> None:
        await asyncio.sleep(0.2)
        await kube.config_maps.patch("c", {"data": {"step": "1"}})
        await kube.config_maps.patch("c", {"data": {"step": "2"}})

    changing = asyncio.ensure_future(change())
    found = await kube.config_maps.wait_for(
        "c", lambda cm: (cm.data or {}).get("step") == "1", timeout=10)
    await changing
    assert found.data == {"step": "1"}  # the state that satisfied it, not the latest


async def test_deleted_meanwhile_raises_not_found(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.config_maps.create({"metadata": {"name": "c"}})

    async def delete_soon() -> None:
        await asyncio.sleep(0.1)
        await kube.config_maps.delete("c")

    deleting = asyncio.ensure_future(delete_soon())
    with pytest.raises(NotFound, match="was deleted while waiting"):
        await kube.config_maps.wait_for("c", lambda cm: False, timeout=10)
    await deleting
    with pytest.raises(NotFound, match="not found"):
        await kube.config_maps.wait_for("c", lambda cm: True, timeout=10)


async def test_deleted_and_recreated_under_the_same_name_is_deleted(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.config_maps.create({"metadata": {"name": "c"}})
    # The history is compacted while the object is replaced: the watch meets 410 and the
    # object is read again; its uid differs, so the one waited for was deleted.
    waiting = asyncio.ensure_future(
        kube.config_maps.wait_for("c", lambda cm: (cm.data or {}).get("x") == "1", timeout=10))
    await asyncio.sleep(0.2)
    await kube.config_maps.delete("c")
    await kube.config_maps.create({"metadata": {"name": "c"}, "data": {"x": "1"}})
    fake_apiserver.compact()
    fake_apiserver.end_watches()
    with pytest.raises(NotFound):
        await waiting


async def test_the_deleted_condition(fake_apiserver: FakeApiServer, kube: kubeasync.Client) -> None:
    assert await kube.config_maps.wait_for("never", conditions.deleted, timeout=5) is None
    await kube.config_maps.create({"metadata": {"name": "c"}, "data": {"a": "1"}})

    async def delete_soon() -> None:
        await asyncio.sleep(0.1)
        await kube.config_maps.delete("c")

    deleting = asyncio.ensure_future(delete_soon())
    last = await kube.config_maps.wait_for("c", conditions.deleted, timeout=10)
    await deleting
    assert last is not None and last.data == {"a": "1"}  # its final state


async def test_a_timeout_names_the_last_state_seen(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.pods.create(pod("stuck"))  # no simulated node: Pending forever
    await kube.pods.patch_status("stuck", {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}})
    with pytest.raises(WaitTimeout) as caught:
        await kube.pods.wait_for("stuck", conditions.pod_ready, timeout=0.5)
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, asyncio.TimeoutError)
    message = str(error)
    assert "Pod default/stuck to be pod Ready" in message
    assert "PodScheduled=False (Unschedulable)" in message and "resourceVersion=" in message
    assert error.last is not None and error.last.metadata.name == "stuck"


async def test_expired_versions_and_cut_streams_are_survived(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.config_maps.create({"metadata": {"name": "c"}, "data": {"n": "0"}})
    waiting = asyncio.ensure_future(
        kube.config_maps.wait_for("c", lambda cm: (cm.data or {}).get("n") == "3", timeout=20))
    await asyncio.sleep(0.2)
    await kube.config_maps.patch("c", {"data": {"n": "1"}})
    fake_apiserver.end_watches()  # cut: resumed from the last version
    await asyncio.sleep(0.2)
    fake_apiserver.faults.fail_next(2, status=503, path=r"/configmaps$")
    await kube.config_maps.patch("c", {"data": {"n": "2"}})
    fake_apiserver.end_watches()
    await asyncio.sleep(0.5)
    # expired while away: the next watch answers 410, the object is read again
    await kube.config_maps.patch("c", {"data": {"n": "3"}})
    fake_apiserver.compact()
    fake_apiserver.end_watches()
    found = await waiting
    assert found.data == {"n": "3"}
    assert len(gets(fake_apiserver, "c")) == 2  # the first read, and the one after the 410


async def test_bad_arguments(kube: kubeasync.Client) -> None:
    with pytest.raises(ValueError, match="name"):
        await kube.pods.wait_for("a/b", conditions.pod_ready)
    with pytest.raises(ValueError, match="condition must be"):
        await kube.pods.wait_for("a", "Ready")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="timeout"):
        await kube.pods.wait_for("a", conditions.pod_ready, timeout=-1)


def test_conditions_read_dicts_and_models_alike() -> None:
    from kubeasync.models.apps_v1 import Deployment

    available = {"metadata": {"generation": 3},
                 "status": {"observedGeneration": 3,
                            "conditions": [{"type": "Available", "status": "True"}]}}
    assert conditions.deployment_available(available)  # type: ignore[arg-type]
    stale = {**available, "status": {**available["status"], "observedGeneration": 2}}
    assert not conditions.deployment_available(stale)  # type: ignore[arg-type]
    import msgspec

    model = msgspec.convert(available, Deployment)
    assert conditions.deployment_available(model)
    crd = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    assert conditions.crd_established(crd)  # type: ignore[arg-type]
    assert repr(conditions.pod_ready) == "<Condition pod Ready>"
