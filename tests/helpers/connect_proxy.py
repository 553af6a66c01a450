"""A minimal HTTP CONNECT proxy on 127.0.0.1 that records the tunnels it opened."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class ConnectProxy:
    url: str = ""
    tunnels: list[str] = field(default_factory=list)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def connect_proxy() -> AsyncIterator[ConnectProxy]:
    proxy = ConnectProxy()
    pipes: set[asyncio.Task[None]] = set()

    async def handle(client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        head = await client_reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            client_writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            client_writer.close()
            return
        host, port = target.rsplit(":", 1)
        proxy.tunnels.append(target)
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        client_writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for task in (_pipe(client_reader, upstream_writer),
                     _pipe(upstream_reader, client_writer)):
            pipe = asyncio.create_task(task)
            pipes.add(pipe)
            pipe.add_done_callback(pipes.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    proxy.url = f"http://{host}:{port}"
    try:
        yield proxy
    finally:
        server.close()
        for pipe in list(pipes):
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


@dataclass
class RefusingProxy:
    """A proxy that answers every request (CONNECT or not) with 407."""

    url: str = ""
    heads: list[bytes] = field(default_factory=list)
    """What each client sent: its request line and headers (Proxy-Authorization too)."""


@contextlib.asynccontextmanager
async def refusing_proxy() -> AsyncIterator[RefusingProxy]:
    proxy = RefusingProxy()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            proxy.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"corp\"\r\n"
                         b"Content-Type: text/plain\r\nContent-Length: 19\r\n"
                         b"Connection: close\r\n\r\nAccess denied (407)")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    proxy.url = f"http://{host}:{port}"
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
