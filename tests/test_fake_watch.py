"""Watch semantics of the embedded API server, read as raw chunked streams."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import kubeasync
from kubeasync.testing import FakeApiServer

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}}


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


@pytest.mark.parametrize("flag", ["1", "true", "True"])
async def test_watch_flags_and_wire_format(api, flag):
    await api("POST", CMS, cm("one"))
    response, lines = await api.stream(f"{CMS}?watch={flag}")
    async with response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Transfer-Encoding"] == "chunked"
        event = await lines.event()
        assert event["type"] == "ADDED"
        assert event["object"]["kind"] == "ConfigMap"  # watch objects carry kind and apiVersion
        assert event["object"]["apiVersion"] == "v1"
    status, listing = await api("GET", f"{CMS}?watch=false")
    assert status == 200 and listing["kind"] == "ConfigMapList"


async def test_synthetic_added_then_live_events(api):
    await api("POST", CMS, cm("a"))
    await api("POST", CMS, cm("b"))
    for rv in ("", "&resourceVersion=0"):
        response, lines = await api.stream(f"{CMS}?watch=true{rv}")
        async with response:
            assert summary(await lines.events(2)) == [("ADDED", "a"), ("ADDED", "b")]
    response, lines = await api.stream(f"{CMS}?watch=true")
    async with response:
        await lines.events(2)
        _, b = await api("GET", f"{CMS}/b")
        b["data"] = {"k": "v"}
        _, b2 = await api("PUT", f"{CMS}/b", b)
        assert (await api("DELETE", f"{CMS}/a"))[0] == 200
        await api("POST", CMS, cm("c"))
        events = await lines.events(3)
        assert summary(events) == [("MODIFIED", "b"), ("DELETED", "a"), ("ADDED", "c")]
        assert events[0]["object"]["metadata"]["resourceVersion"] == b2["metadata"]["resourceVersion"]
        # a DELETED event carries the resourceVersion of the deletion
        assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
            b2["metadata"]["resourceVersion"])


async def test_resume_from_resource_version(api):
    _, a = await api("POST", CMS, cm("a"))
    await api("POST", CMS, cm("b"))
    await api("DELETE", f"{CMS}/a")
    response, lines = await api.stream(
        f"{CMS}?watch=1&resourceVersion={a['metadata']['resourceVersion']}")
    async with response:
        assert summary(await lines.events(2)) == [("ADDED", "b"), ("DELETED", "a")]
        await api("POST", CMS, cm("c"))
        assert summary(await lines.events(1)) == [("ADDED", "c")]


async def test_too_old_resource_version_is_an_error_event(api, fake_apiserver):
    _, a = await api("POST", CMS, cm("a"))
    await api("POST", CMS, cm("b"))
    fake_apiserver.compact()
    response, lines = await api.stream(
        f"{CMS}?watch=1&resourceVersion={a['metadata']['resourceVersion']}")
    async with response:
        assert response.status == 200
        events = await lines.rest()
    assert len(events) == 1
    error = events[0]
    assert error["type"] == "ERROR"
    status = error["object"]
    assert status["kind"] == "Status" and status["code"] == 410
    assert status["reason"] == "Expired" and status["status"] == "Failure"
    assert status["message"].startswith(f"too old resource version: {a['metadata']['resourceVersion']} (")
    # a fresh list gives a resourceVersion that can be watched again
    _, listing = await api("GET", CMS)
    response, lines = await api.stream(
        f"{CMS}?watch=1&resourceVersion={listing['metadata']['resourceVersion']}&timeoutSeconds=1")
    async with response:
        assert await lines.rest() == []


async def test_bounded_history_expires_old_versions():
    async with FakeApiServer(watch_history=3) as server:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            rvs = []
            for i in range(5):
                async with http.post(server.url + CMS, json=cm(f"c{i}")) as r:
                    rvs.append((await r.json())["metadata"]["resourceVersion"])

            async with http.get(f"{server.url}{CMS}?watch=1&resourceVersion={rvs[0]}") as r:
                line = await r.content.readany()
                assert b'"ERROR"' in line and b'"Expired"' in line
            async with http.get(f"{server.url}{CMS}?watch=1&resourceVersion={rvs[1]}") as r:
                line = await asyncio.wait_for(r.content.readany(), 2)
                assert b'"ADDED"' in line and b"c2" in line


async def test_timeout_seconds_ends_the_stream_cleanly(api):
    response, lines = await api.stream(f"{CMS}?watch=1&timeoutSeconds=1")
    async with response:
        started = asyncio.get_running_loop().time()
        assert await lines.rest(timeout=3) == []
        assert 0.8 < asyncio.get_running_loop().time() - started < 2.5


async def test_bookmarks_only_when_allowed(api, fake_apiserver):
    _, p = await api("POST", PODS, {"metadata": {"name": "p"},
                                    "spec": {"containers": [{"name": "a", "image": "i"}]}})
    response, lines = await api.stream(f"{PODS}?watch=1&allowWatchBookmarks=true")
    plain, plain_lines = await api.stream(f"{PODS}?watch=1")
    async with response, plain:
        await lines.events(1)
        await plain_lines.events(1)
        fake_apiserver.bookmark()
        await api("POST", CMS, cm("elsewhere"))  # moves the resourceVersion on
        fake_apiserver.bookmark()
        first, second = await lines.events(2)
        assert first["type"] == second["type"] == "BOOKMARK"
        obj = second["object"]
        assert obj["kind"] == "Pod" and obj["apiVersion"] == "v1"
        assert obj["metadata"]["resourceVersion"] == fake_apiserver.resource_version
        assert set(obj["metadata"]) <= {"resourceVersion", "creationTimestamp"}
        assert obj["spec"] == {"containers": None}  # as Go serializes an empty Pod
        assert int(first["object"]["metadata"]["resourceVersion"]) >= int(
            p["metadata"]["resourceVersion"])
        with pytest.raises(asyncio.TimeoutError):
            await plain_lines.event(timeout=0.3)


async def test_periodic_bookmarks():
    async with FakeApiServer(bookmark_interval=0.1) as server:
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(
                f"{server.url}{CMS}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1") as r:
            body = await asyncio.wait_for(r.read(), 3)
    kinds = [line for line in body.split(b"\n") if line]
    assert len(kinds) >= 3 and all(b'"BOOKMARK"' in line for line in kinds)


async def test_send_initial_events(api):
    await api("POST", CMS, cm("a"))
    await api("POST", CMS, cm("b"))
    response, lines = await api.stream(
        f"{CMS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&resourceVersion=")
    async with response:
        events = await lines.events(3)
        assert summary(events[:2]) == [("ADDED", "a"), ("ADDED", "b")]
        end = events[2]
        assert end["type"] == "BOOKMARK"
        assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        await api("POST", CMS, cm("c"))
        assert summary(await lines.events(1)) == [("ADDED", "c")]


async def test_send_initial_events_needs_its_options(api):
    status, body = await api("GET", f"{CMS}?watch=1&sendInitialEvents=true")
    assert status == 422 and body["reason"] == "Invalid"
    assert [c["field"] for c in body["details"]["causes"]] == [
        "resourceVersionMatch", "allowWatchBookmarks"]


async def test_old_servers_reject_resource_version_match_on_watch():
    import aiohttp

    query = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=1"
    async with FakeApiServer(watch_list=False) as server, aiohttp.ClientSession() as http, \
            http.get(f"{server.url}{CMS}?{query}") as r:
        assert r.status == 422
        body = await r.json()
    assert body["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch:'
                               " Forbidden: resourceVersionMatch is forbidden for watch")


async def test_selector_transitions(api):
    await api("POST", CMS, cm("x", {"app": "web"}))
    response, lines = await api.stream(f"{CMS}?watch=1&labelSelector=app%3Dweb")
    async with response:
        assert summary(await lines.events(1)) == [("ADDED", "x")]
        _, x = await api("GET", f"{CMS}/x")
        x["metadata"]["labels"] = {"app": "db"}
        _, moved = await api("PUT", f"{CMS}/x", x)
        gone = await lines.event()
        assert gone["type"] == "DELETED"
        # the object as it was, at the resourceVersion of the change
        assert gone["object"]["metadata"]["labels"] == {"app": "web"}
        assert gone["object"]["metadata"]["resourceVersion"] == moved["metadata"]["resourceVersion"]
        await api("POST", CMS, cm("other", {"app": "db"}))
        moved["metadata"]["labels"] = {"app": "web"}
        await api("PUT", f"{CMS}/x", moved)
        back = await lines.event()
        assert (back["type"], back["object"]["metadata"]["labels"]) == ("ADDED", {"app": "web"})


async def test_field_selector_transitions(api):
    await api("POST", PODS, {"metadata": {"name": "p"},
                             "spec": {"containers": [{"name": "a", "image": "i"}]}})
    response, lines = await api.stream(f"{PODS}?watch=1&fieldSelector=status.phase%3DRunning")
    async with response:
        _, p = await api("GET", f"{PODS}/p")
        p["status"]["phase"] = "Running"
        _, p = await api("PUT", f"{PODS}/p/status", p)
        assert summary(await lines.events(1)) == [("ADDED", "p")]
        p["status"]["phase"] = "Succeeded"
        await api("PUT", f"{PODS}/p/status", p)
        assert summary(await lines.events(1)) == [("DELETED", "p")]


async def test_namespace_scope(api):
    await api("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    scoped, scoped_lines = await api.stream(f"{CMS}?watch=1")
    everywhere, all_lines = await api.stream("/api/v1/configmaps?watch=1")
    async with scoped, everywhere:
        await api("POST", "/api/v1/namespaces/other/configmaps", cm("theirs"))
        await api("POST", CMS, cm("ours"))
        assert summary(await scoped_lines.events(1)) == [("ADDED", "ours")]
        assert summary(await all_lines.events(2)) == [("ADDED", "theirs"), ("ADDED", "ours")]


async def test_finalizers_give_modified_then_deleted(api):
    await api("POST", CMS, {"metadata": {"name": "held", "finalizers": ["example.com/x"]}})
    response, lines = await api.stream(f"{CMS}?watch=1&fieldSelector=metadata.name%3Dheld")
    async with response:
        await lines.events(1)
        status, answer = await api("DELETE", f"{CMS}/held")
        assert status == 200 and answer["metadata"]["deletionTimestamp"]
        terminating = await lines.event()
        assert terminating["type"] == "MODIFIED"
        assert terminating["object"]["metadata"]["deletionTimestamp"]
        status, _ = await api("GET", f"{CMS}/held")
        assert status == 200  # still there while the finalizer holds it
        await api("PATCH", f"{CMS}/held", {"metadata": {"finalizers": None}},
                  content_type="application/merge-patch+json")
        assert summary(await lines.events(1)) == [("DELETED", "held")]
        assert (await api("GET", f"{CMS}/held"))[0] == 404


async def test_watch_of_unknown_version_and_bad_rv(api):
    status, body = await api("GET", f"{CMS}?watch=1&resourceVersion=abc")
    assert status == 400 and body["reason"] == "BadRequest"


async def test_server_stop_ends_open_watches():
    import aiohttp

    server = FakeApiServer()
    await server.start()
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}{CMS}?watch=1") as r:
        reader = asyncio.ensure_future(r.read())
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.stop(), 3)
        await asyncio.wait_for(reader, 3)


def block_the_loop(seconds: float) -> None:
    """Keep the event loop busy (nothing else runs), as a CPU-bound process would."""
    time.sleep(seconds)


async def test_a_bookmark_never_claims_events_not_yet_sent(api, fake_apiserver):
    """Changes queued for a watch but not yet written when its timeout comes (a slow
    reader, a busy loop) are not covered by the closing BOOKMARK: a client resuming from
    the bookmark's resourceVersion must get them."""
    response, lines = await api.stream(f"{CMS}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1")
    async with response:
        start = int(fake_apiserver.resource_version)
        for i in range(20):  # queued at once, no await: the watch has a backlog
            fake_apiserver.put_object("configmaps", cm(f"c{i}"))
        block_the_loop(1.1)  # past the watch's deadline
        events = await lines.rest(timeout=3)
    assert events and events[-1]["type"] == "BOOKMARK"
    mark = int(events[-1]["object"]["metadata"]["resourceVersion"])
    sent = [int(e["object"]["metadata"]["resourceVersion"]) for e in events[:-1]]
    assert sent == list(range(start + 1, start + 1 + len(sent)))
    assert mark == (sent[-1] if sent else start)
    # resuming from the bookmark gives the rest
    response, lines = await api.stream(f"{CMS}?watch=1&resourceVersion={mark}&timeoutSeconds=1")
    async with response:
        rest = await lines.rest(timeout=3)
    assert len(sent) + len(rest) == 20


