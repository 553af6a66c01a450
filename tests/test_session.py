"""The session layer over real sockets: retries, backoff bounds, 401 refresh, timeouts,
decode errors, rate limiting, and connection cleanup. aioresponses injects only the
connection failures a live server cannot produce on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

import kubeasync
from kubeasync.config.auth import Auth
from kubeasync.core.codec import gc_paused
from kubeasync.transport.policy import RateLimiter, RetryPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web-0", "namespace": "ns"}}


def status(code: int, reason: str, **details: Any) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": reason, "code": code, "message": reason}
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


class RecordingBackoff(kubeasync.Backoff):
    """Short delays, and a record of every delay the session asked for."""

    def __init__(self) -> None:
        super().__init__(initial=0.001, maximum=0.01)
        object.__setattr__(self, "delays", [])

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        self.delays.append((attempt, retry_after))  # type: ignore[attr-defined]
        return 0.001


class RecordingPolicy(RetryPolicy):
    """A retry policy with a RecordingBackoff; ``delays`` is its record."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(backoff=RecordingBackoff(), **kwargs)

    @property
    def delays(self) -> list[tuple[int, float | None]]:
        return self.backoff.delays  # type: ignore[attr-defined, no-any-return]


@asynccontextmanager
async def server(routes: dict[tuple[str, str], Handler]) -> AsyncIterator[str]:
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


def client(url: str, **kwargs: Any) -> kubeasync.Client:
    config = kwargs.pop("config", None) or kubeasync.ClusterConfig(server=url, namespace="ns")
    return kubeasync.Client(config, **kwargs)


def scripted(*answers: Callable[[], web.StreamResponse]) -> tuple[Handler, list[web.Request]]:
    """A handler giving each answer in turn (the last one repeats), and its request log."""
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        await request.read()
        return answers[min(len(seen), len(answers)) - 1]()

    return handler, seen


POD_PATH = "/api/v1/namespaces/ns/pods/web-0"
PODS_PATH = "/api/v1/namespaces/ns/pods"


async def test_429_is_retried_honouring_retry_after() -> None:
    handler, seen = scripted(
        lambda: status(429, "TooManyRequests", retryAfterSeconds=2),
        lambda: web.json_response(POD),
    )
    policy = RecordingPolicy()
    async with server({("GET", POD_PATH): handler}) as url, client(url, retry=policy) as kube:
        pod = await kube.pods.get("web-0")
    assert pod.metadata is not None and pod.metadata.name == "web-0"
    assert len(seen) == 2
    assert policy.delays == [(0, 2.0)]


async def test_retry_after_header_wins_over_status() -> None:
    def throttled() -> web.Response:
        response = status(429, "TooManyRequests", retryAfterSeconds=9)
        response.headers["Retry-After"] = "1"
        return response

    handler, _ = scripted(throttled, lambda: web.json_response(POD))
    policy = RecordingPolicy()
    async with server({("GET", POD_PATH): handler}) as url, client(url, retry=policy) as kube:
        await kube.pods.get("web-0")
    assert policy.delays == [(0, 1.0)]


async def test_a_create_is_retried_after_429_because_the_server_did_nothing() -> None:
    handler, seen = scripted(
        lambda: status(429, "TooManyRequests"),
        lambda: web.json_response(POD, status=201),
    )
    async with server({("POST", PODS_PATH): handler}) as url, client(
        url, retry=RecordingPolicy()
    ) as kube:
        await kube.pods.create({"metadata": {"name": "web-0"}})
    assert len(seen) == 2


@pytest.mark.parametrize("code", [502, 503, 504])
async def test_gateway_errors_are_retried_for_reads(code: int) -> None:
    handler, seen = scripted(lambda: status(code, "ServiceUnavailable"),
                             lambda: web.json_response(POD))
    async with server({("GET", POD_PATH): handler}) as url, client(
        url, retry=RecordingPolicy()
    ) as kube:
        await kube.pods.get("web-0")
    assert len(seen) == 2


async def test_a_create_is_not_retried_after_503() -> None:
    handler, seen = scripted(lambda: status(503, "ServiceUnavailable"),
                             lambda: web.json_response(POD, status=201))
    async with server({("POST", PODS_PATH): handler}) as url, client(
        url, retry=RecordingPolicy()
    ) as kube:
        with pytest.raises(kubeasync.ServerError) as info:
            await kube.pods.create({"metadata": {"name": "web-0"}})
    assert info.value.code == 503
    assert len(seen) == 1


