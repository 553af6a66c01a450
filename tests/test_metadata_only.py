"""Metadata-only reads: requests built without a server, and the answers of the embedded
server (PartialObjectMetadata(List), as kube-apiserver answers them) over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import Backoff
from kubeasync.core.metadata import (
    PARTIAL_LIST_ACCEPT,
    PARTIAL_OBJECT_ACCEPT,
    is_metadata_only,
    metadata_descriptor,
)
from kubeasync.core.params import GetParams, ListParams, WatchParams
from kubeasync.core.request import RequestBuilder
from kubeasync.kinds import PODS
from kubeasync.models import PartialObjectMetadata, PartialObjectMetadataList, Pod, PodList
from kubeasync.testing import FakeApiServer
from kubeasync.transport.policy import NO_RETRY
from tests.conftest import Lines

PODS_PATH = "/api/v1/namespaces/default/pods"
FAST = Backoff(initial=0.001, maximum=0.004)


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels, "annotations": {"note": name}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}}


@pytest_asyncio.fixture
async def kube(fake_apiserver: FakeApiServer) -> AsyncIterator[kubeasync.Client]:
    async with kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY) as client:
        yield client


# ------------------------------------------------------------------ request building


def test_metadata_requests_ask_for_partial_kinds() -> None:
    twin = metadata_descriptor(PODS)
    assert is_metadata_only(twin) and not is_metadata_only(PODS)
    assert twin.model is PartialObjectMetadata and twin.list_model is PartialObjectMetadataList
    assert twin.collection_path("ns") == PODS.collection_path("ns")
    assert metadata_descriptor(PODS) is twin and metadata_descriptor(twin) is twin
    requests = RequestBuilder(twin)
    assert requests.list("ns", ListParams()).headers["Accept"] == (
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
    assert requests.get("p", "ns", GetParams()).headers["Accept"] == (
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json")
    watch = requests.watch("ns", WatchParams(timeout_seconds=5))
    assert watch.headers["Accept"] == PARTIAL_OBJECT_ACCEPT
    assert ("watch", "true") in watch.query
    # Subresources and writes are never metadata-only.
    assert requests.get("p", "ns", GetParams(), subresource="status").headers["Accept"] == (
        "application/json")
    plain = RequestBuilder(PODS)
    assert plain.list("ns", ListParams()).headers["Accept"] == "application/json"
    assert PARTIAL_LIST_ACCEPT != PARTIAL_OBJECT_ACCEPT


def test_metadata_only_must_be_a_bool(fake_apiserver: FakeApiServer) -> None:
    client = kubeasync.Client(fake_apiserver.config())
    with pytest.raises(ValueError, match="metadata_only must be a bool"):
        client.pods.watch(metadata_only="yes")  # type: ignore[call-overload]


# ------------------------------------------------------------------ the embedded server


async def test_server_answers_partial_list_get_and_406(api) -> None:
    for name in ("a", "b"):
        status, _ = await api("POST", PODS_PATH, pod(name, app="web"))
        assert status == 201
    status, body = await api("GET", PODS_PATH, headers={"Accept": PARTIAL_LIST_ACCEPT})
    assert status == 200
    assert body["kind"] == "PartialObjectMetadataList"
    assert body["apiVersion"] == "meta.k8s.io/v1"
    assert body["metadata"]["resourceVersion"]
    assert [set(item) for item in body["items"]] == [{"kind", "apiVersion", "metadata"}] * 2
    assert {item["kind"] for item in body["items"]} == {"PartialObjectMetadata"}
    assert [item["metadata"]["name"] for item in body["items"]] == ["a", "b"]
    status, body = await api("GET", PODS_PATH + "/a", headers={"Accept": PARTIAL_OBJECT_ACCEPT})
    assert status == 200 and body["kind"] == "PartialObjectMetadata"
    assert body["metadata"]["labels"] == {"app": "web"} and "spec" not in body
    # The wrong kind of the two is refused, as kube-apiserver does, fallback or not.
    status, body = await api("GET", PODS_PATH, headers={"Accept": PARTIAL_OBJECT_ACCEPT})
    assert status == 406 and body["reason"] == "NotAcceptable"
    assert "is a list (*core.PodList)" in body["message"]
    status, body = await api("GET", PODS_PATH + "/a", headers={"Accept": PARTIAL_LIST_ACCEPT})
    assert status == 406 and "is not a list (*core.Pod)" in body["message"]


async def test_server_watch_events_carry_partial_objects(api) -> None:
    status, _ = await api("POST", PODS_PATH, pod("a"))
    assert status == 201
    response = await api.raw("GET", PODS_PATH + "?watch=true&timeoutSeconds=1",
                             headers={"Accept": PARTIAL_OBJECT_ACCEPT})
    async with response:
        events = await Lines(response).rest()
    assert [e["type"] for e in events] == ["ADDED"]
    assert events[0]["object"] == {
        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
        "metadata": events[0]["object"]["metadata"]}
    assert events[0]["object"]["metadata"]["name"] == "a"


# ------------------------------------------------------------------ the client


async def test_list_get_iterate_metadata_only(kube: kubeasync.Client) -> None:
    for i in range(5):
        await kube.pods.create(pod(f"p{i}", app="web" if i % 2 else "db"))
    listing = await kube.pods.list(metadata_only=True, label_selector="app=web")
    assert isinstance(listing, PartialObjectMetadataList)
    assert listing.kind == "PartialObjectMetadataList"
    assert listing.metadata.resource_version
    assert sorted(item.metadata.name or "" for item in listing.items) == ["p1", "p3"]
    assert all(type(item) is PartialObjectMetadata for item in listing.items)
    assert listing.items[0].metadata.annotations == {"note": listing.items[0].metadata.name}
    full = await kube.pods.list()
    assert isinstance(full, PodList)
    one = await kube.pods.get("p2", metadata_only=True)
    assert isinstance(one, PartialObjectMetadata) and one.kind == "PartialObjectMetadata"
    assert one.metadata.uid == next(p.metadata.uid for p in full.items
                                    if p.metadata.name == "p2")
    names = [item.metadata.name async for item in kube.pods.iterate(metadata_only=True,
                                                                     page_size=2)]
    assert sorted(n or "" for n in names) == [f"p{i}" for i in range(5)]
    assert isinstance(await kube.pods.get("p2"), Pod)


async def test_watch_metadata_only(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod("before"))
    watcher = kube.pods.watch(metadata_only=True, backoff=FAST, timeout_seconds=5)
    async with watcher:
        first = await asyncio.wait_for(watcher.__anext__(), 5)
        assert first.type == "ADDED" and isinstance(first.object, PartialObjectMetadata)
        assert first.object.metadata.name == "before"
        await kube.pods.patch("before", {"metadata": {"labels": {"x": "1"}}})
        second = await asyncio.wait_for(watcher.__anext__(), 5)
        assert second.type == "MODIFIED"
        assert second.object.kind == "PartialObjectMetadata"
        assert second.object.metadata.labels == {"x": "1"}
        await kube.pods.delete("before", grace_period_seconds=0)
        while (event := await asyncio.wait_for(watcher.__anext__(), 5)).type != "DELETED":
            pass
        assert event.object.metadata.name == "before"


async def test_watch_stream_metadata_only(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod("s"))
    async with kube.pods.watch_stream(metadata_only=True, timeout_seconds=1) as stream:
        events = [event async for event in stream]
    assert [e.type for e in events] == ["ADDED"]
    assert isinstance(events[0].object, PartialObjectMetadata)


async def test_informer_metadata_only_is_its_own_shared_informer(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod("i0", app="web"))
    meta = kube.pods.informer(metadata_only=True, backoff=FAST)
    assert meta is kube.pods.informer(metadata_only=True, backoff=FAST)
    full = kube.pods.informer(backoff=FAST)
    assert full is not meta
    async with meta:
        await asyncio.wait_for(meta.wait_synced(), 5)
        stored = meta.get("i0")
        assert isinstance(stored, PartialObjectMetadata)
        assert [o.metadata.name for o in meta.list(label_selector="app=web")] == ["i0"]
        changes = meta.changes(replay=False)
        await kube.pods.create(pod("i1", app="web"))
        change = await asyncio.wait_for(changes.__anext__(), 5)
        assert change.type == "added" and change.name == "i1"
        assert isinstance(change.object, PartialObjectMetadata)
        await changes.aclose()


async def test_full_answers_fall_back_to_their_metadata(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    """A server that ignores the metadata-only Accept header answers full objects (its
    second choice, application/json): they are decoded keeping only their metadata."""
    fake_apiserver.serve_partial_metadata = False
    await kube.pods.create(pod("f", app="web"))
    listing = await kube.pods.list(metadata_only=True)
    assert type(listing) is PartialObjectMetadataList and listing.kind == "PodList"
    assert [item.metadata.name for item in listing.items] == ["f"]
    assert type(listing.items[0]) is PartialObjectMetadata
    one = await kube.pods.get("f", metadata_only=True)
    assert one.kind == "Pod" and one.metadata.labels == {"app": "web"}
    informer = kube.pods.informer(metadata_only=True, backoff=FAST)
    async with informer:
        await asyncio.wait_for(informer.wait_synced(), 5)
        assert informer.get("f") is not None


async def test_406_is_read_again_as_plain_json(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    await kube.pods.create(pod("n"))
    # A server that refuses the header outright: a fault answering 406 once.
    fake_apiserver.faults.fail_next(1, status=406, method="GET", path=r"/pods$")
    listing = await kube.pods.list(metadata_only=True)
    assert [item.metadata.name for item in listing.items] == ["n"]
    assert listing.kind == "PodList"  # the plain JSON answer, decoded as metadata
