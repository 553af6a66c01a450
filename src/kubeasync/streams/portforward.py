"""port-forward: a pod's TCP ports, over WebSockets.

One WebSocket (``v4.channel.k8s.io``, ``.../pods/{name}/portforward?ports=80``) carries one
TCP connection to one port of the pod, framed as :mod:`kubeasync.streams.channel` says
(data channel, error channel, the port-number header on each):

- :func:`open_port` gives one such connection as a ``(reader, writer)`` pair shaped like
  asyncio's streams;
- :class:`PortForward` (``async with``) listens on local ports and opens one WebSocket per
  accepted connection, for as many ports as asked.

A message on the error channel (the kubelet could not connect to the port: nothing
listens there) ends the connection: :class:`PortForwardError` from the reader once the data
before it has been read, and a logged warning for a forwarded local connection. The
protocol cannot half-close: ``writer.write_eof()`` is not supported, closing the writer
closes the whole connection, and so does the end of a forwarded local connection's input
(what the pod answers after that is lost to a client that only half-closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import StreamError, TransportError
from ..core.request import Request
from ..transport.base import WebSocket
from . import channel
from .channel import PORT_FORWARD_PROTOCOLS, PortData, PortError, PortForwardDecoder
from .exec import WebSocketConnector

__all__ = [
    "PortForward",
    "PortForwardError",
    "PortReader",
    "PortWriter",
    "open_port",
    "validate_ports",
]

log = logging.getLogger("kubeasync.portforward")

CHUNK = 256 * 1024  # bytes per message and per local read
READ_BUFFER = 4 * 1024 * 1024  # received bytes held for a slow reader before pausing


def validate_ports(ports: int | Sequence[int]) -> list[int]:
    """``ports`` as a list of distinct ports (1-65535)."""
    items = [ports] if isinstance(ports, int) and not isinstance(ports, bool) else ports
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise ValueError(f"ports must be a port (int) or a non-empty list of ports, got {ports!r}")
    checked: list[int] = []
    for port in items:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
            raise ValueError(f"ports: each port must be an int from 1 to 65535, got {port!r}")
        if port in checked:
            raise ValueError(f"ports: {port} is given twice")
        checked.append(port)
    return checked


class PortForwardError(StreamError):
    """The server gave up on a forwarded port; ``message`` is its reason (e.g. nothing
    listens on that port in the pod)."""

    def __init__(self, port: int, message: str) -> None:
        super().__init__(f"port-forward to port {port}: {message}")
        self.port = port
        self.message = message


class PortReader:
    """What the pod sends, with the reading methods of :class:`asyncio.StreamReader`
    (``read``, ``readexactly``, ``readline``, ``readuntil``, ``at_eof``, ``async for``)."""

    def __init__(self, limit: int = READ_BUFFER) -> None:
        self._buffer = bytearray()
        self._eof = False
        self._error: BaseException | None = None
        self._limit = limit
        self._news = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    # ------------------------------------------------------------ the feeding side

    async def _feed(self, data: bytes) -> None:
        self._buffer += data
        self._news.set()
        if len(self._buffer) >= self._limit:
            self._room.clear()
            await self._room.wait()  # holds the WebSocket back until the reader catches up

    def _end(self, error: BaseException | None = None) -> None:
        self._eof = True
        if error is not None and self._error is None:
            self._error = error
        self._news.set()
        self._room.set()

    # ------------------------------------------------------------ reading

    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    async def _wait(self) -> None:
        self._news.clear()
        await self._news.wait()

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        if len(self._buffer) < self._limit:
            self._room.set()
        return data

    def _end_of_data(self) -> bytes:
        if self._error is not None:
            raise self._error
        return b""

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: everything until the end); ``b""`` at the end.
        Raises :class:`PortForwardError` at the end if the server reported one."""
        if n == 0:
            return b""
        if n < 0:
            while not self._eof:
                await self._wait()
            data = self._take(len(self._buffer))
            return data or self._end_of_data()
        while not self._buffer and not self._eof:
            await self._wait()
        if not self._buffer:
            return self._end_of_data()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n and not self._eof:
            await self._wait()
        if len(self._buffer) < n:
            partial = self._take(len(self._buffer))
            if self._error is not None:
                raise self._error
            raise asyncio.IncompleteReadError(partial, n)
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        while True:
            index = self._buffer.find(separator)
            if index >= 0:
                return self._take(index + len(separator))
            if self._eof:
                partial = self._take(len(self._buffer))
                if self._error is not None:
                    raise self._error
                raise asyncio.IncompleteReadError(partial, None)
            await self._wait()

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as incomplete:
            return incomplete.partial

    def __aiter__(self) -> PortReader:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class _PortStream:
    """One WebSocket carrying one connection to one port."""

    def __init__(self, ws: WebSocket, port: int, what: str) -> None:
        self.ws = ws
        self.port = port
        self.what = what
        self.reader = PortReader()
        self.writer = PortWriter(self)
        self.headers = asyncio.get_running_loop().create_future()
        self._decoder = PortForwardDecoder([port])
        self._send_lock = asyncio.Lock()
        self.closed = False
        self.pump = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        error: BaseException | None = None
        try:
            while True:
                message = await self.ws.receive()
                if message is None:
                    break
                for event in self._decoder.feed(message):
                    if isinstance(event, PortData):
                        await self.reader._feed(event.data)
                    elif isinstance(event, PortError):
                        error = PortForwardError(self.port, event.message)
                if self._decoder.headers_received() and not self.headers.done():
                    self.headers.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as failure:  # the transport, or a protocol violation
            error = error or failure
        finally:
            if not self.headers.done():
                self.headers.set_exception(error or StreamError(
                    f"{self.what}: the connection closed before the server announced"
                    f" port {self.port}"))
            self.reader._end(error)

    async def send(self, data: bytes) -> None:
        if self.closed or self.pump.done():
            raise StreamError(f"{self.what}: the connection to port {self.port} is closed")
        async with self._send_lock:
            try:
                await self.ws.send(channel.port_data_frame(0, data))
            except TransportError as error:
                raise StreamError(f"{self.what}: the connection to port {self.port} is"
                                  f" closed: {error}") from None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.pump), 5.0)
        if not self.pump.done():
            self.pump.cancel()
        await asyncio.gather(self.pump, return_exceptions=True)
        if not self.headers.done():
            self.headers.cancel()
        elif not self.headers.cancelled():
            self.headers.exception()  # retrieved: never "exception was never retrieved"


