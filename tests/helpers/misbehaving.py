"""Servers that misbehave on purpose, over real sockets, for the hardening tests.

- :func:`http_server`: an aiohttp server from a table of handlers (any answer a test needs:
  a gateway's JSON with 200, a truncated gzip body, a gzip bomb, the wrong kind);
- :func:`silent_server`: a TCP server that accepts every connection, reads what the client
  sends and never answers (a hung proxy or a frozen API server).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

import kubeasync

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

POD = {"kind": "Pod", "apiVersion": "v1",
       "metadata": {"name": "web-0", "namespace": "ns", "uid": "u-1", "resourceVersion": "5"}}
SECRET = {"kind": "Secret", "apiVersion": "v1",
          "metadata": {"name": "web-0", "namespace": "ns"},
          "data": {"password": "aHVudGVyMg=="}}
GATEWAY_JSON = {"error": "upstream request timeout"}


@dataclass
class Recorded:
    """What an :func:`http_server` received: ``(method, path_qs)`` per request, and the
    client ports it came from (one per connection)."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    peers: set[int] = field(default_factory=set)


@contextlib.asynccontextmanager
async def http_server(
    routes: dict[tuple[str, str], Handler], *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Recorded]]:
    """Serve ``routes`` (``(method, path pattern) -> handler``) on 127.0.0.1."""
    recorded = Recorded()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        recorded.requests.append((request.method, request.path_qs))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            recorded.peers.add(peer[1])
        return await handler(request)

    app = web.Application(middlewares=[record])
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ssl_context)
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.port}", recorded
    finally:
        await server.close()


def client(url: str, **options: Any) -> kubeasync.Client:
    return kubeasync.Client(kubeasync.ClusterConfig(server=url, namespace="ns"), **options)


def json_answer(body: Any, status: int = 200) -> Handler:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(body=data, status=status, content_type="application/json")

    return handler


def status_answer(code: int, reason: str, *, headers: dict[str, str] | None = None,
                  **details: Any) -> Handler:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": code, "reason": reason, "message": reason}
    if details:
        body["details"] = details

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.json_response(body, status=code, headers=headers)

    return handler


def gzip_answer(body: bytes, *, truncate: bool = False, chunked: bool = False,
                content_type: str = "application/json") -> Handler:
    """``body`` gzipped (cut in the middle with ``truncate``), as one body or chunked."""
    data = gzip.compress(body)
    if truncate:
        data = data[: len(data) // 2]

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Encoding": "gzip", "Content-Type": content_type}
        if not chunked:
            return web.Response(body=data, headers=headers)
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(data), 4096):
            await response.write(data[i : i + 4096])
        await response.write_eof()
        return response

    return handler


@dataclass
class SilentServer:
    url: str = ""
    connections: int = 0
    """Connections accepted so far."""
    heads: list[bytes] = field(default_factory=list)
    """The first bytes each connection sent (its request line and headers)."""


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[SilentServer]:
    """A server that accepts, reads and never answers, until the client goes away."""
    state = SilentServer()
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            state.heads.append(await reader.read(65536))
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
