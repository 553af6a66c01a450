"""The transport seam: the only place I/O happens.

A :class:`Transport` does three things, and nothing else: send a request and read the whole
answer, open a streamed answer, and open a WebSocket. It knows TLS, proxies and connection
pools; it does not know about retries, rate limits, credentials refresh or Kubernetes
errors, which are the policy in front of it (:mod:`kubeasync.transport.policy`). It reports
what the server said (any status code), and raises only when there was no HTTP answer:
:class:`~kubeasync.ConnectError` when nothing was sent, :class:`~kubeasync.TransportError`
(or :class:`~kubeasync.RequestTimeout`) when the request may have reached the server.

The aiohttp implementation is :mod:`kubeasync.transport.aiohttp`; no aiohttp type is visible
outside this package. A test (or a user) can put any other implementation behind a Client.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config import ClientCertificate
from ..core.request import Request

__all__ = [
    "ByteStream",
    "Credentials",
    "HttpResponse",
    "Transport",
    "UpgradeRefused",
    "WebSocket",
]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who one attempt of a request is sent as: the headers the policy adds (auth,
    impersonation; repeated names allowed) and the client certificate to present."""

    headers: Sequence[tuple[str, str]] = ()
    certificate: ClientCertificate | None = None

    def __repr__(self) -> str:
        # Header values carry tokens: only the names are shown.
        names = ", ".join(name for name, _ in self.headers)
        cert = " certificate" if self.certificate is not None else ""
        return f"<Credentials headers=[{names}]{cert}>"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete answer: its status, headers (case-insensitive) and whole body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class ByteStream(abc.ABC):
    """A streamed answer (a watch, followed logs). ``status`` and ``headers`` are known
    when it is returned; the body is read chunk by chunk."""

    status: int
    reason: str
    headers: Mapping[str, str]

    @abc.abstractmethod
    async def read(self) -> bytes:
        """The next chunk of the body, ``b""`` at its end.

        Raises :class:`~kubeasync.RequestTimeout` when no byte came for the stream's read
        timeout, :class:`~kubeasync.TransportError` when the connection was cut or the
        body is damaged (a truncated compressed stream).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Drop the connection at once (or give it back to the pool when the body was
        read to its end). Synchronous, so that it can run from ``__del__``; safe twice."""

    @property
    @abc.abstractmethod
    def at_eof(self) -> bool:
        """Whether the whole body has been read."""


class WebSocket(abc.ABC):
    """An open WebSocket carrying binary messages (the ``*.channel.k8s.io`` protocols)."""

    protocol: str | None
    """The subprotocol the server chose (``None`` if it chose none)."""

    @abc.abstractmethod
    async def send(self, data: bytes) -> None:
        """Send one binary message. Raises :class:`~kubeasync.TransportError` once closed."""

    @abc.abstractmethod
    async def receive(self) -> bytes | None:
        """The next binary message, or ``None`` once the socket is closed (by either side).
        A text message is returned as its UTF-8 bytes."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the socket (a normal closure). Safe to call twice."""

    @property
    @abc.abstractmethod
    def close_code(self) -> int | None:
        """The close code once closed (1000 is a normal closure), else ``None``."""


class UpgradeRefused(Exception):
    """The server answered a WebSocket upgrade with a plain HTTP response (an error)."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"the upgrade was refused with {response.status} {response.reason}")
        self.response = response


class Transport(abc.ABC):
    """Sends requests to one API server (its URL, TLS and proxy come with the transport)."""

    @abc.abstractmethod
    async def send(
        self,
        request: Request,
        credentials: Credentials,
        *,
        timeout: float | None,
        max_body_bytes: int | None = None,
    ) -> HttpResponse:
        """Send ``request`` and read the whole answer, whatever its status.

        ``timeout`` bounds the attempt from connecting to the last byte. A body larger than
        ``max_body_bytes`` once decompressed raises :class:`~kubeasync.TransportError`.
        """

    @abc.abstractmethod
    async def open_stream(
        self,
        request: Request,
        credentials: Credentials,
        *,
        timeout: float | None,
        read_timeout: float | None,
    ) -> ByteStream:
        """Send ``request`` and return once the answer's headers are in, whatever its
        status; ``timeout`` bounds that wait, ``read_timeout`` each wait for body bytes."""

    @abc.abstractmethod
    async def connect_websocket(
        self,
        request: Request,
        credentials: Credentials,
        *,
        protocols: Sequence[str],
        timeout: float | None,
    ) -> WebSocket:
        """Upgrade ``request`` (a GET) to a WebSocket offering ``protocols`` in order.

        A plain HTTP answer instead of the upgrade raises :class:`UpgradeRefused` with that
        answer, body included, so that the policy can raise the server's error.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection. Safe to call twice."""