class PortWriter:
    """Sends to the pod, with the writing methods of :class:`asyncio.StreamWriter`
    (``write`` then ``await drain()``, ``close``, ``await wait_closed()``)."""

    def __init__(self, stream: _PortStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._sending: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closing: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"write() takes bytes, not {type(data).__name__}")
        if self.is_closing():
            raise StreamError(f"{self._stream.what}: the writer is closed")
        view = memoryview(bytes(data))
        for start in range(0, len(view), CHUNK):
            self._pending.append(bytes(view[start:start + CHUNK]))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending and self._error is None:
                await self._stream.send(self._pending.pop(0))
        except Exception as error:  # drain() reports it
            self._error = error
            self._pending.clear()

    async def drain(self) -> None:
        """Wait until everything written has been handed to the socket."""
        while self._sending is not None and not self._sending.done():
            await asyncio.wait({self._sending})
        if self._error is not None:
            raise self._error

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise StreamError(f"{self._stream.what}: a port-forward WebSocket cannot half-close;"
                          " close() the writer to end the connection")

    def is_closing(self) -> bool:
        return self._closing is not None or self._stream.closed

    def close(self) -> None:
        """Close the connection (both directions)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        if self._sending is not None and not self._sending.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._sending), 5.0)
        await self._stream.close()
        if self._sending is not None:
            self._sending.cancel()
            await asyncio.gather(self._sending, return_exceptions=True)

    async def wait_closed(self) -> None:
        if self._closing is None:
            self.close()
        assert self._closing is not None
        await self._closing

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": (self._stream.what, self._stream.port)}.get(name, default)


async def open_port(connector: WebSocketConnector, request: Request, port: int, *,
                    timeout: float | None = None) -> tuple[PortReader, PortWriter]:
    """One connection to ``port`` of the pod of ``request`` (a :func:`port_forward_request`
    for that one port): returns once the server has announced the port."""
    ws = await connector.connect_websocket(request, protocols=PORT_FORWARD_PROTOCOLS,
                                           timeout=timeout)
    stream = _PortStream(ws, port, request.path)
    try:
        await asyncio.wait_for(asyncio.shield(stream.headers), timeout)
    except PortForwardError:
        pass  # the reader reports it, after any data
    except BaseException:
        await stream.close()
        raise
    return stream.reader, stream.writer


RequestFor = Callable[[int], Request]


class PortForward:
    """Local listeners for ports of a pod: ``async with PortForward(...) as fwd``.

    Each accepted connection gets its own WebSocket to the pod (as kubectl does); when the
    block ends, the listeners and every open connection are closed.

    Attributes:
        local_ports: the local port of each forwarded pod port (``{80: 41234}``).
        local_port: the local port of the first (or only) one.
        address: where the listeners are (``127.0.0.1``).
        connections_served: how many local connections were accepted so far.
    """

    def __init__(self, connector: WebSocketConnector, request_for: RequestFor,
                 ports: int | Sequence[int], *, local_port: int | Sequence[int] = 0,
                 address: str = "127.0.0.1", timeout: float | None = None) -> None:
        self.ports = validate_ports(ports)
        locals_ = [local_port] * len(self.ports) if isinstance(local_port, int) else \
            list(local_port)
        if len(locals_) != len(self.ports):
            raise ValueError(f"local_port: give one local port per port ({len(self.ports)}),"
                             f" got {local_port!r}")
        for value in locals_:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"local_port must be an int from 0 (any free port) to 65535,"
                                 f" got {value!r}")
        if len(self.ports) > 1 and any(locals_) and isinstance(local_port, int):
            raise ValueError("local_port: several ports cannot share one local port; give a"
                             " list, or 0 for free ports")
        self._connector = connector
        self._request_for = request_for
        self._wanted = locals_
        self.address = address
        self.timeout = timeout
        self.local_ports: dict[int, int] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.connections_served = 0

    @property
    def open_connections(self) -> int:
        """How many forwarded connections are open now."""
        return len(self._connections)

    @property
    def local_port(self) -> int:
        if not self.local_ports:
            raise RuntimeError("the forward is not open: use `async with`")
        return self.local_ports[self.ports[0]]

    async def __aenter__(self) -> PortForward:
        try:
            for port, wanted in zip(self.ports, self._wanted, strict=True):
                server = await asyncio.start_server(functools.partial(self._accept, port),
                                                    self.address, wanted)
                self._servers.append(server)
                self.local_ports[port] = server.sockets[0].getsockname()[1]
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and close every forwarded connection."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in servers:
            await server.wait_closed()

    def _accept(self, port: int, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(port, reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(self, port: int, local_reader: asyncio.StreamReader,
                     local_writer: asyncio.StreamWriter) -> None:
        self.connections_served += 1
        request = self._request_for(port)
        try:
            remote_reader, remote_writer = await open_port(self._connector, request, port,
                                                           timeout=self.timeout)
        except Exception as error:
            log.warning("port-forward %s port %d: %s", request.path, port, error)
            local_writer.close()
            return
        upstream = asyncio.ensure_future(_copy_up(local_reader, remote_writer))
        try:
            while chunk := await remote_reader.read(CHUNK):
                local_writer.write(chunk)
                await local_writer.drain()
        except PortForwardError as error:
            log.warning("port-forward %s: connection ended: %s", request.path, error)
        except (ConnectionError, StreamError) as error:
            log.info("port-forward %s port %d: %s", request.path, port, error)
        finally:
            upstream.cancel()
            await asyncio.gather(upstream, return_exceptions=True)
            await remote_writer.aclose()
            local_writer.close()
            with contextlib.suppress(ConnectionError):
                await local_writer.wait_closed()


async def _copy_up(local: asyncio.StreamReader, remote: PortWriter) -> None:
    """Local bytes to the pod. The local end of input ends the connection: the protocol
    cannot half-close, and a WebSocket kept open for a local connection that has gone
    (the common case: clients close, they rarely half-close) would never be freed."""
    with contextlib.suppress(ConnectionError, StreamError):
        while chunk := await local.read(CHUNK):
            remote.write(chunk)
            await remote.drain()
    remote.close()
