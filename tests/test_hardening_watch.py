"""The watcher against servers that misbehave without end (issue 18): no hot loop, no
emptied cache, Retry-After capped, repeats dropped, and a health signal when it gets
nowhere. Over real HTTP, with the scripted watch server.

No timing assertions: loops are checked by what the backoff was asked for (every retry
went through it, and its count never started again), and where a rate is checked, it is
an upper bound derived from the backoff's shortest wait over the time measured, which a
slow machine can only make easier to meet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

import kubeasync
from kubeasync import Backoff
from kubeasync.runtime import watcher as watcher_module
from tests.helpers.waiting import eventually
from tests.helpers.watch_server import Fault, _event, serving
from tests.test_watch import RecordingBackoff, View, watch


@asynccontextmanager
async def draining(watcher: kubeasync.Watcher[Any]) -> AsyncIterator[list[Any]]:
    """Iterate ``watcher`` in a task while the block runs; yields the events so far."""
    events: list[Any] = []

    async def drain() -> None:
        async for event in watcher:
            events.append(event)

    task = asyncio.create_task(drain())
    try:
        yield events
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def attempts(backoff: RecordingBackoff) -> list[int]:
    return [attempt for attempt, _ in backoff.calls]


def page(items: list[dict[str, Any]], *, token: str | None = None, kind: str = "PodList",
         rv: str = "100") -> web.Response:
    metadata: dict[str, Any] = {"resourceVersion": rv}
    if token is not None:
        metadata["continue"] = token
    return web.json_response({"kind": kind, "apiVersion": "v1", "metadata": metadata,
                              "items": items})


# ------------------------------------------------------------------ defect 1: hot loops


@pytest.mark.parametrize("what", ["an already-seen event", "the same bookmark"])
async def test_a_server_ending_every_watch_with_nothing_new_is_asked_less_and_less(
    what: str,
) -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        pod = server.create("web-0")
        view = View()
        async with watch(kube, backoff=backoff) as watcher:
            await view.take(watcher, 1)
            if what == "an already-seen event":
                line = _event("ADDED", pod)
            else:
                line = _event("BOOKMARK", {"kind": "Pod", "apiVersion": "v1",
                                           "metadata": {"resourceVersion": str(server.rv)}})
            server.every_watch_lines = [line]
            async with draining(watcher) as events:
                await eventually(lambda: len(server.watch_requests()) >= 8, "8 watches")
            assert events == [], "nothing new was yielded"
            # Every reconnection went through the backoff, and its count only grew: bytes
            # that bring nothing new are not progress.
            assert attempts(backoff) == list(range(len(backoff.calls)))
            assert len(server.watch_requests()) <= len(backoff.calls) + 1
            assert watcher.stats.failures["TransportError"] == len(backoff.calls)


async def test_the_request_rate_of_such_a_server_is_bounded_by_the_backoff() -> None:
    # With 0.1, this server got ~2,500 watch requests per second, forever.
    shortest = 0.02
    backoff = Backoff(initial=shortest, maximum=0.16, jitter=0)
    async with serving() as (server, kube):
        pod = server.create("web-0")
        async with watch(kube, backoff=backoff) as watcher:
            await watcher.__anext__()
            server.every_watch_lines = [_event("ADDED", pod)]
            before = len(server.watch_requests())
            started = time.monotonic()
            async with draining(watcher):
                await asyncio.sleep(1.0)
            elapsed = time.monotonic() - started
            made = len(server.watch_requests()) - before
    # Every watch was preceded by a wait of at least the shortest delay.
    assert 1 <= made <= elapsed / shortest + 1, (made, elapsed)


async def test_a_continue_token_answering_410_forever_is_retried_through_the_backoff() -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")

        def expire(query: dict[str, str]) -> web.Response | None:
            if "continue" in query:
                return server._error(Fault.status(410, "Expired", "continue token expired"))
            return None

        server.list_hook = expire
        async with watch(kube, backoff=backoff, page_size=1) as watcher:
            async with draining(watcher) as events:
                await eventually(lambda: len(server.list_requests()) >= 10, "10 lists")
            # The first page's object is yielded once, however often it is listed again.
            assert [(e.type, e.object.metadata.name) for e in events] == [("ADDED", "web-0")]
            assert attempts(backoff) == list(range(len(backoff.calls)))
            assert watcher.stats.failures["Gone"] == len(backoff.calls)
            # Two lists (the first page, the expired token) per wait, never more.
            assert len(server.list_requests()) <= 2 * (len(backoff.calls) + 1)


@pytest.mark.parametrize("tokens", [["same", "same"], ["a", "b", "a"]])
async def test_a_continue_token_that_comes_back_is_an_error_and_a_backoff(
    tokens: list[str],
) -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        for i in range(4):
            server.create(f"web-{i}")
        pods = [server.pods[("ns", f"web-{i}")] for i in range(4)]

        def loop(query: dict[str, str]) -> web.Response | None:
            # The first page hands out tokens[0], the page for tokens[i] tokens[i + 1].
            sent = query.get("continue")
            position = 0 if sent is None else tokens.index(sent) + 1
            return page([pods[position]], token=tokens[position])

        server.list_hook = loop
        async with watch(kube, backoff=backoff, page_size=1) as watcher:
            async with draining(watcher) as events:
                await eventually(lambda: len(backoff.calls) >= 4, "4 retries")
            assert watcher.stats.failures["DecodeError"] == len(backoff.calls)
            assert attempts(backoff) == list(range(len(backoff.calls)))
            # Each listed page's object once; nothing from the page that handed a token back.
            names = [e.object.metadata.name for e in events]
            assert names == [f"web-{i}" for i in range(len(tokens) - 1)]


@pytest.mark.parametrize("tokens", [["same", "same"], ["a", "b", "a"]])
async def test_iterate_raises_on_a_continue_token_that_comes_back(tokens: list[str]) -> None:
    async with serving() as (server, kube):
        for i in range(4):
            server.create(f"web-{i}")
        pods = [server.pods[("ns", f"web-{i}")] for i in range(4)]

        def loop(query: dict[str, str]) -> web.Response | None:
            sent = query.get("continue")
            position = 0 if sent is None else tokens.index(sent) + 1
            return page([pods[position]], token=tokens[position])

        server.list_hook = loop
        names: list[str] = []
        with pytest.raises(kubeasync.DecodeError, match="continue token that was already sent"):
            async for pod in kube.pods.iterate(page_size=1):
                names.append(pod.metadata.name)
    # 0.1 yielded web-0 and web-1 thousands of times; now each page's objects come once,
    # and the page that handed a token back is not yielded at all.
    assert names == [f"web-{i}" for i in range(len(tokens) - 1)]
    assert len(server.list_requests()) == len(tokens)


# ------------------------------------------------------------------ defect 2: a relist that is not a list


@pytest.mark.parametrize("answer", [
    {"error": "upstream request timeout"},
    {},
    {"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": []},
    [],
])
async def test_a_relist_answered_by_something_else_is_retried_and_deletes_nothing(
    answer: Any,
) -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")
        view = View()
        async with watch(kube, backoff=backoff) as watcher:
            await view.take(watcher, 3)
            bad = [json.dumps(answer).encode()]

            def gateway(query: dict[str, str]) -> web.Response | None:
                if bad:
                    return web.Response(body=bad.pop(), content_type="application/json")
                return None

            server.list_hook = gateway
            # While the watcher is cut off: a change, then the history is compacted, so
            # that it comes back with 410 and relists.
            server.cut_watches()
            server.create("web-3")
            server.compact()
            events = await view.until(watcher, "web-3")
    # 0.1 reported web-0..2 DELETED here: the gateway's answer decoded as an empty list.
    assert events == [("ADDED", "web-3", str(server.rv))]
    assert view.objects == server.state()
    assert watcher.stats.failures["DecodeError"] == 1
    assert watcher.stats.inferred_deletions == 0


async def test_the_informer_store_keeps_its_objects_through_a_gateway_answer() -> None:
    async with serving() as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")
        async with kube.pods.informer(backoff=Backoff(initial=0.01, maximum=0.05),
                                      send_initial_events=False) as informer:
            await asyncio.wait_for(informer.wait_synced(), 10)
            changes = informer.changes(replay=False)
            first_change = asyncio.create_task(changes.__anext__())
            await asyncio.sleep(0)  # subscribed
            answers = [b'{"error": "upstream request timeout"}'] * 2

            def gateway(query: dict[str, str]) -> web.Response | None:
                if answers:
                    return web.Response(body=answers.pop(), content_type="application/json")
                return None

            server.list_hook = gateway
            server.cut_watches()
            server.create("web-3")
            server.compact()
            # The first change after the relist is the new object: nothing was deleted.
            change = await asyncio.wait_for(first_change, 10)
            assert (change.type, change.object.metadata.name) == ("added", "web-3")
            assert sorted(p.metadata.name for p in informer.list()) == [
                "web-0", "web-1", "web-2", "web-3"]
            assert informer.stats.failures["DecodeError"] == 2
            await changes.aclose()


# ------------------------------------------------------------------ defect 5: Retry-After


@pytest.mark.parametrize("fault", [
    Fault.status(429, "TooManyRequests", retry_after="3600"),
    Fault.status(429, "TooManyRequests", retry_after_seconds=3600),
    Fault.status(503, "ServiceUnavailable", retry_after="inf", retry_after_seconds=3600),
])
async def test_a_watcher_waits_at_most_its_backoffs_maximum_whatever_the_server_asks(
    fault: Fault,
) -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        server.watch_faults.append(fault)
        view = View()
        # 0.1 slept an hour here; the cap is the backoff's maximum (50 ms).
        async with watch(kube, backoff=Backoff(initial=0.01, maximum=0.05)) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")
            await view.until(watcher, "web-1")
            assert watcher.stats.throttled == 1
    assert len(server.watch_requests()) == 2


async def test_a_retry_after_that_is_inf_or_negative_leaves_the_wait_to_the_backoff() -> None:
    backoff = RecordingBackoff()
    async with serving() as (server, kube):
        server.create("web-0")
        server.watch_faults.extend([
            Fault.status(429, "TooManyRequests", retry_after="inf"),
            Fault.status(429, "TooManyRequests", retry_after="-5"),
            Fault.status(429, "TooManyRequests", retry_after_seconds=-5),
        ])
        view = View()
        async with watch(kube, backoff=backoff) as watcher:
            await view.take(watcher, 1)
            server.create("web-1")
            await view.until(watcher, "web-1")
            assert watcher.stats.throttled == 0
    assert backoff.calls == [(0, None), (1, None), (2, None)]


# ------------------------------------------------------------------ repeats


async def test_a_repeated_deleted_of_an_object_already_gone_is_dropped() -> None:
    async with serving() as (server, kube):
        pod = server.create("web-0")
        server.rv += 1
        deleted = _event("DELETED", {**pod, "metadata": {**pod["metadata"],
                                                        "resourceVersion": str(server.rv)}})
        view = View()
        async with watch(kube) as watcher:
            await view.take(watcher, 1)
            server.raw_watch_lines.append([deleted, deleted])
            server.cut_watches()
            # The DELETED once (0.1 yielded it twice): the strict view fails on a repeat.
            await view.take(watcher, 1)
            server.create("web-1")
            await view.until(watcher, "web-1")
    assert [kind for kind, _, _ in view.events] == ["ADDED", "DELETED", "ADDED"]


# ------------------------------------------------------------------ health


async def test_a_watcher_failing_forever_keeps_trying_warns_once_and_says_it_is_unhealthy(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watcher_module, "UNHEALTHY_AFTER", 0.2)
    caplog.set_level(logging.INFO, logger="kubeasync.watch")
    async with serving() as (server, kube):
        server.create("web-0")
        async with watch(kube, backoff=Backoff(initial=0.01, maximum=0.02)) as watcher, \
                draining(watcher) as events:
            await eventually(lambda: len(events) == 1, "the initial list")
            # The list gave a checkpoint; the watch opened from it.
            await eventually(lambda: server.active_watches == 1, "the watch")
            server.create("web-1")
            await eventually(lambda: len(events) == 2, "a live event")
            assert watcher.healthy and watcher.stats.failing_since is None
            progress = watcher.stats.last_progress
            assert progress is not None
            server.watch_faults.extend([Fault.status(503, "ServiceUnavailable")] * 10_000)
            server.cut_watches()
            await eventually(lambda: not watcher.healthy, "unhealthy")
            failures = sum(watcher.stats.failures.values())
            await eventually(lambda: sum(watcher.stats.failures.values()) > failures + 5,
                             "more retries after it became unhealthy")
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            assert "no progress" in warnings[0].getMessage()
            assert "ServerError" in warnings[0].getMessage()
            assert watcher.stats.last_progress == progress
            # The server recovers: the first new event makes it healthy again.
            server.watch_faults.clear()
            server.create("web-2")
            await eventually(lambda: len(events) == 3, "the event after the recovery")
            assert watcher.healthy
            assert watcher.stats.failing_since is None
            assert watcher.stats.last_progress > progress
    assert any("progress again" in r.getMessage() for r in caplog.records
               if r.levelno == logging.INFO)
    assert not watcher.healthy, "a closed watcher is not healthy"


async def test_an_informer_facing_410_forever_reports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watcher_module, "UNHEALTHY_AFTER", 0.2)
    async with serving() as (server, kube):
        server.create("web-0")
        async with kube.pods.informer(backoff=Backoff(initial=0.01, maximum=0.02),
                                      send_initial_events=False) as informer:
            await asyncio.wait_for(informer.wait_synced(), 10)
            assert informer.healthy
            server.watch_faults.extend([Fault.status(410, "Expired", "too old")] * 10_000)
            server.cut_watches()
            await eventually(lambda: not informer.healthy, "unhealthy")
            # It relisted all along (the store is current) and keeps trying.
            assert informer.stats.failures["Gone"] >= 2
            assert informer.synced and len(informer) == 1
    assert not informer.healthy, "a stopped informer is not healthy"


async def test_a_quiet_watch_that_reconnects_now_and_then_stays_healthy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watcher_module, "UNHEALTHY_AFTER", 0.2)
    monkeypatch.setattr(watcher_module, "STABLE_AFTER", 0.1)
    async with serving() as (server, kube):
        server.create("web-0")
        async with watch(kube) as watcher:
            await watcher.__anext__()
            async with draining(watcher):
                await eventually(lambda: server.active_watches == 1, "the watch")
                for _ in range(3):  # a cut, then a connection that stays up, no events
                    watches = len(server.watch_requests())
                    server.cut_watches()
                    await eventually(lambda n=watches: len(server.watch_requests()) > n
                                     and server.active_watches == 1, "a new watch")
                    await asyncio.sleep(0.15)
                    assert watcher.healthy
            assert watcher.stats.failures["TransportError"] == 3


# ------------------------------------------------------------------ a resync that fails half-way


async def test_a_relist_that_fails_half_way_is_still_handed_out_as_one_batch() -> None:
    async with serving() as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")
        watcher = watch(kube, page_size=1)
        async with watcher:
            first = await asyncio.wait_for(watcher.next_batch(), 10)
            assert [e.type for e in first] == ["ADDED"] * 3
            relist_pages: list[str | None] = []

            def second_page_fails_once(query: dict[str, str]) -> web.Response | None:
                relist_pages.append(query.get("continue"))
                if len(relist_pages) == 2:
                    return server._error(Fault.status(503, "ServiceUnavailable"))
                return None

            server.list_hook = second_page_fails_once
            server.cut_watches()
            server.modify("web-0", tier="changed")  # on the first page
            server.delete("web-2")  # known only once the last page is in
            server.compact()
            # 0.1 (and the foundation) handed out the first page's MODIFIED alone, then
            # the rest: a reader in between saw half of the relist.
            batch = await asyncio.wait_for(watcher.next_batch(), 10)
            assert [(e.type, e.object.metadata.name) for e in batch] == [
                ("MODIFIED", "web-0"), ("DELETED", "web-2")]
            assert watcher.stats.failures["ServerError"] == 1
            assert relist_pages[1] is not None, "the page that failed was a continuation"


async def test_a_resync_by_initial_events_cut_half_way_loses_nothing() -> None:
    # Found by the soak: the objects read before the cut were recorded as seen but their
    # events were dropped, so the next resync found them "unchanged": lost for good.
    async with serving(supports_initial_events=True) as (server, kube):
        for i in range(3):
            server.create(f"web-{i}")
        view = View()
        async with watch(kube, send_initial_events=True) as watcher:
            await view.take(watcher, 3)
            await eventually(lambda: server.active_watches == 1, "the watch")
            server.watch_faults.extend([
                Fault.end(after_events=100),  # the re-watch, which meets 410 at once
                Fault.cut(after_events=1),  # the resync: cut after its first object
            ])
            server.cut_watches()
            server.modify("web-0", tier="changed")  # the first object of the resync
            server.compact()
            server.create("zz-marker")
            await view.until(watcher, "zz-marker")
            assert view.objects == server.state()
            assert watcher.stats.failures["Gone"] == 1
            assert watcher.stats.failures["TransportError"] >= 2