async def test_watcher_loses_nothing_when_a_watch_times_out_with_a_backlog(fake_apiserver):
    async with kubeasync.Client(fake_apiserver.config()) as kube, \
            kube.config_maps.watch(timeout_seconds=1, send_initial_events=False) as w:
        first = asyncio.ensure_future(w.__anext__())  # lists (nothing), then watches
        for _ in range(500):
            if fake_apiserver.open_watches:
                break
            await asyncio.sleep(0.01)
        fake_apiserver.put_object("configmaps", cm("first"))
        assert (await asyncio.wait_for(first, 5)).object.metadata.name == "first"
        for i in range(20):
            fake_apiserver.put_object("configmaps", cm(f"c{i}"))
        block_the_loop(1.1)  # past the watch's deadline, with 20 changes queued
        names = [(await asyncio.wait_for(w.__anext__(), 5)).object.metadata.name
                 for _ in range(20)]
    assert names == [f"c{i}" for i in range(20)]


async def test_a_client_leaving_a_watch_leaves_no_task_behind() -> None:
    # The handler waits on its queue in a task of its own; when the client leaves, the
    # handler is cancelled, and that task must go with it (else it is collected pending).
    def queue_getters() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks()
                if not t.done() and "Queue.get" in repr(t.get_coro())]

    async with FakeApiServer() as server, kubeasync.Client(server.config()) as kube:
        stream = kube.config_maps.watch_stream(namespace="default", resource_version="1")
        await kube.config_maps.create({"metadata": {"name": "a"}}, namespace="default")
        async for _event in stream:
            break
        await stream.aclose()
        for _ in range(200):
            if server.open_watches == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_watches == 0
        await asyncio.sleep(0)  # the cancellations run
        assert queue_getters() == []
