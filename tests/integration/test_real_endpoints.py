"""Every seed endpoint against a REAL kube-apiserver (issue 6, item 2).

The same scenarios as ``tests/test_endpoints.py`` (the embedded server), for Pods, Jobs,
Services and PersistentVolumeClaims, plus what only a real server shows: admission,
validation, the controller manager (Jobs create Pods, the garbage collector, the
pvc-protection finalizer) and the exact shape of each answer. What kube-apiserver 1.20
answers, as pinned down here:

- DELETE of one object: Pods and PVCs answer the object (a PVC with ``deletionTimestamp``
  and its ``kubernetes.io/pvc-protection`` finalizer, removed a moment later); Services
  answer a ``Status``; a Job answers a ``Status`` when it is deleted at once (Background),
  and the Job itself while a finalizer holds it (Foreground, or batch/v1's default of
  orphaning, which adds the ``orphan`` finalizer).
- DELETE of a collection answers the list of deleted objects; Services have no collection
  delete (405), and kubeasync deletes them one by one.
- An unscheduled Pod is deleted at once whatever the grace period; a Pod bound to a node
  waits for its kubelet (here: for ever) and carries ``deletionGracePeriodSeconds``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import kubeasync
from kubeasync import PatchType, ResourceApi
from kubeasync.core.request import Request
from kubeasync.models import Status, to_dict
from tests.helpers.bodies import SEED, job, pod, seed, service
from tests.helpers.waiting import eventually

T = TypeVar("T")


# A status each kind accepts through its status subresource. The Job's is a condition of
# our own type: the job controller recomputes active/succeeded/failed from the pods, but
# keeps conditions it did not write.
STATUS_BY_KIND: dict[str, dict[str, Any]] = {
    "Pod": {"phase": "Running", "message": "set by kubeasync tests"},
    "Job": {"conditions": [{"type": "KubeasyncTest", "status": "True", "reason": "Testing"}]},
    "Service": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}},
    "PersistentVolumeClaim": {"phase": "Bound"},
}


# A valid change of the spec, which a write to /status must not make.
SPEC_CHANGE_BY_KIND: dict[str, dict[str, Any]] = {
    "Pod": {"activeDeadlineSeconds": 60},
    "Job": {"activeDeadlineSeconds": 60},
    "Service": {"sessionAffinity": "ClientIP"},
    "PersistentVolumeClaim": {"volumeName": "pv-elsewhere"},
}


def api_for(kube: kubeasync.Client, attribute: str) -> ResourceApi[Any, Any]:
    api: ResourceApi[Any, Any] = getattr(kube, attribute)
    return api


def names(page: Any) -> list[str]:
    return [item.metadata.name for item in page.items]


async def gone(api: ResourceApi[Any, Any], name: str, namespace: str) -> bool:
    try:
        await api.get(name, namespace=namespace)
    except kubeasync.NotFound:
        return True
    return False


async def settled(api: ResourceApi[Any, Any], name: str, namespace: str) -> Any:
    """The object once its controller has written what it writes after a create (a Job's
    status: its start time and its one active pod); other kinds as they are."""
    async def read() -> Any:
        obj = await api.get(name, namespace=namespace)
        if api.descriptor.kind != "Job":
            return obj
        status = obj.status
        return obj if status is not None and status.start_time and status.active else None

    return await eventually(read, f"{api.descriptor.kind} {name} settled")


async def update_with_retries(
    api: ResourceApi[Any, Any],
    name: str,
    namespace: str,
    change: Callable[[dict[str, Any]], None],
    *,
    status: bool = False,
) -> Any:
    """Read, change, write; again on 409 (the job controller writes a new Job's status
    right after its creation, as controllers do on any real cluster)."""
    for _ in range(20):
        current = to_dict(await api.get(name, namespace=namespace))
        change(current)
        write = api.replace_status if status else api.replace
        try:
            return await write(name, current, namespace=namespace)
        except kubeasync.Conflict:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name}: 20 conflicts in a row")


# ----------------------------------------------------------------------- get / create


@seed
async def test_create_get_and_get_status(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    created = await api.create(SEED[attribute]("web-0", app="web"), namespace=namespace)
    assert isinstance(created, api.descriptor.model)
    assert created.kind == api.descriptor.kind
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.namespace == namespace
    assert created.metadata.creation_timestamp
    assert created.metadata.labels == {"app": "web"}

    fetched = await api.get("web-0", namespace=namespace)
    assert isinstance(fetched, api.descriptor.model)
    assert fetched.metadata.uid == created.metadata.uid
    status_view = await api.get_status("web-0", namespace=namespace)
    assert isinstance(status_view, api.descriptor.model)
    assert status_view.metadata.uid == created.metadata.uid
    assert status_view.spec is not None  # the status subresource reads the whole object

    with pytest.raises(kubeasync.AlreadyExists) as exists:
        await api.create(SEED[attribute]("web-0"), namespace=namespace)
    assert exists.value.code == 409 and exists.value.reason == "AlreadyExists"
    with pytest.raises(kubeasync.NotFound) as missing:
        await api.get("nope", namespace=namespace)
    assert missing.value.status.details is not None
    assert missing.value.status.details.name == "nope"
    with pytest.raises(kubeasync.NotFound):
        await api.get_status("nope", namespace=namespace)


@seed
async def test_create_with_generate_name_and_dry_run(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    body = SEED[attribute]("")
    body["metadata"] = {"generateName": "web-"}
    created = await api.create(body, namespace=namespace)
    assert created.metadata.name.startswith("web-") and len(created.metadata.name) > 4
    assert created.metadata.generate_name == "web-"
    assert (await api.get(created.metadata.name, namespace=namespace)).metadata.uid

    dry = await api.create(SEED[attribute]("dry", app="dry"), namespace=namespace, dry_run=True)
    assert dry.metadata.name == "dry" and dry.metadata.labels == {"app": "dry"}
    with pytest.raises(kubeasync.NotFound):
        await api.get("dry", namespace=namespace)
    assert names(await api.list(namespace=namespace)) == [created.metadata.name]


async def test_create_of_an_invalid_object_is_invalid_with_causes(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    with pytest.raises(kubeasync.Invalid) as info:
        await real_kube.pods.create(
            {"metadata": {"name": "bad"}, "spec": {"containers": []}}, namespace=namespace
        )
    assert info.value.code == 422
    details = info.value.status.details
    assert details is not None and details.causes
    assert any(cause.field == "spec.containers" for cause in details.causes)


# ----------------------------------------------------------------------- list


@seed
async def test_list_with_selectors_limit_and_continue(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    expected = [f"item-{i}" for i in range(5)]
    for index, name in enumerate(expected):
        await api.create(SEED[attribute](name, app="web" if index % 2 else "db"),
                         namespace=namespace)

    everything = await api.list(namespace=namespace)
    assert names(everything) == expected  # the server lists in key (name) order
    assert everything.metadata.resource_version
    assert not everything.metadata.continue_

    assert names(await api.list(namespace=namespace, label_selector={"app": "web"})) == [
        "item-1", "item-3"
    ]
    assert names(await api.list(namespace=namespace, label_selector="app in (db),app!=web")) == [
        "item-0", "item-2", "item-4"
    ]
    assert names(await api.list(namespace=namespace, label_selector="app=none")) == []
    assert names(
        await api.list(namespace=namespace, field_selector={"metadata.name": "item-2"})
    ) == ["item-2"]
    assert names(
        await api.list(namespace=namespace, field_selector="metadata.name!=item-2",
                       label_selector="app=db")
    ) == ["item-0", "item-4"]
    assert names(
        await api.list(namespace=namespace, field_selector=f"metadata.namespace={namespace}")
    ) == expected

    first = await api.list(namespace=namespace, limit=2)
    assert names(first) == ["item-0", "item-1"]
    assert first.metadata.continue_
    assert first.metadata.remaining_item_count == 3
    pages = [names(first)]
    token = first.metadata.continue_
    while token:
        page = await api.list(namespace=namespace, limit=2, continue_=token)
        pages.append(names(page))
        token = page.metadata.continue_
    assert pages == [["item-0", "item-1"], ["item-2", "item-3"], ["item-4"]]
    seen = [name for page_names in pages for name in page_names]
    assert sorted(seen) == expected and len(seen) == len(set(seen))

    iterated = [item.metadata.name async for item in api.iterate(namespace=namespace, page_size=2)]
    assert iterated == expected
    filtered = [
        item.metadata.name
        async for item in api.iterate(namespace=namespace, page_size=1, label_selector="app=db")
    ]
    assert filtered == ["item-0", "item-2", "item-4"]


async def test_list_across_namespaces(real_kube: kubeasync.Client, namespace: str) -> None:
    await real_kube.services.create(service("mine", owner=namespace), namespace=namespace)
    everywhere = await real_kube.services.list(all_namespaces=True,
                                               label_selector={"owner": namespace})
    assert [(s.metadata.namespace, s.metadata.name) for s in everywhere.items] == [
        (namespace, "mine")
    ]
    # the API server's own service lives in "default"
    assert "kubernetes" in names(
        await real_kube.services.list(all_namespaces=True, field_selector="metadata.name=kubernetes")
    )


async def test_pod_field_selectors_on_phase_and_node_name(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    bound = pod("bound", app="web")
    bound["spec"]["nodeName"] = "node-a"  # no such Node is needed to set it at create
    await real_kube.pods.create(bound, namespace=namespace)
    await real_kube.pods.create(pod("pending-0", app="web"), namespace=namespace)
    await real_kube.pods.create(pod("pending-1", app="db"), namespace=namespace)
    pods = real_kube.pods

    assert names(await pods.list(namespace=namespace, field_selector="spec.nodeName=node-a")) == [
        "bound"
    ]
    assert names(await pods.list(namespace=namespace, field_selector="spec.nodeName=")) == [
        "pending-0", "pending-1"
    ]
    assert names(await pods.list(namespace=namespace, field_selector="status.phase=Pending")) == [
        "bound", "pending-0", "pending-1"
    ]
    assert names(await pods.list(namespace=namespace, field_selector="status.phase=Running")) == []
    assert names(
        await pods.list(
            namespace=namespace,
            field_selector={"status.phase": "Pending", "spec.nodeName": ""},
            label_selector="app=web",
        )
    ) == ["pending-0"]

    with pytest.raises(kubeasync.BadRequest) as info:
        await pods.list(namespace=namespace, field_selector="spec.image=busybox")
    assert info.value.code == 400
    assert "field label not supported" in info.value.message


# ----------------------------------------------------------------------- replace / status


@seed
async def test_replace_and_the_conflict_on_a_stale_version(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    await api.create(SEED[attribute]("web-0"), namespace=namespace)

    def relabel(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"] = {"version": "2"}

    replaced = await update_with_retries(api, "web-0", namespace, relabel)
    assert replaced.metadata.labels == {"version": "2"}
    stale = to_dict(replaced)

    # someone else changes it; our copy now carries an old resourceVersion
    def annotate(obj: dict[str, Any]) -> None:
        obj["metadata"]["annotations"] = {"touched": "yes"}

    newer = await update_with_retries(api, "web-0", namespace, annotate)
    assert newer.metadata.resource_version != replaced.metadata.resource_version

    stale["metadata"]["labels"] = {"version": "3"}
    with pytest.raises(kubeasync.Conflict) as info:
        await api.replace("web-0", stale, namespace=namespace)
    assert type(info.value) is kubeasync.Conflict
    assert info.value.code == 409 and info.value.reason == "Conflict"
    assert "the object has been modified" in info.value.message
    current = await api.get("web-0", namespace=namespace)
    assert current.metadata.labels == {"version": "2"}
    assert current.metadata.annotations == {"touched": "yes"}

    # replacing a missing object is a NotFound (PUT does not create these kinds)
    missing = copy.deepcopy(SEED[attribute]("ghost"))
    with pytest.raises(kubeasync.NotFound):
        await api.replace("ghost", missing, namespace=namespace)


@seed
async def test_status_subresource_writes_status_and_not_spec(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    kind = api.descriptor.kind
    wanted = STATUS_BY_KIND[kind]
    await api.create(SEED[attribute]("web-0", app="web"), namespace=namespace)
    spec_before = to_dict(await api.get("web-0", namespace=namespace))["spec"]

    # the main resource ignores status
    def change_status_and_label(obj: dict[str, Any]) -> None:
        obj["status"] = copy.deepcopy(wanted)
        obj["metadata"]["labels"] = {"app": "web", "main": "yes"}

    via_main = await update_with_retries(api, "web-0", namespace, change_status_and_label)
    assert via_main.metadata.labels == {"app": "web", "main": "yes"}
    assert not to_dict(via_main).get("status", {}).items() >= wanted.items()

    # /status resets the spec; it does write labels and annotations (built-in kinds only:
    # their status strategies copy back the old spec, nothing else)
    def change_status_spec_and_labels(obj: dict[str, Any]) -> None:
        obj["status"] = {**obj.get("status", {}), **copy.deepcopy(wanted)}
        obj["metadata"]["labels"] = {"via": "status"}
        obj["spec"] = {**obj["spec"], **SPEC_CHANGE_BY_KIND[kind]}

    via_status = await update_with_retries(
        api, "web-0", namespace, change_status_spec_and_labels, status=True
    )
    status = to_dict(via_status)["status"]
    for key, value in wanted.items():
        if key == "conditions":
            assert [c["type"] for c in status[key]] == ["KubeasyncTest"]
        else:
            assert status[key] == value
    assert to_dict(via_status)["spec"] == spec_before
    assert via_status.metadata.labels == {"via": "status"}

    read_back = to_dict(await api.get_status("web-0", namespace=namespace))
    assert read_back["spec"] == spec_before
    # (the job controller and the PV controller rewrite their own fields a moment later:
    # a Bound PVC without a volume goes back to Pending)
    if kind in ("Pod", "Service"):
        assert read_back["status"].items() >= wanted.items()


# ----------------------------------------------------------------------- patch


@seed
async def test_patch_of_each_type(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    await api.create(SEED[attribute]("web-0", app="web"), namespace=namespace)

    merged = await api.patch("web-0", {"metadata": {"labels": {"merge": "1"}}},
                             namespace=namespace, patch_type=PatchType.MERGE)
    assert merged.metadata.labels == {"app": "web", "merge": "1"}

    jsonp = await api.patch(
        "web-0",
        [
            {"op": "test", "path": "/metadata/labels/merge", "value": "1"},
            {"op": "remove", "path": "/metadata/labels/merge"},
            {"op": "add", "path": "/metadata/labels/json", "value": "1"},
        ],
        namespace=namespace,
        patch_type=PatchType.JSON,
    )
    assert jsonp.metadata.labels == {"app": "web", "json": "1"}
    # a failed "test" operation changes nothing: the server answers 422
    with pytest.raises(kubeasync.Invalid):
        await api.patch("web-0", [{"op": "test", "path": "/metadata/labels/json", "value": "x"}],
                        namespace=namespace, patch_type=PatchType.JSON)

    strategic = await api.patch("web-0", {"metadata": {"labels": {"strategic": "1"}}},
                                namespace=namespace, patch_type=PatchType.STRATEGIC)
    assert strategic.metadata.labels == {"app": "web", "json": "1", "strategic": "1"}

    applied = await api.patch(
        "web-0",
        SEED[attribute]("web-0", applied="1"),
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager="kubeasync-tests",
    )
    assert applied.metadata.labels == {
        "app": "web", "json": "1", "strategic": "1", "applied": "1"
    }
    managers = {(m.manager, m.operation) for m in applied.metadata.managed_fields or []}
    assert ("kubeasync-tests", "Apply") in managers

    # another manager owning the label: a conflict without force, taken over with force
    with pytest.raises(kubeasync.Conflict) as info:
        await api.patch("web-0", SEED[attribute]("web-0", applied="2"), namespace=namespace,
                        patch_type=PatchType.APPLY, field_manager="someone-else")
    assert info.value.code == 409 and "conflict" in info.value.message.lower()
    forced = await api.patch("web-0", SEED[attribute]("web-0", applied="2"), namespace=namespace,
                             patch_type=PatchType.APPLY, field_manager="someone-else",
                             force=True)
    assert (forced.metadata.labels or {})["applied"] == "2"

    # a dry-run patch answers the patched object and changes nothing
    dry = await api.patch("web-0", {"metadata": {"labels": {"dry": "1"}}},
                          namespace=namespace, dry_run=True)
    assert (dry.metadata.labels or {}).get("dry") == "1"
    assert "dry" not in ((await api.get("web-0", namespace=namespace)).metadata.labels or {})


async def test_strategic_merge_merges_containers_by_name_and_merge_replaces_them(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    body = pod("web-0")
    body["spec"]["containers"] = [
        {"name": "app", "image": "busybox"},
        {"name": "side", "image": "busybox"},
    ]
    await real_kube.pods.create(body, namespace=namespace)
    patched = await real_kube.pods.patch(
        "web-0",
        {"spec": {"containers": [{"name": "side", "image": "nginx"}]}},
        namespace=namespace,
        patch_type=PatchType.STRATEGIC,
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("app", "busybox"), ("side", "nginx")
    ]
    # a JSON merge patch replaces the whole list: a pod may not lose a container
    with pytest.raises(kubeasync.Invalid) as info:
        await real_kube.pods.patch(
            "web-0",
            {"spec": {"containers": [{"name": "side", "image": "alpine"}]}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    assert info.value.code == 422


@seed
async def test_patch_status(real_kube: kubeasync.Client, namespace: str, attribute: str) -> None:
    api = api_for(real_kube, attribute)
    kind = api.descriptor.kind
    await api.create(SEED[attribute]("web-0"), namespace=namespace)
    wanted = STATUS_BY_KIND[kind]
    spec_before = to_dict(await api.get("web-0", namespace=namespace))["spec"]
    patch: dict[str, Any] = {
        "metadata": {"labels": {"via": "status"}},
        "spec": SPEC_CHANGE_BY_KIND[kind],
        "status": wanted,
    }
    for _ in range(20):  # a merge patch of a list replaces it: retry if the controller raced us
        try:
            patched = await api.patch_status("web-0", patch, namespace=namespace)
            break
        except kubeasync.Conflict:
            await asyncio.sleep(0.1)
    assert (patched.metadata.labels or {})["via"] == "status"
    assert to_dict(patched)["spec"] == spec_before
    status = to_dict(patched)["status"]
    if kind == "Job":
        assert "KubeasyncTest" in [c["type"] for c in status["conditions"]]
    else:
        assert status.items() >= wanted.items()


# ----------------------------------------------------------------------- delete


@seed
async def test_delete_with_preconditions_dry_run_and_what_it_answers(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    kind = api.descriptor.kind
    created = await api.create(SEED[attribute]("web-0"), namespace=namespace)
    await settled(api, "web-0", namespace)  # so the resourceVersion stays put below

    with pytest.raises(kubeasync.Conflict) as wrong_uid:
        await api.delete("web-0", namespace=namespace, preconditions={"uid": "not-the-uid"})
    assert wrong_uid.value.code == 409
    assert "the UID in the precondition (not-the-uid) does not match" in wrong_uid.value.message

    with pytest.raises(kubeasync.Conflict) as wrong_version:
        await api.delete("web-0", namespace=namespace,
                         preconditions={"uid": created.metadata.uid, "resourceVersion": "1"})
    assert (
        "the ResourceVersion in the precondition (1) does not match"
        in wrong_version.value.message
    )

    dry = await api.delete("web-0", namespace=namespace, dry_run=True, grace_period_seconds=0,
                           propagation_policy="Background")
    if kind in ("Service", "Job"):
        assert isinstance(dry, Status) and dry.status == "Success"
    else:
        assert isinstance(dry, api.descriptor.model)
    after_dry = await api.get("web-0", namespace=namespace)
    assert after_dry.metadata.uid == created.metadata.uid
    assert after_dry.metadata.deletion_timestamp is None

    answer = await api.delete(
        "web-0",
        namespace=namespace,
        propagation_policy="Background",
        preconditions={"uid": created.metadata.uid,
                       "resourceVersion": after_dry.metadata.resource_version},
    )
    if kind in ("Service", "Job"):
        # deleted at once: the server answers a Status naming what it deleted
        assert isinstance(answer, Status)
        assert answer.status == "Success"
        assert answer.details is not None
        assert answer.details.name == "web-0" and answer.details.uid == created.metadata.uid
    else:
        assert isinstance(answer, api.descriptor.model)
        assert answer.metadata.uid == created.metadata.uid
        assert answer.metadata.deletion_timestamp is not None
        if kind == "PersistentVolumeClaim":
            assert answer.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    await eventually(lambda: gone(api, "web-0", namespace), f"{kind} web-0 deleted")
    with pytest.raises(kubeasync.NotFound):
        await api.delete("web-0", namespace=namespace)


async def test_pod_grace_period(real_kube: kubeasync.Client, namespace: str) -> None:
    pods = real_kube.pods
    bound = pod("bound")
    bound["spec"]["nodeName"] = "node-without-kubelet"
    await pods.create(bound, namespace=namespace)
    await pods.create(pod("unscheduled"), namespace=namespace)

    # a bound pod waits for its kubelet to stop it: it stays, marked for deletion
    waiting = await pods.delete("bound", namespace=namespace, grace_period_seconds=30)
    assert isinstance(waiting, kubeasync.models.Pod)
    assert waiting.metadata.deletion_timestamp is not None
    assert waiting.metadata.deletion_grace_period_seconds == 30
    still = await pods.get("bound", namespace=namespace)
    assert still.metadata.deletion_grace_period_seconds == 30
    # a shorter grace period is accepted; 0 deletes it at once
    shorter = await pods.delete("bound", namespace=namespace, grace_period_seconds=5)
    assert isinstance(shorter, kubeasync.models.Pod)
    assert shorter.metadata.deletion_grace_period_seconds == 5
    await pods.delete("bound", namespace=namespace, grace_period_seconds=0)
    assert await gone(pods, "bound", namespace)

    # an unscheduled pod has nothing to wait for: deleted at once, whatever the grace period
    answer = await pods.delete("unscheduled", namespace=namespace, grace_period_seconds=30)
    assert isinstance(answer, kubeasync.models.Pod)
    assert answer.metadata.deletion_grace_period_seconds == 0
    assert await gone(pods, "unscheduled", namespace)


async def job_pods(kube: kubeasync.Client, namespace: str, job_name: str) -> list[Any]:
    page = await kube.pods.list(namespace=namespace, label_selector={"job-name": job_name})
    return list(page.items)


@pytest.mark.parametrize("policy", ["Orphan", "Background", "Foreground", None])
async def test_job_delete_propagation(
    real_kube: kubeasync.Client, namespace: str, policy: str | None
) -> None:
    jobs = real_kube.jobs
    created = await jobs.create(job("worker"), namespace=namespace)
    # the job controller creates the job's pod (which stays Pending: no scheduler here)
    pods = await eventually(lambda: job_pods(real_kube, namespace, "worker"), "the job's pod")
    assert len(pods) == 1
    pod_name = pods[0].metadata.name
    assert [ref.uid for ref in pods[0].metadata.owner_references] == [created.metadata.uid]

    answer = await jobs.delete("worker", namespace=namespace, propagation_policy=policy)

    if policy == "Background":
        assert isinstance(answer, Status) and answer.status == "Success"
    else:
        # a finalizer holds the Job while the garbage collector works: the Job is answered
        assert isinstance(answer, kubeasync.models.Job)
        assert answer.metadata.deletion_timestamp is not None
        finalizer = "foregroundDeletion" if policy == "Foreground" else "orphan"
        assert answer.metadata.finalizers == [finalizer]
    await eventually(lambda: gone(jobs, "worker", namespace), "the job deleted")

    if policy in ("Background", "Foreground"):
        await eventually(lambda: gone(real_kube.pods, pod_name, namespace),
                         "the job's pod garbage-collected")
    else:  # Orphan, and batch/v1's default
        async def orphaned() -> Any:
            current = await real_kube.pods.get(pod_name, namespace=namespace)
            return current if not current.metadata.owner_references else None

        left = await eventually(orphaned, "the pod's owner reference removed")
        assert left.metadata.deletion_timestamp is None


@seed
async def test_delete_collection_with_a_label_selector(
    real_kube: kubeasync.Client, namespace: str, attribute: str
) -> None:
    api = api_for(real_kube, attribute)
    for index in range(4):
        await api.create(SEED[attribute](f"item-{index}", tmp="1" if index < 3 else "0"),
                         namespace=namespace)

    dry = await api.delete_collection(namespace=namespace, label_selector={"tmp": "1"},
                                      dry_run=True)
    assert not isinstance(dry, Status)
    assert sorted(names(dry)) == ["item-0", "item-1", "item-2"]
    assert len((await api.list(namespace=namespace)).items) == 4

    deleted = await api.delete_collection(namespace=namespace, label_selector={"tmp": "1"},
                                          propagation_policy="Background")
    assert not isinstance(deleted, Status)
    assert isinstance(deleted, api.descriptor.list_model)
    assert sorted(names(deleted)) == ["item-0", "item-1", "item-2"]

    async def only_the_unselected_one() -> bool:
        return names(await api.list(namespace=namespace)) == ["item-3"]

    await eventually(only_the_unselected_one, "the selected objects deleted")
    empty = await api.delete_collection(namespace=namespace, label_selector="tmp=1")
    assert not isinstance(empty, Status) and names(empty) == []


async def test_services_have_no_collection_delete_and_kubeasync_deletes_each(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    services = real_kube.services
    for index in range(10):
        await services.create(service(f"svc-{index}", tmp="1"), namespace=namespace)
    await services.create(service("keep"), namespace=namespace)

    # the server itself: 405 for DELETE on the collection
    with pytest.raises(kubeasync.MethodNotAllowed) as info:
        await real_kube.session.send(
            Request("DELETE", f"/api/v1/namespaces/{namespace}/services", idempotent=False)
        )
    assert info.value.code == 405
    assert len((await services.list(namespace=namespace)).items) == 11

    # kubeasync: list, then delete each match
    assert "deletecollection" not in services.descriptor.verbs
    deleted = await services.delete_collection(namespace=namespace, label_selector="tmp=1")
    assert not isinstance(deleted, Status)
    assert sorted(names(deleted)) == sorted(f"svc-{i}" for i in range(10))
    assert all(item.metadata.uid for item in deleted.items)
    assert names(await services.list(namespace=namespace)) == ["keep"]
