"""Closing the client ends everything that is waiting on it (issue 18, defect 4): a task
iterating watch(), watch_stream() (with an idle timeout), stream_logs() or an informer's
changes() ends when another task closes the client, whatever it is waiting for (events,
the answer's headers, a backoff), instead of hanging. Over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

import kubeasync
from kubeasync import Backoff
from kubeasync.testing import FakeApiServer
from tests.helpers.misbehaving import client, http_server, json_answer, silent_server
from tests.helpers.waiting import eventually
from tests.helpers.watch_server import Fault, serving

# A guard against hanging (0.1 hung forever), not a timing assertion.
ENDS_WITHIN = 10.0


async def iterate(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def closing_ends(kube: kubeasync.Client, stream: AsyncIterator[Any],
                       ready: Callable[[], bool]) -> list[Any]:
    """Iterate ``stream`` in a task; once ``ready()``, close the client from this task;
    the iteration must end (the end of iteration, or a KubeError saying why)."""
    task = asyncio.create_task(iterate(stream))
    await eventually(ready, "the stream to be waiting")
    assert not task.done(), task
    await kube.close()
    done, _ = await asyncio.wait({task}, timeout=ENDS_WITHIN)
    assert task in done, "the iteration went on after the client was closed"
    return task.result()


async def test_closing_the_client_ends_a_watch_waiting_for_events() -> None:
    async with FakeApiServer() as server:
        kube = kubeasync.Client(server.config())
        watcher = kube.pods.watch(send_initial_events=False)
        await closing_ends(kube, watcher, lambda: watcher.stats.watches == 1
                           and watcher.state == "Watching")
        assert watcher.closed


async def test_closing_the_client_ends_a_watch_in_its_backoff() -> None:
    async with serving() as (server, kube):
        server.create("web-0")
        server.watch_faults.append(Fault.status(503, "ServiceUnavailable"))
        watcher = kube.pods.watch(send_initial_events=False,
                                  backoff=Backoff(initial=600, maximum=600))
        events = await closing_ends(kube, watcher, lambda: watcher.state == "Waiting")
        assert [e.type for e in events] == ["ADDED"]


async def test_closing_the_client_ends_a_watch_waiting_for_the_answers_headers() -> None:
    async with silent_server() as server:
        kube = client(server.url)
        watcher = kube.pods.watch(resource_version="1")
        await closing_ends(kube, watcher, lambda: server.connections == 1)


@pytest.mark.parametrize("idle_timeout", [None, 2.0])
async def test_closing_the_client_ends_a_raw_watch_stream(idle_timeout: float | None) -> None:
    async with FakeApiServer() as server:
        kube = kubeasync.Client(server.config())
        stream = kube.pods.watch_stream(timeout_seconds=None, idle_timeout=idle_timeout)
        await closing_ends(kube, stream, lambda: stream.opened_at is not None)
        assert stream.closed


async def test_closing_the_client_ends_a_followed_log() -> None:
    async def quiet_log(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"one line\n")
        await asyncio.sleep(3600)
        return response

    async with http_server({("GET", "/api/v1/namespaces/ns/pods/web-0/log"): quiet_log,
                            ("GET", "/version"): json_answer({"major": "1"})}) as (url, _):
        kube = client(url)
        stream = kube.pods.stream_logs("web-0", follow=True)
        lines = await closing_ends(kube, stream, lambda: stream.last_activity is not None
                                   and stream.last_activity > (stream.opened_at or 0))
        assert lines == ["one line"]


async def test_closing_the_client_ends_an_informer_and_its_consumers() -> None:
    async with FakeApiServer() as server:
        kube = kubeasync.Client(server.config())
        informer = kube.pods.informer()
        await informer.start()
        await asyncio.wait_for(informer.wait_synced(), ENDS_WITHIN)
        changes = informer.changes()
        assert await closing_ends(kube, changes, lambda: changes._consumer is not None) == []
        assert not informer.running and not informer.healthy


async def test_a_closed_client_refuses_new_calls_with_a_clear_error() -> None:
    async with FakeApiServer() as server:
        kube = kubeasync.Client(server.config())
        await kube.version()
        await kube.close()
        with pytest.raises(kubeasync.KubeError, match="this client is closed"):
            await kube.pods.list()
        with pytest.raises(kubeasync.KubeError, match="this client is closed"):
            await kube.pods.watch_stream().__anext__()
        # A watcher of a closed client has nothing to do: it ends.
        assert [e async for e in kube.pods.watch()] == []
