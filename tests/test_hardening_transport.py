"""The session and transport against misbehaving servers and proxies (issue 18): no secret
in a message or a log line, every wait for an answer bounded, the call's timeout the bound
of the whole call, truncated or oversized compressed bodies refused, a bounded number of
connections, local resource exhaustion not retried, keepalive on stream sockets, and a
Client used from a second event loop says so. Over real sockets."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trustme
from aiohttp import web

import kubeasync
from kubeasync import Backoff, RetryPolicy
from kubeasync.core.request import Request
from kubeasync.testing import FakeApiServer
from kubeasync.transport.policy import NO_RETRY, Session
from tests.helpers.connect_proxy import refusing_proxy
from tests.helpers.misbehaving import (
    POD,
    client,
    gzip_answer,
    http_server,
    json_answer,
    silent_server,
    status_answer,
)
from tests.helpers.waiting import eventually
from tests.test_session import RecordingPolicy

ROOT = Path(__file__).resolve().parents[1]
PROXY_PASSWORD = "hunter2-proxy"
POD_PATH = "/api/v1/namespaces/ns/pods/web-0"
PODS_PATH = "/api/v1/namespaces/ns/pods"
LOG_PATH = "/api/v1/namespaces/ns/pods/web-0/log"


def tls_server() -> tuple[trustme.CA, ssl.SSLContext]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return ca, context


def chain_texts(error: BaseException | None) -> list[str]:
    """str() and repr() of an exception and of everything chained to it (a traceback
    printer or an error reporter shows them all)."""
    texts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [str(error), repr(error)]
        error = error.__cause__ or error.__context__
    return texts


# ------------------------------------------------------------------ defect 3 (a): proxy 407


@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_a_proxy_answering_407_leaves_no_credential_in_the_error_or_the_log(
    scheme: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: kubeasync's and aiohttp's
    ca, context = tls_server()
    secrets = [PROXY_PASSWORD, base64.b64encode(f"corp:{PROXY_PASSWORD}".encode()).decode()]
    async with refusing_proxy() as proxy, http_server(
        {("GET", "/version"): json_answer({"major": "1", "minor": "20"})},
        ssl_context=context if scheme == "https" else None,
    ) as (url, _):
        config = kubeasync.ClusterConfig(
            server=url, ca_data=ca.cert_pem.bytes(),
            proxy_url=proxy.url.replace("://", f"://corp:{PROXY_PASSWORD}@"),
        )
        async with kubeasync.Client(config, retry=RetryPolicy(
                max_retries=2, backoff=Backoff(initial=0.01, maximum=0.01))) as kube:
            with pytest.raises(kubeasync.KubeError) as info:
                await kube.version()
    # The proxy did get the credentials (so there was something to leak).
    assert any(b"Proxy-Authorization: Basic " + secrets[1].encode() in head
               for head in proxy.heads), proxy.heads
    error = info.value
    texts = [caplog.text, *chain_texts(error)]
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "Proxy-Authorization" not in text
    assert "407" in str(error)
    if scheme == "https":  # CONNECT refused: nothing reached the server, retried
        assert isinstance(error, kubeasync.ConnectError)
        assert "the proxy refused the connection" in str(error)
        assert len(proxy.heads) == 3


# ------------------------------------------------------------------ defect 6: every wait bounded


@pytest.mark.parametrize("follow", [True, False])
async def test_stream_logs_of_a_server_that_never_answers_times_out(follow: bool) -> None:
    async with silent_server() as server, client(server.url, timeout=0.5) as kube:
        with pytest.raises(kubeasync.RequestTimeout, match="no answer"):
            # 0.1 waited here forever.
            await asyncio.wait_for(
                kube.pods.stream_logs("web-0", follow=follow).__anext__(), 30)


async def test_watch_stream_of_a_server_that_never_answers_times_out() -> None:
    async with silent_server() as server, client(server.url, timeout=0.5) as kube:
        with pytest.raises(kubeasync.RequestTimeout, match="no answer"):
            await asyncio.wait_for(kube.pods.watch_stream(idle_timeout=2).__anext__(), 30)


async def test_a_watcher_facing_a_server_that_never_answers_keeps_retrying() -> None:
    async with silent_server() as server, client(server.url, timeout=0.3) as kube:
        watcher = kube.pods.watch(resource_version="1",
                                  backoff=Backoff(initial=0.01, maximum=0.02))
        task = asyncio.create_task(watcher.__anext__())
        try:
            for _ in range(3000):
                if watcher.stats.failures["RequestTimeout"] >= 2:
                    break
                await asyncio.sleep(0.01)
            assert watcher.stats.failures["RequestTimeout"] >= 2
            assert server.connections >= 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_the_call_timeout_bounds_the_whole_call_retries_included() -> None:
    # 0.1 applied timeout= per attempt: timeout=1 on this server took ~11 s.
    async with silent_server() as server, client(server.url) as kube:
        with pytest.raises(kubeasync.RequestTimeout, match=r"within 1\.0 s"):
            await asyncio.wait_for(kube.pods.get("web-0", timeout=1), 30)
    assert server.connections == 1, "no attempt started after the call's time was up"


async def test_retries_stop_at_the_call_timeout() -> None:
    policy = RetryPolicy(max_retries=50, backoff=Backoff(initial=0.3, maximum=0.3, jitter=0))
    async with http_server({("GET", POD_PATH): status_answer(503, "ServiceUnavailable")}) \
            as (url, recorded), client(url, retry=policy) as kube:
        with pytest.raises(kubeasync.ServerError):
            await kube.pods.get("web-0", timeout=1)
    # Waits of 0.3 s within 1 s: at most 4 attempts (0.1: 51 attempts, 15 s).
    assert 2 <= len(recorded.requests) <= 4


async def test_a_negative_retry_after_in_a_request_leaves_the_wait_to_the_backoff() -> None:
    policy = RecordingPolicy(max_retries=2)
    async with http_server({("GET", POD_PATH): status_answer(
            429, "TooManyRequests", headers={"Retry-After": "-3"}, retryAfterSeconds=-3)}) \
            as (url, recorded), client(url, retry=policy) as kube:
        with pytest.raises(kubeasync.TooManyRequests):
            await kube.pods.get("web-0")
    # 0.1 waited max(0, -3) = 0 s: immediate hot retries.
    assert policy.delays == [(0, None), (1, None)]
    assert len(recorded.requests) == 3


# ------------------------------------------------------------------ defect 7: truncated gzip


LOG_TEXT = b"".join(b"line %d of the log\n" % i for i in range(20_000))


async def test_a_truncated_gzip_log_is_an_error_for_logs_and_stream_logs() -> None:
    async with http_server({("GET", LOG_PATH): gzip_answer(
            LOG_TEXT, truncate=True, chunked=True, content_type="text/plain")}) as (url, _), \
            client(url, retry=NO_RETRY) as kube:
        with pytest.raises(kubeasync.TransportError, match="truncated"):
            await kube.pods.logs("web-0")  # 0.1 returned half the log
        for follow in (False, True):
            lines: list[str] = []
            with pytest.raises(kubeasync.TransportError, match="truncated"):
                async for line in kube.pods.stream_logs("web-0", follow=follow):
                    lines.append(line)
            assert 0 < len(lines) < 20_000


async def test_a_whole_gzip_log_is_decoded_on_every_path() -> None:
    async with http_server({("GET", LOG_PATH): gzip_answer(
            LOG_TEXT, chunked=True, content_type="text/plain")}) as (url, _), \
            client(url) as kube:
        assert (await kube.pods.logs("web-0")).encode() == LOG_TEXT
        lines = [line async for line in kube.pods.stream_logs("web-0", follow=True)]
        assert lines == LOG_TEXT.decode().splitlines()


def watch_lines(count: int) -> bytes:
    return b"".join(
        json.dumps({"type": "ADDED", "object": {**POD, "metadata": {
            **POD["metadata"], "name": f"web-{i}", "resourceVersion": str(10 + i)}}}).encode()
        + b"\n" for i in range(count))


async def test_a_truncated_gzip_watch_is_an_error_for_watch_stream_and_the_watcher() -> None:
    async with http_server({("GET", PODS_PATH): gzip_answer(
            watch_lines(2000), truncate=True, chunked=True)}) as (url, _), \
            client(url, retry=NO_RETRY) as kube:
        names: list[str] = []
        with pytest.raises(kubeasync.TransportError, match="truncated"):
            async for event in kube.pods.watch_stream():
                names.append(event.object.metadata.name)
        assert 0 < len(names) < 2000
        # The watcher survives it as a lost connection and reconnects from its checkpoint.
        watcher = kube.pods.watch(resource_version="1", backoff=Backoff(0.01, 0.02))
        async with watcher:
            for _ in range(len(names)):
                await asyncio.wait_for(watcher.__anext__(), 10)
            # Then the same events again (dropped as repeats), cut again, and so on.
            rest = asyncio.create_task(watcher.__anext__())
            await eventually(lambda: watcher.stats.watches >= 3, "reconnections")
            rest.cancel()
            await asyncio.gather(rest, return_exceptions=True)
            assert watcher.stats.failures["TransportError"] >= 2


# ------------------------------------------------------------------ risk: decompressed size


async def test_a_gzip_bomb_stops_at_max_body_bytes_and_is_not_retried() -> None:
    bomb = b'{"kind":"PodList","apiVersion":"v1","items":[],"pad":"' + b"0" * (64 << 20) + b'"}'
    handler = gzip_answer(bomb)
    async with http_server({("GET", PODS_PATH): handler}) as (url, recorded), \
            client(url, max_body_bytes=8 << 20) as kube:
        with pytest.raises(kubeasync.TransportError, match="max_body_bytes=8388608") as info:
            await kube.pods.list()
    assert not info.value.retryable
    assert len(recorded.requests) == 1
    assert len(gzip.compress(bomb)) < 1 << 20  # ~64 KiB on the wire, 64 MiB inflated


# ------------------------------------------------------------------ risk: connections


async def test_two_thousand_concurrent_gets_share_a_bounded_number_of_connections() -> None:
    async def slow_pod(request: web.Request) -> web.Response:
        await asyncio.sleep(0.005)
        return web.json_response(POD)

    async with http_server({("GET", POD_PATH): slow_pod}) as (url, recorded), \
            client(url) as kube:
        pods = await asyncio.gather(*(kube.pods.get("web-0") for _ in range(2000)))
        assert {p.metadata.name for p in pods} == {"web-0"}
        # 0.1 opened 2,002 sockets for this.
        assert len(recorded.peers) <= kube.session.max_requests == 100
        assert len(recorded.requests) == 2000


async def test_streams_have_their_own_budget_and_do_not_starve_requests() -> None:
    async with FakeApiServer() as server, kubeasync.Client(server.config()) as kube:
        session = kube.session
        session.max_requests = 2
        streams = [kube.pods.watch_stream(timeout_seconds=None) for _ in range(5)]
        try:
            openers = [asyncio.create_task(s.__anext__()) for s in streams]
            await asyncio.sleep(0.2)  # the watches are open and quiet
            assert not any(task.done() for task in openers)
            pods = await asyncio.wait_for(
                asyncio.gather(*(kube.pods.list() for _ in range(10))), 10)
            assert len(pods) == 10
        finally:
            for task in openers:
                task.cancel()
            await asyncio.gather(*openers, return_exceptions=True)
            for stream in streams:
                await stream.aclose()


async def test_max_streams_bounds_streams_and_a_closed_stream_frees_its_slot() -> None:
    async with FakeApiServer() as server:
        config = server.config()
        session = Session(config, max_streams=1, timeout=0.5)
        try:
            request = Request("GET", "/api/v1/namespaces/default/pods",
                              (("watch", "true"),))
            first = await session.open_stream(request, read_timeout=None, retry=False)
            with pytest.raises(kubeasync.RequestTimeout, match="max_streams"):
                await session.open_stream(request, read_timeout=None, retry=False)
            first.close()
            second = await session.open_stream(request, read_timeout=None, retry=False)
            second.close()
        finally:
            await session.close()


EMFILE_SCRIPT = textwrap.dedent("""
    import asyncio, json, resource, sys
    import kubeasync
    from kubeasync.core.request import Request
    from kubeasync.transport.policy import RetryPolicy, Session

    delays = []

    class Counting(kubeasync.Backoff):
        def delay(self, attempt, retry_after=None):
            delays.append(attempt)
            return 0.001

    async def run(**options):
        config = kubeasync.ClusterConfig(server=sys.argv[1])
        session = Session(config, retry=RetryPolicy(backoff=Counting()), **options)
        try:
            results = await asyncio.gather(
                *(session.send(Request("GET", "/slow")) for _ in range(600)),
                return_exceptions=True)
        finally:
            await session.close()
        errors = [r for r in results if isinstance(r, BaseException)]
        return {
            "ok": len(results) - len(errors),
            "errors": sorted({f"{type(e).__name__}: {e}" for e in errors})[:3],
            "retryable": sorted({getattr(e, "retryable", None) for e in errors}, key=str),
        }

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    unbounded = asyncio.run(run(max_requests=None))
    retries = len(delays)
    bounded = asyncio.run(run())
    print(json.dumps({"unbounded": unbounded, "retries": retries, "bounded": bounded}))
