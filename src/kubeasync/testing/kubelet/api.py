"""The kubelet API of a virtual kubelet: the endpoints kube-apiserver proxies to.

- ``GET /containerLogs/{namespace}/{pod}/{container}`` (``follow``, ``tailLines``,
  ``sinceSeconds``, ``sinceTime``, ``timestamps``, ``previous``, ``limitBytes``);
- ``/exec/{namespace}/{pod}/{container}?command=...&input=1&output=1&error=1&tty=1`` and
  ``/attach/...``: WebSockets speaking ``v5.channel.k8s.io`` or ``v4.channel.k8s.io``
  (the first of the client's offer this kubelet speaks, as a kubelet chooses);
- ``/portForward/{namespace}/{pod}?port=80,443``: a WebSocket (``v4.channel.k8s.io``);
- ``GET /pods`` (the pods it runs) and ``GET /healthz``.

Errors before an upgrade are plain text with a status code, as a kubelet writes them
(``pod does not exist``, ``container not found ("app")``); kube-apiserver turns them into a
Status for the client. SPDY, which kubectl falls back to, is not spoken here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ...streams import channel
from ...streams.channel import CLOSE, V4, V5, Channel, ResizeDecoder
from .commands import run_command
from .logs import LogQuery, LogQueryError, serve_log
from .pods import KILLED, ContainerRuntime, PodRuntime
from .ports import PortConnection, PortHandler
from .process import Output, Process, Terminal, discard

if TYPE_CHECKING:
    from . import VirtualKubelet

__all__ = ["KubeletApi"]

log = logging.getLogger("kubeasync.testing.kubelet")

# "channel.k8s.io" and no subprotocol at all are the protocol before v4: binary frames,
# errors as plain text (kubelet: v1WriteStatusFunc).
_PRE_V4 = ("channel.k8s.io", "")
MAX_MESSAGE = 32 * 1024 * 1024  # x/net/websocket's DefaultMaxPayloadBytes, as kubelets use


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _offered(request: web.Request) -> list[str]:
    header = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in header.split(",") if p.strip()]


def _negotiate(request: web.Request, supported: Sequence[str]) -> str | None:
    """The first protocol of the client's offer this server speaks ("" when the client
    offered none), or None: then the upgrade is refused (x/net/websocket answers 403)."""
    offered = _offered(request)
    if not offered:
        return "" if "" in supported else None
    return next((p for p in offered if p in supported), None)


def _upgrade_problem(request: web.Request) -> web.Response | None:
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade == "websocket":
        return None
    if upgrade.startswith("spdy"):
        return _text(400, "this kubelet (kubeasync's virtual kubelet) speaks only WebSockets"
                          " (v5.channel.k8s.io, v4.channel.k8s.io); SPDY is not implemented")
    return _text(400, "Upgrade request required")


def _dropper(request: web.Request) -> Callable[[], None]:
    def drop() -> None:
        if request.transport is not None:
            request.transport.abort()

    return drop


class _Channels:
    """One exec, attach or port-forward WebSocket, from the server's side."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self._lock = asyncio.Lock()

    async def send(self, channel_number: int, payload: bytes = b"") -> None:
        if self.ws.closed:
            return  # the client left: a process writing on goes unheard, as on a kubelet
        async with self._lock:
            with contextlib.suppress(ConnectionError):
                await self.ws.send_bytes(channel.encode_frame(channel_number, payload))

    def sender(self, channel_number: int) -> Callable[[bytes], Awaitable[None]]:
        async def send(data: bytes) -> None:
            await self.send(channel_number, data)

        return send

    async def messages(self) -> AsyncIterator[tuple[int, bytes]]:
        """The client's frames until it closes (``(channel, payload)`` pairs)."""
        async for message in self.ws:
            if message.type == WSMsgType.BINARY:
                frame = channel.decode_frame(message.data)
                if frame is not None:
                    yield frame.channel, frame.payload
            elif message.type == WSMsgType.ERROR:
                return


