"""The policy in front of the transport: credentials, retries, rate limit, typed errors.

:class:`Session` is what the API layer talks to. For every attempt of a request it asks the
configuration's auth provider for credentials and adds the impersonation headers, sends
through the :class:`~kubeasync.transport.base.Transport`, turns a non-2xx answer into the
typed :class:`~kubeasync.ApiError` (one conversion, :func:`~kubeasync.core.errors.api_error_from_response`),
repeats once after a 401 when the provider could refresh its credential, and retries what
is safe to retry with one :class:`Backoff`, within the call's timeout. Plain requests,
streams and WebSockets all go through the same path, so they carry the same credentials,
TLS, proxy and impersonation.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from ..config import ClusterConfig
from ..core.backoff import Backoff, positive_number
from ..core.codec import decode
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
    "NO_RETRY",
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
        self.transport = transport
        self.timeout = positive_number(timeout, "timeout")
        self.retry = retry if retry is not None else RetryPolicy()
        self.rate_limiter = (
            RateLimiter(qps, burst if burst is not None else max(1, int(qps)))
            if qps is not None
            else None
        )
        self.max_body_bytes = max_body_bytes
        self.closed = False
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()

    def track(self, stream: Any) -> None:
        """Remember an open stream (anything with ``close_now()``), so that closing the
        session ends it instead of leaving its reader waiting on a dead connection."""
        self._streams.add(stream)

    async def close(self) -> None:
        """End every open stream and close every connection. Safe to call twice."""
        self.closed = True
        for stream in list(self._streams):
            stream.close_now()
        await self.transport.close()

    # ------------------------------------------------------------------ requests

    async def send(self, request: Request, *, timeout: float | None = None) -> HttpResponse:
        """Send a request and read its whole 2xx answer, retrying as the policy allows."""
        deadline = _Deadline(self.timeout if timeout is None else positive_number(timeout, "timeout"))

        async def attempt(credentials: Credentials) -> HttpResponse:
            try:
                response = await self.transport.send(
                    request, credentials, timeout=deadline.remaining(),
                    max_body_bytes=self.max_body_bytes,
                )
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
        decoder: msgspec.json.Decoder[T],
        *,
        timeout: float | None = None,
    ) -> T:
        """Send a request and decode its answer with ``decoder``."""
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
            stream = await self.transport.open_stream(
                request, credentials, timeout=deadline.remaining(), read_timeout=read_timeout
            )
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
            try:
                return await self.transport.connect_websocket(
                    request, credentials, protocols=protocols, timeout=deadline.remaining()
                )
            except UpgradeRefused as refused:
                answer = refused.response
                raise self._error(request, answer.status, answer.reason, answer.headers,
                                  answer.body) from None

        # Opening a session that runs a command is not idempotent: only a failed connect
        # (or a 429) is retried.
        return await self._with_retries(request, self.retry, deadline, attempt)

    # ------------------------------------------------------------------ policy

    async def _credentials(self) -> Credentials:
        auth = self.config.auth
        headers = list((await auth.headers()).items())
        headers.extend(self.config.impersonation_headers())
        return Credentials(tuple(headers), await auth.client_certificate())

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
