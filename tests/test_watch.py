"""The resilient watcher against the scripted server over real HTTP, one fault at a time.

Every test applies the events it receives to a strict :class:`View` (an ADDED for a key it
holds, a MODIFIED or DELETED for one it does not, or a MODIFIED that changes nothing all
fail at once), so "no duplicate, no loss" is checked on every event, and most end by
comparing the view with the server's store.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

import kubeasync
from kubeasync import Backoff, BookmarkEvent, DeletedEvent, Watcher, WatchEvent
from kubeasync.core.descriptor import custom_resource
from kubeasync.models import Pod
from tests.helpers.watch_server import Fault, WatchServer, serving

FAST = Backoff(initial=0.001, maximum=0.004)


@dataclass(frozen=True)
class RecordingBackoff(Backoff):
    """Records what the watcher asks for, and waits next to nothing."""

    calls: list[tuple[int, float | None]] = field(default_factory=list)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        self.calls.append((attempt, retry_after))
        return 0.001


def watch(kube: kubeasync.Client, **options: Any) -> Watcher[Any]:
    options.setdefault("backoff", FAST)
    options.setdefault("send_initial_events", False)
    return kube.pods.watch(**options)


def identity(obj: Any) -> tuple[tuple[str, str], str]:
    if isinstance(obj, dict):
        meta = obj["metadata"]
        return (meta["namespace"], meta["name"]), meta["resourceVersion"]
    meta = obj.metadata
    return (meta.namespace, meta.name), meta.resource_version


class View:
    """The caller's view of the collection, built from events only."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], str] = {}
        self.events: list[tuple[str, str, str]] = []

    def apply(self, event: WatchEvent[Any]) -> None:
        if isinstance(event, BookmarkEvent):
            return
        key, version = identity(event.object)
        self.events.append((event.type, key[1], version))
        if event.type == "ADDED":
            assert key not in self.objects, f"ADDED for {key}, which the view already has"
            self.objects[key] = version
        elif event.type == "MODIFIED":
            assert key in self.objects, f"MODIFIED for {key}, which the view does not have"
            assert self.objects[key] != version, f"MODIFIED for {key} repeats {version}"
            self.objects[key] = version
        else:
            assert event.type == "DELETED", event
            assert key in self.objects, f"DELETED for {key}, which the view does not have"
            del self.objects[key]

    async def take(self, watcher: Watcher[Any], count: int) -> list[tuple[str, str, str]]:
        """Apply the next ``count`` events (bookmarks included) and return them."""
        start = len(self.events)
        for _ in range(count):
            self.apply(await asyncio.wait_for(watcher.__anext__(), 5))
        return self.events[start:]

    async def until(self, watcher: Watcher[Any], name: str) -> list[tuple[str, str, str]]:
        """Apply events until one for ``name`` arrives; return them all."""
        start = len(self.events)
        while not self.events[start:] or self.events[-1][1] != name:
            self.apply(await asyncio.wait_for(watcher.__anext__(), 5))
        return self.events[start:]


async def acquired_connections(kube: kubeasync.Client) -> int:
    in_use: int = kube.session.transport.connections()["in_use"]  # type: ignore[attr-defined]
    return in_use


async def until_no_watch_streams(server: WatchServer) -> None:
    for _ in range(500):
        if server.active_watches == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server still streams {server.active_watches} watches")


# ------------------------------------------------------------------ the normal path


