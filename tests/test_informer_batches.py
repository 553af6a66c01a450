"""What the informer relies on in the watcher: ``next_batch()`` (a resync as one batch,
held back until complete) and ``transform``, against the scripted server over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kubeasync
from kubeasync import Backoff, Watcher, WatchEvent
from kubeasync.core.descriptor import custom_resource
from tests.helpers.watch_server import WatchServer, serving

FAST = Backoff(initial=0.001, maximum=0.004)


def watch(kube: kubeasync.Client, **options: Any) -> Watcher[Any]:
    options.setdefault("backoff", FAST)
    options.setdefault("send_initial_events", False)
    return kube.pods.watch(**options)


def summary(batch: list[WatchEvent[Any]]) -> list[tuple[str, str, str]]:
    out = []
    for event in batch:
        obj = event.object
        meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata
        name = meta["name"] if isinstance(meta, dict) else meta.name
        version = meta["resourceVersion"] if isinstance(meta, dict) else meta.resource_version
        out.append((event.type, name, version))
    return out


async def next_batch(watcher: Watcher[Any]) -> list[tuple[str, str, str]]:
    return summary(await asyncio.wait_for(watcher.next_batch(), 5))


async def away_then_compacted(server: WatchServer) -> None:
    server.cut_watches()
    server.modify("web-0", tier="changed")
    server.delete("web-1")
    server.delete("web-2")
    server.create("web-2")  # same name, new uid
    server.create("web-9")
    server.compact()


async def test_the_paginated_initial_list_is_one_batch_then_live_events_come_alone() -> None:
    async with serving() as (server, kube):
        for i in range(5):
            server.create(f"web-{i}")
        async with watch(kube, page_size=2) as watcher:
            assert await next_batch(watcher) == [
                ("ADDED", f"web-{i}", str(101 + i)) for i in range(5)
            ]
            # All three pages were read before the batch was handed out.
            assert len(server.list_requests()) == 3
            assert watcher.resource_version == "105"
            server.modify("web-1", tier="x")
            assert await next_batch(watcher) == [("MODIFIED", "web-1", "106")]
            assert watcher.resource_version == "106"


async def test_an_empty_collection_gives_one_empty_batch_that_marks_the_sync() -> None:
    async with serving() as (server, kube), watch(kube) as watcher:
        assert await next_batch(watcher) == []
        assert watcher.resource_version == "100"
        server.create("web-0")
        assert await next_batch(watcher) == [("ADDED", "web-0", "101")]


@pytest.mark.parametrize("initial_events", [False, True])
async def test_a_relist_after_410_is_one_batch_of_the_difference(initial_events: bool) -> None:
    async with serving(supports_initial_events=initial_events) as (server, kube):
        for i in range(5):
            server.create(f"web-{i}")
        options: dict[str, Any] = {"page_size": 2}
        if initial_events:
            options["send_initial_events"] = True
        async with watch(kube, **options) as watcher:
            assert len(await next_batch(watcher)) == 5
            server.modify("web-4", tier="live")
            assert await next_batch(watcher) == [("MODIFIED", "web-4", "106")]
            await away_then_compacted(server)
            batch = await next_batch(watcher)
            assert watcher.resource_version == str(server.rv)
            server.create("zz-marker")
            assert await next_batch(watcher) == [("ADDED", "zz-marker", str(server.rv))]
    assert sorted(batch) == sorted([
        ("MODIFIED", "web-0", "107"), ("DELETED", "web-1", "102"), ("DELETED", "web-2", "103"),
        ("ADDED", "web-2", "110"), ("ADDED", "web-9", "111"),
    ])
    # The deletion of the old web-2 comes before the new one is added.
    assert batch.index(("DELETED", "web-2", "103")) < batch.index(("ADDED", "web-2", "110"))


async def test_a_relist_that_finds_nothing_new_is_an_empty_batch() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        async with watch(kube) as watcher:
            await next_batch(watcher)
            server.cut_watches()
            server.create("elsewhere", namespace="other")  # not in this watch
            server.compact()
            assert await next_batch(watcher) == []
            assert len(server.list_requests()) == 2
            server.create("web-1")
            assert await next_batch(watcher) == [("ADDED", "web-1", "103")]
            assert watcher.resource_version == "103"


async def test_transform_applies_to_listed_watched_and_synthesized_objects() -> None:
    def tag(pod: Any) -> Any:
        pod.metadata.labels = {**(pod.metadata.labels or {}), "seen": "yes"}
        pod.metadata.annotations = {"version": pod.metadata.resource_version}
        return pod

    async with serving() as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")
        async with watch(kube, transform=tag) as watcher:
            listed = await watcher.next_batch()
            server.modify("web-0", tier="x")
            [modified] = await watcher.next_batch()
            await away_then_compacted_small(server)
            relisted = await watcher.next_batch()
    seen = [e for e in [*listed, modified, *relisted] if e.type != "DELETED"]
    assert all(e.object.metadata.labels["seen"] == "yes" for e in seen)
    # The synthesized DELETED carries a tombstone with the identity the watcher kept (the
    # watcher keeps no objects): no transform applies to it, it may expect a full object.
    [deleted] = [e for e in relisted if e.type == "DELETED"]
    assert deleted.final_state_unknown
    assert deleted.object.metadata.name == "web-1"
    assert deleted.object.metadata.resource_version == "102"
    assert deleted.object.metadata.uid and deleted.object.spec is None


async def away_then_compacted_small(server: WatchServer) -> None:
    server.cut_watches()
    server.delete("web-1")
    server.compact()


async def test_transform_sees_each_object_once_and_repeats_are_still_dropped() -> None:
    calls: list[str] = []

    def record(obj: dict[str, Any]) -> dict[str, Any]:
        calls.append(obj["metadata"]["resourceVersion"])
        return {"metadata": obj["metadata"], "kept": True}

    line = (
        b'{"type":"ADDED","object":{"metadata":{"name":"web-0","namespace":"ns",'
        b'"uid":"u1","resourceVersion":"101"},"spec":{"big":"x"}}}\n'
    )
    pods_as_dicts = custom_resource(group="", version="v1", kind="Pod", plural="pods")
    async with serving() as (server, kube):
        server.raw_watch_lines.append([line, line])
        watcher = kube.resource(pods_as_dicts).watch(
            backoff=FAST, resource_version="100", transform=record
        )
        async with watcher:
            [event] = await watcher.next_batch()
            server.rv = 101
            server.create("web-1")
            [second] = await watcher.next_batch()
    assert event.object == {"metadata": event.object["metadata"], "kept": True}
    assert second.object["metadata"]["name"] == "web-1"
    assert calls == ["101", "102"]


async def test_transform_must_be_callable() -> None:
    async with serving() as (server, kube):
        with pytest.raises(ValueError, match="transform"):
            kube.pods.watch(transform="drop")  # type: ignore[arg-type]
        assert server.requests == []
