"""What answers a port-forward inside a simulated pod.

Every ``containerPort`` a pod declares answers as a TCP echo server (:func:`echo`).
A test can register its own handler for any port with :meth:`VirtualKubelet.register_port
<kubeasync.testing.VirtualKubelet.register_port>`: an ``async def handler(connection)``
that reads ``connection.reader`` (an :class:`asyncio.StreamReader`; EOF when the client
leaves) and writes with ``await connection.write(b"...")``; when it returns, the
connection ends. :func:`tcp_forward` makes a handler that forwards to a real TCP server.
An exception from a handler ends the connection with its message on the error channel,
as a refused connection inside a real pod does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PortConnection", "PortHandler", "echo", "tcp_forward"]


@dataclass
class PortConnection:
    """One forwarded connection to a port of a pod.

    Attributes:
        port: the pod's port.
        reader: what the client sends.
        pod: the pod (a JSON dict, as the API server last sent it).
    """

    port: int
    reader: asyncio.StreamReader
    send: Callable[[bytes], Awaitable[None]]
    pod: Mapping[str, Any] = field(default_factory=dict)

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the client."""
        if data:
            await self.send(bytes(data))


PortHandler = Callable[[PortConnection], Awaitable[None]]
"""What serves one forwarded connection."""


async def echo(connection: PortConnection) -> None:
    """Send back everything received, until the client leaves."""
    while chunk := await connection.reader.read(256 * 1024):
        await connection.write(chunk)


def tcp_forward(host: str, port: int) -> PortHandler:
    """A handler that connects each forwarded connection to ``host:port`` (a real server
    of the test) and copies bytes both ways until either side ends."""

    async def forward(connection: PortConnection) -> None:
        reader, writer = await asyncio.open_connection(host, port)

        async def upstream() -> None:
            while chunk := await connection.reader.read(256 * 1024):
                writer.write(chunk)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.write_eof()

        sending = asyncio.ensure_future(upstream())
        try:
            while chunk := await reader.read(256 * 1024):
                await connection.write(chunk)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return forward