async def test_500_is_not_retried() -> None:
    handler, seen = scripted(lambda: status(500, "InternalError"))
    async with server({("GET", POD_PATH): handler}) as url, client(
        url, retry=RecordingPolicy()
    ) as kube:
        with pytest.raises(kubeasync.ServerError):
            await kube.pods.get("web-0")
    assert len(seen) == 1


async def test_retries_are_bounded_in_count() -> None:
    handler, seen = scripted(lambda: status(429, "TooManyRequests"))
    policy = RecordingPolicy(max_retries=3)
    async with server({("GET", POD_PATH): handler}) as url, client(url, retry=policy) as kube:
        with pytest.raises(kubeasync.TooManyRequests):
            await kube.pods.get("web-0")
    assert len(seen) == 4


async def test_retries_are_bounded_in_total_time() -> None:
    handler, seen = scripted(lambda: status(429, "TooManyRequests", retryAfterSeconds=30))
    policy = RetryPolicy(max_retries=10)
    async with server({("GET", POD_PATH): handler}) as url, client(url, retry=policy) as kube:
        with pytest.raises(kubeasync.TooManyRequests) as info:
            await kube.pods.get("web-0", timeout=5)
    # the call's timeout bounds its retries: the server's 30 s (capped at the backoff's
    # 10 s maximum) would overrun the 5 s budget, so it gives up at once instead of sleeping
    assert len(seen) == 1
    assert info.value.retry_after == 30


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = RetryPolicy(backoff=kubeasync.Backoff(initial=0.2, maximum=10)).backoff
    for attempt, floor in [(0, 0.2), (1, 0.4), (3, 1.6)]:
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(floor <= d <= 2 * floor for d in delays)
        assert len(delays) > 1, "delays must be jittered"
    assert backoff.delay(10) == 10.0, "capped at the maximum"
    assert backoff.delay(0, retry_after=5) == 5
    assert backoff.delay(0, retry_after=3600) == 10.0, "Retry-After is capped at the maximum"
    assert backoff.delay(0, retry_after=-1) == 0.0


