"""The session layer: one aiohttp ClientSession per Client.

It adds credentials to each :class:`~kubeasync.request.Request`, sends it, retries what is
safe to retry (with jittered exponential backoff bounded in count and total time), turns
every non-2xx answer into a typed :class:`~kubeasync.errors.ApiError`, decodes bodies with
a reused msgspec decoder, and opens streams for watches and logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import msgspec
from multidict import CIMultiDictProxy
from yarl import URL

from .._version import __version__
from ..config import ClientCertificate, ClusterConfig
from ..core.errors import (
    ApiError,
    DecodeError,
    RequestTimeout,
    TransportError,
    api_error_from_response,
)
from ..core.request import Request

__all__ = ["RateLimiter", "Response", "RetryPolicy", "Session", "gc_paused"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("kubeasync")

USER_AGENT = f"kubeasync/{__version__}"

# Decoding a large list allocates millions of objects; with the cyclic GC running, most of
# the time goes to GC passes over objects that cannot be garbage (DESIGN.md: 1.9 s vs 0.6 s
# for 10k pods). Above this size the GC is paused for the duration of one decode.
GC_PAUSE_THRESHOLD = 256 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
_ERROR_BODY_TIMEOUT = 10.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block; restore it on every path.

    Only the enabled/disabled flag is touched, and only if it was enabled: a program that
    disabled the GC itself keeps it disabled. Pausing never frees less memory: objects are
    collected by the next GC pass after the block.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class RetryPolicy:
    """How the session retries failed requests.

    Retried: 429 (any verb: the server refused it before doing anything), 502/503/504 and
    connection failures for idempotent requests, and a failed connect for any request
    (it provably never reached the server). The delay doubles from ``backoff_base`` up to
    ``backoff_max``, with jitter, and a server's ``Retry-After`` / ``retryAfterSeconds``
    wins when given. No retry starts after ``total_timeout`` seconds.
    """

    max_retries: int = 5
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    total_timeout: float = 60.0
    retry_statuses: frozenset[int] = frozenset({502, 503, 504})

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return retry_after + random.uniform(0, 0.1)
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(max_retries=0)


class RateLimiter:
    """A token bucket, as client-go's: ``qps`` tokens per second, up to ``burst`` at once."""

    def __init__(self, qps: float, burst: int) -> None:
        if qps <= 0:
            raise ValueError(f"qps must be > 0, got {qps}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.qps = qps
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


@dataclass(frozen=True)
class Response:
    """A complete 2xx answer."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class Session:
    """Sends :class:`Request` objects to one API server.

    Args:
        config: the cluster to talk to.
        timeout: seconds for one request, from sending to the last byte of the answer.
        retry: the retry policy (``NO_RETRY`` to disable).
        qps: an optional client-side rate limit in requests per second (off by default).
        burst: how many requests may go at once under ``qps`` (default: ``qps``).
        max_connections: the connection pool size; ``None`` means unlimited, because each
            open watch holds a connection and a full pool would stall new requests.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        qps: float | None = None,
        burst: int | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.rate_limiter = (
            RateLimiter(qps, burst if burst is not None else max(1, int(qps)))
            if qps is not None
            else None
        )
        self.max_connections = max_connections
        self._ssl: ssl.SSLContext | None = config.ssl_context()
        # The TLS context for a client certificate the auth provider hands out (an exec
        # plugin's), rebuilt only when the provider's certificate changes.
        self._provider_certificate: ClientCertificate | None = None
        self._provider_ssl: ssl.SSLContext | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    # ------------------------------------------------------------- lifecycle

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this kubeasync session is closed")
        if self._http is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections or 0,
                ssl=self._ssl if self._ssl is not None else False,
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
                auto_decompress=True,
                trust_env=False,
            )
        return self._http

    @property
    def http(self) -> aiohttp.ClientSession:
        """The underlying aiohttp session (created on first use)."""
        return self._client()

    async def close(self) -> None:
        """Close every connection. Safe to call twice."""
        self._closed = True
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------- requests

    async def send(self, request: Request, *, timeout: float | None = None) -> Response:
        """Send a request and read the whole 2xx answer, retrying as the policy allows."""
        total = timeout if timeout is not None else self.timeout
        client_timeout = aiohttp.ClientTimeout(total=total)

        async def once() -> Response:
            resp = await self._send_once(request, client_timeout)
            try:
                if resp.status >= 300:
                    raise await _error_from(resp, request)
                try:
                    body = await resp.read()
                except asyncio.TimeoutError:
                    raise _MaybeSent(RequestTimeout(
                        f"{request.method} {request.path}: no complete answer within {total} s"
                    )) from None
                except aiohttp.ClientError as exc:
                    raise _MaybeSent(TransportError(
                        f"{request.method} {request.path}: the answer was cut off: {exc!r}"
                    )) from None
                return Response(resp.status, resp.headers, body)
            finally:
                resp.release()

        return await self._with_retries(request, self.retry, once)

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
        read_timeout: float | None = None,
        retry: bool = True,
    ) -> aiohttp.ClientResponse:
        """Open a streaming answer (a watch, followed logs) and return the 2xx response.

        Non-2xx answers raise. ``read_timeout`` bounds the silence between two reads
        (``None``: wait forever). The caller owns the response: it must ``close()`` it
        (closing drops the connection at once) or read it to the end and ``release()`` it.
        Watch iterators need this plain form because they hold the response across
        ``__anext__`` calls and must close it synchronously when they are dropped.
        """
        client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout, sock_read=read_timeout
        )

        async def once() -> aiohttp.ClientResponse:
            resp = await self._send_once(request, client_timeout)
            if resp.status >= 300:
                raise await _error_from(resp, request)
            return resp

        return await self._with_retries(request, self.retry if retry else NO_RETRY, once)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        request: Request,
        *,
        read_timeout: float | None = None,
        retry: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """:meth:`open_stream` as a block: leaving it early (break, cancellation, an error)
        closes the connection at once instead of draining it."""
        resp = await self.open_stream(request, read_timeout=read_timeout, retry=retry)
        try:
            yield resp
        finally:
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()

    async def _with_retries(
        self,
        request: Request,
        policy: RetryPolicy,
        once: Callable[[], Awaitable[R]],
    ) -> R:
        started = time.monotonic()
        attempt = 0
        refreshed = False
        while True:
            retry_after: float | None = None
            try:
                return await once()
            except _NeverSent as exc:
                failure: Exception = exc.error
            except _MaybeSent as exc:
                if not request.idempotent:
                    raise exc.error from None
                failure = exc.error
            except ApiError as error:
                if error.code == 401 and not refreshed:
                    refreshed = True
                    if await self.config.auth.refresh():
                        log.debug("401 on %s %s: credentials refreshed, repeating",
                                  request.method, request.path)
                        continue
                if not _retryable_status(error.code, request, policy):
                    raise
                failure = error
                retry_after = error.retry_after

            if attempt >= policy.max_retries:
                raise failure
            delay = policy.delay(attempt, retry_after)
            if time.monotonic() - started + delay > policy.total_timeout:
                raise failure
            log.debug("%s %s failed (%s); retry %d in %.2f s",
                      request.method, request.path, failure, attempt + 1, delay)
            attempt += 1
            await asyncio.sleep(delay)

    async def _send_once(
        self, request: Request, timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        headers = dict(request.headers)
        headers.update(await self.config.auth.headers())
        tls = await self._tls_for_request()
        where = f"{request.method} {self.config.server}{request.path}"
        url = URL(self.config.server + request.path, encoded=True)
        try:
            return await self._client().request(
                request.method,
                url,
                params=request.query or None,
                data=request.body,
                headers=headers,
                timeout=timeout,
                proxy=self.config.proxy_url,
                server_hostname=self.config.tls_server_name,
                ssl=tls,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TransportError(
                f"{where}: TLS verification of the server failed: {exc.certificate_error}"
            ) from None
        except aiohttp.ClientConnectorSSLError as exc:
            raise TransportError(f"{where}: TLS handshake failed: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            raise _NeverSent(TransportError(f"{where}: cannot connect: {exc.os_error}")) from None
        except asyncio.TimeoutError:
            raise _MaybeSent(RequestTimeout(f"{where}: no answer in time")) from None
        except aiohttp.ClientError as exc:
            raise _MaybeSent(TransportError(f"{where}: connection failed: {exc!r}")) from None


    async def _tls_for_request(self) -> ssl.SSLContext | bool:
        """The provider's client-certificate context, or True for the connector's own.

        aiohttp pools connections per SSL context, so a new certificate gets new connections.
        """
        certificate = await self.config.auth.client_certificate()
        if certificate is None or self._ssl is None:
            return True
        if certificate is not self._provider_certificate or self._provider_ssl is None:
            self._provider_ssl = self.config.ssl_context(certificate)
            self._provider_certificate = certificate
        return self._provider_ssl if self._provider_ssl is not None else True


class _SendFailure(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _NeverSent(_SendFailure):
    """A failure before any byte reached the server: safe to retry any request."""


class _MaybeSent(_SendFailure):
    """A failure after the request may have reached the server: retry idempotent ones only."""


def _retryable_status(status: int, request: Request, policy: RetryPolicy) -> bool:
    if status == 429:
        return True
    return status in policy.retry_statuses and request.idempotent


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def _error_from(resp: aiohttp.ClientResponse, request: Request) -> ApiError:
    try:
        body = await asyncio.wait_for(_read_limited(resp, _ERROR_BODY_LIMIT), _ERROR_BODY_TIMEOUT)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        body = b""  # the status code alone still makes a clear error
    finally:
        resp.close()
    return api_error_from_response(
        resp.status,
        body,
        content_type=resp.headers.get("Content-Type", ""),
        http_reason=resp.reason or "",
        retry_after_header=resp.headers.get("Retry-After"),
        method=request.method,
        path=request.path,
    )


def decode(decoder: msgspec.json.Decoder[T], body: bytes, request: Request | None = None) -> T:
    """Decode a body, pausing the GC for large ones; wrap failures in :class:`DecodeError`."""
    try:
        if len(body) >= GC_PAUSE_THRESHOLD:
            with gc_paused():
                return decoder.decode(body)
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        where = f"{request.method} {request.path}: " if request is not None else ""
        expected = getattr(decoder.type, "__name__", str(decoder.type))
        raise DecodeError(f"{where}the answer is not a valid {expected}: {exc}") from None


def decoder_for(model: type[T]) -> msgspec.json.Decoder[T]:
    """The shared decoder for a model type (built once, reused)."""
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = msgspec.json.Decoder(dict[str, Any] if model is dict else model)
        _DECODERS[model] = decoder
    return decoder


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}

