"""exec and attach: a command in a container, over a WebSocket.

The client offers ``v5.channel.k8s.io`` then ``v4.channel.k8s.io`` (the server picks the
first it speaks) and speaks the channel protocol of :mod:`kubeasync.streams.channel`:

- :func:`run_exec` runs a command to its end and returns an :class:`ExecResult` (stdout,
  stderr, exit code; a non-zero exit is a result, not an error);
- :class:`ExecSession` (``async with ... as proc``) gives a running :class:`ExecProcess`:
  ``await proc.stdin.write(...)``, ``await proc.stdin.close()``, ``async for chunk in
  proc.stdout``, ``await proc.resize(w, h)``, ``await proc.wait()``.

Closing stdin on v5 half-closes it (a CLOSE message) and the command's output and exit
status still arrive. On v4, which has no half-close, closing stdin closes the whole
WebSocket (kubernetes#89899): what has arrived is kept, what the command writes after that
and its exit status are lost, and :meth:`ExecProcess.wait` raises
:class:`ExitStatusUnknown` (with the output received) instead of guessing.

The transport is the client's session (``connect_websocket``: it carries auth, TLS, proxy
and impersonation, and raises the typed :class:`~kubeasync.ApiError` when the server
refuses the upgrade). The requests are built by :mod:`kubeasync.api.capabilities.exec`
and :mod:`~kubeasync.api.capabilities.attach`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..core.errors import RequestTimeout, StreamError, TransportError
from ..core.request import Request
from ..transport.base import WebSocket
from . import channel
from .channel import EXEC_PROTOCOLS, Channel, ExitStatus

__all__ = [
    "ExecProcess",
    "ExecResult",
    "ExecSession",
    "ExecStdin",
    "ExitStatusUnknown",
    "OutputStream",
    "WebSocketConnector",
    "run_exec",
]

STDIN_CHUNK = 128 * 1024  # bytes per stdin message


class WebSocketConnector(Protocol):
    """What exec, attach and port-forward need of a transport: the client's
    :class:`~kubeasync.transport.policy.Session`, or anything with its method."""

    async def connect_websocket(self, request: Request, *, protocols: Sequence[str],
                                timeout: float | None = None) -> WebSocket: ...


# ------------------------------------------------------------------ results and errors


@dataclass(frozen=True)
class ExecResult:
    """How a command ended.

    Attributes:
        stdout: everything it wrote to stdout (with ``tty=True``, stdout and stderr).
        stderr: everything it wrote to stderr.
        exit_code: its exit code; non-zero is a result, not an error.
    """

    stdout: bytes
    stderr: bytes
    exit_code: int


class ExitStatusUnknown(StreamError):
    """The connection ended before the command's exit status arrived: the server closed it
    mid-stream, or (on ``v4.channel.k8s.io``) closing stdin had to close the socket.

    Attributes:
        stdout: what the command had written to stdout until then.
        stderr: what it had written to stderr until then.
    """

    def __init__(self, message: str, *, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


# ------------------------------------------------------------------ streams


class OutputStream:
    """A command's stdout or stderr: ``async for chunk in stream`` (bytes as they arrive)
    or ``await stream.read()`` (everything until the end).

    What arrives is buffered until read (the connection is never held up by an unread
    stream); pass ``stdout=False``/``stderr=False`` for output you do not want at all.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._news = asyncio.Event()
        self.received = 0
        self._kept = bytearray()

    def _feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.received += len(data)
            self._news.set()

    def _end(self) -> None:
        self._ended = True
        self._news.set()

    @property
    def at_eof(self) -> bool:
        """Whether everything has been read and nothing more will come."""
        return self._ended and not self._chunks

    async def read(self) -> bytes:
        """Everything from here to the end of the stream."""
        parts = [chunk async for chunk in self]
        return b"".join(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self._chunks:
            if self._ended:
                raise StopAsyncIteration
            self._news.clear()
            await self._news.wait()
        return self._chunks.popleft()

    def _drained(self) -> bytes:
        """What arrived and was not read yet (for an error report), without reading it."""
        return b"".join(self._chunks)


class ExecStdin:
    """The command's stdin: ``await write(data)``, then ``await close()``."""

    def __init__(self, process: ExecProcess, enabled: bool) -> None:
        self._process = process
        self._enabled = enabled
        self.closed = not enabled

    async def write(self, data: bytes) -> None:
        """Send ``data`` (returns once the socket has taken it)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"stdin takes bytes, not {type(data).__name__}")
        if not self._enabled:
            raise ValueError("stdin was not requested: open the session with stdin=True")
        if self.closed:
            raise ValueError("stdin is already closed")
        view = memoryview(data)
        for start in range(0, len(view), STDIN_CHUNK):
            await self._process._send(channel.encode_frame(Channel.STDIN,
                                                           view[start:start + STDIN_CHUNK]))

    async def close(self) -> None:
        """End stdin. On v5 a half-close: output and the exit status still arrive. On v4
        this closes the whole connection (see the module docstring)."""
        if self.closed:
            return
        self.closed = True
        if self._process.ended:
            return  # the command is over: nothing reads its stdin any more
        if channel.supports_close(self._process.protocol):
            with contextlib.suppress(StreamError):  # it ended just now
                await self._process._send(channel.close_frame(Channel.STDIN,
                                                              self._process.protocol))
        else:
            self._process._stdin_closed_socket = True
            await self._process.close()


class ExecProcess:
    """A command running in a container (or an attached one), while its session is open.

    Attributes:
        protocol: the channel protocol the server chose (``v5.channel.k8s.io``...).
        stdin: :class:`ExecStdin` (usable when the session asked for stdin).
        stdout: :class:`OutputStream` of stdout.
        stderr: :class:`OutputStream` of stderr.
        tty: whether it has a terminal.
    """

    def __init__(self, ws: WebSocket, *, stdin: bool, tty: bool, what: str) -> None:
        self._ws = ws
        self.protocol = ws.protocol
        self.tty = tty
        self.what = what
        self.stdin = ExecStdin(self, stdin)
        self.stdout = OutputStream("stdout")
        self.stderr = OutputStream("stderr")
        self._status: ExitStatus | None = None
        self._failure: BaseException | None = None
        self._stdin_closed_socket = False
        self._closed = False
        self._send_lock = asyncio.Lock()
        self._pump = asyncio.ensure_future(self._read())

    # ------------------------------------------------------------ the connection

    async def _read(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message is None:
                    break
                frame = channel.decode_frame(message)
                if frame is None:
                    continue
                if frame.channel == Channel.STDOUT:
                    self.stdout._feed(frame.payload)
                elif frame.channel == Channel.STDERR:
                    self.stderr._feed(frame.payload)
                elif frame.channel == Channel.ERROR and frame.payload:
                    self._status = channel.parse_exit_status(frame.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a transport failure or a protocol violation
            self._failure = error
        finally:
            self.stdout._end()
            self.stderr._end()

    @property
    def ended(self) -> bool:
        """Whether the connection is over (the command ended, or it was closed)."""
        return self._closed or self._pump.done()

    async def _send(self, message: bytes) -> None:
        if self.ended:
            raise StreamError(f"{self.what}: the connection is closed (the command has ended)")
        async with self._send_lock:
            try:
                await self._ws.send(message)
            except TransportError as error:  # closed under us; wait() says how it ended
                raise StreamError(f"{self.what}: the connection is closed: {error}") from None

    async def resize(self, width: int, height: int) -> None:
        """Tell the command its terminal is now ``width`` x ``height`` characters."""
        frame = channel.resize_frame(width, height)
        if not self.tty:
            raise ValueError("resize needs a terminal: open the session with tty=True")
        await self._send(frame)

    async def wait(self) -> int:
        """Wait for the command to end; its exit code.

        Raises:
            ApiError: the command could not run (the server's Status, typed).
            ExitStatusUnknown: the connection ended without an exit status.
        """
        await asyncio.shield(self._pump)
        if self._status is not None:
            if self._status.exit_code is None:
                raise self._status.error()
            return self._status.exit_code
        if self._stdin_closed_socket:
            reason = (f"{self.protocol} cannot half-close stdin, so closing stdin closed the"
                      " connection: the command's later output and exit status are lost"
                      " (servers from Kubernetes 1.29 speak v5.channel.k8s.io, which can)")
        elif self._failure is not None:
            reason = str(self._failure)
        else:
            code = self._ws.close_code
            reason = (f"the connection closed before the exit status arrived"
                      f" (close code {code})" if code is not None else
                      "the connection closed before the exit status arrived")
        raise ExitStatusUnknown(f"{self.what}: {reason}", stdout=self.stdout._drained(),
                                stderr=self.stderr._drained())

    @property
    def exit_code(self) -> int | None:
        """The exit code once known (after :meth:`wait`), else ``None``."""
        return self._status.exit_code if self._status is not None else None

    async def close(self) -> None:
        """Close the connection (the command, if still running, is cut off)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._ws.close()
        # The pump ends by itself on the closed socket; cancel it if the socket hangs.
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._pump), 5.0)
        if not self._pump.done():
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)


