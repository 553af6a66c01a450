"""kubeasync's watches and log streams end to end against the embedded server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kubeasync
from kubeasync import Backoff
from kubeasync.testing import FakeApiServer, Timings

FAST = Backoff(initial=0.01, maximum=0.05)


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


async def take(iterator: Any, n: int, timeout: float = 5.0) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        event = await asyncio.wait_for(anext(iterator), timeout)
        out.append((event.type, event.object.metadata.name))
    return out


async def _until(check: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


@pytest.mark.parametrize("initial", [True, False])
async def test_watch_initial_state_then_changes(kube, fake_apiserver, initial):
    fake_apiserver.put_object("configmaps", cm("a"))
    watcher = kube.config_maps.watch(namespace="default", send_initial_events=initial)
    async with watcher:
        assert await take(watcher, 1) == [("ADDED", "a")]
        await kube.config_maps.patch("a", {"data": {"k": "v"}}, namespace="default")
        await kube.config_maps.create(cm("b"), namespace="default")
        await kube.config_maps.delete("a", namespace="default")
        assert await take(watcher, 3) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
        assert watcher.resource_version == fake_apiserver.resource_version


async def test_watch_falls_back_to_list_on_old_servers():
    async with FakeApiServer(watch_list=False) as server, \
            kubeasync.Client(server.config()) as kube:
        server.put_object("configmaps", cm("a"))
        watcher = kube.config_maps.watch(namespace="default")
        async with watcher:
            assert await take(watcher, 1) == [("ADDED", "a")]
            await kube.config_maps.create(cm("b"), namespace="default")
            assert await take(watcher, 1) == [("ADDED", "b")]


async def test_watch_catches_up_after_a_cut_and_a_compaction(kube, fake_apiserver):
    for name in ("a", "b"):
        fake_apiserver.put_object("configmaps", cm(name))
    watcher = kube.config_maps.watch(namespace="default", send_initial_events=False,
                                     backoff=FAST)
    async with watcher:
        assert sorted(await take(watcher, 2)) == [("ADDED", "a"), ("ADDED", "b")]
        following = asyncio.ensure_future(take(watcher, 2))
        await _until(lambda: fake_apiserver.open_watches == 1)
        assert fake_apiserver.end_watches() == 1
        # missed while disconnected, and the history the watcher would resume from is gone
        fake_apiserver.delete_object("configmaps", "a")
        fake_apiserver.put_object("configmaps", cm("c"))
        fake_apiserver.compact()
        assert sorted(await following) == [("ADDED", "c"), ("DELETED", "a")]
        await kube.config_maps.create(cm("d"), namespace="default")
        assert await take(watcher, 1) == [("ADDED", "d")]
    watches = [r for r in fake_apiserver.requests if "watch=" in r[1]]
    assert len(watches) >= 2  # it reconnected


async def test_watch_recovers_from_a_stalled_connection(kube, fake_apiserver):
    fake_apiserver.faults.stall_next_watch()
    watcher = kube.config_maps.watch(namespace="default", send_initial_events=False,
                                     idle_timeout=0.3, backoff=FAST)
    async with watcher:
        await kube.config_maps.create(cm("during-stall"), namespace="default")
        assert await take(watcher, 1) == [("ADDED", "during-stall")]


async def test_watch_selector_transitions(kube, fake_apiserver):
    fake_apiserver.put_object("configmaps", cm("x", app="web"))
    watcher = kube.config_maps.watch(namespace="default", label_selector={"app": "web"})
    async with watcher:
        assert await take(watcher, 1) == [("ADDED", "x")]
        await kube.config_maps.patch("x", {"metadata": {"labels": {"app": "db"}}},
                                     namespace="default")
        assert await take(watcher, 1) == [("DELETED", "x")]


async def test_watch_stream_bookmarks(kube, fake_apiserver):
    fake_apiserver.put_object("configmaps", cm("a"))
    stream = kube.config_maps.watch_stream(namespace="default", bookmarks=True)
    async with stream:
        first = await asyncio.wait_for(anext(stream), 5)
        assert first.type == "ADDED"
        fake_apiserver.bookmark()
        mark = await asyncio.wait_for(anext(stream), 5)
        assert mark.type == "BOOKMARK"
        assert mark.object.metadata.resource_version == fake_apiserver.resource_version


async def test_stream_logs_follow():
    timings = Timings(schedule=0.01, start=0.01, run=0.3, terminate=0.01)
    async with FakeApiServer(simulate=True, timings=timings) as server, \
            kubeasync.Client(server.config()) as kube:
        await kube.pods.create({
            "metadata": {"name": "task", "annotations": {"kubeasync.testing/log": "working"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "t:1"}]},
        }, namespace="default")

        async def running() -> bool:
            return (await kube.pods.get("task", namespace="default")).status.phase == "Running"

        await _until(running)
        server.append_log("default", "task", "main", "from the test")
        lines = []
        async with kube.pods.stream_logs("task", namespace="default", follow=True) as stream:
            async for line in stream:
                lines.append(line)
        # the stream ends by itself when the pod finishes
        assert lines == ["Started container main (image t:1)", "working", "from the test",
                         "Container main exited with code 0"]
