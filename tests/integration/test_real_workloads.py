"""A Deployment's rollout on a REAL kube-apiserver 1.20 (its kube-controller-manager,
kube-scheduler and a VirtualKubelet running the pods) beside the same rollout on the
embedded server, compared: the names, labels and annotations the controllers write,
the status after the rollout and its conditions, and the bounds of a rolling update.

The scheduler and the node come from ``test_real_kubelet.py`` (see its docstring for
what the real server needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import kubeasync
from kubeasync import custom_resource
from kubeasync.kinds import (
    APPS_V1_CONTROLLER_REVISIONS,
    APPS_V1_DEPLOYMENTS,
    APPS_V1_REPLICA_SETS,
    APPS_V1_STATEFUL_SETS,
)
from kubeasync.testing import SERVED_RESOURCES, FakeApiServer
from tests.helpers.fidelity import shape
from tests.helpers.waiting import eventually
from tests.integration.test_real_kubelet import TIMINGS, Node, kube_scheduler, node

__all__ = ["kube_scheduler", "node"]  # the fixtures this module uses

DEPLOYMENTS = custom_resource(group="apps", version="v1", kind="Deployment",
                              plural="deployments", subresources=("status", "scale"))
REPLICA_SETS = custom_resource(group="apps", version="v1", kind="ReplicaSet",
                               plural="replicasets", subresources=("status", "scale"))
PODS = custom_resource(group="", version="v1", kind="Pod", plural="pods",
                       subresources=("status",))
REPLICAS = 3
SURGE, UNAVAILABLE = 1, 1
WAIT = 90.0


def _deployment(pod_spec: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": "roll"}
    return {"metadata": {"name": "roll"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxSurge": SURGE, "maxUnavailable": UNAVAILABLE}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}],
                                           "terminationGracePeriodSeconds": 1, **pod_spec}}}}


def _ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or [])


def _live(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (
        pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


@contextlib.asynccontextmanager
async def _bounded(kube: kubeasync.Client, namespace: str,
                   check: Callable[[dict[str, dict[str, Any]]], None]) -> AsyncIterator[None]:
    pods_api = kube.resource(PODS)
    listed = await pods_api.list(namespace=namespace)
    pods = {p["metadata"]["name"]: p for p in listed["items"]}
    failures: list[BaseException] = []

    async def run() -> None:
        async for event in pods_api.watch(namespace=namespace, resource_version=listed[
                "metadata"]["resourceVersion"]):
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = event.object
            try:
                check(pods)
            except AssertionError as error:
                failures.append(error)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert failures == [], failures[0]


def _bounds(pods: dict[str, dict[str, Any]]) -> None:
    live = sum(1 for p in pods.values() if _live(p))
    ready = sum(1 for p in pods.values() if _ready(p))
    assert live <= REPLICAS + SURGE, f"{live} pods"
    assert ready >= REPLICAS - UNAVAILABLE, f"{ready} ready pods"


async def _rollout(kube: kubeasync.Client, namespace: str,
                   pod_spec: dict[str, Any]) -> dict[str, Any]:
    """Create, roll out, change the template, roll out again; what the controllers wrote."""
    deployments = kube.resource(DEPLOYMENTS)

    async def complete(generation: int) -> Any:
        d = await deployments.get("roll", namespace=namespace)
        status = d.get("status") or {}
        reasons = {c["type"]: c["reason"] for c in status.get("conditions") or []}
        done = (status.get("observedGeneration") == generation
                and status.get("updatedReplicas") == REPLICAS
                and status.get("replicas") == REPLICAS
                and status.get("availableReplicas") == REPLICAS
                and reasons.get("Progressing") == "NewReplicaSetAvailable")
        return d if done else None

    await deployments.create(_deployment(pod_spec), namespace=namespace)
    first = await eventually(lambda: complete(1), "the first rollout", WAIT)
    async with _bounded(kube, namespace, _bounds):
        await deployments.patch("roll", {"spec": {"template": {"metadata": {
            "labels": {"version": "2"}}}}}, namespace=namespace,
            patch_type=kubeasync.PatchType.MERGE)
        second = await eventually(lambda: complete(2), "the second rollout", WAIT)

        async def only_new_pods() -> bool:
            pods = (await kube.resource(PODS).list(namespace=namespace))["items"]
            return len(pods) == REPLICAS and all(
                p["metadata"]["labels"].get("version") == "2" and _ready(p) for p in pods)

        await eventually(only_new_pods, "only the new pods left", WAIT)
    sets = (await kube.resource(REPLICA_SETS).list(namespace=namespace))["items"]
    pods = (await kube.resource(PODS).list(namespace=namespace))["items"]
    await deployments.delete("roll", namespace=namespace, propagation_policy="Foreground")
    return {"first": first, "second": second, "sets": sets, "pods": pods}


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the servers."""
    second = result["second"]
    status = second["status"]
    sets = sorted(result["sets"], key=lambda rs: rs["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"])
    hash_pattern = "[bcdfghjklmnpqrstvwxz2456789]{6,10}"
    return {
        "first conditions": [[c["type"], c["status"], c["reason"]]
                             for c in result["first"]["status"]["conditions"]],
        "conditions": [[c["type"], c["status"], c["reason"]] for c in status["conditions"]],
        "status shape": sorted(shape(status)),
        "counts": {k: v for k, v in status.items() if k.endswith("eplicas")},
        "revision": second["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "replica sets": [
            (bool(re.fullmatch(rf"roll-{hash_pattern}", rs["metadata"]["name"])),
             rs["metadata"]["labels"]["pod-template-hash"] == rs["metadata"]["name"][5:],
             rs["spec"]["replicas"], rs["metadata"]["annotations"],
             [(r["kind"], r["controller"], r["blockOwnerDeletion"])
              for r in rs["metadata"]["ownerReferences"]],
             sorted(shape(rs["status"])))
            for rs in sets],
        "pods": sorted(
            (bool(re.fullmatch(rf"roll-{hash_pattern}-[a-z0-9]{{5}}", p["metadata"]["name"])),
             sorted(p["metadata"]["labels"]),
             [(r["kind"], r["controller"], r["blockOwnerDeletion"])
              for r in p["metadata"]["ownerReferences"]])
            for p in result["pods"]),
    }


