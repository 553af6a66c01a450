"""The policy in front of the transport: credentials, retries, rate limit, typed errors.

:class:`Session` is what the API layer talks to. For every attempt of a request it asks the
configuration's auth provider for credentials and adds the impersonation headers, sends
through the :class:`~kubeasync.transport.base.Transport`, turns a non-2xx answer into the
typed :class:`~kubeasync.ApiError` (one conversion, :func:`~kubeasync.core.errors.api_error_from_response`),
repeats once after a 401 when the provider could refresh its credential, and retries what
is safe to retry with one :class:`Backoff`, within the call's timeout. Plain requests,
streams and WebSockets all go through the same path, so they carry the same credentials,
TLS, proxy and impersonation.

Limits: at most ``max_requests`` requests are in flight at once (100 by default: 2,000
concurrent calls use at most 100 connections, not 2,000 sockets); streams and WebSockets,
which each hold a connection for as long as they last, have their own budget
(``max_streams``, unbounded by default), so that idle watches never starve requests.

Dead connections: a stream that received no byte for ``probe_after`` seconds (a quiet
watch, a quiet container's followed log) may sit on a connection that died without a
word (a partition, a hung proxy). The session then sends one probe (``GET /version``, any
HTTP answer counts as alive) for all of its quiet streams at once; if no answer comes in
``probe_timeout`` seconds, those streams fail with :class:`~kubeasync.RequestTimeout`
(a watcher reconnects from its checkpoint). A healthy server answers the probe, so a
watch that stays quiet for hours is never cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..config import ClusterConfig
from ..core.backoff import Backoff, positive_number
from ..core.codec import AnyDecoder, decode
from ..core.errors import (
    ApiError,
    ConnectError,
    RequestTimeout,
    TransportError,
    api_error_from_response,
)
from ..core.request import Request
from .base import ByteStream, Credentials, HttpResponse, Transport, UpgradeRefused, WebSocket

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_REQUESTS",
    "NO_RETRY",
    "PROBE_AFTER",
    "PROBE_TIMEOUT",
    "Backoff",
    "RateLimiter",
    "RetryPolicy",
    "Session",
]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("kubeasync")

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024 * 1024
"""The largest answer accepted once decompressed (2 GiB: a 100k-pod list with managed
fields is ~1.5 GiB). A gzip bomb stops here with a clear error."""

DEFAULT_MAX_REQUESTS = 100
"""Requests in flight at once by default (streams and WebSockets are not counted)."""

PROBE_AFTER = 30.0
"""Seconds without a byte on a stream after which the session probes the server."""

PROBE_TIMEOUT = 15.0
"""Seconds the probe may take before the quiet streams count as dead."""

_PROBE = Request("GET", "/version")

_ERROR_BODY_LIMIT = 64 * 1024
_ERROR_BODY_TIMEOUT = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How the session retries a failed request, within the call's timeout.

    Retried: 429 (any verb: the server refused it before doing anything), the
    ``retry_statuses`` (502/503/504) and a cut connection for idempotent requests, and a
    failed connect for any request (nothing reached the server). Waits come from
    ``backoff`` (a server's ``Retry-After`` wins, up to the backoff's maximum). No retry
    starts that would end after the call's timeout.
    """

    max_retries: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.1, maximum=10.0))
    retry_statuses: frozenset[int] = frozenset({502, 503, 504})

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) \
                or self.max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        if not isinstance(self.backoff, Backoff):
            raise ValueError(f"backoff must be a kubeasync.Backoff, got {self.backoff!r}")

    def retries(self, error: Exception, request: Request) -> bool:
        """Whether ``error`` on ``request`` may be retried at all."""
        if isinstance(error, ApiError):
            if error.code == 429:
                return True
            return error.code in self.retry_statuses and request.idempotent
        if isinstance(error, ConnectError):
            return True
        if isinstance(error, RequestTimeout):
            return False  # the call's time is up
        if isinstance(error, TransportError):
            return error.retryable and request.idempotent
        return False


