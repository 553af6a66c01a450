"""The channel protocols of exec, attach and port-forward WebSockets, with no I/O.

Both ends use this module: the client (:mod:`kubeasync.streams.exec`,
:mod:`kubeasync.streams.portforward`) and the virtual kubelet of :mod:`kubeasync.testing`.

**exec and attach** (``v5.channel.k8s.io``, ``v4.channel.k8s.io``): every binary
WebSocket message is one channel byte followed by the payload::

    0 stdin    client -> server
    1 stdout   server -> client
    2 stderr   server -> client
    3 error    server -> client: a metav1.Status (JSON) once the command has ended
    4 resize   client -> server: {"Width": w, "Height": h} (tty only)
    255 close  v5 only: [255, channel] half-closes one stream (the client's stdin)

The error channel's Status says how the command ended: ``status: Success`` is exit code
0, a non-zero exit is ``reason: NonZeroExitCode`` with a cause ``{"reason": "ExitCode",
"message": "3"}``, and any other Status is a failure to run the command at all. Before v5
there is no way to end stdin but closing the whole socket (kubernetes#89899).

**port-forward** (``v4.channel.k8s.io``): the request names its ports
(``?ports=80,443``); port number ``i`` in that list uses data channel ``2i`` and error
channel ``2i + 1``. The server first writes the port number (little-endian uint16) on
both channels of every port, then the data; a message on the error channel is the reason
the server gave up on that port. The client sends data without any port header.
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from ..core.codec import decoder_for
from ..core.errors import ApiError, StreamError, error_class
from ..models import ListMeta, Status, StatusCause, StatusDetails

__all__ = [
    "CLOSE",
    "EXEC_PROTOCOLS",
    "PORT_FORWARD_PROTOCOLS",
    "V4",
    "V5",
    "Channel",
    "ExitStatus",
    "Frame",
    "PortData",
    "PortError",
    "PortForwardDecoder",
    "ResizeDecoder",
    "TerminalSize",
    "close_frame",
    "decode_frame",
    "encode_frame",
    "exit_code_status",
    "failure_status",
    "parse_exit_status",
    "port_channels",
    "port_data_frame",
    "port_header",
    "port_header_frames",
    "resize_frame",
    "success_status",
    "supports_close",
]

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
EXEC_PROTOCOLS: tuple[str, ...] = (V5, V4)
"""What a client offers for exec and attach, best first."""
PORT_FORWARD_PROTOCOLS: tuple[str, ...] = (V4,)
"""What a client offers for port-forward (v5 changed nothing there)."""

CLOSE = 255
"""The v5 control byte: ``[255, channel]`` closes one stream."""

NON_ZERO_EXIT_CODE = "NonZeroExitCode"
EXIT_CODE_CAUSE = "ExitCode"


class Channel(enum.IntEnum):
    """The streams of an exec or attach WebSocket."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2
    ERROR = 3
    RESIZE = 4


@dataclass(frozen=True)
class Frame:
    """One WebSocket message: the channel byte and what follows it."""

    channel: int
    payload: bytes


def _channel(channel: int) -> int:
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel <= 255:
        raise ValueError(f"channel must be an int from 0 to 255, got {channel!r}")
    return int(channel)