async def test_initial_list_is_paginated_and_yielded_as_added_then_changes_follow() -> None:
    async with serving() as (server, kube):
        for i in range(5):
            server.create(f"web-{i}")
        view = View()
        async with watch(kube, page_size=2) as watcher:
            assert await view.take(watcher, 4) == [
                ("ADDED", f"web-{i}", str(101 + i)) for i in range(4)
            ]
            assert watcher.resource_version is None  # the initial state is not complete
            await view.take(watcher, 1)
            assert watcher.resource_version == "105"
            assert view.objects == server.state()

            server.modify("web-1", tier="x")
            server.delete("web-2")
            server.create("web-5")
            assert await view.take(watcher, 3) == [
                ("MODIFIED", "web-1", "106"), ("DELETED", "web-2", "107"),
                ("ADDED", "web-5", "108"),
            ]
            assert view.objects == server.state()
            assert watcher.resource_version == "108"
    lists = server.list_requests()
    assert [q.get("limit") for q in lists] == ["2", "2", "2"]
    assert "continue" not in lists[0] and lists[1]["continue"] and lists[2]["continue"]
    [watch_query] = server.watch_requests()
    assert watch_query["resourceVersion"] == "105"
    assert watch_query["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch_query["timeoutSeconds"]) < 600


async def test_selectors_and_all_namespaces_reach_the_server() -> None:
    async with serving() as (server, kube):
        server.create("web-0", labels={"app": "web"})
        server.create("db-0", labels={"app": "db"})
        server.create("web-1", namespace="other", labels={"app": "web"})
        view = View()
        async with watch(kube, all_namespaces=True, label_selector={"app": "web"}) as watcher:
            await view.take(watcher, 2)
            server.create("web-2", namespace="third", labels={"app": "web"})
            server.create("db-1", labels={"app": "db"})
            server.create("web-3", labels={"app": "web"})
            await view.until(watcher, "web-3")
    assert sorted(view.objects) == [
        ("ns", "web-0"), ("ns", "web-3"), ("other", "web-1"), ("third", "web-2")
    ]
    assert {path for _, path, _ in server.requests} == {"/api/v1/pods"}
    assert all(query["labelSelector"] == "app=web" for _, _, query in server.requests)


async def test_custom_resources_watch_as_dicts() -> None:
    pods_as_dicts = custom_resource(group="", version="v1", kind="Pod", plural="pods")
    async with serving() as (server, kube):
        server.create("web-0")
        view = View()
        async with kube.resource(pods_as_dicts).watch(
            backoff=FAST, send_initial_events=False
        ) as watcher:
            await view.take(watcher, 1)
            # Away (its watch is not open yet) while its version is compacted.
            server.delete("web-0")
            server.create("web-1")
            server.compact()
            events = await view.take(watcher, 2)
    assert [(kind, name) for kind, name, _ in events] == [("ADDED", "web-1"), ("DELETED", "web-0")]
    assert view.objects == server.state()


async def test_resuming_from_a_checkpoint_watches_without_listing() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        view = View()
        async with watch(kube) as watcher:
            await view.take(watcher, 1)
            saved = watcher.resource_version
        server.modify("web-0", tier="x")
        server.create("web-1")
        lists_before = len(server.list_requests())
        async with watch(kube, resource_version=saved) as resumed:
            events = await view.take(resumed, 2)
    assert [e[:2] for e in events] == [("MODIFIED", "web-0"), ("ADDED", "web-1")]
    assert len(server.list_requests()) == lists_before
    assert server.watch_requests()[-1]["resourceVersion"] == saved


# ------------------------------------------------------------------ faults survived


async def test_survives_stream_cut_mid_line_without_duplicate_or_loss() -> None:
    async with serving() as (server, kube):
        for i in range(10):
            server.create(f"web-{i}")
        server.watch_faults.append(Fault.cut(after_events=4))
        view = View()
        async with watch(kube, resource_version="100") as watcher:
            events = await view.take(watcher, 10)
            # A cut of the live stream too, with a change made while reconnecting.
            server.cut_watches()
            server.modify("web-3", tier="x")
            assert await view.take(watcher, 1) == [("MODIFIED", "web-3", "111")]
    assert [version for _, _, version in events] == [str(v) for v in range(101, 111)]
    assert [q["resourceVersion"] for q in server.watch_requests()] == ["100", "104", "110"]
    assert view.objects == server.state()


async def test_survives_a_clean_end_of_stream_by_watching_again_from_the_last_version() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        view = View()
        async with watch(kube) as watcher:
            await view.take(watcher, 1)
            server.modify("web-0", tier="x")
            await view.take(watcher, 1)
            server.end_watches()
            server.create("web-1")
            await view.until(watcher, "web-1")
    assert [q["resourceVersion"] for q in server.watch_requests()] == ["101", "102"]
    assert view.objects == server.state()
    assert len(server.list_requests()) == 1


async def test_survives_a_server_repeating_an_event_without_yielding_it_twice() -> None:
    def line(kind: str, version: str) -> bytes:
        return (
            b'{"type":"' + kind.encode() + b'","object":{"metadata":{"name":"web-0",'
            b'"namespace":"ns","uid":"u1","resourceVersion":"' + version.encode() + b'"}}}\n'
        )

    async with serving() as (server, kube):
        server.raw_watch_lines.append(
            [line("ADDED", "101"), line("ADDED", "101"), line("MODIFIED", "102"),
             line("MODIFIED", "102")]
        )
        view = View()
        async with watch(kube, resource_version="100") as watcher:
            assert await view.take(watcher, 2) == [
                ("ADDED", "web-0", "101"), ("MODIFIED", "web-0", "102")
            ]
            server.rv = 102
            server.create("web-1")
            assert await view.take(watcher, 1) == [("ADDED", "web-1", "103")]
    assert [q["resourceVersion"] for q in server.watch_requests()] == ["100", "102"]


async def relist_while_away(server: WatchServer) -> None:
    """Changes made while a watcher is disconnected, then the history is compacted."""
    server.modify("web-0", tier="changed")
    server.delete("web-1")
    server.delete("web-2")
    server.create("web-2")  # same name, new uid
    server.create("web-9")
    server.compact()


async def converge_after_relist(server: WatchServer, kube: kubeasync.Client,
                                **options: Any) -> list[tuple[str, str, str]]:
    for i in range(5):
        server.create(f"web-{i}")
    view = View()
    async with watch(kube, **options) as watcher:
        await view.take(watcher, 5)
        server.modify("web-4", tier="live")
        await view.take(watcher, 1)  # the watch is live
        server.cut_watches()
        await relist_while_away(server)
        events = await view.take(watcher, 5)
        assert view.objects == server.state()
        # Nothing more comes from the relist: the next event is the next change.
        server.create("zz-marker")
        assert await view.take(watcher, 1) == [("ADDED", "zz-marker", str(server.rv))]
        assert watcher.resource_version == str(server.rv)
        # The statistics tell the same story: one expiry, one resync after the first, the
        # five events it produced, two of them inferred deletions (web-1, the old web-2).
        stats = watcher.stats
        assert (stats.resyncs, stats.resync_events, stats.inferred_deletions) == (2, 5, 2)
        assert stats.failures["Gone"] == 1
        assert stats.watches >= 2
    assert view.objects == server.state()
    return events


async def test_survives_410_expired_error_event_by_relisting_and_converging() -> None:
    async with serving() as (server, kube):
        events = await converge_after_relist(server, kube)
        assert [query.get("continue") for query in server.list_requests()] == [None, None]
    # Only what changed is reported; web-3 and web-4 are untouched by the relist.
    assert [(kind, name) for kind, name, _ in events] == [
        ("MODIFIED", "web-0"), ("DELETED", "web-2"), ("ADDED", "web-2"),
        ("ADDED", "web-9"), ("DELETED", "web-1"),
    ]
    # The DELETED for web-1 carries the last resourceVersion the caller saw.
    assert ("DELETED", "web-1", "102") in events


async def test_a_deletion_inferred_by_a_relist_is_a_flagged_tombstone() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        server.create("web-1")
        async with watch(kube) as watcher:
            listed = [await watcher.__anext__() for _ in range(2)]
            uid = listed[1].object.metadata.uid
            server.delete("web-0")
            live = await watcher.__anext__()
            server.cut_watches()
            server.delete("web-1")  # while away: only the relist can reveal it
            server.compact()
            inferred = await watcher.__anext__()
    # a deletion the watch delivered: the server's final object
    assert isinstance(live, DeletedEvent) and not live.final_state_unknown
    assert live.object.spec is not None
    # a deletion inferred from the relist: a typed tombstone with the identity it had
    assert isinstance(inferred, DeletedEvent) and inferred.final_state_unknown
    assert isinstance(inferred.object, Pod) and inferred.object.kind == "Pod"
    assert inferred.object.metadata.name == "web-1" and inferred.object.metadata.uid == uid
    assert inferred.object.metadata.resource_version == listed[1].object.metadata.resource_version
    assert inferred.object.spec is None


async def test_survives_http_410_by_relisting_and_converging() -> None:
    async with serving(gone_as_http=True) as (server, kube):
        events = await converge_after_relist(server, kube)
        assert len(server.list_requests()) == 2
    assert sorted((kind, name) for kind, name, _ in events) == [
        ("ADDED", "web-2"), ("ADDED", "web-9"), ("DELETED", "web-1"), ("DELETED", "web-2"),
        ("MODIFIED", "web-0"),
    ]


async def test_survives_410_by_resyncing_with_initial_events_and_converging() -> None:
    async with serving(supports_initial_events=True) as (server, kube):
        events = await converge_after_relist(server, kube, send_initial_events=None)
        assert server.list_requests() == []
    assert sorted((kind, name) for kind, name, _ in events) == [
        ("ADDED", "web-2"), ("ADDED", "web-9"), ("DELETED", "web-1"), ("DELETED", "web-2"),
        ("MODIFIED", "web-0"),
    ]


async def test_survives_an_expired_continue_token_by_listing_again() -> None:
    async with serving() as (server, kube):
        for i in range(5):
            server.create(f"web-{i}")
        view = View()
        async with watch(kube, page_size=2) as watcher:
            await view.take(watcher, 2)
            server.expire_continue_tokens()
            server.modify("web-0", tier="x")
            server.delete("web-3")
            server.create("zz-marker")
            events = await view.until(watcher, "zz-marker")
    assert view.objects == server.state()
    assert [(kind, name) for kind, name, _ in events] == [
        ("MODIFIED", "web-0"), ("ADDED", "web-2"), ("ADDED", "web-4"), ("ADDED", "zz-marker")
    ]


async def test_survives_a_stalled_stream_through_the_idle_timeout() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        server.watch_faults.append(Fault.stall())
        view = View()
        async with watch(kube, idle_timeout=0.2) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")  # sent by no one until the stalled watch is replaced
            await view.until(watcher, "web-1")
            await until_no_watch_streams_but(server, 1)  # the stalled one saw us leave
            assert watcher.stats.failures["RequestTimeout"] >= 1  # the idle timeout
            assert watcher.stats.resyncs == 1  # a stall costs a reconnection, not a relist
    # (A later reconnection, if the quiet second watch also idles out, is legitimate.)
    assert [q["resourceVersion"] for q in server.watch_requests()][:2] == ["101", "101"]
    assert view.objects == server.state()


async def until_no_watch_streams_but(server: WatchServer, count: int) -> None:
    for _ in range(500):
        if server.active_watches == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server streams {server.active_watches} watches, not {count}")


async def test_survives_429_honouring_retry_after() -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        server.create("web-0")
        server.watch_faults.append(Fault.status(429, "TooManyRequests", retry_after="7"))
        server.watch_faults.append(
            Fault.status(429, "TooManyRequests", retry_after_seconds=3)
        )
        view = View()
        async with watch(kube, backoff=backoff) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")
            await view.until(watcher, "web-1")
    assert backoff.calls == [(0, 7.0), (1, 3.0)]
    assert len(server.watch_requests()) == 3
    assert view.objects == server.state()


async def test_survives_5xx_and_connection_failures_with_growing_backoff() -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        server.create("web-0")
        server.list_faults.append(Fault.status(503, "ServiceUnavailable"))
        server.watch_faults.extend([
            Fault.status(500, "InternalError"),
            Fault.status(502, ""),
            Fault.cut(after_events=0),
        ])
        view = View()
        async with watch(kube, backoff=backoff) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")
            await view.until(watcher, "web-1")
    assert backoff.calls == [(0, None), (1, None), (2, None), (3, None)]
    assert view.objects == server.state()


def test_backoff_grows_with_jitter_up_to_its_maximum_and_honours_retry_after() -> None:
    backoff = Backoff()
    for attempt, low in [(0, 0.8), (1, 1.6), (2, 3.2), (3, 6.4), (4, 12.8)]:
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(low <= d <= min(2 * low, 30.0) for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered
    assert all(backoff.delay(attempt) == 30.0 for attempt in (6, 10, 1000))
    assert backoff.delay(3, retry_after=7.0) == 7.0
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0)
    with pytest.raises(ValueError, match="maximum"):
        Backoff(initial=5, maximum=1)


async def test_backoff_count_starts_again_after_a_healthy_period() -> None:
    backoff = RecordingBackoff(reset_after=0.5)
    async with serving() as (server, kube):
        server.create("web-0")
        server.watch_faults.extend([Fault.status(503, ""), Fault.status(503, "")])
        view = View()
        async with watch(kube, backoff=backoff) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")
            await view.until(watcher, "web-1")
            await asyncio.sleep(0.55)  # longer than reset_after without a failure
            server.watch_faults.append(Fault.status(503, ""))
            server.cut_watches()
            server.create("web-2")
            await view.until(watcher, "web-2")
    assert [attempt for attempt, _ in backoff.calls] == [0, 1, 0, 1]


async def test_bookmarks_advance_the_resource_version_without_being_yielded() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        view = View()
        async with watch(kube) as watcher:
            await view.take(watcher, 1)
            server.modify("web-0", tier="x")
            await view.take(watcher, 1)
            server.create("elsewhere", namespace="other")  # not in this watch
            server.bookmark()
            server.end_watches()
            server.create("web-1")
            events = await view.take(watcher, 1)
            assert watcher.resource_version == "104"
    assert events == [("ADDED", "web-1", "104")]
    assert [q["resourceVersion"] for q in server.watch_requests()] == ["101", "103"]


async def test_bookmarks_are_yielded_when_asked() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        async with watch(kube, bookmarks=True) as watcher:
            await View().take(watcher, 1)
            server.create("elsewhere", namespace="other")
            server.bookmark()
            event = await asyncio.wait_for(watcher.__anext__(), 5)
            assert isinstance(event, BookmarkEvent)
            assert event.object.metadata.resource_version == "102"
            assert watcher.resource_version == "102"


# ------------------------------------------------------------------ sendInitialEvents


async def test_initial_state_comes_from_send_initial_events_when_supported() -> None:
    async with serving(supports_initial_events=True) as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")
        view = View()
        async with kube.pods.watch(backoff=FAST) as watcher:
            await view.take(watcher, 3)
            # The initial events are yielded once the initial-events-end bookmark has been
            # read, so the checkpoint is set as soon as the last of them is yielded.
            assert watcher.resource_version == "103"
            server.create("web-3")
            await view.take(watcher, 1)
            assert watcher.resource_version == "104"
    assert view.objects == server.state()
    assert server.list_requests() == []
    [query] = server.watch_requests()  # the same connection went on watching
    assert query["sendInitialEvents"] == "true"
    assert query["resourceVersionMatch"] == "NotOlderThan"
    assert "resourceVersion" not in query


async def test_initial_state_falls_back_to_list_when_the_server_answers_422() -> None:
    async with serving(supports_initial_events=False) as (server, kube):
        server.create("web-0")
        view = View()
        async with kube.pods.watch(backoff=FAST) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")
            await view.take(watcher, 1)
        kinds = [("watch" if q.get("watch") else "list", "sendInitialEvents" in q)
                 for _, _, q in server.requests]
        assert kinds == [("watch", True), ("list", False), ("watch", False)]
        # The answer is remembered for the session: the next watcher lists at once.
        async with kube.pods.watch(backoff=FAST) as again:
            view = View()
            await view.take(again, 2)
            server.create("web-2")
            await view.take(again, 1)
        assert [q.get("watch") for _, _, q in server.requests[3:]] == [None, "true"]
        # Asked for explicitly, the server's refusal is raised.
        with pytest.raises(kubeasync.Invalid):
            async for _ in kube.pods.watch(backoff=FAST, send_initial_events=True):
                pass


# ------------------------------------------------------------------ fatal answers


@pytest.mark.parametrize("step", ["list", "watch"])
async def test_forbidden_raises_out_of_the_loop(step: str) -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        faults = server.list_faults if step == "list" else server.watch_faults
        faults.append(Fault.status(403, "Forbidden", 'pods is forbidden: User "x"'))
        events = []
        watcher = watch(kube)
        with pytest.raises(kubeasync.Forbidden, match="forbidden"):
            async for event in watcher:
                events.append(event)
        assert len(events) == (0 if step == "list" else 1)
        assert watcher.closed
        assert [e async for e in watcher] == []
        assert await acquired_connections(kube) == 0


async def test_unauthorized_after_the_sessions_refresh_raises_out_of_the_loop() -> None:
    async with serving() as (server, kube):
        server.watch_faults.append(Fault.status(401, "Unauthorized", "Unauthorized"))
        with pytest.raises(kubeasync.Unauthorized):
            async for _ in watch(kube):
                pass


async def test_bad_options_raise_value_error_naming_the_argument_before_any_request() -> None:
    async with serving() as (server, kube):
        cases: list[tuple[dict[str, Any], str]] = [
            ({"timeout_seconds": 0}, "timeout_seconds"),
            ({"idle_timeout": 0}, "idle_timeout"),
            ({"page_size": -1}, "page_size"),
            ({"max_line_bytes": 0}, "max_line_bytes"),
            ({"send_initial_events": "yes"}, "send_initial_events"),
            ({"bookmarks": 1}, "bookmarks"),
            ({"resource_version": 5}, "resource_version"),
            ({"label_selector": 5}, "label_selector"),
            ({"field_selector": {"a": 1}}, "field_selector"),
            ({"backoff": 3}, "backoff"),
            ({"namespace": "ns", "all_namespaces": True}, "all_namespaces"),
            ({"namespace": "Not_Valid"}, "namespace"),
        ]
        for options, argument in cases:
            with pytest.raises(ValueError, match=argument):
                kube.pods.watch(**options)
        assert server.requests == []


# ------------------------------------------------------------------ closing


async def test_break_closes_the_connection_at_once() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        async for event in watch(kube):
            if event.object.metadata.name == "web-0":
                server.create("web-1")  # comes through the watch connection
            else:
                break
        assert await acquired_connections(kube) == 0  # no await in between: at once
        await until_no_watch_streams(server)


async def test_cancelling_the_task_closes_the_connection() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        watching = asyncio.Event()
        seen: list[str] = []

        async def consume() -> None:
            async for event in watch(kube):
                seen.append(event.object.metadata.name)
                if event.object.metadata.name == "web-0":
                    server.create("web-1")
                else:
                    watching.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(watching.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["web-0", "web-1"]
        assert await acquired_connections(kube) == 0
        await until_no_watch_streams(server)


async def test_aclose_and_async_with_close_the_connection() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        watcher = watch(kube)
        await View().take(watcher, 1)
        server.create("web-1")
        await View().take(watcher, 1)
        assert await acquired_connections(kube) == 1
        await watcher.aclose()
        await watcher.aclose()  # twice is fine
        assert await acquired_connections(kube) == 0
        assert [e async for e in watcher] == []

        async with watch(kube) as events:
            view = View()
            await view.take(events, 2)
            server.create("web-2")
            await view.take(events, 1)
            assert await acquired_connections(kube) == 1
        assert await acquired_connections(kube) == 0
        await until_no_watch_streams(server)