class KubeletApi:
    """The aiohttp application of one virtual kubelet."""

    def __init__(self, host: VirtualKubelet) -> None:
        self.host = host

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MESSAGE)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/pods", self._pods)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_route("*", "/exec/{namespace}/{pod}/{container}", self._exec)
        app.router.add_route("*", "/attach/{namespace}/{pod}/{container}", self._attach)
        app.router.add_route("*", "/portForward/{namespace}/{pod}", self._port_forward)
        return app

    # ------------------------------------------------------------ plain endpoints

    async def _healthz(self, request: web.Request) -> web.Response:
        return _text(200, "ok")

    async def _pods(self, request: web.Request) -> web.Response:
        items = [runtime.pod for runtime in self.host.runner.pods.values()]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                  "items": items})

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        namespace, name, container_name = info["namespace"], info["pod"], info["container"]
        try:
            query = LogQuery.parse(request.query)
        except LogQueryError as error:
            return _text(400, str(error))
        runtime = self.host.runner.pods.get((namespace, name))
        if runtime is None:
            return _text(404, f'pod "{name}" does not exist')
        container = runtime.containers.get(container_name)
        if container is None:
            return _text(404, f'container "{container_name}" not found in pod "{name}"')
        book = self.host.logs
        if not query.previous and container.state == "waiting" and container.restart_count:
            # Backing off before a restart: the log is the last instance's, as a kubelet
            # serves lastState.terminated's.
            query = dataclasses.replace(query, previous=True)
        if query.previous:
            if not book.has_previous(namespace, name, container_name):
                return _text(400, f'previous terminated container "{container_name}" in pod'
                                  f' "{name}" not found')
        elif container.state == "waiting" and container.restart_count == 0:
            return _text(400, f'container "{container_name}" in pod "{name}" is waiting to'
                              f" start: {container.reason}")
        instance = container.container_id

        def ended() -> bool:
            return (not container.running or container.container_id != instance
                    or self.host.runner.pods.get((namespace, name)) is not runtime)

        return await serve_log(request, book, (namespace, name, container_name), query,
                               ended=ended, stopping=self.host.stopping)

    # ------------------------------------------------------------ exec and attach

    def _session_target(self, request: web.Request
                        ) -> tuple[PodRuntime, ContainerRuntime] | web.Response:
        info = request.match_info
        runtime = self.host.runner.pods.get((info["namespace"], info["pod"]))
        if runtime is None:
            return _text(404, "pod does not exist")
        container = runtime.containers.get(info["container"])
        if container is None or not container.running:
            return _text(500, f'container not found ("{info["container"]}")')
        return runtime, container

    def _exec_protocols(self) -> tuple[str, ...]:
        versions = (V4,) if self.host.v4_only else (V5, V4)
        return (*versions, *_PRE_V4)

    async def _open(self, request: web.Request, supported: Sequence[str]
                    ) -> tuple[_Channels | None, web.StreamResponse | None]:
        problem = _upgrade_problem(request)
        if problem is not None:
            return None, problem
        protocol = _negotiate(request, supported)
        if protocol is None:
            # What x/net/websocket answers when no offered protocol is supported.
            return None, web.Response(status=403)
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (),
                                   max_msg_size=MAX_MESSAGE, autoping=True)
        await ws.prepare(request)
        return _Channels(ws, protocol), None

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, attach=False)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, attach=True)

    async def _remote_command(self, request: web.Request, *, attach: bool) -> web.StreamResponse:
        q = request.query
        wants_stdin, stdout, stderr = (q.get(k) == "1" for k in ("input", "output", "error"))
        tty = q.get("tty") == "1"
        if tty and stderr:
            stderr = False  # a terminal has one output stream (the kubelet drops stderr)
        if not (wants_stdin or stdout or stderr):
            return _text(400, "you must specify at least 1 of stdin, stdout, stderr")
        target = self._session_target(request)
        if isinstance(target, web.Response):
            return target
        runtime, container = target
        if attach:
            tty = bool(container.spec.get("tty"))  # fixed when the container started
        channels, refusal = await self._open(request, self._exec_protocols())
        if refusal is not None:
            return refusal
        assert channels is not None
        # Tells the client the streams are up (a kubelet writes an empty message first).
        await channels.send(Channel.STDOUT if stdout else Channel.STDERR if stderr
                            else Channel.ERROR)
        stdin = asyncio.StreamReader()
        if not wants_stdin:
            stdin.feed_eof()
        terminal = Terminal()
        if attach:
            work = self._attached(channels, runtime, container, stdout, tty)
        else:
            out = Output(channels.sender(Channel.STDOUT) if stdout else discard, terminal=tty)
            err = out if tty else Output(channels.sender(Channel.STDERR) if stderr else discard)
            process = Process(q.getall("command", []), stdin, out, err, tty=tty,
                              terminal=terminal, pod=runtime.pod, container=container.name,
                              env=runtime.env(container.name), commands=self.host.commands,
                              drop=_dropper(request))
            if tty:
                process.env.setdefault("TERM", "xterm")
            work = run_command(process, self.host.commands)
        running: asyncio.Future[int] = asyncio.ensure_future(work)
        if not attach:  # an exec'd process dies with its container; attach just ends then
            container.sessions.add(running)
        reading: asyncio.Future[None] = asyncio.ensure_future(
            self._read_client(channels, stdin, terminal, container if attach else None))
        either: set[asyncio.Future[Any]] = {running, reading}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not running.done():
                running.cancel()  # the client left: nobody hears the process any more
                await asyncio.gather(running, return_exceptions=True)
                return channels.ws
            await channels.send(Channel.ERROR, self._status(channels.protocol, running,
                                                            q.getall("command", [])))
        finally:
            container.sessions.discard(running)
            if not running.done():
                running.cancel()
            reading.cancel()
            await asyncio.gather(running, reading, return_exceptions=True)
            await channels.ws.close()
        return channels.ws

    @staticmethod
    def _status(protocol: str, ended: asyncio.Future[int], command: list[str]) -> bytes:
        if ended.cancelled():
            body = channel.exit_code_status(KILLED, command)  # the container stopped
        elif ended.exception() is not None:
            error = ended.exception()
            body = channel.failure_status(f"error executing command in container: {error}")
        else:
            body = channel.exit_code_status(ended.result(), command)
        if protocol in _PRE_V4:
            ended_status = channel.parse_exit_status(body)
            if ended_status.exit_code == 0:
                return b""
            return (ended_status.status.message or "").encode()
        return body

    async def _read_client(self, channels: _Channels, stdin: asyncio.StreamReader,
                           terminal: Terminal, attached: ContainerRuntime | None) -> None:
        resize = ResizeDecoder()
        target = attached.stdin if attached is not None else stdin
        try:
            async for number, payload in channels.messages():
                if number == Channel.STDIN and target is not None and not target.at_eof():
                    target.feed_data(payload)
                elif number == Channel.RESIZE:
                    for size in resize.feed(payload):
                        terminal.resize(size)
                elif (number == CLOSE and channel.supports_close(channels.protocol)
                      and payload[:1] == bytes((Channel.STDIN,))):
                    self._end_stdin(stdin, attached)
        finally:
            self._end_stdin(stdin, attached)

    @staticmethod
    def _end_stdin(stdin: asyncio.StreamReader, attached: ContainerRuntime | None) -> None:
        if not stdin.at_eof():
            stdin.feed_eof()
        # Attached clients share the container's stdin: only stdinOnce closes it for good.
        if (attached is not None and attached.stdin is not None
                and attached.spec.get("stdinOnce") and not attached.stdin.at_eof()):
            attached.stdin.feed_eof()

    async def _attached(self, channels: _Channels, runtime: PodRuntime,
                        container: ContainerRuntime, stdout: bool, tty: bool) -> int:
        """Attach: the container's output from now on, until it stops."""
        book = self.host.logs
        lines = book.current(runtime.namespace, runtime.name, container.name)
        seen = len(lines)
        out = Output(channels.sender(Channel.STDOUT) if stdout else discard, terminal=tty)
        stopped = asyncio.ensure_future(container.stopped.wait())
        try:
            while True:
                changed = book.changed()
                if len(lines) > seen:
                    text = "".join(f"{line}\n" for _at, line in lines[seen:])
                    seen = len(lines)
                    await out.write(text.encode())
                    continue
                if stopped.done():
                    break  # and everything it wrote has been sent
                waiter = asyncio.ensure_future(changed.wait())
                try:
                    await asyncio.wait({stopped, waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            stopped.cancel()
        return 0

    # ------------------------------------------------------------ port-forward

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        ports: list[int] = []
        values = request.query.getall("port", [])
        if not values:
            return _text(400, 'query parameter "port" is required')
        for value in values:
            if not value:
                return _text(400, 'query parameter "port" cannot be empty')
            for text in value.split(","):
                try:
                    port = int(text)
                except ValueError:
                    return _text(400, f'unable to parse "{value}" as a port')
                if not 0 < port <= 0xFFFF:
                    return _text(400, f'port "{value}" must be > 0')
                ports.append(port)
        info = request.match_info
        runtime = self.host.runner.pods.get((info["namespace"], info["pod"]))
        if runtime is None:
            return _text(404, "pod does not exist")
        channels, refusal = await self._open(request, (V4, ""))
        if refusal is not None:
            return refusal
        assert channels is not None
        for frame in channel.port_header_frames(ports):
            await channels.send(frame[0], frame[1:])
        readers = [asyncio.StreamReader() for _ in ports]
        forwards = [asyncio.ensure_future(self._forward(channels, runtime, index, port, reader))
                    for index, (port, reader) in enumerate(zip(ports, readers, strict=True))]
        for forward in forwards:
            runtime.sessions.add(forward)
        reading = asyncio.ensure_future(self._read_ports(channels, readers))
        try:
            await asyncio.gather(*forwards, return_exceptions=True)
        finally:
            for forward in forwards:
                runtime.sessions.discard(forward)
                forward.cancel()
            reading.cancel()
            await asyncio.gather(*forwards, reading, return_exceptions=True)
            await channels.ws.close()
        return channels.ws

    async def _read_ports(self, channels: _Channels,
                          readers: list[asyncio.StreamReader]) -> None:
        try:
            async for number, payload in channels.messages():
                index, is_error = divmod(number, 2)
                if not is_error and index < len(readers) and not readers[index].at_eof():
                    readers[index].feed_data(payload)
        finally:
            for reader in readers:
                if not reader.at_eof():
                    reader.feed_eof()

    async def _forward(self, channels: _Channels, runtime: PodRuntime, index: int, port: int,
                       reader: asyncio.StreamReader) -> None:
        data_channel, error_channel = channel.port_channels(index)
        handler: PortHandler | None = self.host.port_handler(runtime, port)
        try:
            if handler is None:
                raise ConnectionRefusedError(
                    f"failed to connect to localhost:{port} inside the pod: connection refused")
            await handler(PortConnection(port, reader, channels.sender(data_channel),
                                         runtime.pod))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            message = (f"error forwarding port {port} to pod {runtime.namespace}/{runtime.name},"
                       f" uid {runtime.uid}: {error}")
            log.info("%s", message)
            await channels.send(error_channel, message.encode())
