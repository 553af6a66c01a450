"""Pod logs over real HTTP: ``logs()`` and ``stream_logs()`` against the scripted server."""

from __future__ import annotations

import asyncio

import pytest

import kubeasync
from tests.helpers.watch_server import LogScript, serving

MULTI_CONTAINER_ERROR = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    b'"message":"a container name must be specified for pod web-0, choose one of: [a b]",'
    b'"reason":"BadRequest","code":400}'
)


async def lines_of(stream: kubeasync.LogStream) -> list[str]:
    async def run() -> list[str]:
        return [line async for line in stream]

    async with stream:
        return await asyncio.wait_for(run(), 5)


async def test_stream_logs_joins_lines_split_across_chunks() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(
            chunks=[b"first li", b"ne\nsec", b"o", b"nd\n", b"\n", b"third\nfou", b"rth\n"]
        )
        lines = await lines_of(kube.pods.stream_logs("web-0", follow=True))
    assert lines == ["first line", "second", "", "third", "fourth"]


async def test_stream_logs_replaces_invalid_utf8_and_keeps_split_characters() -> None:
    euro = "€".encode()  # three bytes, cut between chunks below
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(
            chunks=[b"price " + euro[:1], euro[1:] + b"5\nbad \xff\xfe byte\n"]
        )
        lines = await lines_of(kube.pods.stream_logs("web-0"))
    assert lines == ["price €5", "bad \ufffd\ufffd byte"]


async def test_stream_logs_yields_a_final_unterminated_line() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(chunks=[b"one\ntwo\nno newline", b" at the end"])
        lines = await lines_of(kube.pods.stream_logs("web-0"))
    assert lines == ["one", "two", "no newline at the end"]


async def test_stream_logs_keeps_u0085_and_carriage_returns_inside_a_line() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(chunks=["a\u0085b\r\nc\u2028d\n".encode()])
        lines = await lines_of(kube.pods.stream_logs("web-0"))
    assert lines == ["a\u0085b\r", "c\u2028d"]


async def test_stream_logs_sends_every_option() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(chunks=[b"x\n"])
        stream = kube.pods.stream_logs(
            "web-0", namespace="ns", container="app", follow=True, tail_lines=10,
            since_seconds=60, timestamps=True, previous=True, limit_bytes=4096,
        )
        assert await lines_of(stream) == ["x"]
    _, path, query = server.requests[-1]
    assert path == "/api/v1/namespaces/ns/pods/web-0/log"
    assert query == {
        "container": "app", "follow": "true", "tailLines": "10", "sinceSeconds": "60",
        "timestamps": "true", "previous": "true", "limitBytes": "4096",
    }


async def test_stream_logs_without_container_on_a_multi_container_pod_is_bad_request() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(status=400, body=MULTI_CONTAINER_ERROR)
        with pytest.raises(kubeasync.BadRequest, match="a container name must be specified") as info:
            await lines_of(kube.pods.stream_logs("web-0", follow=True))
        assert info.value.code == 400 and info.value.reason == "BadRequest"
        with pytest.raises(kubeasync.BadRequest):
            await kube.pods.logs("web-0")


async def test_stream_logs_raises_stream_error_for_a_line_over_the_limit() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(chunks=[b"short\n", b"y" * 5000, b"\n"])
        stream = kube.pods.stream_logs("web-0", max_line_bytes=1024)
        got: list[str] = []
        with pytest.raises(kubeasync.StreamError, match="max_line_bytes=1024"):
            async for line in stream:
                got.append(line)
        assert got == ["short"]


async def test_stream_logs_stopped_early_closes_the_connection() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(chunks=[b"one\n", b"two\n", b"three\n"])
        async with kube.pods.stream_logs("web-0", follow=True) as stream:
            async for line in stream:
                assert line == "one"
                break
        assert stream.closed
        assert kube.session.transport.connections()["in_use"] == 0  # type: ignore[attr-defined]


async def test_logs_returns_the_text() -> None:
    async with serving() as (server, kube):
        server.logs[("ns", "web-0")] = LogScript(chunks=[b"a\n", b"b \xff\n"])
        assert await kube.pods.logs("web-0", tail_lines=2) == "a\nb \ufffd\n"
    assert server.requests[-1][2] == {"tailLines": "2"}


def test_stream_logs_rejects_bad_options_before_any_request() -> None:
    kube = kubeasync.Client(kubeasync.ClusterConfig(server="http://127.0.0.1:1"))
    with pytest.raises(ValueError, match="tail_lines"):
        kube.pods.stream_logs("web-0", tail_lines=-1)
    with pytest.raises(ValueError, match="max_line_bytes"):
        kube.pods.stream_logs("web-0", max_line_bytes=0)
    with pytest.raises(ValueError, match="name"):
        kube.pods.stream_logs("a/b")
