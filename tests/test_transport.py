"""The transport seam over real sockets: plain requests, streams and WebSockets carry the
same credentials, impersonation and TLS; a refused upgrade is the server's typed error; a
truncated gzip body is an error; another implementation can be put behind a Client."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

import kubeasync
from kubeasync.core.request import Request
from kubeasync.transport.base import (
    ByteStream,
    Credentials,
    HttpResponse,
    Transport,
    WebSocket,
)
from kubeasync.transport.policy import NO_RETRY, Session

TOKEN = "s3cr3t-token"
IMPERSONATE = kubeasync.Impersonation(user="alice", groups=("dev", "ops"))


def _who(request: web.Request) -> dict[str, Any]:
    return {
        "authorization": request.headers.get("Authorization"),
        "user": request.headers.get("Impersonate-User"),
        "groups": request.headers.getall("Impersonate-Group", []),
    }


@asynccontextmanager
async def server(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, list[Any]]]:
    seen: list[Any] = []

    async def version(request: web.Request) -> web.StreamResponse:
        seen.append(("get", _who(request)))
        return web.json_response({"major": "1", "minor": "20", "gitVersion": "v1.20.2"})

    async def watch(request: web.Request) -> web.StreamResponse:
        seen.append(("stream", _who(request)))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"type":"ADDED","object":{"metadata":{"name":"a",'
                             b'"namespace":"ns","resourceVersion":"1"}}}\n')
        return response

    async def exec_(request: web.Request) -> web.StreamResponse:
        seen.append(("websocket", _who(request)))
        if request.match_info["name"] == "missing":
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                 "reason": "NotFound", "message": 'pods "missing" not found'}, status=404)
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        seen.append(("protocol", ws.ws_protocol))
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await ws.send_bytes(b"\x01" + message.data[1:])
        return ws

    async def gzipped(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(b'{"major": "1", "minor": "20"}' * 100)
        return web.Response(body=body[: len(body) // 2],
                            headers={"Content-Encoding": "gzip",
                                     "Content-Type": "application/json"})

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/api/v1/namespaces/ns/pods", watch)
    app.router.add_get("/api/v1/namespaces/ns/pods/{name}/exec", exec_)
    app.router.add_get("/truncated", gzipped)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(ssl=ssl_context)
    try:
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://127.0.0.1:{test_server.port}", seen
    finally:
        await test_server.close()


def exec_request(name: str) -> Request:
    return Request("GET", f"/api/v1/namespaces/ns/pods/{name}/exec",
                   (("command", "cat"), ("stdin", "true")))


async def test_requests_streams_and_websockets_carry_the_same_identity_over_tls() -> None:
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_tls)
    async with server(server_tls) as (url, seen):
        config = kubeasync.ClusterConfig(
            server=url, namespace="ns", auth=kubeasync.BearerToken(TOKEN),
            ca_data=ca.cert_pem.bytes(), impersonate=IMPERSONATE,
        )
        async with kubeasync.Client(config) as kube:
            await kube.version()
            async with kube.pods.watch_stream() as stream:
                event = await stream.__anext__()
                assert event.type == "ADDED"
            ws = await kube.session.connect_websocket(
                exec_request("p"), protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
            try:
                assert ws.protocol == "v4.channel.k8s.io", "the server's choice of our offer"
                await ws.send(b"\x00hello")
                assert await ws.receive() == b"\x01hello"
            finally:
                await ws.close()
            assert await ws.receive() is None
            assert ws.close_code == 1000
    identity = {"authorization": f"Bearer {TOKEN}", "user": "alice", "groups": ["dev", "ops"]}
    assert [(kind, who) for kind, who in seen if kind != "protocol"] == [
        ("get", identity), ("stream", identity), ("websocket", identity)
    ]
    assert ("protocol", "v4.channel.k8s.io") in seen


async def test_a_refused_upgrade_raises_the_servers_error() -> None:
    async with server() as (url, _), kubeasync.Client(
        kubeasync.ClusterConfig(server=url, namespace="ns"), retry=NO_RETRY
    ) as kube:
        with pytest.raises(kubeasync.NotFound) as info:
            await kube.session.connect_websocket(exec_request("missing"),
                                                 protocols=("v4.channel.k8s.io",))
    assert info.value.message == 'pods "missing" not found'
    assert "/pods/missing/exec?command=cat" in str(info.value)


async def test_a_truncated_gzip_body_is_an_error() -> None:
    async with server() as (url, _), kubeasync.Client(
        kubeasync.ClusterConfig(server=url, namespace="ns"), retry=NO_RETRY
    ) as kube:
        with pytest.raises(kubeasync.TransportError, match="truncated"):
            await kube.session.send(Request("GET", "/truncated"))


class CannedTransport(Transport):
    """Another transport behind the same policy: it answers from a table."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.sent: list[tuple[Request, Credentials]] = []

    async def send(self, request: Request, credentials: Credentials, *, timeout: float | None,
                   max_body_bytes: int | None = None) -> HttpResponse:
        self.sent.append((request, credentials))
        body = self.answers.get(request.path)
        if body is None:
            return HttpResponse(404, "Not Found", {"Content-Type": "application/json"},
                                b'{"kind":"Status","code":404,"reason":"NotFound",'
                                b'"message":"not here"}')
        return HttpResponse(200, "OK", {"Content-Type": "application/json"}, body)

    async def open_stream(self, request: Request, credentials: Credentials, *,
                          timeout: float | None, read_timeout: float | None) -> ByteStream:
        raise NotImplementedError

    async def connect_websocket(self, request: Request, credentials: Credentials, *,
                                protocols: Sequence[str], timeout: float | None) -> WebSocket:
        raise NotImplementedError

    async def close(self) -> None:
        pass


async def test_any_transport_fits_behind_the_policy() -> None:
    transport = CannedTransport({"/version": b'{"major": "1", "minor": "37"}'})
    config = kubeasync.ClusterConfig(server="https://10.0.0.1", auth=kubeasync.BearerToken(TOKEN),
                                     impersonate=IMPERSONATE)
    session = Session(config, transport=transport, retry=NO_RETRY)
    version = await session.send(Request("GET", "/version"))
    assert version.body == b'{"major": "1", "minor": "37"}'
    with pytest.raises(kubeasync.NotFound, match="not here"):
        await session.send(Request("GET", "/apis"))
    _, credentials = transport.sent[0]
    assert credentials.headers == (
        ("Authorization", f"Bearer {TOKEN}"), ("Impersonate-User", "alice"),
        ("Impersonate-Group", "dev"), ("Impersonate-Group", "ops"),
    )
    assert TOKEN not in repr(credentials), "credentials show header names, never values"