NO_RETRY = RetryPolicy(max_retries=0)


class RateLimiter:
    """A token bucket, as client-go's: ``qps`` tokens per second, up to ``burst`` at once."""

    def __init__(self, qps: float, burst: int) -> None:
        if isinstance(qps, bool) or not isinstance(qps, (int, float)) or qps <= 0:
            raise ValueError(f"qps must be a number > 0, got {qps!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        self.qps = float(qps)
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.qps)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.qps)


class _Deadline:
    """The end of one call: every attempt and every wait between attempts fit before it."""

    __slots__ = ("end", "timeout")

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        if self.end is None:
            return None
        return max(0.0, self.end - time.monotonic())

    def allows(self, delay: float) -> bool:
        return self.end is None or time.monotonic() + delay < self.end


class Session:
    """Sends :class:`~kubeasync.core.request.Request` objects to one API server.

    Args:
        config: the cluster (URL, TLS, proxy, auth, impersonation).
        transport: the I/O behind it (default: :class:`~kubeasync.transport.aiohttp.AiohttpTransport`).
        timeout: seconds one call may take, retries and their waits included.
        retry: the :class:`RetryPolicy` (``NO_RETRY`` to disable).
        qps: an optional client-side rate limit in requests per second (off by default).
        burst: how many requests may go at once under ``qps`` (default: ``qps``).
        max_connections: the aiohttp pool size (``None``: unlimited).
        max_body_bytes: the largest answer accepted once decompressed.
        max_requests: requests in flight at once (``None``: unlimited); the others wait
            for a slot, within their timeout.
        max_streams: streams and WebSockets open at once (``None``: unlimited).
        probe_after: seconds of silence on a stream before the server is probed
            (``None``: never; then only the streams' own idle timeouts apply).
        probe_timeout: seconds the probe may take before quiet streams count as dead.

    The limits and probe settings are attributes of the same names.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        transport: Transport | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        qps: float | None = None,
        burst: int | None = None,
        max_connections: int | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_requests: int | None = DEFAULT_MAX_REQUESTS,
        max_streams: int | None = None,
        probe_after: float | None = PROBE_AFTER,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValueError(f"retry must be a kubeasync.RetryPolicy, got {retry!r}")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) \
                or max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be an int >= 1, got {max_body_bytes!r}")
        if transport is None:
            from .aiohttp import AiohttpTransport

            transport = AiohttpTransport(config, max_connections=max_connections)
        self.config = config
        # (auth, impersonation, credentials) while the auth says its answer is fixed
        self._fixed_credentials: tuple[object, object, Credentials] | None = None
        self.transport = transport
        self.timeout = positive_number(timeout, "timeout")
        self.retry = retry if retry is not None else RetryPolicy()
        self.rate_limiter = (
            RateLimiter(qps, burst if burst is not None else max(1, int(qps)))
            if qps is not None
            else None
        )
        self.max_body_bytes = max_body_bytes
        self._request_slots = _Slots.of(max_requests, "max_requests")
        self._stream_slots = _Slots.of(max_streams, "max_streams")
        self.probe_after = (None if probe_after is None
                            else positive_number(probe_after, "probe_after"))
        self.probe_timeout = positive_number(probe_timeout, "probe_timeout")
        self.closed = False
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()
        self._closing: asyncio.Event | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._alive_at = -float("inf")  # when the server last answered a probe

    @property
    def max_requests(self) -> int | None:
        """Requests in flight at once (``None``: unlimited). Set it before the calls it
        should bound: calls already holding a slot keep it."""
        return self._request_slots.limit if self._request_slots is not None else None

    @max_requests.setter
    def max_requests(self, limit: int | None) -> None:
        self._request_slots = _Slots.of(limit, "max_requests")

    @property
    def max_streams(self) -> int | None:
        """Streams and WebSockets open at once (``None``: unlimited); see
        :attr:`max_requests`."""
        return self._stream_slots.limit if self._stream_slots is not None else None

    @max_streams.setter
    def max_streams(self, limit: int | None) -> None:
        self._stream_slots = _Slots.of(limit, "max_streams")

    def track(self, stream: Any) -> None:
        """Remember an open stream, so that closing the session ends it instead of leaving
        its reader waiting on a dead connection, and so that a quiet one is probed.

        A stream has ``close_now()``, ``fail_now(error)``, ``closed``, ``where`` and
        ``last_activity`` (``time.monotonic()`` of its last byte); see
        :class:`~kubeasync.streams.response.ResponseStream`."""
        self._streams.add(stream)
        if self.probe_after is not None and self._watchdog is None and not self.closed:
            self._arm_watchdog()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the session is closed meanwhile."""
        if self.closed or seconds <= 0:
            return
        if self._closing is None:
            self._closing = asyncio.Event()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def close(self) -> None:
        """End every open stream and close every connection. Safe to call twice."""
        self.closed = True
        if self._closing is not None:
            self._closing.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        probe, self._probe_task = self._probe_task, None
        if probe is not None and not probe.done():
            probe.cancel()
            await asyncio.wait({probe})
        for stream in list(self._streams):
            stream.close_now()
        await self.transport.close()

    # ------------------------------------------------------------------ dead streams

    def _arm_watchdog(self) -> None:
        assert self.probe_after is not None
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self.probe_after / 3, self._check_streams)

    def _check_streams(self) -> None:
        """Every third of ``probe_after``: probe the server for the streams that were quiet
        for ``probe_after`` seconds since they (or a probe) last heard from it."""
        self._watchdog = None
        if self.closed or self.probe_after is None:
            return
        open_streams = [s for s in self._streams if not s.closed]
        if not open_streams:
            return  # track() arms it again
        self._arm_watchdog()
        if self._probe_task is not None:
            return
        now = time.monotonic()
        heard = self._alive_at
        quiet = [s for s in open_streams
                 if s.last_activity is not None
                 and now - max(s.last_activity, heard) >= self.probe_after]
        if quiet:
            self._probe_task = asyncio.get_running_loop().create_task(
                self._probe(quiet, now), name="kubeasync stream probe")

    async def _probe(self, quiet: list[Any], started: float) -> None:
        try:
            credentials = await self._credentials()
            await self.transport.send(_PROBE, credentials, timeout=self.probe_timeout,
                                      max_body_bytes=_ERROR_BODY_LIMIT)
        except TransportError as exc:
            if self.closed:
                return
            for stream in quiet:
                last = stream.last_activity
                if stream.closed or last is None or last >= started:
                    continue  # it heard from the server meanwhile
                log.debug("%s: quiet for %.0f s and the server did not answer a probe: %s",
                          stream.where, time.monotonic() - last, exc)
                stream.fail_now(RequestTimeout(
                    f"{stream.where}: no data for {time.monotonic() - last:.0f} s and no"
                    f" answer from the server to a probe within {self.probe_timeout} s:"
                    " the connection is dead"
                ))
        except Exception as exc:  # the credentials, not the connection: nothing is known
            log.debug("the stream probe could not be sent: %s: %s", type(exc).__name__, exc)
        else:
            self._alive_at = started
        finally:
            self._probe_task = None

    # ------------------------------------------------------------------ requests

    async def send(self, request: Request, *, timeout: float | None = None) -> HttpResponse:
        """Send a request and read its whole 2xx answer, retrying as the policy allows."""
        deadline = _Deadline(self.timeout if timeout is None else positive_number(timeout, "timeout"))

        async def attempt(credentials: Credentials) -> HttpResponse:
            slots = self._request_slots
            try:
                if slots is not None:
                    await slots.acquire(deadline, request)
                try:
                    response = await self.transport.send(
                        request, credentials, timeout=deadline.remaining(),
                        max_body_bytes=self.max_body_bytes,
                    )
                finally:
                    if slots is not None:
                        slots.release()
            except RequestTimeout:
                raise RequestTimeout(
                    f"{request.method} {request.path}: no complete answer within"
                    f" {deadline.timeout} s"
                ) from None
            if response.status >= 300:
                raise self._error(request, response.status, response.reason,
                                  response.headers, response.body)
            return response

        return await self._with_retries(request, self.retry, deadline, attempt)

    async def request(
        self,
        request: Request,
        decoder: AnyDecoder[T],
        *,
        timeout: float | None = None,
    ) -> T:
        """Send a request and decode its answer with ``decoder`` (a
        :class:`~kubeasync.core.codec.KindDecoder` also checks the answer's kind)."""
        response = await self.send(request, timeout=timeout)
        return decode(decoder, response.body, request)

    async def open_stream(
        self,
        request: Request,
        *,
        read_timeout: float | None,
        retry: bool = True,
    ) -> ByteStream:
        """Open a streamed 2xx answer (a watch, followed logs).

        The wait for the answer's headers is bounded by the session's timeout (retries
        included); ``read_timeout`` bounds each wait for body bytes (``None``: none). The
        caller owns the stream and must ``close()`` it.
        """
        deadline = _Deadline(self.timeout)

        async def attempt(credentials: Credentials) -> ByteStream:
            slots = self._stream_slots
            if slots is not None:
                await slots.acquire(deadline, request)
            try:
                stream = await self.transport.open_stream(
                    request, credentials, timeout=deadline.remaining(), read_timeout=read_timeout
                )
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            if slots is not None:
                stream = _SlotStream(stream, slots)
            if stream.status >= 300:
                try:
                    body = await asyncio.wait_for(_read_limited(stream), _ERROR_BODY_TIMEOUT)
                except (TransportError, asyncio.TimeoutError):
                    body = b""  # the status code alone still makes a clear error
                finally:
                    stream.close()
                raise self._error(request, stream.status, stream.reason, stream.headers, body)
            return stream

        return await self._with_retries(request, self.retry if retry else NO_RETRY, deadline,
                                        attempt)

    async def connect_websocket(
        self,
        request: Request,
        *,
        protocols: Sequence[str],
        timeout: float | None = None,
    ) -> WebSocket:
        """Upgrade a request to a WebSocket offering ``protocols``; a refused upgrade raises
        the server's typed error (404 pod, 400 container, 403)."""
        deadline = _Deadline(self.timeout if timeout is None else positive_number(timeout, "timeout"))

        async def attempt(credentials: Credentials) -> WebSocket:
            slots = self._stream_slots
            if slots is not None:
                await slots.acquire(deadline, request)
            try:
                ws = await self.transport.connect_websocket(
                    request, credentials, protocols=protocols, timeout=deadline.remaining()
                )
            except UpgradeRefused as refused:
                if slots is not None:
                    slots.release()
                answer = refused.response
                raise self._error(request, answer.status, answer.reason, answer.headers,
                                  answer.body) from None
            except BaseException:
                if slots is not None:
                    slots.release()
                raise
            return _SlotWebSocket(ws, slots) if slots is not None else ws

        # Opening a session that runs a command is not idempotent: only a failed connect
        # (or a 429) is retried.
        return await self._with_retries(request, self.retry, deadline, attempt)

    # ------------------------------------------------------------------ policy

    async def _credentials(self) -> Credentials:
        auth, impersonate = self.config.auth, self.config.impersonate
        fixed = self._fixed_credentials
        if fixed is not None and fixed[0] is auth and fixed[1] is impersonate:
            return fixed[2]
        headers = list((await auth.headers()).items())
        headers.extend(self.config.impersonation_headers())
        credentials = Credentials(tuple(headers), await auth.client_certificate())
        self._fixed_credentials = (auth, impersonate, credentials) if auth.fixed else None
        return credentials

    @staticmethod
    def _error(request: Request, status: int, reason: str, headers: object, body: bytes
               ) -> ApiError:
        get = getattr(headers, "get", None)
        content_type = get("Content-Type", "") if get is not None else ""
        retry_after = get("Retry-After") if get is not None else None
        return api_error_from_response(
            status, body, content_type=content_type, http_reason=reason,
            retry_after_header=retry_after, method=request.method, path=request.target,
        )

    async def _with_retries(
        self,
        request: Request,
        policy: RetryPolicy,
        deadline: _Deadline,
        attempt: Callable[[Credentials], Awaitable[R]],
    ) -> R:
        retries = 0
        refreshed = False
        while True:
            if self.rate_limiter is not None:
                await self.rate_limiter.acquire()
            retry_after: float | None = None
            try:
                return await attempt(await self._credentials())
            except ApiError as error:
                if error.code == 401 and not refreshed:
                    refreshed = True
                    if await self.config.auth.refresh():
                        log.debug("401 on %s %s: credentials refreshed, repeating",
                                  request.method, request.path)
                        continue
                if not policy.retries(error, request):
                    raise
                failure: Exception = error
                retry_after = error.retry_after
            except TransportError as error:
                if not policy.retries(error, request):
                    raise
                failure = error
            if retries >= policy.max_retries:
                raise failure
            delay = policy.backoff.delay(retries, retry_after)
            if not deadline.allows(delay):
                raise failure
            log.debug("%s %s failed (%s); retry %d in %.2f s",
                      request.method, request.path, failure, retries + 1, delay)
            retries += 1
            await asyncio.sleep(delay)


