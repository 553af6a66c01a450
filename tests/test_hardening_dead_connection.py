"""A silent dead connection under a quiet watch (issue 18, risk): noticed by the session's
probe, never mistaken for a quiet healthy watch. A TCP forwarder between the client and the
server black-holes the traffic (connections stay open, nothing gets through, no reset).

The defaults (probe after 30 s of silence, 15 s for the answer: dead within ~45-55 s) are
measured outside the suite; here the same mechanism runs with short settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

import kubeasync
from kubeasync import Backoff
from kubeasync.testing import FakeApiServer
from tests.helpers.misbehaving import http_server, json_answer
from tests.helpers.partition import Partition, partition_proxy
from tests.helpers.waiting import eventually

PROBE_AFTER = 0.3
PROBE_TIMEOUT = 0.3


@asynccontextmanager
async def through_forwarder(url: str, **options: Any
                            ) -> AsyncIterator[tuple[kubeasync.Client, Partition]]:
    """A client of ``url`` through a forwarder the test can black-hole, probing quiet
    streams after 0.3 s."""
    where = urlsplit(url)
    async with partition_proxy(where.hostname or "127.0.0.1", where.port or 80,
                               scheme="http") as net:
        config = kubeasync.ClusterConfig(server=net.url, namespace="default")
        async with kubeasync.Client(config, **options) as kube:
            kube.session.probe_after = PROBE_AFTER
            kube.session.probe_timeout = PROBE_TIMEOUT
            yield kube, net


def probes(server: FakeApiServer) -> int:
    return sum(1 for method, path in server.requests if path == "/version")


async def test_a_quiet_healthy_watch_is_probed_but_never_cut() -> None:
    async with FakeApiServer() as server, through_forwarder(server.url) as (kube, _), \
            kube.pods.watch(send_initial_events=False) as watcher:
        task = asyncio.create_task(watcher.__anext__())
        # Nothing happens in the namespace for many probe periods.
        await eventually(lambda: probes(server) >= 4, "four probes", timeout=20)
        assert not task.done()
        assert watcher.stats.watches == 1
        assert sum(watcher.stats.failures.values()) == 0
        # ... and the watch still delivers.
        server.put_object("pods", {"metadata": {"name": "late", "namespace": "default"},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}})
        event = await asyncio.wait_for(task, 10)
        assert (event.type, event.object.metadata.name) == ("ADDED", "late")


async def test_any_http_answer_to_the_probe_counts_as_alive() -> None:
    async def quiet_watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await asyncio.sleep(3600)
        return response

    async with http_server({
        ("GET", "/version"): json_answer({"kind": "Status", "code": 403}, status=403),
        ("GET", "/api/v1/namespaces/default/pods"): quiet_watch,
    }) as (url, recorded), through_forwarder(url) as (kube, _):
        stream = kube.pods.watch_stream(timeout_seconds=None)
        task = asyncio.create_task(stream.__anext__())
        await eventually(lambda: sum(path == "/version" for _, path in recorded.requests) >= 3,
                         "three probes", timeout=20)
        assert not task.done(), "a 403 to the probe is an answer: the stream is alive"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()


async def test_a_black_holed_watch_is_noticed_and_resumed_without_loss() -> None:
    async with FakeApiServer() as server, through_forwarder(server.url, timeout=1.0) \
            as (kube, net):
        watcher = kube.pods.watch(send_initial_events=False,
                                  backoff=Backoff(initial=0.05, maximum=0.2))
        async with watcher:
            events: list[Any] = []

            async def drain() -> None:
                async for event in watcher:
                    events.append(event)

            task = asyncio.create_task(drain())
            try:
                await eventually(lambda: watcher.stats.watches == 1 and probes(server) >= 1,
                                 "a watch and a probe")
                # 0.1 (and an idle timeout alone) would wait 330-630 s here.
                net.black_hole()
                server.put_object("pods", {
                    "metadata": {"name": "during", "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "i"}]}})
                await eventually(lambda: watcher.stats.failures["RequestTimeout"] >= 1,
                                 "the dead connection noticed", timeout=20)
                assert events == [], "nothing came through the black hole"
                net.heal()
                await eventually(lambda: len(events) == 1, "the change made meanwhile")
                assert (events[0].type, events[0].object.metadata.name) == ("ADDED", "during")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("kind", ["log", "watch"])
async def test_a_black_holed_raw_stream_raises_that_its_connection_is_dead(kind: str) -> None:
    async def quiet(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        if kind == "log":
            await response.write(b"started\n")
        await asyncio.sleep(3600)
        return response

    async with http_server({
        ("GET", "/version"): json_answer({"major": "1"}),
        ("GET", "/api/v1/namespaces/default/pods/web-0/log"): quiet,
        ("GET", "/api/v1/namespaces/default/pods"): quiet,
    }) as (url, recorded), through_forwarder(url) as (kube, net):
        stream: Any
        if kind == "log":
            stream = kube.pods.stream_logs("web-0", follow=True)
            assert await asyncio.wait_for(stream.__anext__(), 10) == "started"
        else:
            stream = kube.pods.watch_stream(timeout_seconds=None)
        task = asyncio.create_task(stream.__anext__())
        await eventually(lambda: sum(path == "/version" for _, path in recorded.requests) >= 1,
                         "a probe that got an answer")
        assert not task.done()
        net.black_hole()
        with pytest.raises(kubeasync.RequestTimeout, match="the connection is dead"):
            await asyncio.wait_for(task, 20)
