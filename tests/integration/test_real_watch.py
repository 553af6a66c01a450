"""The resilient watch against a real kube-apiserver: the integration tier.

The same scenarios as ``tests/test_watch.py``, with the faults made by a real server:
events in order, bookmarks from the watch cache, a 410 forced by compacting etcd, and an
API server restart. Every test applies the events it receives to a strict :class:`View`
(an ADDED for a name it holds, a MODIFIED or DELETED for one it does not, or an event
older than what it saw for that name fail at once), so "nothing lost, nothing repeated" is
checked on every event, and ends by comparing the view with the server's list.

What kube-apiserver 1.20 does, as these tests rely on it:

- Bookmarks come from the watch cache only (configmaps have none here: the server runs with
  ``--watch-cache-sizes=configmaps#0``), and 1.20 sends one per watch, about 2 s before the
  watch's ``timeoutSeconds`` ends, and only when the cache has processed a change of the
  resource (in any namespace) since the watch started; the bookmark carries that change's
  resourceVersion. No periodic (per-minute) bookmarks: those came in later releases.
- A watch from a resourceVersion etcd has compacted answers ``200`` and one ``ERROR`` event,
  a Status with ``code: 410``, ``reason: "Expired"``, ``message: "The resourceVersion for
  the provided watch is too old."``, then ends. A list at such an exact version is an
  HTTP 410 with the same reason.

To make a watcher miss changes at a chosen moment, its client reaches the server through a
TCP forwarder (:mod:`tests.helpers.partition`) that can cut it off, while a second client
writes directly. Resource versions are opaque to kubeasync; these tests compare them as
numbers only to check ordering on this (etcd-backed) server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

import kubeasync
from kubeasync import (
    AddedEvent,
    BookmarkEvent,
    DeletedEvent,
    ErrorEvent,
    Gone,
    ModifiedEvent,
    Watcher,
    WatchEvent,
)
from kubeasync.models import ConfigMap, Pod
from tests.helpers.partition import partitioned_client
from tests.helpers.waiting import FAST, eventually

if TYPE_CHECKING:
    from tests.integration.conftest import RealApiServer

SUITE = {"suite": "watch"}
MODELS: dict[str, type[Any]] = {"pods": Pod, "config_maps": ConfigMap}


def body(plural: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name, "labels": SUITE if labels is None else labels}}
    if plural == "pods":  # stays Pending: there is no scheduler
        obj["spec"] = {"containers": [{"name": "c", "image": "example.invalid/none"}]}
    return obj


def rv_of(obj: Any) -> str:
    version: str = obj.metadata.resource_version
    return version


async def next_event(watcher: Any, timeout: float = 30) -> Any:
    return await asyncio.wait_for(watcher.__anext__(), timeout)


class View:
    """The caller's view, name -> resourceVersion, built from events only, strictly."""

    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.uids: dict[str, str | None] = {}
        self.newest: dict[str, int] = {}
        self.events: list[WatchEvent[Any]] = []

    def apply(self, event: WatchEvent[Any]) -> None:
        if isinstance(event, BookmarkEvent):
            return
        self.events.append(event)
        meta = event.object.metadata
        name, version = meta.name, meta.resource_version
        newest = self.newest.get(name)
        if isinstance(event, DeletedEvent):
            assert name in self.objects, f"DELETED for {name}, which the view does not have"
            assert meta.uid == self.uids[name], f"DELETED for another {name} than the one held"
            # A deletion inferred by a relist carries the last version seen, a real one a newer.
            assert newest is None or int(version) >= newest, f"DELETED {name} goes back in time"
            del self.objects[name]
        else:
            if isinstance(event, AddedEvent):
                assert name not in self.objects, f"ADDED for {name}, which the view already has"
            else:
                assert isinstance(event, ModifiedEvent), event
                assert name in self.objects, f"MODIFIED for {name}, which the view does not have"
                assert self.uids[name] == meta.uid, f"MODIFIED for another {name}"
            assert newest is None or int(version) > newest, (
                f"{event.type} {name} at {version} repeats or goes back from {newest}"
            )
            self.objects[name] = version
            self.uids[name] = meta.uid
        self.newest[name] = int(version)

    def inferred_deletions(self) -> list[str]:
        return [e.object.metadata.name for e in self.events
                if isinstance(e, DeletedEvent) and e.final_state_unknown]