""")


async def test_out_of_file_descriptors_is_not_retried_and_the_default_bound_avoids_it() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.json_response({"major": "1"})

    async with http_server({("GET", "/slow"): slow}) as (url, _):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", EMFILE_SCRIPT, url,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    unbounded, bounded = result["unbounded"], result["bounded"]
    # Unbounded, 600 sockets under `ulimit -n 256`: some calls fail, each one at once,
    # with a message that says what ran out (0.1 retried them as network failures).
    assert unbounded["ok"] < 600
    assert unbounded["errors"] and all(
        "out of local resources" in e and "Too many open files" in e
        for e in unbounded["errors"]), unbounded
    assert unbounded["retryable"] == [False]
    assert result["retries"] == 0
    # With the default bound (100 in flight) the same 600 calls all succeed.
    assert bounded == {"ok": 600, "errors": [], "retryable": []}


# ------------------------------------------------------------------ risk: keepalive


async def test_stream_sockets_have_tcp_keepalive() -> None:
    async with FakeApiServer() as server, kubeasync.Client(server.config()) as kube:
        stream = kube.pods.watch_stream(timeout_seconds=None)
        opener = asyncio.create_task(stream.__anext__())
        try:
            for _ in range(500):
                if stream._body is not None:
                    break
                await asyncio.sleep(0.01)
            transport = kube.session.transport
            sockets = [
                proto.transport.get_extra_info("socket")
                for proto in transport._http.connector._acquired  # type: ignore[attr-defined]
            ]
            assert len(sockets) == 1
            sock = sockets[0]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            if hasattr(socket, "TCP_KEEPIDLE"):
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        finally:
            opener.cancel()
            await asyncio.gather(opener, return_exceptions=True)
            await stream.aclose()


# ------------------------------------------------------------------ defect 10: event loops


def test_a_client_used_from_a_second_event_loop_says_so() -> None:
    clients: list[kubeasync.Client] = []

    async def first() -> None:
        async with FakeApiServer() as server:
            kube = kubeasync.Client(server.config())
            clients.append(kube)
            await kube.version()

    async def second() -> None:
        await clients[0].version()

    asyncio.run(first())
    try:
        with pytest.raises(kubeasync.KubeError, match="belongs to another event loop"):
            # 0.1: RuntimeError: Event loop is closed, forever.
            asyncio.run(second())
    finally:
        clients[0].session.transport.abandon()  # type: ignore[attr-defined]
        clients[0].session.closed = True
