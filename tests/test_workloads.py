"""The workload controllers of the embedded API server, over real sockets.

Deployments, ReplicaSets and StatefulSets on a server whose simulated node runs the pods
(they become Running and Ready), observed through the public API and watches. The
server serves its default table (apps/v1 is in it, so its controllers run).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import kubeasync
from examples.website_controller import WEBSITES, WebsiteController
from kubeasync import conditions
from kubeasync.kinds import APPS_V1_DEPLOYMENTS, SEED_RESOURCES
from kubeasync.models import Pod
from kubeasync.testing import SERVED_RESOURCES, FakeApiServer, Timings
from kubeasync.testing._workloads import pod_template_hash, scaled_value
from tests.helpers.waiting import eventually

FAST = Timings(schedule=0.01, start=0.02, run=0.05, terminate=0.02)
workloads = pytest.mark.fake_apiserver(simulate=True, timings=FAST)
NS = "default"
WAIT = 30.0


def template(app: str, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": image}],
                     "terminationGracePeriodSeconds": 1, **spec}}


def deployment(name: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name), **spec}}


def stateful_set(name: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": {"app": name}},
                     "template": template(name), **spec}}


def ready(pod: Pod) -> bool:
    return (pod.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True"
                    for c in (pod.status.conditions if pod.status else None) or []))


def live(pod: Pod) -> bool:
    return (pod.metadata.deletion_timestamp is None
            and (pod.status.phase if pod.status else None) not in ("Succeeded", "Failed"))


@contextlib.asynccontextmanager
async def watching_pods(kube: kubeasync.Client, check: Callable[[dict[str, Pod]], None],
                        label_selector: str | None = None) -> AsyncIterator[dict[str, Pod]]:
    """The namespace's pods now, kept current by a watch; after every change, ``check``
    the whole picture."""
    listed = await kube.pods.list(namespace=NS, label_selector=label_selector)
    pods: dict[str, Pod] = {str(p.metadata.name): p for p in listed.items}
    check(pods)

    async def run() -> None:
        async for event in kube.pods.watch(namespace=NS, label_selector=label_selector,
                                           resource_version=listed.metadata.resource_version):
            name = event.object.metadata.name
            assert name is not None
            if event.type == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = event.object
            check(pods)

    task = asyncio.create_task(run())
    try:
        yield pods
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def rolled_out(kube: kubeasync.Client, name: str, replicas: int) -> Any:
    """The Deployment once its rollout is complete (all pods updated and available)."""
    async def complete() -> Any:
        d = await kube.deployments.get(name, namespace=NS)
        status = d.status
        done = (status is not None and status.observed_generation == d.metadata.generation
                and (status.updated_replicas or 0) == replicas
                and (status.replicas or 0) == replicas
                and (status.available_replicas or 0) == replicas
                and any(c.type == "Progressing" and c.reason == "NewReplicaSetAvailable"
                        for c in status.conditions or []))
        return d if done else None

    return await eventually(complete, f"deployment {name} rolled out", WAIT)


def test_percentages_round_as_kube() -> None:
    assert scaled_value("25%", 3, round_up=True) == 1
    assert scaled_value("25%", 3, round_up=False) == 0
    assert scaled_value("50%", 3, round_up=True) == 2
    assert scaled_value("50%", 3, round_up=False) == 1
    assert scaled_value(2, 3, round_up=False) == 2


def test_pod_template_hash_is_stable_and_kube_shaped() -> None:
    one = pod_template_hash(template("web"))
    assert one == pod_template_hash(template("web"))
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{6,10}", one)
    assert one != pod_template_hash(template("web", image="nginx:1.26"))
    assert one != pod_template_hash(template("web"), collision_count=1)
    labelled = template("web")
    labelled["metadata"]["labels"]["pod-template-hash"] = one
    assert pod_template_hash(labelled) == one  # the label is not part of what is hashed


# ------------------------------------------------------------------ Deployments

@workloads
async def test_deployment_rolls_out_to_available(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.deployments.create(deployment("web"), namespace=NS)
    available = await kube.deployments.wait_for("web", conditions.deployment_available,
                                                namespace=NS, timeout=WAIT)
    assert available.status is not None
    done = await rolled_out(kube, "web", 3)
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    status = done.status
    assert (status.replicas, status.updated_replicas, status.ready_replicas,
            status.available_replicas, status.unavailable_replicas) == (3, 3, 3, 3, None)
    by_type = {c.type: c for c in status.conditions}
    assert [c.type for c in status.conditions] == ["Available", "Progressing"]
    assert (by_type["Available"].status, by_type["Available"].reason) == (
        "True", "MinimumReplicasAvailable")
    assert by_type["Available"].message == "Deployment has minimum availability."

    sets = (await kube.replica_sets.list(namespace=NS)).items
    assert len(sets) == 1
    rs = sets[0]
    # The hash is of the template as stored: with the server's defaults filled in.
    stored = fake_apiserver.get_object(APPS_V1_DEPLOYMENTS, "web")
    assert stored is not None and stored["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    template_hash = pod_template_hash(stored["spec"]["template"])
    assert template_hash != pod_template_hash(deployment("web")["spec"]["template"])
    assert rs.metadata.name == f"web-{template_hash}"
    assert by_type["Progressing"].message == f'ReplicaSet "{rs.metadata.name}" has successfully progressed.'
    assert rs.metadata.labels == {"app": "web", "pod-template-hash": template_hash}
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": template_hash}
    assert rs.metadata.annotations == {"deployment.kubernetes.io/desired-replicas": "3",
                                       "deployment.kubernetes.io/max-replicas": "4",
                                       "deployment.kubernetes.io/revision": "1"}
    ref = rs.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == (
        "Deployment", "web", done.metadata.uid, True, True)
    assert (rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas,
            rs.status.fully_labeled_replicas, rs.status.observed_generation) == (3, 3, 3, 3, 1)

    pods = (await kube.pods.list(namespace=NS)).items
    assert len(pods) == 3
    for pod in pods:
        assert re.fullmatch(rf"{rs.metadata.name}-[a-z0-9]{{5}}", pod.metadata.name)
        assert pod.metadata.labels == {"app": "web", "pod-template-hash": template_hash}
        assert pod.metadata.owner_references[0].uid == rs.metadata.uid
        assert pod.metadata.owner_references[0].controller is True
        assert pod.status.phase == "Running"


@workloads
@pytest.mark.parametrize(("max_surge", "max_unavailable", "surge", "unavailable"), [
    (1, 1, 1, 1),
    ("50%", "50%", 2, 1),  # of 3: surge rounds 1.5 up, unavailability rounds it down
    (0, "34%", 0, 1),
    ("34%", 0, 2, 0),
])
async def test_template_change_rolls_within_surge_and_unavailability(
    kube: kubeasync.Client, max_surge: Any, max_unavailable: Any, surge: int, unavailable: int
) -> None:
    replicas = 3
    body = deployment("web", replicas, strategy={
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}})
    await kube.deployments.create(body, namespace=NS)
    first = await rolled_out(kube, "web", replicas)
    old_hash = (await kube.replica_sets.list(namespace=NS)).items[0].metadata.labels[
        "pod-template-hash"]
    seen: dict[str, int] = {"max_live": 0, "min_ready": replicas}

    def check(pods: dict[str, Pod]) -> None:
        running = sum(1 for p in pods.values() if live(p))
        available = sum(1 for p in pods.values() if ready(p))
        seen["max_live"] = max(seen["max_live"], running)
        seen["min_ready"] = min(seen["min_ready"], available)
        assert running <= replicas + surge, f"{running} pods: more than {replicas}+{surge}"
        assert available >= replicas - unavailable, (
            f"{available} ready pods: fewer than {replicas}-{unavailable}")

    async with watching_pods(kube, check) as pods:
        assert sum(1 for p in pods.values() if ready(p)) == replicas
        await kube.deployments.patch("web", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "nginx:1.26"}]}}}}, namespace=NS,
            patch_type=kubeasync.PatchType.MERGE)
        done = await rolled_out(kube, "web", replicas)

        def settled() -> bool:
            return len(pods) == replicas and all(ready(p) for p in pods.values())

        await eventually(settled, "only the new pods left", WAIT)
    assert done.metadata.generation == first.metadata.generation + 1
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert seen["max_live"] == replicas + surge
    assert seen["min_ready"] == replicas - unavailable
    sets = {rs.metadata.labels["pod-template-hash"]: rs
            for rs in (await kube.replica_sets.list(namespace=NS)).items}
    assert len(sets) == 2
    old = sets.pop(old_hash)
    (new,) = sets.values()
    assert old.spec.replicas == 0 and new.spec.replicas == replicas
    assert old.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert new.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    for pod in pods.values():
        assert pod.metadata.labels["pod-template-hash"] == new.metadata.labels["pod-template-hash"]
        assert pod.spec.containers[0].image == "nginx:1.26"


@workloads
async def test_scale_up_and_down(kube: kubeasync.Client) -> None:
    await kube.deployments.create(deployment("web", 2), namespace=NS)
    await rolled_out(kube, "web", 2)
    for replicas in (5, 1, 0, 2):
        await kube.deployments.patch("web", {"spec": {"replicas": replicas}}, namespace=NS,
                                     patch_type=kubeasync.PatchType.MERGE)
        if replicas:
            await rolled_out(kube, "web", replicas)

        async def counted(n: int = replicas) -> bool:
            pods = (await kube.pods.list(namespace=NS)).items
            return sum(1 for p in pods if ready(p)) == n and len(pods) == n

        await eventually(counted, f"{replicas} pods", WAIT)
    sets = (await kube.replica_sets.list(namespace=NS)).items
    assert len(sets) == 1 and sets[0].spec.replicas == 2  # scaling makes no new revision
    assert sets[0].metadata.annotations["deployment.kubernetes.io/desired-replicas"] == "2"


@workloads
async def test_recreate_stops_every_old_pod_before_starting_new_ones(
    kube: kubeasync.Client
) -> None:
    await kube.deployments.create(deployment("web", 3, strategy={"type": "Recreate"}),
                                  namespace=NS)
    await rolled_out(kube, "web", 3)
    old_hash = (await kube.pods.list(namespace=NS)).items[0].metadata.labels["pod-template-hash"]

    def check(pods: dict[str, Pod]) -> None:
        hashes = {p.metadata.labels["pod-template-hash"] for p in pods.values()}
        assert not (old_hash in hashes and len(hashes) > 1), "old and new pods at once"

    async with watching_pods(kube, check) as pods:
        await kube.deployments.patch("web", {"spec": {"template": {"metadata": {
            "labels": {"version": "2"}}}}}, namespace=NS, patch_type=kubeasync.PatchType.MERGE)
        done = await rolled_out(kube, "web", 3)
        await eventually(lambda: len(pods) == 3 and all(ready(p) for p in pods.values()),
                         "three new pods", WAIT)
    assert all(p.metadata.labels["version"] == "2" for p in pods.values())
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    # Recreate has no surge: the ReplicaSets say so.
    new = next(rs for rs in (await kube.replica_sets.list(namespace=NS)).items
               if rs.spec.replicas)
    assert new.metadata.annotations["deployment.kubernetes.io/max-replicas"] == "3"


@workloads
async def test_revision_history_limit_deletes_the_oldest_replica_sets(
    kube: kubeasync.Client
) -> None:
    await kube.deployments.create(deployment("web", 1, revisionHistoryLimit=1), namespace=NS)
    await rolled_out(kube, "web", 1)
    for version in ("2", "3", "4"):
        await kube.deployments.patch("web", {"spec": {"template": {"metadata": {
            "labels": {"version": version}}}}}, namespace=NS,
            patch_type=kubeasync.PatchType.MERGE)
        await rolled_out(kube, "web", 1)

    async def two_left() -> list[Any] | None:
        sets = (await kube.replica_sets.list(namespace=NS)).items
        return sets if len(sets) == 2 else None

    sets = await eventually(two_left, "the history cut to one old ReplicaSet", WAIT)
    revisions = sorted(rs.metadata.annotations["deployment.kubernetes.io/revision"]
                       for rs in sets)
    assert revisions == ["3", "4"]
    d = await kube.deployments.get("web", namespace=NS)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "4"


@workloads
async def test_a_template_changed_back_reuses_its_replica_set_with_the_next_revision(
    kube: kubeasync.Client
) -> None:
    await kube.deployments.create(deployment("web", 1), namespace=NS)
    await rolled_out(kube, "web", 1)
    first = (await kube.replica_sets.list(namespace=NS)).items[0]
    for labels in ({"version": "2"}, {"version": None}):  # change, then undo
        await kube.deployments.patch("web", {"spec": {"template": {"metadata": {
            "labels": labels}}}}, namespace=NS, patch_type=kubeasync.PatchType.MERGE)
        await rolled_out(kube, "web", 1)
    sets = {rs.metadata.name: rs for rs in (await kube.replica_sets.list(namespace=NS)).items}
    assert len(sets) == 2
    again = sets[first.metadata.name]
    assert again.metadata.uid == first.metadata.uid and again.spec.replicas == 1
    assert again.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    d = await kube.deployments.get("web", namespace=NS)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


@workloads
async def test_a_rollout_without_progress_exceeds_its_deadline(kube: kubeasync.Client) -> None:
    body = deployment("stuck", 2, progressDeadlineSeconds=1)
    body["spec"]["template"]["spec"]["schedulerName"] = "nobody"  # its pods never run
    await kube.deployments.create(body, namespace=NS)

    def timed_out(d: Any) -> bool:
        return any(c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
                   for c in (d.status.conditions if d.status else None) or [])

    d = await kube.deployments.wait_for("stuck", timed_out, namespace=NS, timeout=WAIT)
    progressing = next(c for c in d.status.conditions if c.type == "Progressing")
    rs = (await kube.replica_sets.list(namespace=NS)).items[0]
    assert progressing.status == "False"
    assert progressing.message == f'ReplicaSet "{rs.metadata.name}" has timed out progressing.'
    assert (d.status.replicas, d.status.unavailable_replicas) == (2, 2)
    assert not conditions.deployment_available(d)


@workloads
async def test_a_paused_deployment_does_not_roll_until_resumed(
    kube: kubeasync.Client
) -> None:
    await kube.deployments.create(deployment("web", 2), namespace=NS)
    await rolled_out(kube, "web", 2)
    await kube.deployments.patch("web", {"spec": {"paused": True}}, namespace=NS,
                                 patch_type=kubeasync.PatchType.MERGE)

    async def paused() -> bool:
        d = await kube.deployments.get("web", namespace=NS)
        return any(c.type == "Progressing" and c.reason == "DeploymentPaused"
                   and c.status == "Unknown" for c in d.status.conditions or [])

    await eventually(paused, "Progressing=Unknown DeploymentPaused", WAIT)
    await kube.deployments.patch("web", {"spec": {"template": {"metadata": {
        "labels": {"version": "2"}}}}}, namespace=NS, patch_type=kubeasync.PatchType.MERGE)
    d = await kube.deployments.wait_for(
        "web", lambda d: d.status.observed_generation == d.metadata.generation,
        namespace=NS, timeout=WAIT)
    assert len((await kube.replica_sets.list(namespace=NS)).items) == 1
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    await kube.deployments.patch("web", {"spec": {"paused": False}}, namespace=NS,
                                 patch_type=kubeasync.PatchType.MERGE)
    done = await rolled_out(kube, "web", 2)
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "2"


# ------------------------------------------------------------------ ReplicaSets

@workloads
async def test_replica_set_alone(kube: kubeasync.Client) -> None:
    body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "front"},
            "spec": {"replicas": 2, "minReadySeconds": 2,
                     "selector": {"matchLabels": {"app": "front"}},
                     "template": template("front")}}
    rs = await kube.replica_sets.create(body, namespace=NS)
    statuses: list[tuple[int | None, int | None]] = []

    async def available() -> Any:
        async for event in kube.replica_sets.watch(namespace=NS):
            status = event.object.status
            if status is not None:
                statuses.append((status.ready_replicas, status.available_replicas))
                if status.available_replicas == 2:
                    return event.object
        return None

    current = await asyncio.wait_for(available(), WAIT)
    # Ready pods count as available only once Ready for minReadySeconds.
    assert (2, None) in statuses
    assert (current.status.replicas, current.status.ready_replicas,
            current.status.fully_labeled_replicas, current.status.observed_generation) == (
        2, 2, 2, 1)
    pods = (await kube.pods.list(namespace=NS)).items
    assert len(pods) == 2
    for pod in pods:
        assert re.fullmatch(r"front-[a-z0-9]{5}", pod.metadata.name)
        ref = pod.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller) == (
            "ReplicaSet", "front", rs.metadata.uid, True)

    # An orphan that matches the selector is adopted; the excess pod to go is the one
    # that is not scheduled, not the running ones.
    stray = {"metadata": {"name": "stray", "labels": {"app": "front"}},
             "spec": {"schedulerName": "nobody", "containers": [{"name": "app",
                                                                  "image": "nginx"}]}}
    await kube.pods.create(stray, namespace=NS)
    await kube.pods.wait_for("stray", conditions.deleted, namespace=NS, timeout=WAIT)
    left = (await kube.pods.list(namespace=NS)).items
    assert sorted(p.metadata.name for p in left) == sorted(p.metadata.name for p in pods)

    await kube.replica_sets.patch("front", {"spec": {"replicas": 0}}, namespace=NS,
                                  patch_type=kubeasync.PatchType.MERGE)
    async def none_left() -> bool:
        return not (await kube.pods.list(namespace=NS)).items

    await eventually(none_left, "every pod deleted", WAIT)
    final = await kube.replica_sets.wait_for(
        "front", lambda r: r.status.observed_generation == 2 and r.status.replicas == 0,
        namespace=NS, timeout=WAIT)
    assert final.status.ready_replicas is None


# ------------------------------------------------------------------ StatefulSets

@workloads
async def test_stateful_set_creates_in_order_with_claims_and_scales_down_from_the_top(
    kube: kubeasync.Client
) -> None:
    claim = {"metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    order: list[str] = []
    deleting: list[str] = []

    def check(pods: dict[str, Pod]) -> None:
        for name, pod in pods.items():
            if name not in order:
                ordinal = int(name.rsplit("-", 1)[1])
                for before in range(ordinal):  # every lower ordinal Running and Ready
                    lower = pods.get(f"db-{before}")
                    assert lower is not None and ready(lower) and lower.status.phase == "Running", (
                        f"{name} created before db-{before} was Running and Ready")
                order.append(name)
            if pod.metadata.deletion_timestamp is not None and name not in deleting:
                assert all(int(other.rsplit("-", 1)[1]) < int(name.rsplit("-", 1)[1])
                           or other == name for other in pods), (
                    f"{name} deleted while a higher ordinal exists")
                deleting.append(name)

    async with watching_pods(kube, check):
        await kube.stateful_sets.create(stateful_set("db", 3, volumeClaimTemplates=[claim]),
                                        namespace=NS)
        sts = await kube.stateful_sets.wait_for(
            "db", lambda s: s.status.ready_replicas == 3, namespace=NS, timeout=WAIT)
        assert order == ["db-0", "db-1", "db-2"]
        status = sts.status
        assert (status.replicas, status.current_replicas, status.updated_replicas,
                status.observed_generation) == (3, 3, 3, 1)
        assert status.current_revision == status.update_revision
        assert status.update_revision.startswith("db-")
        claims = {c.metadata.name: c for c in
                  (await kube.persistent_volume_claims.list(namespace=NS)).items}
        assert sorted(claims) == ["data-db-0", "data-db-1", "data-db-2"]
        assert claims["data-db-0"].metadata.labels == {"app": "db"}
        pod = await kube.pods.get("db-1", namespace=NS)
        assert pod.spec.hostname == "db-1" and pod.spec.subdomain == "db"
        assert pod.metadata.labels == {"app": "db", "controller-revision-hash":
                                       status.update_revision,
                                       "statefulset.kubernetes.io/pod-name": "db-1"}
        assert [(v.name, v.persistent_volume_claim.claim_name) for v in pod.spec.volumes] == [
            ("data", "data-db-1")]
        revisions = (await kube.controller_revisions.list(namespace=NS)).items
        assert [r.metadata.name for r in revisions] == [status.update_revision]

        await kube.stateful_sets.patch("db", {"spec": {"replicas": 1}}, namespace=NS,
                                       patch_type=kubeasync.PatchType.MERGE)
        await kube.stateful_sets.wait_for(
            "db", lambda s: s.status.replicas == 1 and s.status.observed_generation == 2,
            namespace=NS, timeout=WAIT)
        assert deleting == ["db-2", "db-1"]
    # The claims stay, as kube keeps them for a scale-up.
    assert len((await kube.persistent_volume_claims.list(namespace=NS)).items) == 3


@workloads
@pytest.mark.parametrize(("policy", "created"), [("OrderedReady", ["web-0"]),
                                                  ("Parallel", ["web-0", "web-1", "web-2"])])
async def test_stateful_set_pod_management_policy(
    kube: kubeasync.Client, policy: str, created: list[str]
) -> None:
    # Pods no scheduler takes stay Pending: ordered creation waits, parallel does not.
    body = stateful_set("web", 3, podManagementPolicy=policy,
                        template=template("web", schedulerName="nobody"))
    await kube.stateful_sets.create(body, namespace=NS)
    sts = await kube.stateful_sets.wait_for(
        "web", lambda s: s.status.observed_generation == 1 and s.status.replicas == len(created),
        namespace=NS, timeout=WAIT)
    names = sorted(p.metadata.name for p in (await kube.pods.list(namespace=NS)).items)
    assert names == created
    assert sts.status.ready_replicas is None


@workloads
async def test_stateful_set_rolling_update_goes_from_the_highest_ordinal(
    kube: kubeasync.Client
) -> None:
    await kube.stateful_sets.create(stateful_set("db", 3), namespace=NS)
    first = await kube.stateful_sets.wait_for(
        "db", lambda s: s.status.ready_replicas == 3, namespace=NS, timeout=WAIT)
    replaced: list[str] = []

    def check(pods: dict[str, Pod]) -> None:
        for name, pod in pods.items():
            if pod.metadata.deletion_timestamp is not None and name not in replaced:
                replaced.append(name)

    async with watching_pods(kube, check):
        await kube.stateful_sets.patch("db", {"spec": {"template": {"metadata": {
            "labels": {"version": "2"}}}}}, namespace=NS, patch_type=kubeasync.PatchType.MERGE)

        def updated(s: Any) -> bool:
            return (s.status.observed_generation == 2 and s.status.updated_replicas == 3
                    and s.status.ready_replicas == 3
                    and s.status.current_revision == s.status.update_revision)

        done = await kube.stateful_sets.wait_for("db", updated, namespace=NS, timeout=WAIT)
    assert replaced == ["db-2", "db-1", "db-0"]
    assert done.status.update_revision != first.status.update_revision
    for pod in (await kube.pods.list(namespace=NS)).items:
        assert pod.metadata.labels["controller-revision-hash"] == done.status.update_revision
        assert pod.metadata.labels["version"] == "2"


# ------------------------------------------------------------------ garbage collection

async def _deployment_with_pods(kube: kubeasync.Client) -> None:
    await kube.deployments.create(deployment("web", 2), namespace=NS)
    await rolled_out(kube, "web", 2)


@workloads
async def test_background_deletion_collects_the_replica_set_and_its_pods(
    kube: kubeasync.Client
) -> None:
    await _deployment_with_pods(kube)
    owner = await kube.deployments.get("web", namespace=NS)
    # Any kind can depend on any other: a ConfigMap owned by the Deployment goes with it.
    await kube.config_maps.create({"metadata": {"name": "settings", "ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
        "uid": owner.metadata.uid}]}, "data": {"a": "1"}}, namespace=NS)
    await kube.deployments.delete("web", namespace=NS, propagation_policy="Background")

    async def all_gone() -> bool:
        return not ((await kube.deployments.list(namespace=NS)).items
                    or (await kube.replica_sets.list(namespace=NS)).items
                    or (await kube.pods.list(namespace=NS)).items
                    or (await kube.config_maps.list(namespace=NS)).items)

    await eventually(all_gone, "deployment, replica set and pods gone", WAIT)


@workloads
async def test_foreground_deletion_keeps_the_owner_until_its_dependents_are_gone(
    kube: kubeasync.Client
) -> None:
    await _deployment_with_pods(kube)
    deleted: list[tuple[int, str, str]] = []

    async def record(api: Any, kind: str) -> None:
        async for event in api.watch(namespace=NS):
            if event.type == "DELETED":
                deleted.append((int(event.object.metadata.resource_version), kind,
                                event.object.metadata.name))

    tasks = [asyncio.create_task(record(kube.deployments, "Deployment")),
             asyncio.create_task(record(kube.replica_sets, "ReplicaSet")),
             asyncio.create_task(record(kube.pods, "Pod"))]
    try:
        await asyncio.sleep(0)  # the watches list first; nothing is deleted yet
        await eventually(lambda: all(not t.done() for t in tasks), "watches running", WAIT)
        await kube.deployments.delete("web", namespace=NS, propagation_policy="Foreground")
        held = await kube.deployments.get("web", namespace=NS)
        assert held.metadata.deletion_timestamp is not None
        assert held.metadata.finalizers == ["foregroundDeletion"]
        await kube.deployments.wait_for("web", conditions.deleted, namespace=NS, timeout=WAIT)
        await eventually(lambda: any(k == "Deployment" for _, k, _ in deleted),
                         "the deployment's DELETED", WAIT)
        await eventually(lambda: len(deleted) == 4, "four DELETED events", WAIT)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Three watches deliver independently: the deletions' order is their resourceVersions'.
    order = sorted(deleted)
    kinds = [kind for _, kind, _ in order]
    assert kinds == ["Pod", "Pod", "ReplicaSet", "Deployment"], order


@workloads
async def test_orphan_deletion_leaves_the_replica_set_and_pods(kube: kubeasync.Client) -> None:
    await _deployment_with_pods(kube)
    rs = (await kube.replica_sets.list(namespace=NS)).items[0]
    await kube.deployments.delete("web", namespace=NS, propagation_policy="Orphan")
    await kube.deployments.wait_for("web", conditions.deleted, namespace=NS, timeout=WAIT)
    orphan = await kube.replica_sets.wait_for(
        rs.metadata.name, lambda r: r.metadata.owner_references is None, namespace=NS,
        timeout=WAIT)
    assert orphan.metadata.uid == rs.metadata.uid
    pods = (await kube.pods.list(namespace=NS)).items
    assert len(pods) == 2 and all(ready(p) for p in pods)
    assert all(p.metadata.owner_references[0].uid == rs.metadata.uid for p in pods)


async def test_without_apps_kinds_served_no_workload_controller_runs() -> None:
    async with FakeApiServer(simulate=True, timings=FAST) as server:  # the default table
        assert server.control_plane.workloads.deployments is not None
        assert server.control_plane.workloads.replica_sets is not None
        assert server.control_plane.workloads.stateful_sets is not None
    async with FakeApiServer(simulate=True, timings=FAST, resources=SEED_RESOURCES) as server:
        assert server.control_plane.workloads.deployments is None
        assert server.control_plane.workloads.replica_sets is None
        assert server.control_plane.workloads.stateful_sets is None


@workloads
async def test_a_pod_the_server_refuses_is_reported_as_replica_failure(
    kube: kubeasync.Client
) -> None:
    # The ReplicaSet is valid (kube checks only a template's labels, annotations and
    # spec), but a core object's finalizer must be standard or domain-qualified: every
    # pod made from the template is refused.
    body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "broken"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "broken"}},
                     "template": {"metadata": {"labels": {"app": "broken"},
                                               "finalizers": ["cleanup"]},
                                  "spec": {"containers": [{"name": "app",
                                                           "image": "nginx:1.25"}]}}}}
    await kube.replica_sets.create(body, namespace=NS)

    def failed(rs: Any) -> bool:
        return any(c.type == "ReplicaFailure" and c.reason == "FailedCreate"
                   for c in (rs.status.conditions if rs.status else None) or [])

    rs = await kube.replica_sets.wait_for("broken", failed, namespace=NS, timeout=WAIT)
    (condition,) = rs.status.conditions
    assert condition.status == "True"
    assert 'metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard' \
        in condition.message
    assert rs.status.replicas == 0
    assert not (await kube.pods.list(namespace=NS)).items


# ------------------------------------------------------------------ the examples

@workloads
async def test_the_apply_manifest_example_sees_its_deployment_become_available(
    kube: kubeasync.Client
) -> None:
    from examples.apply_manifest import apply_and_wait

    manifest = kubeasync.load_all_yaml(
        (Path(__file__).parent.parent / "examples" / "manifests" / "web.yaml").read_text())
    lines: list[str] = []
    (web,) = await apply_and_wait(kube, manifest, field_manager="demo", timeout=WAIT,
                                  say=lines.append)
    assert web.status is not None and web.status.available_replicas == 2
    assert lines[-1] == "deployment web-demo/web: available (2/2)"


@pytest.mark.fake_apiserver(simulate=True, timings=FAST, resources=(
    *SERVED_RESOURCES, WEBSITES))
async def test_the_website_controller_example_gets_availability_from_the_controllers(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    # The Website kind is served from the start: the example installs no CRD.
    controller = WebsiteController(kube, workers=2)
    running = asyncio.ensure_future(controller.run())
    try:
        await kube.resource(WEBSITES).create(
            {"metadata": {"name": "blog"}, "spec": {"image": "nginx:1.25", "replicas": 2}},
            namespace=NS)

        def available() -> dict[str, Any] | None:
            site = fake_apiserver.get_object(WEBSITES, "blog")
            status = (site or {}).get("status") or {}
            return site if status.get("availableReplicas") == 2 else None

        site = await eventually(available, "the Website's Deployment available", WAIT)
        assert site["status"]["conditions"][0]["status"] == "True"
        await kube.resource(WEBSITES).delete("blog", namespace=NS)

        async def all_gone() -> bool:
            return not (fake_apiserver.get_object(WEBSITES, "blog")
                        or (await kube.replica_sets.list(namespace=NS)).items
                        or (await kube.pods.list(namespace=NS)).items)

        await eventually(all_gone, "the Website, its ReplicaSet and pods gone", WAIT)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