def encode_frame(channel: int, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """The message carrying ``payload`` on ``channel``."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"payload must be bytes, not {type(payload).__name__}")
    return bytes((_channel(channel),)) + bytes(payload)


def decode_frame(message: bytes) -> Frame | None:
    """Split a message into channel and payload; an empty message (which servers ignore)
    gives ``None``."""
    if not message:
        return None
    return Frame(message[0], bytes(message[1:]))


def supports_close(protocol: str | None) -> bool:
    """Whether ``protocol`` can half-close a stream (v5 and later)."""
    return protocol == V5


def close_frame(channel: int, protocol: str | None) -> bytes:
    """The v5 message that half-closes ``channel`` (``[255, channel]``)."""
    if not supports_close(protocol):
        raise ValueError(
            f"{protocol or 'this protocol'} cannot close a single stream; only {V5} can")
    return bytes((CLOSE, _channel(channel)))


# ------------------------------------------------------------------ terminal size


@dataclass(frozen=True)
class TerminalSize:
    """A terminal's size in characters."""

    width: int
    height: int


def _dimension(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 0xFFFF:
        raise ValueError(f"{argument} must be an int from 1 to 65535, got {value!r}")
    return value


def resize_frame(width: int, height: int) -> bytes:
    """The resize message: ``{"Width": w, "Height": h}`` on channel 4."""
    body = {"Width": _dimension(width, "width"), "Height": _dimension(height, "height")}
    return encode_frame(Channel.RESIZE, json.dumps(body, separators=(",", ":")).encode())


class ResizeDecoder:
    """The server's side of channel 4: a stream of JSON objects, as the kubelet reads it
    (``json.Decoder`` over the channel's bytes: objects may share or straddle messages)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()

    def feed(self, payload: bytes) -> list[TerminalSize]:
        self._buffer += payload.decode("utf-8", errors="replace")
        sizes: list[TerminalSize] = []
        while True:
            text = self._buffer.lstrip()
            if not text:
                self._buffer = ""
                return sizes
            try:
                value, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                self._buffer = text  # the rest of this object is still on its way
                return sizes
            self._buffer = text[end:]
            if isinstance(value, dict):
                width, height = value.get("Width"), value.get("Height")
                if isinstance(width, int) and isinstance(height, int):
                    sizes.append(TerminalSize(width, height))


# ------------------------------------------------------------------ exit status

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class ExitStatus:
    """How a command ended, from the error channel.

    Attributes:
        exit_code: the command's exit code, or ``None`` when it could not run at all.
        status: the Status the server sent.
    """

    exit_code: int | None
    status: Status

    def error(self) -> ApiError:
        """The typed error for a command that could not run (``exit_code is None``)."""
        code = self.status.code or 0
        cls = error_class(code, self.status.reason)
        return cls(self.status, code=code or cls.default_code or 500)


def parse_exit_status(payload: bytes) -> ExitStatus:
    """Read the error channel's message (v4 and v5: a metav1.Status in JSON).

    A text message (the protocols before v4 wrote the error as plain text) is a failure
    with that text as its message.
    """
    try:
        status = decoder_for(Status).decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = payload.decode("utf-8", errors="replace").strip()
        status = Status(status="Failure", message=text or "the command failed")
        return ExitStatus(None, status)
    if status.status == "Success":
        return ExitStatus(0, status)
    if status.reason == NON_ZERO_EXIT_CODE:
        causes = status.details.causes if status.details is not None else None
        for cause in causes or ():
            if cause.reason == EXIT_CODE_CAUSE and cause.message is not None:
                try:
                    return ExitStatus(int(cause.message.strip()), status)
                except ValueError:
                    break
        raise StreamError(
            f"the server reported a non-zero exit without a readable exit code: {status.message}")
    return ExitStatus(None, status)


def success_status() -> bytes:
    """What the server writes on the error channel when a command exits with 0."""
    return _ENCODER.encode(Status(metadata=ListMeta(), status="Success"))


def exit_code_status(exit_code: int, command: Sequence[str] = ()) -> bytes:
    """What the server writes on the error channel when a command exits with ``exit_code``
    (0 gives :func:`success_status`)."""
    if isinstance(exit_code, bool) or not isinstance(exit_code, int):
        raise ValueError(f"exit_code must be an int, got {exit_code!r}")
    if exit_code == 0:
        return success_status()
    shown = " ".join(command)
    status = Status(
        metadata=ListMeta(),
        status="Failure",
        reason=NON_ZERO_EXIT_CODE,
        message=(f"command terminated with non-zero exit code: error executing command"
                 f" [{shown}], exit code {exit_code}"),
        details=StatusDetails(causes=[StatusCause(reason=EXIT_CODE_CAUSE,
                                                  message=str(exit_code))]),
    )
    return _ENCODER.encode(status)


def failure_status(message: str, *, reason: str = "InternalError", code: int = 500) -> bytes:
    """What the server writes on the error channel when a command could not run."""
    status = Status(metadata=ListMeta(), status="Failure", reason=reason, code=code,
                    message=f"Internal error occurred: {message}" if reason == "InternalError"
                    else message,
                    details=StatusDetails(causes=[StatusCause(message=message)]))
    return _ENCODER.encode(status)


# ------------------------------------------------------------------ port-forward


def port_channels(index: int) -> tuple[int, int]:
    """The (data, error) channels of the ``index``-th port of a port-forward request."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 128:
        raise ValueError(f"index must be an int from 0 to 127, got {index!r}")
    return 2 * index, 2 * index + 1


def _port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
        raise ValueError(f"port must be an int from 1 to 65535, got {port!r}")
    return port


def port_header(port: int) -> bytes:
    """The first payload on each channel of a port: the number, little-endian uint16."""
    return struct.pack("<H", _port(port))


def port_header_frames(ports: Sequence[int]) -> list[bytes]:
    """What a server writes first on a port-forward WebSocket: each port's number on its
    data and its error channel."""
    frames = []
    for index, port in enumerate(ports):
        data, error = port_channels(index)
        frames += [encode_frame(data, port_header(port)), encode_frame(error, port_header(port))]
    return frames


def port_data_frame(index: int, data: bytes) -> bytes:
    """Data for the ``index``-th port (either direction: the header is the server's job)."""
    return encode_frame(port_channels(index)[0], data)


@dataclass(frozen=True)
class PortData:
    """Bytes the pod sent on a port."""

    port: int
    data: bytes


@dataclass(frozen=True)
class PortError:
    """The server's reason for giving up on a port (UTF-8 text)."""

    port: int
    message: str


class PortForwardDecoder:
    """The client's side of a port-forward WebSocket: strips and checks the port headers
    (which may arrive split across messages) and sorts payloads into data and errors."""

    def __init__(self, ports: Iterable[int]) -> None:
        self.ports = [_port(p) for p in ports]
        if not self.ports:
            raise ValueError("ports must name at least one port")
        # Header bytes still expected on each channel (data and error of each port).
        self._pending_header = {c: b"" for i in range(len(self.ports)) for c in port_channels(i)}

    def headers_received(self) -> bool:
        """Whether the server has announced every port (both of its channels)."""
        return not self._pending_header

    def feed(self, message: bytes) -> list[PortData | PortError]:
        frame = decode_frame(message)
        if frame is None:
            return []
        index, is_error = divmod(frame.channel, 2)
        if index >= len(self.ports):
            raise StreamError(f"port-forward: a message on channel {frame.channel}, which no"
                              f" requested port uses (ports {self.ports})")
        port = self.ports[index]
        payload = frame.payload
        if frame.channel in self._pending_header:
            seen = self._pending_header[frame.channel] + payload
            if len(seen) < 2:
                self._pending_header[frame.channel] = seen
                return []
            announced = struct.unpack("<H", seen[:2])[0]
            if announced != port:
                raise StreamError(f"port-forward: the server announced port {announced} on"
                                  f" channel {frame.channel}, where port {port} was expected")
            del self._pending_header[frame.channel]
            payload = seen[2:]
        if not payload:
            return []
        if is_error:
            return [PortError(port, payload.decode("utf-8", errors="replace"))]
        return [PortData(port, payload)]