class CountingTokenAuth(Auth):
    """Serves ``tokens`` in order; each refresh moves to the next one."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.refreshes = 0

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[min(self.refreshes, len(self.tokens) - 1)]}"}

    async def refresh(self) -> bool:
        self.refreshes += 1
        return True


def token_checking(valid: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {valid}":
            return status(401, "Unauthorized")
        return web.json_response(POD)

    return handler


async def test_401_refreshes_the_credential_once_and_repeats() -> None:
    auth = CountingTokenAuth("old", "new")
    async with server({("GET", POD_PATH): token_checking("new")}) as url:
        config = kubeasync.ClusterConfig(server=url, namespace="ns", auth=auth)
        async with client(url, config=config) as kube:
            await kube.pods.get("web-0")
    assert auth.refreshes == 1


async def test_a_second_401_raises_unauthorized() -> None:
    auth = CountingTokenAuth("old", "still-wrong")
    async with server({("GET", POD_PATH): token_checking("new")}) as url:
        config = kubeasync.ClusterConfig(server=url, namespace="ns", auth=auth)
        async with client(url, config=config) as kube:
            with pytest.raises(kubeasync.Unauthorized):
                await kube.pods.get("web-0")
    assert auth.refreshes == 1


async def test_per_request_timeout() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response(POD)

    async with server({("GET", POD_PATH): slow}) as url, client(
        url, retry=RetryPolicy(max_retries=0)
    ) as kube:
        with pytest.raises(kubeasync.RequestTimeout) as info:
            await kube.pods.get("web-0", timeout=0.2)
    assert isinstance(info.value, TimeoutError)


async def test_a_body_that_does_not_fit_the_model_is_a_decode_error() -> None:
    async def wrong(request: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "Pod", "metadata": {"name": 5}})

    async with server({("GET", POD_PATH): wrong}) as url, client(url) as kube:
        with pytest.raises(kubeasync.DecodeError) as info:
            await kube.pods.get("web-0")
    message = str(info.value)
    assert "GET /api/v1/namespaces/ns/pods/web-0" in message
    assert "Pod" in message and "$.metadata.name" in message


async def test_an_html_error_page_is_a_clear_error() -> None:
    async def proxy(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="<html><h1>Bad gateway</h1></html>",
                            content_type="text/html")

    async with server({("GET", POD_PATH): proxy}) as url, client(
        url, retry=RecordingPolicy(max_retries=1)
    ) as kube:
        with pytest.raises(kubeasync.ServerError) as info:
            await kube.pods.get("web-0")
    assert info.value.code == 502
    assert "<h1>Bad gateway</h1>" in str(info.value)


async def test_gzip_answers_are_decoded() -> None:
    async def gzipped(request: web.Request) -> web.StreamResponse:
        assert "gzip" in request.headers.get("Accept-Encoding", "")
        response = web.json_response(POD)
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async with server({("GET", POD_PATH): gzipped}) as url, client(url) as kube:
        pod = await kube.pods.get("web-0")
    assert pod.metadata is not None and pod.metadata.namespace == "ns"


async def test_client_side_rate_limit_spaces_requests() -> None:
    limiter = RateLimiter(qps=1000, burst=2)
    await limiter.acquire()
    await limiter.acquire()
    assert limiter._tokens < 1  # the burst is spent: the next acquire has to wait
    await limiter.acquire()
    with pytest.raises(ValueError, match="qps"):
        RateLimiter(qps=0, burst=1)


async def test_rate_limited_client_still_works() -> None:
    handler, seen = scripted(lambda: web.json_response(POD))
    async with server({("GET", POD_PATH): handler}) as url, client(url, qps=200, burst=1) as kube:
        await asyncio.gather(*(kube.pods.get("web-0") for _ in range(5)))
    assert len(seen) == 5


async def test_closing_the_client_closes_every_connection() -> None:
    handler, _ = scripted(lambda: web.json_response(POD))
    async with server({("GET", POD_PATH): handler}) as url:
        kube = client(url)
        await asyncio.gather(*(kube.pods.get("web-0") for _ in range(3)))
        connections = kube.session.transport.connections()  # type: ignore[attr-defined]
        assert connections["idle"] >= 1
        await kube.close()
        assert kube.session.transport.connections() == {  # type: ignore[attr-defined]
            "in_use": 0, "idle": 0, "open": False}
        await kube.close()  # a second close is harmless
        with pytest.raises(kubeasync.KubeError, match="closed"):
            await kube.pods.get("web-0")


def test_gc_paused_restores_the_collector_on_every_path() -> None:
    import gc

    assert gc.isenabled()
    with pytest.raises(KeyError), gc_paused():
        assert not gc.isenabled()
        raise KeyError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled(), "a program that disabled the GC keeps it disabled"
    finally:
        gc.enable()


# --------------------------------------------------------- injected connection faults
# aioresponses injects the failure of the first attempt; the retry passes through to a
# real server on 127.0.0.1.


def refused(host: str = "127.0.0.1") -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey(host, 80, False, True, None, None, None),
        OSError(111, "Connection refused"),
    )


async def test_a_create_that_never_reached_the_server_is_retried() -> None:
    handler, seen = scripted(lambda: web.json_response(POD, status=201))
    async with server({("POST", PODS_PATH): handler}) as url:
        with aioresponses(passthrough_unmatched=True) as mocked:
            mocked.post(f"{url}{PODS_PATH}", exception=refused())
            async with client(url, retry=RecordingPolicy()) as kube:
                pod = await kube.pods.create({"metadata": {"name": "web-0"}})
    assert pod.metadata is not None and pod.metadata.name == "web-0"
    assert len(seen) == 1


async def test_a_create_cut_off_after_sending_is_not_retried() -> None:
    handler, seen = scripted(lambda: web.json_response(POD, status=201))
    async with server({("POST", PODS_PATH): handler}) as url:
        with aioresponses(passthrough_unmatched=True) as mocked:
            mocked.post(f"{url}{PODS_PATH}", exception=aiohttp.ServerDisconnectedError())
            async with client(url, retry=RecordingPolicy()) as kube:
                with pytest.raises(kubeasync.TransportError, match="connection failed"):
                    await kube.pods.create({"metadata": {"name": "web-0"}})
    assert seen == []


async def test_a_read_cut_off_is_retried() -> None:
    handler, seen = scripted(lambda: web.json_response(POD))
    async with server({("GET", POD_PATH): handler}) as url:
        with aioresponses(passthrough_unmatched=True) as mocked:
            mocked.get(f"{url}{POD_PATH}", exception=aiohttp.ServerDisconnectedError())
            async with client(url, retry=RecordingPolicy()) as kube:
                await kube.pods.get("web-0")
    assert len(seen) == 1


async def test_connection_refused_everywhere_is_a_transport_error() -> None:
    # a port nobody listens on: a real refused connection, no injection needed
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}", retry=RecordingPolicy(max_retries=2)) as kube:
        with pytest.raises(kubeasync.TransportError, match="cannot connect"):
            await kube.pods.get("web-0")