async def test_a_rolling_update_on_the_real_server_and_the_fake_agree(node: Node) -> None:
    real = _summary(await _rollout(node.kube, node.namespace,
                                   {"nodeSelector": node.selector}))
    async with FakeApiServer(simulate=True, timings=TIMINGS, resources=(
            *SERVED_RESOURCES, APPS_V1_DEPLOYMENTS, APPS_V1_REPLICA_SETS)) as server, \
            kubeasync.Client(server.config()) as kube:
        fake = _summary(await _rollout(kube, "default", {}))
        assert server.errors == []
    assert real["revision"] == "2"
    assert real["conditions"] == [["Available", "True", "MinimumReplicasAvailable"],
                                  ["Progressing", "True", "NewReplicaSetAvailable"]]
    assert [rs[2] for rs in real["replica sets"]] == [0, REPLICAS]
    assert fake == real


# ------------------------------------------------------------------ StatefulSets

STATEFUL_SETS = custom_resource(group="apps", version="v1", kind="StatefulSet",
                                plural="statefulsets", subresources=("status", "scale"))
REVISIONS = custom_resource(group="apps", version="v1", kind="ControllerRevision",
                            plural="controllerrevisions")
CLAIMS = custom_resource(group="", version="v1", kind="PersistentVolumeClaim",
                         plural="persistentvolumeclaims", subresources=("status",))
STATEFUL_RESOURCES = (*SERVED_RESOURCES, APPS_V1_STATEFUL_SETS, APPS_V1_CONTROLLER_REVISIONS)
REVISION_NAME = "[bcdfghjklmnpqrstvwxz2456789]{6,10}"


def _stateful_set(name: str, replicas: int, pod_spec: dict[str, Any],
                  **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}],
                                           "terminationGracePeriodSeconds": 1, **pod_spec}},
                     **spec}}


def _stateful_status(sts: dict[str, Any]) -> dict[str, Any]:
    status = sts["status"]
    return {"shape": sorted(shape(status)),
            "counts": {k: v for k, v in status.items() if k.endswith("eplicas")},
            "revisions named": [bool(re.fullmatch(rf"{sts['metadata']['name']}-{REVISION_NAME}",
                                                  status[k]))
                                for k in ("currentRevision", "updateRevision")],
            "current is update": status["currentRevision"] == status["updateRevision"]}


async def _stateful_rollout(kube: kubeasync.Client, namespace: str,
                            pod_spec: dict[str, Any]) -> dict[str, Any]:
    """Three ordered pods, then a template change rolled from the highest ordinal."""
    api = kube.resource(STATEFUL_SETS)
    order: list[str] = []

    def deleted_in_order(pods: dict[str, dict[str, Any]]) -> None:
        for name, pod in pods.items():
            if pod["metadata"].get("deletionTimestamp") and name not in order:
                order.append(name)

    async def settled(generation: int) -> Any:
        sts = await api.get("db", namespace=namespace)
        status = sts.get("status") or {}
        done = (status.get("observedGeneration") == generation
                and status.get("readyReplicas") == 3 and status.get("updatedReplicas") == 3
                and status.get("currentRevision") == status.get("updateRevision"))
        return sts if done else None

    await api.create(_stateful_set("db", 3, pod_spec), namespace=namespace)
    first = await eventually(lambda: settled(1), "three ready pods", WAIT)
    async with _bounded(kube, namespace, deleted_in_order):
        await api.patch("db", {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}},
                        namespace=namespace, patch_type=kubeasync.PatchType.MERGE)
        second = await eventually(lambda: settled(2), "the rolling update", WAIT)
    pods = (await kube.resource(PODS).list(namespace=namespace))["items"]
    revisions = (await kube.resource(REVISIONS).list(namespace=namespace))["items"]
    await api.delete("db", namespace=namespace)
    return {
        "first": _stateful_status(first),
        "second": _stateful_status(second),
        "changed revision": first["status"]["updateRevision"]
        != second["status"]["updateRevision"],
        "deleted in order": order,
        "pods": sorted((p["metadata"]["name"], sorted(p["metadata"]["labels"]),
                        p["metadata"]["labels"]["controller-revision-hash"]
                        == second["status"]["updateRevision"],
                        p["spec"].get("hostname"), p["spec"].get("subdomain"))
                       for p in pods),
        "revisions": sorted((r["revision"], bool(re.fullmatch(rf"db-{REVISION_NAME}",
                                                            r["metadata"]["name"])),
                             [(o["kind"], o["controller"]) for o in
                              r["metadata"]["ownerReferences"]])
                            for r in revisions),
    }