async def server_state(api: Any, namespace: str) -> dict[str, str]:
    page = await api.list(namespace=namespace, label_selector=SUITE)
    return {o.metadata.name: rv_of(o) for o in page.items}


async def converged(view: View, api: Any, namespace: str, consumer: asyncio.Task[None],
                    timeout: float = 30) -> dict[str, str]:
    """Wait until the view equals the server's list (the server is read once per try);
    raises at once what made the consumer fail (a repeated or lost event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if consumer.done():
            consumer.result()
            raise AssertionError("the watch ended")
        server = await server_state(api, namespace)
        if view.objects == server:
            return server
        if loop.time() > deadline:
            raise AssertionError(f"the view {view.objects} never converged to {server}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def consuming(watcher: Watcher[Any], view: View) -> AsyncIterator[asyncio.Task[None]]:
    """Apply every event of ``watcher`` to ``view`` in the background."""

    async def consume() -> None:
        async for event in watcher:
            view.apply(event)

    task = asyncio.create_task(consume())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.aclose()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


# --------------------------------------------------------------------------- order and types


@pytest.mark.parametrize("plural", ["pods", "config_maps"])
async def test_create_update_delete_arrive_in_order_and_typed(
    real_kube: kubeasync.Client, namespace: str, plural: str
) -> None:
    api = getattr(real_kube, plural)
    model = MODELS[plural]
    first = await api.create(body(plural, "a"), namespace=namespace)
    await api.create(body(plural, "unwatched", labels={}), namespace=namespace)

    async with api.watch(namespace=namespace, label_selector=SUITE, backoff=FAST) as events:
        initial = await next_event(events)
        assert type(initial) is AddedEvent and type(initial.object) is model
        assert (initial.object.metadata.name, rv_of(initial.object)) == ("a", rv_of(first))
        checkpoint = events.resource_version
        assert checkpoint is not None

        b = await api.create(body(plural, "b"), namespace=namespace)
        a2 = await api.patch("a", {"metadata": {"annotations": {"step": "1"}}},
                             namespace=namespace)
        await api.patch("unwatched", {"metadata": {"annotations": {"step": "1"}}},
                        namespace=namespace)
        await api.delete("b", namespace=namespace, grace_period_seconds=0)
        live = [await next_event(events)]
        while type(live[-1]) is not DeletedEvent:
            live.append(await next_event(events))

    # A pod's deletion, even with grace_period_seconds=0, is first a MODIFIED setting its
    # deletionTimestamp, then the DELETED; a configmap goes at once.
    deleting = [(ModifiedEvent, "b")] if plural == "pods" else []
    assert [(type(e), e.object.metadata.name) for e in live] == [
        (AddedEvent, "b"), (ModifiedEvent, "a"), *deleting, (DeletedEvent, "b")]
    assert all(type(e.object) is model for e in live)
    assert rv_of(live[0].object) == rv_of(b)
    assert rv_of(live[1].object) == rv_of(a2)
    assert live[1].object.metadata.annotations == {"step": "1"}
    if deleting:
        assert live[2].object.metadata.deletion_timestamp is not None
    assert live[-1].object.metadata.uid == b.metadata.uid
    assert not live[-1].final_state_unknown
    assert events.resource_version == rv_of(live[-1].object)

    # The raw stream from the checkpoint replays exactly the same changes.
    async with api.watch_stream(namespace=namespace, label_selector=SUITE,
                                resource_version=checkpoint, bookmarks=False,
                                timeout_seconds=30) as stream:
        replayed = [await next_event(stream) for _ in live]
    assert [(type(e), e.object.metadata.name, rv_of(e.object)) for e in replayed] == [
        (type(e), e.object.metadata.name, rv_of(e.object)) for e in live]
    assert all(type(e.object) is model for e in replayed)


# --------------------------------------------------------------------------- bookmarks


@contextlib.asynccontextmanager
async def churn(api: Any, name: str, namespace: str) -> AsyncIterator[list[str]]:
    """Change an object the watch does not select, every 0.2 s, while the context is open:
    the watch cache only sends a bookmark when it processed a change since the watch began."""
    versions: list[str] = []

    async def run() -> None:
        for i in range(1000):
            obj = await api.patch(name, {"metadata": {"annotations": {"n": str(i)}}},
                                  namespace=namespace)
            versions.append(rv_of(obj))
            await asyncio.sleep(0.2)

    task = asyncio.create_task(run())
    try:
        yield versions
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_bookmarks_are_yielded_when_asked_and_move_the_resource_version(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    pods = real_kube.pods
    watched = await pods.create(body("pods", "watched"), namespace=namespace)
    await pods.create(body("pods", "other", labels={}), namespace=namespace)
    # timeout_seconds=3: each watch lasts 3-5 s and 1.20 bookmarks it 2 s before its end.
    async with pods.watch(namespace=namespace, label_selector=SUITE, bookmarks=True,
                          timeout_seconds=3, backoff=FAST) as events:
        initial = await next_event(events)
        assert type(initial) is AddedEvent and initial.object.metadata.name == "watched"
        async with churn(pods, "other", namespace) as versions:
            bookmark = await next_event(events)
        assert type(bookmark) is BookmarkEvent and type(bookmark.object) is Pod
        version = rv_of(bookmark.object)
        # Only kind, apiVersion and the resourceVersion are set.
        assert bookmark.object.metadata.name is None and bookmark.object.kind == "Pod"
        assert events.resource_version == version
        # It is the collection's progress, past every change the watch selected.
        assert version != rv_of(watched) and int(version) >= int(versions[0])

        changed = await pods.patch("watched", {"metadata": {"labels": {"x": "1"}}},
                                   namespace=namespace)
        event = await next_event(events)
        while type(event) is BookmarkEvent:
            event = await next_event(events)
        assert type(event) is ModifiedEvent and rv_of(event.object) == rv_of(changed)
        assert events.resource_version == rv_of(changed)


async def test_bookmarks_not_asked_for_are_not_yielded_but_move_the_resource_version(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    pods = real_kube.pods
    await pods.create(body("pods", "watched"), namespace=namespace)
    await pods.create(body("pods", "other", labels={}), namespace=namespace)
    async with pods.watch(namespace=namespace, label_selector=SUITE, bookmarks=False,
                          timeout_seconds=3, backoff=FAST) as events:
        await next_event(events)
        listed = events.resource_version
        waiting = asyncio.create_task(events.__anext__())
        try:
            async with churn(pods, "other", namespace):
                await eventually(lambda: events.resource_version != listed,
                                 "a bookmark moved the resource version")
            moved = events.resource_version
            assert moved is not None and int(moved) > int(listed or 0)
            assert not waiting.done(), f"an event was yielded: {waiting.result()}"

            changed = await pods.patch("watched", {"metadata": {"labels": {"x": "1"}}},
                                       namespace=namespace)
            event = await asyncio.wait_for(waiting, 30)
        finally:
            waiting.cancel()
        assert type(event) is ModifiedEvent and rv_of(event.object) == rv_of(changed)
        assert events.resource_version == rv_of(changed)


# --------------------------------------------------------------------------- 410 Gone


async def test_a_watch_from_a_compacted_resource_version_relists_and_converges(
    real_kube: kubeasync.Client,
    real_config: kubeasync.ClusterConfig,
    real_apiserver: RealApiServer,
    namespace: str,
) -> None:
    maps = real_kube.config_maps  # configmaps have no watch cache here: watches read etcd
    for i in range(5):
        await maps.create(body("config_maps", f"c{i}"), namespace=namespace)
    c3 = await maps.get("c3", namespace=namespace)
    view = View()
    async with partitioned_client(real_config) as (kube, net):
        # timeout_seconds=1: the server ends each watch after 1 s, and the watcher watches
        # again from its last resourceVersion, without listing.
        watcher = kube.config_maps.watch(namespace=namespace, label_selector=SUITE,
                                         timeout_seconds=1, backoff=FAST)
        async with consuming(watcher, view) as consumer:
            await converged(view, maps, namespace, consumer)
            for i in range(4):
                await maps.patch("c0", {"data": {"i": str(i)}}, namespace=namespace)
                await converged(view, maps, namespace, consumer)
                await asyncio.sleep(0.5)
            # Watched again after each timeout, never listed again.
            assert watcher.stats.watches >= 2 and watcher.stats.resyncs == 1

            net.partition()
            away_from = watcher.resource_version
            assert away_from is not None
            await maps.create(body("config_maps", "c5"), namespace=namespace)
            await maps.patch("c1", {"data": {"changed": "yes"}}, namespace=namespace)
            await maps.delete("c2", namespace=namespace)
            await maps.delete("c3", namespace=namespace)
            await maps.create(body("config_maps", "c3"), namespace=namespace)
            await maps.patch("c4", {"data": {"n": "1"}}, namespace=namespace)
            await maps.patch("c4", {"data": {"n": "2"}}, namespace=namespace)
            await real_apiserver.compact()

            # What the watcher will meet: the real server's answer for that version.
            async with maps.watch_stream(namespace=namespace, label_selector=SUITE,
                                         resource_version=away_from,
                                         timeout_seconds=10) as stream:
                answer = [event async for event in stream]
            assert len(answer) == 1 and type(answer[0]) is ErrorEvent, answer
            status = answer[0].object
            assert (status.code, status.reason) == (410, "Expired")
            assert "too old" in (status.message or "")
            assert isinstance(answer[0].to_error(), Gone)

            events_before = len(view.events)
            net.heal()
            await converged(view, maps, namespace, consumer)
            assert not consumer.done()
            stats = watcher.stats

    # The watcher met the 410 and relisted once; the relist produced the six changes.
    assert stats.failures["Gone"] == 1 and stats.resyncs == 2
    assert (stats.resync_events, stats.inferred_deletions) == (6, 2)
    after = [(type(e).__name__, e.object.metadata.name) for e in view.events[events_before:]]
    assert sorted(after) == sorted([
        ("AddedEvent", "c5"), ("ModifiedEvent", "c1"), ("DeletedEvent", "c2"),
        ("DeletedEvent", "c3"), ("AddedEvent", "c3"), ("ModifiedEvent", "c4")])
    # The old c3 goes before the new one; both deletions were inferred by the relist.
    assert after.index(("DeletedEvent", "c3")) < after.index(("AddedEvent", "c3"))
    assert sorted(view.inferred_deletions()) == ["c2", "c3"]
    assert view.uids["c3"] != c3.metadata.uid


# --------------------------------------------------------------------------- restart


async def test_watches_survive_an_api_server_restart_with_writes_while_away(
    real_kube: kubeasync.Client,
    real_config: kubeasync.ClusterConfig,
    real_apiserver: RealApiServer,
    namespace: str,
) -> None:
    # Both through the same restart (stop + start take ~15 s): configmaps are watched
    # straight from etcd, pods from the watch cache, which is rebuilt by the restart. Here
    # both resume from the old resourceVersion without a relist (nothing writes to etcd
    # between the stop and the cache's first list: the controller manager runs without
    # leader election); on a busier cluster the pods' watcher would meet a 410 and relist.
    plurals = ["config_maps", "pods"]
    apis = {plural: getattr(real_kube, plural) for plural in plurals}
    for plural, api in apis.items():
        for i in range(4):
            await api.create(body(plural, f"x{i}"), namespace=namespace)
    views = {plural: View() for plural in plurals}
    async with partitioned_client(real_config) as (kube, net), contextlib.AsyncExitStack() as stack:
        consumers = {}
        for plural in plurals:
            watcher = getattr(kube, plural).watch(namespace=namespace, label_selector=SUITE,
                                                  backoff=FAST)
            consumers[plural] = await stack.enter_async_context(
                consuming(watcher, views[plural]))
        for plural, api in apis.items():
            await converged(views[plural], api, namespace, consumers[plural])
            await api.patch("x0", {"metadata": {"annotations": {"before": "restart"}}},
                            namespace=namespace)
            await converged(views[plural], api, namespace, consumers[plural])

        await real_apiserver.stop()  # cuts the watches; the watchers back off and retry
        # The server cannot be written while it is down: keep the watchers away until the
        # writes after the restart are done, so that they resume from before them.
        net.partition()
        await real_apiserver.start()
        for plural, api in apis.items():
            await api.create(body(plural, "x4"), namespace=namespace)
            await api.patch("x1", {"metadata": {"annotations": {"after": "restart"}}},
                            namespace=namespace)
            await api.delete("x2", namespace=namespace, grace_period_seconds=0)
            await api.delete("x3", namespace=namespace, grace_period_seconds=0)
            await api.create(body(plural, "x3"), namespace=namespace)
        net.heal()
        for plural, api in apis.items():
            server = await converged(views[plural], api, namespace, consumers[plural])
            assert sorted(server) == ["x0", "x1", "x3", "x4"], plural
            deleted = [e.object.metadata.name for e in views[plural].events
                       if isinstance(e, DeletedEvent)]
            assert sorted(deleted) == ["x2", "x3"], plural
