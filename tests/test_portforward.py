"""port-forward through the public API, on the embedded API server and its virtual kubelet
(the real-server version is in tests/integration/test_real_exec.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket

import pytest

import kubeasync
from kubeasync.api.capabilities.portforward import port_forward_request
from kubeasync.streams.portforward import PortForwardError
from kubeasync.testing import FakeApiServer, PortConnection, Timings, tcp_forward
from tests.helpers.pods import pod_body, running_pod
from tests.helpers.waiting import eventually

FAST = Timings(schedule=0.01, start=0.01, run=0.05, terminate=0.01)
pytestmark = pytest.mark.fake_apiserver(simulate=True, timings=FAST)


@pytest.fixture
async def web(kube: kubeasync.Client) -> str:
    await running_pod(kube, "web", ports=(80, 8080))
    return "web"


async def _echo_through(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await reader.readexactly(len(payload))
    finally:
        writer.close()
        await writer.wait_closed()


def test_the_port_forward_request() -> None:
    request = port_forward_request(kubeasync.PODS, "web-0", "shop", [80, 443])
    assert request.path == "/api/v1/namespaces/shop/pods/web-0/portforward"
    assert request.query == (("ports", "80"), ("ports", "443"))
    assert port_forward_request(kubeasync.PODS, "web-0", "shop", 8080).query == (
        ("ports", "8080"),)


@pytest.mark.parametrize(("ports", "message"), [
    (0, "from 1 to 65535"), (70000, "from 1 to 65535"), ([], "non-empty"),
    ("80", "a port"), ([80, 80], "80 is given twice"), (True, "a port"),
])
def test_bad_ports_are_refused_before_sending(kube: kubeasync.Client, ports: object,
                                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kube.pods.port_forward("web", ports)  # type: ignore[arg-type]


def test_bad_local_ports(kube: kubeasync.Client) -> None:
    with pytest.raises(ValueError, match="several ports cannot share one local port"):
        kube.pods.port_forward("web", [80, 81], local_port=9000)
    with pytest.raises(ValueError, match="one local port per port"):
        kube.pods.port_forward("web", [80, 81], local_port=[9000])
    with pytest.raises(ValueError, match="local_port must be an int"):
        kube.pods.port_forward("web", 80, local_port=-1)


async def test_open_port_is_a_stream_pair(kube: kubeasync.Client, web: str) -> None:
    reader, writer = await kube.pods.open_port(web, 80)
    writer.write(b"first line\nsecond line\n")
    await writer.drain()
    assert await reader.readline() == b"first line\n"
    assert await reader.readexactly(7) == b"second "
    assert await reader.readuntil(b"\n") == b"line\n"
    assert not writer.can_write_eof()
    with pytest.raises(kubeasync.StreamError, match="cannot half-close"):
        writer.write_eof()
    writer.close()
    await writer.wait_closed()
    assert writer.is_closing()
    assert await reader.read() == b""  # closing ends both directions
    with pytest.raises(kubeasync.StreamError, match="closed"):
        writer.write(b"late")


async def test_nothing_listening_reaches_the_reader(kube: kubeasync.Client, web: str) -> None:
    reader, writer = await kube.pods.open_port(web, 9999)
    with pytest.raises(PortForwardError) as error:
        await reader.read()
    assert error.value.port == 9999
    assert error.value.message.startswith("error forwarding port 9999 to pod default/web, uid ")
    assert error.value.message.endswith(
        "failed to connect to localhost:9999 inside the pod: connection refused")
    await writer.aclose()


async def test_a_missing_pod_or_a_pod_on_no_node(kube: kubeasync.Client) -> None:
    with pytest.raises(kubeasync.NotFound, match='pods "ghost" not found'):
        await kube.pods.open_port("ghost", 80)
    await kube.pods.create(pod_body("nowhere", pod_spec={"schedulerName": "nobody"}))
    with pytest.raises(kubeasync.BadRequest, match="does not have a host assigned"):
        await kube.pods.open_port("nowhere", 80)


async def test_two_connections_at_once(kube: kubeasync.Client, web: str) -> None:
    async with kube.pods.port_forward(web, 80) as fwd:
        assert fwd.address == "127.0.0.1" and fwd.local_ports == {80: fwd.local_port}
        first = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        second = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        for index, (reader, writer) in enumerate((first, second, first, second)):
            writer.write(f"message {index}\n".encode())
            await writer.drain()
            assert await reader.readline() == f"message {index}\n".encode()
        assert fwd.connections_served == 2  # one WebSocket each
        for _, writer in (first, second):
            writer.close()
            await writer.wait_closed()


async def test_several_ports(kube: kubeasync.Client, web: str) -> None:
    async with kube.pods.port_forward(web, [80, 8080]) as fwd:
        assert set(fwd.local_ports) == {80, 8080}
        assert fwd.local_port == fwd.local_ports[80]
        for port in (80, 8080):
            assert await _echo_through(fwd.local_ports[port], b"to %d" % port) == b"to %d" % port


async def test_a_chosen_local_port(kube: kubeasync.Client, web: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    async with kube.pods.port_forward(web, 80, local_port=free) as fwd:
        assert fwd.local_port == free
        assert await _echo_through(free, b"ping") == b"ping"


async def test_a_large_transfer(kube: kubeasync.Client, web: str) -> None:
    data = os.urandom(16 * 1024 * 1024)
    async with kube.pods.port_forward(web, 80) as fwd:
        reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)

        async def send() -> None:
            writer.write(data)
            await writer.drain()

        sending = asyncio.ensure_future(send())
        digest, received = hashlib.sha256(), 0
        while received < len(data):
            chunk = await reader.read(1 << 20)
            assert chunk, "the connection ended early"
            digest.update(chunk)
            received += len(chunk)
        await sending
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
        writer.close()
        await writer.wait_closed()


async def test_an_error_ends_the_connection_with_a_logged_reason(
        kube: kubeasync.Client, web: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kubeasync.portforward")
    async with kube.pods.port_forward(web, 7777) as fwd:
        reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)
        assert await reader.read() == b""  # closed by the forward
        writer.close()
        await writer.wait_closed()
    warned = [r.getMessage() for r in caplog.records if r.name == "kubeasync.portforward"]
    assert len(warned) == 1
    assert "error forwarding port 7777 to pod default/web" in warned[0]
    assert "connection refused" in warned[0]


async def test_a_closed_local_connection_frees_its_websocket(kube: kubeasync.Client,
                                                            web: str) -> None:
    async with kube.pods.port_forward(web, 80) as fwd:
        for _ in range(3):
            assert await _echo_through(fwd.local_port, b"once") == b"once"

        async def freed() -> bool:
            return fwd.open_connections == 0  # each ends with its local connection

        await eventually(freed, "the forwarded connections ended", 10)
        assert fwd.connections_served == 3


async def test_leaving_the_block_closes_everything(kube: kubeasync.Client, web: str) -> None:
    async with kube.pods.port_forward(web, 80) as fwd:
        port = fwd.local_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        await writer.drain()
        assert await reader.readexactly(1) == b"x"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_ports_of_the_test(kube: kubeasync.Client, fake_apiserver: FakeApiServer,
                                 web: str) -> None:
    node = fake_apiserver.node
    assert node is not None

    async def answer(connection: PortConnection) -> None:
        request = await connection.reader.readline()
        await connection.write(b"HTTP/1.0 200 OK\r\n\r\n" + request)

    async def serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"from a real server")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_http, "127.0.0.1", 0)
    try:
        node.register_port(9000, answer)  # any pod, declared or not
        node.register_port(9001, tcp_forward("127.0.0.1", server.sockets[0].getsockname()[1]),
                           namespace="default", pod="web")
        reader, writer = await kube.pods.open_port(web, 9000)
        writer.write(b"GET / HTTP/1.0\r\n")
        await writer.drain()
        assert await reader.read() == b"HTTP/1.0 200 OK\r\n\r\nGET / HTTP/1.0\r\n"
        await writer.aclose()
        reader, writer = await kube.pods.open_port(web, 9001)
        writer.write(b"hello\n")
        await writer.drain()
        assert await reader.read() == b"from a real server"  # ends when the server closes
        await writer.aclose()
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(ValueError, match="port must be an int"):
        node.register_port(0, answer)
