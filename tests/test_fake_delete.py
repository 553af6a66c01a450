"""Deletion: options, preconditions, answers per kind, finalizers, graceful pods,
collections, garbage collection by propagation policy, namespace termination."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import kubeasync
from kubeasync.models import Status

NS = "/api/v1/namespaces/default"
PODS = f"{NS}/pods"
CMS = f"{NS}/configmaps"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


def pod(name: str, labels: dict[str, str] | None = None, node: str | None = None,
        **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels or {}, **meta}, "spec": spec}


def job(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "a", "image": "i"}]}}}}


async def eventually(check: Callable[[], Any], timeout: float = 2.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_answers_per_kind(api):
    await api("POST", PODS, pod("p"))
    status, body = await api("DELETE", f"{PODS}/p")
    assert status == 200 and body["kind"] == "Pod"  # pods answer with the object
    assert body["metadata"]["deletionGracePeriodSeconds"] == 0
    _, cm = await api("POST", CMS, {"metadata": {"name": "c"}})
    status, body = await api("DELETE", f"{CMS}/c")
    assert status == 200
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": "c", "kind": "configmaps", "uid": cm["metadata"]["uid"]}}
    await api("POST", f"{NS}/services", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    status, body = await api("DELETE", f"{NS}/services/s")
    assert body["kind"] == "Status" and body["details"]["kind"] == "services"
    _, j = await api("POST", JOBS, job("j"))
    status, body = await api("DELETE", f"{JOBS}/j", {"propagationPolicy": "Background"})
    assert body["kind"] == "Status"
    assert body["details"] == {"name": "j", "group": "batch", "kind": "jobs",
                               "uid": j["metadata"]["uid"]}
    status, body = await api("DELETE", f"{PODS}/p")
    assert status == 404 and body["message"] == 'pods "p" not found'


async def test_pvc_protection_finalizer(api):
    claim = {"metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    _, created = await api("POST", f"{NS}/persistentvolumeclaims", claim)
    assert created["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert created["status"] == {"phase": "Pending"}
    status, body = await api("DELETE", f"{NS}/persistentvolumeclaims/data")
    assert status == 200 and body["kind"] == "PersistentVolumeClaim"
    assert body["metadata"]["deletionTimestamp"]
    await eventually(lambda: _gone(api, f"{NS}/persistentvolumeclaims/data"))


async def _gone(api, path: str) -> bool:
    return (await api("GET", path))[0] == 404


async def test_options_in_body_or_query(api, fake_apiserver):
    for i in range(2):
        await api("POST", PODS, pod(f"g{i}", node="node-1"))
    # a pod on a node is deleted gracefully: it stays, Terminating, for its grace period
    status, body = await api("DELETE", f"{PODS}/g0", {"gracePeriodSeconds": 45})
    assert body["metadata"]["deletionGracePeriodSeconds"] == 45
    assert (await api("GET", f"{PODS}/g0"))[0] == 200
    status, body = await api("DELETE", f"{PODS}/g1?gracePeriodSeconds=20")
    assert body["metadata"]["deletionGracePeriodSeconds"] == 20
    # a zero grace period removes it at once, also while already terminating
    status, body = await api("DELETE", f"{PODS}/g1?gracePeriodSeconds=0")
    assert status == 200
    assert await _gone(api, f"{PODS}/g1")


async def test_preconditions(api):
    _, created = await api("POST", CMS, {"metadata": {"name": "c"}})
    uid, rv = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    status, body = await api("DELETE", f"{CMS}/c", {"preconditions": {"uid": "other"}})
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "c": the UID in the precondition (other)'
        f" does not match the UID in record ({uid}). The object might have been deleted and"
        " then recreated")
    assert body["details"] == {"name": "c", "kind": "ConfigMap"}
    status, body = await api("DELETE", f"{CMS}/c", {"preconditions": {"resourceVersion": "1"}})
    assert status == 409
    assert body["message"].endswith(f"does not match the ResourceVersion in record ({rv})."
                                    " The object might have been modified")
    status, body = await api("DELETE", f"{CMS}/c",
                             {"preconditions": {"uid": uid, "resourceVersion": rv}})
    assert status == 200 and body["status"] == "Success"


async def test_delete_collection(api):
    for i, app in enumerate(["web", "web", "db"]):
        await api("POST", PODS, pod(f"p{i}", {"app": app}))
    status, body = await api("DELETE", f"{PODS}?labelSelector=app%3Dweb")
    assert status == 200 and body["kind"] == "PodList"
    assert [i["metadata"]["name"] for i in body["items"]] == ["p0", "p1"]
    _, left = await api("GET", PODS)
    assert [i["metadata"]["name"] for i in left["items"]] == ["p2"]
    for path in (f"{NS}/services", "/api/v1/namespaces"):
        status, body = await api("DELETE", path)
        assert status == 405 and body["reason"] == "MethodNotAllowed"
        assert body["message"] == "the server does not allow this method on the requested resource"


async def test_job_default_orphans_its_pods(api):
    _, j = await api("POST", JOBS, job("batch"))
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "batch",
             "uid": j["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    await api("POST", PODS, pod("batch-abcde", ownerReferences=[owner]))
    status, body = await api("DELETE", f"{JOBS}/batch")
    assert status == 200 and body["kind"] == "Job"
    assert body["metadata"]["finalizers"] == ["orphan"]
    await eventually(lambda: _gone(api, f"{JOBS}/batch"))
    status, orphan = await api("GET", f"{PODS}/batch-abcde")
    assert status == 200 and "ownerReferences" not in orphan["metadata"]


@pytest.mark.parametrize("policy", ["Background", "Foreground"])
async def test_job_pods_collected(api, policy):
    _, j = await api("POST", JOBS, job("batch"))
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "batch",
             "uid": j["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    for i in range(2):
        await api("POST", PODS, pod(f"batch-{i}", ownerReferences=[owner]))
    await api("POST", PODS, pod("unrelated"))
    _, body = await api("DELETE", f"{JOBS}/batch?propagationPolicy={policy}")
    if policy == "Foreground":
        assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
    await eventually(lambda: _gone(api, f"{JOBS}/batch"))
    await eventually(lambda: _gone(api, f"{PODS}/batch-1"))
    _, left = await api("GET", PODS)
    assert [i["metadata"]["name"] for i in left["items"]] == ["unrelated"]


async def test_system_namespaces_cannot_be_deleted(api):
    status, body = await api("DELETE", "/api/v1/namespaces/default")
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == 'namespaces "default" is forbidden: this namespace may not be deleted'


async def test_namespace_termination(api):
    await api("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
    await api("POST", "/api/v1/namespaces/team/pods", pod("p"))
    await api("POST", "/api/v1/namespaces/team/configmaps", {"metadata": {"name": "c"}})
    response, lines = await api.stream("/api/v1/namespaces?watch=1&fieldSelector=metadata.name%3Dteam")
    async with response:
        await lines.events(1)
        status, body = await api("DELETE", "/api/v1/namespaces/team")
        assert status == 200 and body["status"]["phase"] == "Terminating"
        events = await lines.events(3)
    assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["spec"] == {"finalizers": []}
    _, pods = await api("GET", "/api/v1/namespaces/team/pods")
    assert pods["items"] == []


async def test_client_delete(kube):
    await kube.config_maps.create({"metadata": {"name": "a", "labels": {"x": "1"}}},
                                  namespace="default")
    answer = await kube.config_maps.delete("a", namespace="default")
    assert isinstance(answer, Status) and answer.status == "Success"
    created = await kube.pods.create(pod("p"), namespace="default")
    with pytest.raises(kubeasync.Conflict):
        await kube.pods.delete("p", namespace="default", preconditions={"uid": "nope"})
    deleted = await kube.pods.delete("p", namespace="default", grace_period_seconds=0,
                                     preconditions={"uid": created.metadata.uid})
    assert deleted.metadata.uid == created.metadata.uid
    for name in ("s1", "s2"):
        await kube.services.create({"metadata": {"name": name, "labels": {"tmp": "1"}},
                                    "spec": {"ports": [{"port": 80}]}}, namespace="default")
    removed = await kube.services.delete_collection(namespace="default", label_selector="tmp=1")
    assert sorted(s.metadata.name for s in removed.items) == ["s1", "s2"]
    for i in range(3):
        await kube.pods.create(pod(f"q{i}", {"tmp": "1"}), namespace="default")
    removed = await kube.pods.delete_collection(namespace="default", label_selector="tmp=1")
    assert [p.metadata.name for p in removed.items] == ["q0", "q1", "q2"]
    assert (await kube.pods.list(namespace="default")).items == []


async def test_delete_options_are_validated_before_the_object_is_read(api):
    jobs = "/apis/batch/v1/namespaces/default/jobs"
    for path in (f"{jobs}/missing?propagationPolicy=Sideways",
                 f"{jobs}?labelSelector=none&propagationPolicy=Sideways"):
        status, body = await api("DELETE", path)
        assert status == 422, (path, body)
        assert body["details"]["causes"][0]["field"] == "propagationPolicy"


async def test_delete_collection_answers_the_items_as_listed(api):
    pods = "/api/v1/namespaces/default/pods"
    await api("POST", pods, {"metadata": {"name": "p", "labels": {"tmp": "1"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    status, body = await api("DELETE", f"{pods}?labelSelector=tmp%3D1")
    assert status == 200 and [i["metadata"]["name"] for i in body["items"]] == ["p"]
    # A real server returns the list it took before deleting: no deletion marks.
    assert "deletionTimestamp" not in body["items"][0]["metadata"]


async def test_a_deleted_namespace_has_no_grace_period(api):
    await api("POST", "/api/v1/namespaces", {"metadata": {"name": "going"}})
    status, body = await api("DELETE", "/api/v1/namespaces/going")
    assert status == 200 and body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]
    assert "deletionGracePeriodSeconds" not in body["metadata"]
