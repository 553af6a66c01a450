"""Fault injection: throttling, server errors, proxy pages, delays, dropped connections,
cut and stalled watches."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import kubeasync
from kubeasync import RetryPolicy

CMS = "/api/v1/namespaces/default/configmaps"
NO_RETRY = RetryPolicy(max_retries=0)


async def test_fail_next_429_with_retry_after(api, fake_apiserver):
    fake_apiserver.faults.fail_next(2, status=429, retry_after=3)
    for _ in range(2):
        response = await api.raw("GET", CMS)
        async with response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "3"
            body = await response.json()
        assert body["reason"] == "TooManyRequests" and body["code"] == 429
        assert body["details"] == {"retryAfterSeconds": 3}
    assert (await api("GET", CMS))[0] == 200
    assert fake_apiserver.faults.rules == []


async def test_fail_next_matches_method_and_path(api, fake_apiserver):
    rule = fake_apiserver.faults.fail_next(1, status=500, method="POST", path=r"/configmaps$")
    assert (await api("GET", CMS))[0] == 200
    assert (await api("POST", "/api/v1/namespaces/default/pods", {}))[0] == 422
    status, body = await api("POST", CMS, {"metadata": {"name": "c"}})
    assert status == 500 and body["reason"] == "InternalError"
    assert rule.hits == 1
    assert (await api("POST", CMS, {"metadata": {"name": "c"}}))[0] == 201


async def test_client_retries_through_503(fake_apiserver):
    fake_apiserver.faults.fail_next(2, status=503, path="configmaps")
    policy = RetryPolicy(max_retries=3, backoff=kubeasync.Backoff(initial=0.01, maximum=0.02))
    async with kubeasync.Client(fake_apiserver.config(), retry=policy) as kube:
        page = await kube.config_maps.list(namespace="default")
    assert page.items == []
    gets = [r for r in fake_apiserver.requests if r[1].endswith("/configmaps")]
    assert len(gets) == 3


async def test_html_error_page(fake_apiserver):
    fake_apiserver.faults.html_next()
    async with kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY) as kube:
        with pytest.raises(kubeasync.ServerError) as info:
            await kube.config_maps.list(namespace="default")
    assert info.value.code == 502
    assert "text/html" in info.value.message and "Bad Gateway" in info.value.message


async def test_delay_next(api, fake_apiserver):
    fake_apiserver.faults.delay_next(1, seconds=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await api("GET", CMS))[0] == 200
    assert loop.time() - started >= 0.2
    started = loop.time()
    await api("GET", CMS)
    assert loop.time() - started < 0.2


async def test_drop_next(fake_apiserver):
    # aiohttp itself repeats a GET once on a dropped connection: drop twice to see it
    fake_apiserver.faults.drop_next(2)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.get(fake_apiserver.url + CMS)
    fake_apiserver.faults.drop_next(2, path="configmaps")
    async with kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY) as kube:
        with pytest.raises(kubeasync.TransportError):
            await kube.config_maps.list(namespace="default")
        assert (await kube.config_maps.list(namespace="default")).items == []


async def test_drop_watch_after(api, fake_apiserver):
    for name in "abc":
        await api("POST", CMS, {"metadata": {"name": name}})
    fake_apiserver.faults.drop_watch_after(2)
    response, lines = await api.stream(f"{CMS}?watch=1")
    async with response:
        events = await lines.events(2)
        assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
        with pytest.raises(aiohttp.ClientPayloadError):
            await lines.event()  # cut off: no terminating chunk
    # the next watch is whole again
    response, lines = await api.stream(f"{CMS}?watch=1&timeoutSeconds=1")
    async with response:
        assert len(await lines.rest()) == 3


async def test_stall_next_watch(api, fake_apiserver):
    fake_apiserver.faults.stall_next_watch()
    await api("POST", CMS, {"metadata": {"name": "a"}})
    response, lines = await api.stream(f"{CMS}?watch=1&allowWatchBookmarks=true")
    async with response:
        assert response.status == 200
        fake_apiserver.bookmark()
        await api("POST", CMS, {"metadata": {"name": "b"}})
        with pytest.raises(asyncio.TimeoutError):
            await lines.line(timeout=0.3)
    response, lines = await api.stream(f"{CMS}?watch=1")
    async with response:
        assert len(await lines.events(2)) == 2


async def test_clear_and_validation(fake_apiserver):
    fake_apiserver.faults.fail_next(5)
    fake_apiserver.faults.clear()
    assert fake_apiserver.faults.rules == []
    with pytest.raises(ValueError):
        fake_apiserver.faults.fail_next(0)
    with pytest.raises(ValueError):
        fake_apiserver.faults.fail_next(1, status=200)


async def test_drop_watch_after_mid_line(api, fake_apiserver):
    for name in "abc":
        await api("POST", CMS, {"metadata": {"name": name}})
    rule = fake_apiserver.faults.drop_watch_after(1, mid_line=True)
    response, lines = await api.stream(f"{CMS}?watch=1")
    async with response:
        events = await lines.events(1)
        assert [e["object"]["metadata"]["name"] for e in events] == ["a"]
        with pytest.raises(aiohttp.ClientPayloadError):
            await lines.event()  # half of "b"'s line, then the cut
        assert lines._buffer.startswith(b'{"type":"ADDED"') and b"\n" not in lines._buffer
    assert rule.hits == 1 and fake_apiserver.faults.rules == []
    # the next watch is whole again
    response, lines = await api.stream(f"{CMS}?watch=1&timeoutSeconds=1")
    async with response:
        assert len(await lines.rest()) == 3


async def test_watcher_survives_a_cut_mid_line(fake_apiserver):
    async with kubeasync.Client(fake_apiserver.config()) as kube:
        for name in "ab":
            await kube.config_maps.create({"metadata": {"name": name}})
        seen = []
        watcher = kube.config_maps.watch(
            send_initial_events=False, backoff=kubeasync.Backoff(initial=0.01, maximum=0.02))
        async with watcher:
            for _ in range(2):
                seen.append((await watcher.__anext__()).object.metadata.name)
            fake_apiserver.faults.drop_watch_after(0, mid_line=True)
            fake_apiserver.end_watches(abort=False)  # the re-watch meets the cut
            await kube.config_maps.create({"metadata": {"name": "c"}})
            await kube.config_maps.create({"metadata": {"name": "d"}})
            for _ in range(2):
                event = await asyncio.wait_for(watcher.__anext__(), 5)
                seen.append((event.type, event.object.metadata.name))
    assert seen == ["a", "b", ("ADDED", "c"), ("ADDED", "d")]
    assert fake_apiserver.faults.rules == []  # the cut happened