class ExecSession:
    """``async with ExecSession(...) as proc``: connects, and closes the connection when
    the block ends (also on cancellation or an error)."""

    def __init__(self, connector: WebSocketConnector, request: Request, *, stdin: bool,
                 tty: bool, timeout: float | None = None) -> None:
        self._connector = connector
        self._request = request
        self._stdin = stdin
        self._tty = tty
        self._timeout = timeout
        self._process: ExecProcess | None = None

    async def __aenter__(self) -> ExecProcess:
        ws = await self._connector.connect_websocket(self._request, protocols=EXEC_PROTOCOLS,
                                                     timeout=self._timeout)
        if ws.protocol not in EXEC_PROTOCOLS:
            with contextlib.suppress(Exception):
                await ws.close()
            raise StreamError(f"{self._request.path}: the server accepted the WebSocket with"
                              f" protocol {ws.protocol!r}, not one of {list(EXEC_PROTOCOLS)}")
        self._process = ExecProcess(ws, stdin=self._stdin, tty=self._tty,
                                    what=self._request.path)
        return self._process

    async def __aexit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None:
            await process.close()


async def run_exec(connector: WebSocketConnector, request: Request, *,
                   stdin: bytes | None = None, tty: bool = False,
                   timeout: float | None = None) -> ExecResult:
    """Run the command of ``request`` to its end: send ``stdin`` (then end it), collect
    stdout and stderr, return them with the exit code.

    Raises:
        RequestTimeout: no exit status within ``timeout`` seconds (connecting included);
            the connection is closed.
        ApiError: the server refused (404 pod, 400 container, 403) or the command could
            not run.
        ExitStatusUnknown: the connection ended without an exit status.
    """
    if stdin is not None and not isinstance(stdin, (bytes, bytearray, memoryview)):
        raise ValueError(f"stdin must be bytes or None, not {type(stdin).__name__}")
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")

    async def run() -> ExecResult:
        async with ExecSession(connector, request, stdin=stdin is not None, tty=tty,
                               timeout=timeout) as proc:
            output = asyncio.gather(proc.stdout.read(), proc.stderr.read())
            try:
                if stdin is not None:
                    with contextlib.suppress(StreamError):  # it ended without reading all
                        await proc.stdin.write(stdin)
                    await proc.stdin.close()
                try:
                    code = await proc.wait()
                except ExitStatusUnknown as unknown:
                    out, err = await output
                    raise ExitStatusUnknown(str(unknown), stdout=out, stderr=err) from None
                out, err = await output
            finally:
                if not output.done():
                    output.cancel()
                    await asyncio.gather(output, return_exceptions=True)
            return ExecResult(out, err, code)

    if timeout is None:
        return await run()
    try:
        return await asyncio.wait_for(run(), timeout)
    except RequestTimeout:
        raise  # the transport's own (connecting took too long)
    except asyncio.TimeoutError:
        raise RequestTimeout(f"{request.path}: the command did not end within {timeout:g} s"
                             " (the connection was closed)") from None