async def _read_limited(stream: ByteStream, limit: int = _ERROR_BODY_LIMIT) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit]


class _Slots:
    """At most ``limit`` of something at once (requests in flight, open streams)."""

    __slots__ = ("_semaphore", "limit", "name")

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        self._semaphore = asyncio.Semaphore(limit)

    @classmethod
    def of(cls, limit: int | None, name: str) -> _Slots | None:
        if limit is None:
            return None
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{name} must be an int >= 1 or None, got {limit!r}")
        return cls(limit, name)

    async def acquire(self, deadline: _Deadline, request: Request) -> None:
        """Take a slot, waiting within the call's deadline for one to be free."""
        semaphore = self._semaphore
        if not semaphore.locked():
            await semaphore.acquire()  # free: returns without suspending
            return
        try:
            await asyncio.wait_for(semaphore.acquire(), deadline.remaining())
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"{request.method} {request.path}: waited {deadline.timeout} s for one of the"
                f" {self.limit} slots ({self.name}) held by other calls of this client;"
                f" raise {self.name} or the timeout"
            ) from None

    def release(self) -> None:
        self._semaphore.release()

    @property
    def in_use(self) -> int:
        return self.limit - self._semaphore._value


class _SlotStream(ByteStream):
    """A stream holding a slot of ``max_streams`` until it is closed."""

    __slots__ = ("_slots", "_stream", "headers", "reason", "status")

    def __init__(self, stream: ByteStream, slots: _Slots) -> None:
        self._stream: ByteStream | None = stream
        self._slots = slots
        self.status = stream.status
        self.reason = stream.reason
        self.headers = stream.headers

    async def read(self) -> bytes:
        stream = self._stream
        return b"" if stream is None else await stream.read()

    @property
    def at_eof(self) -> bool:
        return self._stream is None or self._stream.at_eof

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
            self._slots.release()

    def __del__(self) -> None:
        if getattr(self, "_stream", None) is not None:
            self.close()


class _SlotWebSocket(WebSocket):
    """A WebSocket holding a slot of ``max_streams`` until it is closed."""

    def __init__(self, ws: WebSocket, slots: _Slots) -> None:
        self._ws = ws
        self._slots: _Slots | None = slots
        self.protocol = ws.protocol

    async def send(self, data: bytes) -> None:
        await self._ws.send(data)

    async def receive(self) -> bytes | None:
        message = await self._ws.receive()
        if message is None:
            self._release()
        return message

    async def close(self) -> None:
        try:
            await self._ws.close()
        finally:
            self._release()

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    def _release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()
