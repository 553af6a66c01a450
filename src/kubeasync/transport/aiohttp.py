"""The aiohttp implementation of the transport seam (:mod:`kubeasync.transport.base`).

It owns one ``aiohttp.ClientSession`` (created on first use, in the event loop that uses
it), the TLS contexts (the configuration's, and one per client certificate an auth
provider hands out), the proxy, and the mapping of aiohttp's failures to kubeasync's
errors. Every message it writes is built from facts (status, errno, the class of the
failure), never from a library exception's ``repr``, which can hold a proxy's credentials
or request headers; and its errors are raised outside the ``except`` block that caught the
library's exception, so that it does not ride along as ``__context__`` either (a
traceback printer or an error reporter would show it).

Bodies are decompressed here, not by aiohttp: a gzip stream cut short is then an error on
every path (aiohttp only notices it for deflate), and a decompressed size limit can be
enforced while inflating.

Stream sockets (watches, followed logs) get TCP keepalive (:data:`TCP_KEEPALIVE`: probes
after 30 s without traffic, every 10 s, 3 unanswered ones drop the connection): a peer
that vanished, or a NAT entry that expired, ends the stream with an error within a minute
instead of leaving it silent until its idle timeout. (A proxy that keeps TCP alive but
forwards nothing is noticed by the session's probe instead: see
:mod:`kubeasync.transport.policy`.)
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import socket
import ssl
import sys
import warnings
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .._version import __version__
from ..config import ClientCertificate, ClusterConfig
from ..core.errors import ConnectError, KubeError, RequestTimeout, TransportError
from ..core.request import Request
from .base import ByteStream, Credentials, HttpResponse, Transport, UpgradeRefused, WebSocket

__all__ = ["TCP_KEEPALIVE", "USER_AGENT", "AiohttpTransport"]

T = TypeVar("T")

USER_AGENT = f"kubeasync/{__version__}"

TCP_KEEPALIVE = (30, 10, 3)
"""Keepalive of stream sockets: seconds idle before the first probe, seconds between
probes, unanswered probes before the connection is dropped (~60 s in all)."""

_RESOURCE_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_NO_ERROR = TransportError("no error")  # a marker: "the try block succeeded"
_MAX_REFUSAL_BODY = 64 * 1024

# The body of a refused WebSocket upgrade, captured by a client middleware: aiohttp's
# ws_connect raises on a non-101 answer without reading it, and the server's Status (404
# pod, 400 container) is the whole point of the error.
_refused_upgrade: contextvars.ContextVar[list[bytes] | None] = contextvars.ContextVar(
    "kubeasync_refused_upgrade", default=None
)


async def _keep_refused_upgrade_body(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    response = await handler(request)
    box = _refused_upgrade.get()
    if box is not None and response.status != 101:
        try:
            box.append(await asyncio.wait_for(response.content.read(_MAX_REFUSAL_BODY), 10.0))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            box.append(b"")
    return response


async def _within(timeout: float | None, awaitable: Awaitable[T]) -> T:
    """``awaitable`` bounded by ``timeout``, in the calling task: ``asyncio.wait_for``
    runs it in a new task, and the loop turns that costs let a server's last bytes and its
    close arrive together, which makes aiohttp drop bytes it had already received."""
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


def _os_error_text(error: OSError | None) -> str:
    if error is None:
        return "connection failed"
    if error.strerror:
        return f"{error.strerror} (errno {error.errno})" if error.errno else error.strerror
    return type(error).__name__


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of an aiohttp/OS failure."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{exc.status} {exc.message}".strip()
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_error_text(exc.os_error)
    if isinstance(exc, OSError):
        return _os_error_text(exc)
    if isinstance(exc, aiohttp.ClientPayloadError):
        # aiohttp wraps what cut the body (a timed-out or reset socket) in its args.
        for part in (*exc.args, exc.__cause__):
            if isinstance(part, OSError):
                return f"the body stopped: {_os_error_text(part)}"
        return "the body stopped before its end"
    return type(exc).__name__


def _keep_alive(response: aiohttp.ClientResponse, settings: tuple[int, int, int] | None) -> None:
    """Turn TCP keepalive on for the connection of ``response`` (where the OS allows)."""
    connection = response.connection
    transport = connection.transport if connection is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or settings is None:
        return
    idle, interval, count = settings
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; macOS has TCP_KEEPALIVE instead
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        elif hasattr(socket, "TCP_KEEPALIVE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPALIVE, idle)
        if hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
    except OSError:
        pass  # not a TCP socket (a Unix socket), or an OS without these options


def _exhausted(exc: BaseException) -> bool:
    error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    return isinstance(error, OSError) and error.errno in _RESOURCE_EXHAUSTED


class _Inflater:
    """gzip decompression that notices a stream cut short and a body over a size limit."""

    __slots__ = ("_limit", "_size", "_zlib")

    def __init__(self, limit: int | None) -> None:
        self._zlib = zlib.decompressobj(wbits=31)
        self._limit = limit
        self._size = 0

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._zlib.decompress(data)
        except zlib.error as exc:
            raise TransportError(f"the gzip body is damaged ({exc})", retryable=False) from None
        self._size += len(out)
        if self._limit is not None and self._size > self._limit:
            raise TransportError(_too_large(self._limit), retryable=False)
        return out

    def finish(self) -> bytes:
        if not self._zlib.eof:
            raise TransportError("the gzip body ended before its end (truncated)")
        return self._zlib.flush()


def _too_large(limit: int) -> str:
    return (
        f"the answer is larger than max_body_bytes={limit} bytes once decompressed;"
        " raise max_body_bytes on the Client to accept it"
    )


def _inflater(headers: Any, limit: int | None) -> _Inflater | None:
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if not encoding or encoding == "identity":
        return None
    if encoding != "gzip":
        raise TransportError(f"the server answered with an unsupported Content-Encoding {encoding!r}")
    return _Inflater(limit)


class _Stream(ByteStream):
    __slots__ = ("_inflater", "_read_timeout", "_response", "_where", "headers", "reason", "status")

    def __init__(self, response: aiohttp.ClientResponse, where: str, read_timeout: float | None) -> None:
        self._response: aiohttp.ClientResponse | None = response
        self._where = where
        self._read_timeout = read_timeout
        self.status = response.status
        self.reason = response.reason or ""
        self.headers = response.headers
        self._inflater = _inflater(response.headers, None)

    async def read(self) -> bytes:
        response = self._response
        if response is None:
            return b""
        while True:
            error: TransportError
            try:
                chunk = await response.content.readany()
            except asyncio.TimeoutError:
                error = RequestTimeout(
                    f"{self._where}: no data for {self._read_timeout} s: the connection stalled")
            except (aiohttp.ClientError, OSError) as exc:
                error = TransportError(f"{self._where}: the stream was cut: {_describe(exc)}")
            else:
                error = _NO_ERROR
            if error is not _NO_ERROR:
                raise error  # outside the except block: no library exception as context
            inflater = self._inflater
            if inflater is None:
                return chunk
            try:
                if not chunk:
                    return inflater.finish()
                out = inflater.feed(chunk)
            except TransportError as exc:
                raise TransportError(f"{self._where}: {exc}", retryable=exc.retryable) from None
            if out:
                return out

    @property
    def at_eof(self) -> bool:
        return self._response is None or self._response.content.at_eof()

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            if response.content.at_eof():
                response.release()
            else:
                # Wake a reader waiting in another task at once: dropping the connection
                # alone only reaches it when the protocol notices, a loop turn or more later.
                response.content.set_exception(aiohttp.ClientConnectionError("closed"))
                response.close()

    def __del__(self) -> None:
        if getattr(self, "_response", None) is not None:
            self.close()


class _WebSocket(WebSocket):
    def __init__(self, ws: aiohttp.ClientWebSocketResponse[Any], where: str) -> None:
        self._ws = ws
        self._where = where
        self.protocol = ws.protocol

    async def send(self, data: bytes) -> None:
        if self._ws.closed:
            raise TransportError(f"{self._where}: the WebSocket is closed")
        error = _NO_ERROR
        try:
            await self._ws.send_bytes(data)
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            error = TransportError(f"{self._where}: sending failed: {_describe(exc)}")
        if error is not _NO_ERROR:
            raise error

    async def receive(self) -> bytes | None:
        while True:
            error = _NO_ERROR
            try:
                message = await self._ws.receive()
            except (aiohttp.ClientError, OSError) as exc:
                error = TransportError(f"{self._where}: the WebSocket was cut: {_describe(exc)}")
            if error is not _NO_ERROR:
                raise error
            kind = message.type
            if kind is aiohttp.WSMsgType.BINARY:
                data: bytes = message.data
                return data
            if kind is aiohttp.WSMsgType.TEXT:
                text: str = message.data
                return text.encode()
            if kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return None
            if kind is aiohttp.WSMsgType.ERROR:
                raise TransportError(f"{self._where}: the WebSocket failed: {_describe(message.data)}")
            # PING/PONG are answered by aiohttp itself.

    async def close(self) -> None:
        await self._ws.close()

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code if self._ws.closed else None


class AiohttpTransport(Transport):
    """Talks to the server of ``config`` with aiohttp.

    Args:
        config: the URL, TLS settings and proxy.
        max_connections: the pool size; ``None`` for no limit (each watch holds a
            connection, so a full pool would stall new requests behind idle watches; the
            session bounds requests and streams separately).
        tcp_keepalive: keepalive of stream sockets (idle, interval, count; see
            :data:`TCP_KEEPALIVE`), ``None`` to leave the OS default (off).
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        max_connections: int | None = None,
        tcp_keepalive: tuple[int, int, int] | None = TCP_KEEPALIVE,
    ) -> None:
        self._config = config
        self._max_connections = max_connections
        self._tcp_keepalive = tcp_keepalive
        self._ssl: ssl.SSLContext | None = config.ssl_context()
        # aiohttp pools connections per SSL context: one context per provider certificate.
        self._provider_certificate: ClientCertificate | None = None
        self._provider_ssl: ssl.SSLContext | None = None
        self._http: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise KubeError("this client is closed: create a new kubeasync.Client")
        loop = asyncio.get_running_loop()
        if self._http is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections or 0,
                ssl=self._ssl if self._ssl is not None else False,
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"},
                auto_decompress=False,
                trust_env=False,
                middlewares=(_keep_refused_upgrade_body,),
            )
            self._loop = loop
        elif loop is not self._loop:
            raise KubeError(
                "this kubeasync.Client belongs to another event loop (it was first used in"
                f" {self._loop!r}): create the Client inside the event loop that uses it,"
                " e.g. in the coroutine passed to asyncio.run() or in a function-scoped"
                " fixture, and use one Client per event loop"
            )
        return self._http

    @property
    def started(self) -> bool:
        return self._http is not None

    def connections(self) -> dict[str, Any]:
        """Connections of the pool, for tests and diagnostics: ``in_use``, ``idle``, and
        whether the pool is ``open``."""
        http = self._http
        connector = http.connector if http is not None else None
        if connector is None or connector.closed:
            return {"in_use": 0, "idle": 0, "open": False}
        in_use = len(connector._acquired)
        idle = sum(len(conns) for conns in connector._conns.values())
        return {"in_use": in_use, "idle": idle, "open": True}

    async def close(self) -> None:
        self._closed = True
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def abandon(self) -> None:
        """Drop the pool without aiohttp's own unclosed-session warnings (the Client warns
        with its own, which says what to do)."""
        self._closed = True
        http, self._http = self._http, None
        if http is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                connector = http.connector
                http.detach()
                del http
                if connector is not None:
                    # Closes the sockets without awaiting (the loop may be gone).
                    connector._close()
                del connector

    # ------------------------------------------------------------------ requests

    def _where(self, request: Request) -> str:
        return f"{request.method} {self._config.server}{request.path}"

    async def _tls(self, credentials: Credentials) -> ssl.SSLContext | bool:
        certificate = credentials.certificate
        if certificate is None or self._ssl is None:
            return True  # the connector's own context
        if certificate is not self._provider_certificate or self._provider_ssl is None:
            self._provider_ssl = self._config.ssl_context(certificate)
            self._provider_certificate = certificate
        return self._provider_ssl if self._provider_ssl is not None else True

    def _headers(self, request: Request, credentials: Credentials) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict(request.headers)
        for name, value in credentials.headers:
            if name.lower() in headers and not name.lower().startswith("impersonate-"):
                headers[name] = value
            else:
                headers.add(name, value)
        return headers

    def _url(self, request: Request) -> URL:
        return URL(self._config.server + request.path, encoded=True)

    async def _request(
        self,
        request: Request,
        credentials: Credentials,
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        where = self._where(request)
        try:
            return await self._client().request(
                request.method,
                self._url(request),
                params=request.query or None,
                data=request.body,
                headers=self._headers(request, credentials),
                timeout=timeout,
                proxy=self._config.proxy_url,
                server_hostname=self._config.tls_server_name,
                ssl=await self._tls(credentials),
                allow_redirects=False,
                middlewares=(),  # the session's middleware is for WebSocket upgrades only
            )
        except BaseException as exc:
            failure = self._failure(exc, where)
            if failure is exc:
                raise
        # Raised here, not in the except block: aiohttp's exception (its request info has
        # the headers, Proxy-Authorization included) must not ride along as __context__.
        raise failure

    def _failure(self, exc: BaseException, where: str) -> BaseException:
        """The kubeasync error for a failure before an answer arrived (or ``exc`` itself
        for cancellation and for what is already a kubeasync error)."""
        if isinstance(exc, (KubeError, asyncio.CancelledError)) or not isinstance(exc, Exception):
            return exc
        if _exhausted(exc):
            return TransportError(
                f"{where}: out of local resources ({_describe(exc)}): too many open"
                " connections or files; lower the concurrency or raise the limit",
                retryable=False,
            )
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return TransportError(
                f"{where}: TLS verification of the server failed:"
                f" {exc.certificate_error}", retryable=False
            )
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            return TransportError(f"{where}: TLS handshake failed: {_describe(exc.os_error)}",
                                  retryable=False)
        if isinstance(exc, aiohttp.ClientHttpProxyError):
            return ConnectError(f"{where}: the proxy refused the connection: {_describe(exc)}")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ConnectError(f"{where}: cannot connect: {_describe(exc)}")
        if isinstance(exc, asyncio.TimeoutError):
            return RequestTimeout(f"{where}: no answer in time")
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            return TransportError(f"{where}: connection failed: {_describe(exc)}")
        if isinstance(exc, ValueError):
            return TransportError(f"{where}: the request could not be sent: {type(exc).__name__}",
                                  retryable=False)
        return exc

    async def send(
        self,
        request: Request,
        credentials: Credentials,
        *,
        timeout: float | None,
        max_body_bytes: int | None = None,
    ) -> HttpResponse:
        where = self._where(request)
        response = await self._request(request, credentials, aiohttp.ClientTimeout(total=timeout))
        error = _NO_ERROR
        try:
            body = await self._read_body(response, where, max_body_bytes)
        except asyncio.TimeoutError:
            error = RequestTimeout(f"{where}: no complete answer within {timeout} s")
        except (aiohttp.ClientError, OSError) as exc:
            error = TransportError(f"{where}: the answer was cut off: {_describe(exc)}")
        finally:
            response.release()
        if error is not _NO_ERROR:
            raise error
        return HttpResponse(response.status, response.reason or "", response.headers, body)

    async def _read_body(
        self, response: aiohttp.ClientResponse, where: str, limit: int | None
    ) -> bytes:
        try:
            inflater = _inflater(response.headers, limit)
        except TransportError as exc:
            raise TransportError(f"{where}: {exc}", retryable=False) from None
        if inflater is None:
            body = await response.read()
            if limit is not None and len(body) > limit:
                raise TransportError(f"{where}: {_too_large(limit)}", retryable=False)
            return body
        parts: list[bytes] = []
        try:
            while True:
                chunk = await response.content.readany()
                if not chunk:
                    parts.append(inflater.finish())
                    break
                parts.append(inflater.feed(chunk))
        except TransportError as exc:
            raise TransportError(f"{where}: {exc}", retryable=exc.retryable) from None
        return b"".join(parts)

    async def open_stream(
        self,
        request: Request,
        credentials: Credentials,
        *,
        timeout: float | None,
        read_timeout: float | None,
    ) -> ByteStream:
        where = self._where(request)
        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout,
                                               sock_read=read_timeout)
        try:
            # aiohttp bounds each socket read, not the wait for the answer's headers: a
            # server that accepts and never answers would hold a log stream forever.
            response = await _within(timeout, self._request(request, credentials, client_timeout))
        except asyncio.TimeoutError:
            raise RequestTimeout(f"{where}: no answer within {timeout} s") from None
        _keep_alive(response, self._tcp_keepalive)
        try:
            return _Stream(response, where, read_timeout)
        except TransportError as exc:
            response.close()
            raise TransportError(f"{where}: {exc}", retryable=False) from None

    async def connect_websocket(
        self,
        request: Request,
        credentials: Credentials,
        *,
        protocols: Sequence[str],
        timeout: float | None,
    ) -> WebSocket:
        where = self._where(request)
        url = self._url(request).with_query(request.query) if request.query else self._url(request)
        box: list[bytes] = []
        token = _refused_upgrade.set(box)
        try:
            ws = await _within(
                timeout,
                self._client().ws_connect(
                    url,
                    protocols=tuple(protocols),
                    headers=self._headers(request, credentials),
                    proxy=self._config.proxy_url,
                    server_hostname=self._config.tls_server_name,
                    ssl=await self._tls(credentials),
                    autoping=True,
                    max_msg_size=0,
                    compress=0,
                ),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 101:
                failure: BaseException = TransportError(
                    f"{where}: the WebSocket handshake failed: {exc.message}")
            else:
                headers = exc.headers if exc.headers is not None else CIMultiDict()
                failure = UpgradeRefused(
                    HttpResponse(exc.status, exc.message or "", headers, box[0] if box else b""))
        except asyncio.TimeoutError:
            failure = RequestTimeout(f"{where}: the WebSocket upgrade got no answer in time")
        except BaseException as exc:
            failure = self._failure(exc, where)
            if failure is exc:
                raise
        else:
            return _WebSocket(ws, where)
        finally:
            _refused_upgrade.reset(token)
        raise failure  # outside the except block (see _request)