async def test_a_stateful_set_on_the_real_server_and_the_fake_agree(node: Node) -> None:
    real = await _stateful_rollout(node.kube, node.namespace, {"nodeSelector": node.selector})
    async with FakeApiServer(simulate=True, timings=TIMINGS,
                             resources=STATEFUL_RESOURCES) as server, \
            kubeasync.Client(server.config()) as kube:
        fake = await _stateful_rollout(kube, "default", {})
        assert server.errors == []
    assert real["deleted in order"] == ["db-2", "db-1", "db-0"]
    assert real["second"]["counts"] == {"replicas": 3, "readyReplicas": 3,
                                        "currentReplicas": 3, "updatedReplicas": 3}
    assert fake == real


async def _claims(kube: kubeasync.Client, namespace: str) -> dict[str, Any]:
    """Claim templates: the PVCs and the pod's volume (the pod stays Pending: no
    scheduler takes it, so ordered creation stops at the first)."""
    claim = {"metadata": {"name": "data", "labels": {"disk": "fast"}},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    api = kube.resource(STATEFUL_SETS)
    await api.create(_stateful_set("vol", 2, {"schedulerName": "nobody"},
                                   volumeClaimTemplates=[claim]), namespace=namespace)

    async def observed() -> Any:
        sts = await api.get("vol", namespace=namespace)
        status = sts.get("status") or {}
        return sts if status.get("observedGeneration") == 1 and status.get("replicas") else None

    sts = await eventually(observed, "the first pod", WAIT)
    claims = (await kube.resource(CLAIMS).list(namespace=namespace))["items"]
    pods = (await kube.resource(PODS).list(namespace=namespace))["items"]
    await api.delete("vol", namespace=namespace)
    return {
        "status": {k: v for k, v in sts["status"].items() if k.endswith("eplicas")},
        "claims": [(c["metadata"]["name"], c["metadata"]["labels"],
                    c["metadata"].get("ownerReferences")) for c in claims],
        "pods": [(p["metadata"]["name"],
                  [v for v in p["spec"]["volumes"] if "persistentVolumeClaim" in v])
                 for p in pods],
    }


async def test_stateful_set_claims_on_the_real_server_and_the_fake_agree(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    real = await _claims(real_kube, namespace)
    async with FakeApiServer(resources=STATEFUL_RESOURCES) as server, \
            kubeasync.Client(server.config()) as kube:
        fake = await _claims(kube, "default")
        assert server.errors == []
    assert real["claims"] == [("data-vol-0", {"app": "vol", "disk": "fast"}, None)]
    assert fake == real


async def _stuck(kube: kubeasync.Client, namespace: str) -> dict[str, Any]:
    """A rollout whose pods never run (no scheduler takes them) passes its deadline."""
    body = _deployment({"schedulerName": "nobody"})
    body["metadata"]["name"] = "stuck"
    body["spec"]["progressDeadlineSeconds"] = 2
    deployments = kube.resource(DEPLOYMENTS)
    await deployments.create(body, namespace=namespace)

    async def timed_out() -> Any:
        d = await deployments.get("stuck", namespace=namespace)
        reasons = [c["reason"] for c in (d.get("status") or {}).get("conditions") or []]
        return d if "ProgressDeadlineExceeded" in reasons else None

    d = await eventually(timed_out, "ProgressDeadlineExceeded", WAIT)
    await deployments.delete("stuck", namespace=namespace)
    status = d["status"]
    return {"conditions": [[c["type"], c["status"], c["reason"],
                            re.sub(rf"stuck-{REVISION_NAME}", "stuck-<hash>", c["message"])]
                           for c in status["conditions"]],
            "counts": {k: v for k, v in status.items() if k.endswith("eplicas")}}


async def test_a_stuck_rollout_times_out_on_the_real_server_and_the_fake_alike(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    real = await _stuck(real_kube, namespace)
    async with FakeApiServer(resources=(*SERVED_RESOURCES, APPS_V1_DEPLOYMENTS,
                                        APPS_V1_REPLICA_SETS)) as server, \
            kubeasync.Client(server.config()) as kube:
        fake = await _stuck(kube, "default")
        assert server.errors == []
    assert real["conditions"][-1] == [
        "Progressing", "False", "ProgressDeadlineExceeded",
        'ReplicaSet "stuck-<hash>" has timed out progressing.']
    assert fake == real
