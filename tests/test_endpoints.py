"""Every seed endpoint, end to end over real HTTP against the embedded API server.

The same methods run for each of the four seed resources; only the minimal valid object
differs. The integration tier repeats these against a real kube-apiserver.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

import kubeasync
from kubeasync import PatchType, ResourceApi
from kubeasync.models import ObjectMeta, Status, to_dict
from kubeasync.testing import FakeApiServer
from tests.helpers.bodies import SEED, pod, seed, service


def api_for(kube: kubeasync.Client, attribute: str) -> ResourceApi[Any, Any]:
    api: ResourceApi[Any, Any] = getattr(kube, attribute)
    return api


def names(page: Any) -> list[str]:
    return [item.metadata.name for item in page.items]


@seed
async def test_create_get_and_get_status(kube: kubeasync.Client, attribute: str) -> None:
    api = api_for(kube, attribute)
    created = await api.create(SEED[attribute]("web-0", app="web"))
    assert isinstance(created, api.descriptor.model)
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.namespace == "default"
    assert created.metadata.creation_timestamp

    fetched = await api.get("web-0")
    assert fetched.metadata.uid == created.metadata.uid
    status_view = await api.get_status("web-0")
    assert status_view.metadata.uid == created.metadata.uid

    with pytest.raises(kubeasync.AlreadyExists):
        await api.create(SEED[attribute]("web-0"))
    with pytest.raises(kubeasync.NotFound) as info:
        await api.get("nope")
    assert info.value.status.details is not None
    assert info.value.status.details.name == "nope"


@seed
async def test_create_from_a_model_instance(kube: kubeasync.Client, attribute: str) -> None:
    api = api_for(kube, attribute)
    model = msgspec.convert(SEED[attribute]("typed"), api.descriptor.model, from_attributes=True)
    created = await api.create(model)
    assert created.metadata.name == "typed"
    assert created.kind == api.descriptor.kind


async def test_create_with_generate_name_and_dry_run(kube: kubeasync.Client) -> None:
    created = await kube.pods.create({**pod(""), "metadata": {"generateName": "web-"}})
    assert created.metadata.name.startswith("web-") and len(created.metadata.name) > 4
    dry = await kube.pods.create(pod("dry"), dry_run=True)
    assert dry.metadata.name == "dry"
    with pytest.raises(kubeasync.NotFound):
        await kube.pods.get("dry")


@seed
async def test_list_with_selectors_limit_and_continue(
    kube: kubeasync.Client, attribute: str
) -> None:
    api = api_for(kube, attribute)
    for index in range(5):
        await api.create(SEED[attribute](f"item-{index}", app="web" if index % 2 else "db"))

    everything = await api.list()
    assert names(everything) == [f"item-{i}" for i in range(5)]
    assert everything.metadata.resource_version

    web = await api.list(label_selector={"app": "web"})
    assert names(web) == ["item-1", "item-3"]
    by_name = await api.list(field_selector={"metadata.name": "item-2"})
    assert names(by_name) == ["item-2"]

    first = await api.list(limit=2)
    assert names(first) == ["item-0", "item-1"]
    assert first.metadata.continue_ and first.metadata.remaining_item_count == 3
    second = await api.list(limit=2, continue_=first.metadata.continue_)
    assert names(second) == ["item-2", "item-3"]

    iterated = [item.metadata.name async for item in api.iterate(page_size=2)]
    assert iterated == [f"item-{i}" for i in range(5)]


@seed
async def test_list_all_namespaces(kube: kubeasync.Client, attribute: str) -> None:
    api = api_for(kube, attribute)
    await kube.namespaces.create({"metadata": {"name": "other"}})
    await api.create(SEED[attribute]("a"))
    await api.create(SEED[attribute]("b"), namespace="other")
    everywhere = await api.list(all_namespaces=True)
    assert sorted((i.metadata.namespace, i.metadata.name) for i in everywhere.items) == [
        ("default", "a"),
        ("other", "b"),
    ]


@seed
async def test_replace_and_the_conflict_on_a_stale_version(
    kube: kubeasync.Client, attribute: str
) -> None:
    api = api_for(kube, attribute)
    created = await api.create(SEED[attribute]("web-0"))
    created.metadata.labels = {"version": "2"}
    replaced = await api.replace("web-0", created)
    assert replaced.metadata.labels == {"version": "2"}
    assert replaced.metadata.resource_version != created.metadata.resource_version

    # created still carries the old resourceVersion: the server refuses to overwrite
    created.metadata.labels = {"version": "3"}
    with pytest.raises(kubeasync.Conflict):
        await api.replace("web-0", created)
    assert (await api.get("web-0")).metadata.labels == {"version": "2"}


@seed
async def test_replace_status_changes_only_the_status(
    kube: kubeasync.Client, attribute: str
) -> None:
    api = api_for(kube, attribute)
    await api.create(SEED[attribute]("web-0"))
    current = to_dict(await api.get("web-0"))
    status_by_kind = {
        "Pod": {"phase": "Running"},
        "Job": {"active": 1},
        "Service": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}},
        "PersistentVolumeClaim": {"phase": "Bound"},
    }
    current["status"] = status_by_kind[api.descriptor.kind]
    current["metadata"]["labels"] = {"written": "yes"}
    spec_before = to_dict(await api.get("web-0"))["spec"]
    current["spec"]["ignoredByStatus"] = True
    updated = await api.replace_status("web-0", current)
    assert to_dict(updated)["status"].items() >= status_by_kind[api.descriptor.kind].items()
    # as kube-apiserver: a built-in kind's /status resets the spec, but writes the labels
    assert to_dict(updated)["spec"] == spec_before
    assert updated.metadata.labels == {"written": "yes"}


@seed
@pytest.mark.parametrize("patch_type", list(PatchType), ids=lambda p: p.name)
async def test_patch_of_each_type(
    kube: kubeasync.Client, attribute: str, patch_type: PatchType
) -> None:
    api = api_for(kube, attribute)
    await api.create(SEED[attribute]("web-0", app="web"))
    patch: Any
    if patch_type is PatchType.JSON:
        patch = [{"op": "add", "path": "/metadata/labels/tier", "value": "front"}]
    elif patch_type is PatchType.APPLY:
        patch = SEED[attribute]("web-0", app="web", tier="front")
    else:
        patch = {"metadata": {"labels": {"tier": "front"}}}
    patched = await api.patch(
        "web-0",
        patch,
        patch_type=patch_type,
        field_manager="tests" if patch_type is PatchType.APPLY else None,
        force=True if patch_type is PatchType.APPLY else None,
    )
    assert patched.metadata.labels == {"app": "web", "tier": "front"}


async def test_strategic_merge_merges_containers_by_name(kube: kubeasync.Client) -> None:
    await kube.pods.create({**pod("web-0"), "spec": {"containers": [
        {"name": "app", "image": "busybox"}, {"name": "side", "image": "busybox"}]}})
    patched = await kube.pods.patch(
        "web-0",
        {"spec": {"containers": [{"name": "side", "image": "nginx"}]}},
        patch_type=PatchType.STRATEGIC,
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("app", "busybox"), ("side", "nginx")
    ]


@seed
async def test_patch_status(kube: kubeasync.Client, attribute: str) -> None:
    api = api_for(kube, attribute)
    await api.create(SEED[attribute]("web-0"))
    spec_before = to_dict(await api.get("web-0"))["spec"]
    patched = await api.patch_status(
        "web-0",
        {"metadata": {"labels": {"written": "yes"}}, "spec": {"ignoredByStatus": True},
         "status": {"conditions": []}},
    )
    assert to_dict(patched)["spec"] == spec_before
    assert (patched.metadata.labels or {})["written"] == "yes"  # as kube-apiserver 1.20


async def test_custom_resource_status_keeps_metadata() -> None:
    # unlike built-in kinds, a custom resource's /status changes nothing but .status
    widgets = kubeasync.custom_resource(group="example.com", version="v1", kind="Widget",
                                        plural="widgets")
    async with FakeApiServer(resources=(*kubeasync.kinds.SEED_RESOURCES, widgets)) as server, \
            kubeasync.Client(server.config()) as kube:
        api = kube.resource(widgets)
        await api.create({"metadata": {"name": "w", "labels": {"a": "1"}}, "spec": {"size": 1}})
        current = await api.get("w")
        current["metadata"]["labels"] = {"a": "2"}
        current["status"] = {"ready": True}
        updated = await api.replace_status("w", current)
        assert updated["status"] == {"ready": True}
        assert updated["metadata"]["labels"] == {"a": "1"}


@seed
async def test_delete_with_options(kube: kubeasync.Client, attribute: str) -> None:
    api = api_for(kube, attribute)
    created = await api.create(SEED[attribute]("web-0"))

    with pytest.raises(kubeasync.Conflict):
        await api.delete("web-0", preconditions={"uid": "not-the-uid"})
    dry = await api.delete("web-0", dry_run=True, grace_period_seconds=0)
    assert dry is not None
    assert (await api.get("web-0")).metadata.uid == created.metadata.uid

    answer = await api.delete(
        "web-0",
        grace_period_seconds=0,
        propagation_policy="Background",
        preconditions={"uid": created.metadata.uid},
    )
    # what kube-apiserver 1.20 answers: Jobs and Services a Status, Pods and PVCs the object
    if api.descriptor.kind in ("Job", "Service"):
        assert isinstance(answer, Status) and answer.status == "Success"
    else:
        assert isinstance(answer, api.descriptor.model)
        assert answer.metadata.uid == created.metadata.uid
    with pytest.raises(kubeasync.NotFound):
        await api.get("web-0")


@seed
async def test_delete_collection_with_a_selector(kube: kubeasync.Client, attribute: str) -> None:
    api = api_for(kube, attribute)
    for index in range(4):
        await api.create(SEED[attribute](f"item-{index}", tmp="1" if index < 3 else "0"))
    deleted = await api.delete_collection(label_selector={"tmp": "1"},
                                          propagation_policy="Background")
    assert not isinstance(deleted, Status)
    assert sorted(names(deleted)) == ["item-0", "item-1", "item-2"]
    assert names(await api.list()) == ["item-3"]


async def test_services_delete_collection_falls_back_to_deleting_each(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    # the server itself refuses a collection delete of services, as real servers do
    assert "deletecollection" not in kube.services.descriptor.verbs
    for index in range(12):
        await kube.services.create(service(f"svc-{index}", tmp="1"))
    deleted = await kube.services.delete_collection(label_selector="tmp=1")
    assert not isinstance(deleted, Status)
    assert len(deleted.items) == 12
    assert (await kube.services.list()).items == []


async def test_pod_logs(kube: kubeasync.Client, fake_apiserver: FakeApiServer) -> None:
    await kube.pods.create(pod("web-0"))
    for line in ["one", "two", "three"]:
        fake_apiserver.append_log("default", "web-0", "app", line)
    assert await kube.pods.logs("web-0") == "one\ntwo\nthree\n"
    assert await kube.pods.logs("web-0", container="app", tail_lines=1) == "three\n"
    with pytest.raises(kubeasync.NotFound):
        await kube.pods.logs("nope")


async def test_iterate_falls_back_to_a_full_list_when_the_token_expires(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    for index in range(6):
        await kube.config_maps.create({"metadata": {"name": f"cm-{index}"}})
    seen = []
    async for item in kube.config_maps.iterate(page_size=2):
        seen.append(item.metadata.name)
        if len(seen) == 2:
            fake_apiserver.compact()  # the next page's continue token is now too old
            await kube.config_maps.create({"metadata": {"name": "cm-late"}})
    assert sorted(seen) == sorted([f"cm-{i}" for i in range(6)] + ["cm-late"])
    assert len(seen) == len(set(seen)), "nothing is yielded twice"


async def test_namespaces_are_cluster_scoped(kube: kubeasync.Client) -> None:
    created = await kube.namespaces.create(
        kubeasync.models.Namespace(metadata=ObjectMeta(name="team-a"))
    )
    assert created.metadata.namespace is None
    assert "team-a" in names(await kube.namespaces.list())
    with pytest.raises(ValueError, match="cluster-scoped"):
        await kube.namespaces.get("team-a", namespace="default")


async def test_custom_resource_as_dicts(kube: kubeasync.Client) -> None:
    config_maps = kube.resource(
        kubeasync.custom_resource(group="", version="v1", kind="ConfigMap",
                                  plural="configmaps", subresources=())
    )
    created = await config_maps.create({"metadata": {"name": "plain"}, "data": {"a": "b"}})
    assert isinstance(created, dict) and created["data"] == {"a": "b"}
    page = await config_maps.list()
    assert [item["metadata"]["name"] for item in page["items"]] == ["plain"]


async def test_concurrent_requests_on_one_client(kube: kubeasync.Client) -> None:
    await asyncio.gather(*(kube.config_maps.create({"metadata": {"name": f"c{i}"}})
                           for i in range(50)))
    results = await asyncio.gather(*(kube.config_maps.get(f"c{i}") for i in range(50)))
    assert {r.metadata.name for r in results} == {f"c{i}" for i in range(50)}
