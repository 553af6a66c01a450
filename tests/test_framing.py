"""Framing of chunked watch streams: lines split on b"\\n" across any chunk boundary.

Most tests run ``api.watch_stream()`` against the scripted server over real HTTP; the
LineFramer tests at the end cut the same bytes at every possible place.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest

import kubeasync
from kubeasync.models import Pod
from kubeasync.streams.events import (
    AddedEvent,
    BookmarkEvent,
    ErrorEvent,
    WatchEvent,
    event_decoder,
)
from kubeasync.streams.framing import LineFramer
from tests.helpers.watch_server import serving

MIB = 1024 * 1024


async def collect(stream: Any, count: int | None = None) -> list[Any]:
    """Events of a stream until it ends (or ``count`` of them), bounded in time."""

    async def run() -> list[Any]:
        events = []
        async for event in stream:
            events.append(event)
            if count is not None and len(events) == count:
                break
        return events

    async with stream:
        return await asyncio.wait_for(run(), 10)


def names(events: list[WatchEvent[Pod]]) -> list[str | None]:
    return [e.object.metadata.name if e.object.metadata else None for e in events]


async def test_framing_keeps_a_raw_u0085_inside_a_string() -> None:
    # Go's JSON encoder leaves U+0085, U+2028 and U+2029 raw; str.splitlines() would cut
    # the event in two at each of them.
    tricky = "a\u0085b\u2028c\u2029d\x1ce"
    async with serving() as (server, kube):
        server.create("web-0", labels={"note": tricky})
        server.create("web-1")
        events = await collect(kube.pods.watch_stream(resource_version="100"), 2)
    assert names(events) == ["web-0", "web-1"]
    assert events[0].object.metadata.labels == {"note": tricky}


async def test_framing_survives_one_byte_chunks() -> None:
    async with serving(chunk_size=1) as (server, kube):
        for i in range(5):
            server.create(f"web-{i}", labels={"i": str(i)})
        events = await collect(kube.pods.watch_stream(resource_version="100"), 5)
    assert names(events) == [f"web-{i}" for i in range(5)]
    assert all(isinstance(e, AddedEvent) for e in events)


async def test_framing_reassembles_an_event_split_over_many_chunks() -> None:
    big = "x" * 300_000
    async with serving(chunk_size=4093) as (server, kube):
        server.create("web-0")
        server.create("big", labels={"big": "1"})
        server.pods[("ns", "big")]["metadata"]["annotations"] = {"note": big}
        server.modify("big")
        server.create("web-2")
        events = await collect(kube.pods.watch_stream(resource_version="100"), 4)
    assert [e.type for e in events] == ["ADDED", "ADDED", "MODIFIED", "ADDED"]
    assert events[2].object.metadata.annotations == {"note": big}
    assert names(events)[3] == "web-2"


async def test_framing_keeps_raw_fields_intact_across_chunks() -> None:
    # managedFields[].fieldsV1 decodes as msgspec.Raw, a view of the line it came from:
    # the framer must hand out immutable bytes, never a buffer it reuses.
    fields = {"f:metadata": {"f:labels": {"f:app": {}}}}
    managed = [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1",
                "fieldsV1": fields}]
    async with serving(chunk_size=37) as (server, kube):
        for i in range(4):
            server.create(f"web-{i}")
            server.pods[("ns", f"web-{i}")]["metadata"]["managedFields"] = managed
            server.modify(f"web-{i}")
        events = await collect(kube.pods.watch_stream(resource_version="100"), 8)
    for event in events[1::2]:
        entry = event.object.metadata.managed_fields[0]
        assert msgspec.json.decode(entry.fields_v1) == fields


async def test_framing_decompresses_gzip() -> None:
    async with serving(gzip=True) as (server, kube):
        for i in range(20):
            server.create(f"web-{i}", labels={"pad": "p" * 100})
        events = await collect(kube.pods.watch_stream(resource_version="100"), 20)
    assert names(events) == [f"web-{i}" for i in range(20)]


async def test_framing_accepts_a_16_mib_line() -> None:
    huge = "h" * (16 * MIB)
    async with serving() as (server, kube):
        server.create("huge")
        server.pods[("ns", "huge")]["metadata"]["annotations"] = {"blob": huge}
        server.modify("huge")
        events = await collect(kube.pods.watch_stream(resource_version="101"), 1)
    assert len(events[0].object.metadata.annotations["blob"]) == 16 * MIB


async def test_framing_raises_stream_error_naming_the_limit_for_a_longer_line() -> None:
    async with serving(chunk_size=64 * 1024) as (server, kube):
        server.create("huge")
        server.pods[("ns", "huge")]["metadata"]["annotations"] = {"blob": "h" * (2 * MIB)}
        server.modify("huge")
        stream = kube.pods.watch_stream(resource_version="100", max_line_bytes=MIB)
        with pytest.raises(kubeasync.StreamError, match=f"max_line_bytes={MIB}"):
            await collect(stream)
        assert stream.closed
        # The connection was dropped with the error.
        assert kube.session.transport.connections()["in_use"] == 0  # type: ignore[attr-defined]


async def test_framing_decodes_bookmarks_with_nulls_and_error_events_as_status() -> None:
    bookmark = {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "12"},
                "spec": {"containers": None}, "status": None}
    error = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": "too old resource version: 1 (12)", "reason": "Expired", "code": 410}
    async with serving() as (server, kube):
        server.raw_watch_lines.append([
            json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n",
            b"\n",  # a blank keep-alive line is skipped
            json.dumps({"type": "ERROR", "object": error}).encode() + b"\n",
        ])
        events = await collect(kube.pods.watch_stream(resource_version="1"))
    assert [type(e) for e in events] == [BookmarkEvent, ErrorEvent]
    assert events[0].object.metadata.resource_version == "12"
    assert events[1].object.code == 410 and events[1].object.reason == "Expired"
    assert isinstance(events[1].to_error(), kubeasync.Gone)


async def test_framing_raises_transport_error_for_a_stream_cut_mid_event() -> None:
    async with serving() as (server, kube):
        server.raw_watch_lines.append([
            b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n',
            b'{"type":"ADDED","object":{"metad',  # then a clean end: a truncated event
        ])
        stream = kube.pods.watch_stream(resource_version="100")
        events: list[Any] = []
        with pytest.raises(kubeasync.TransportError, match="middle of an event"):
            async for event in stream:
                events.append(event)
    assert names(events) == ["a"]


async def test_framing_raises_decode_error_for_a_line_that_is_not_an_event() -> None:
    async with serving() as (server, kube):
        server.raw_watch_lines.append([b'{"type":"SURPRISE","object":{}}\n'])
        with pytest.raises(kubeasync.DecodeError, match="not a watch event"):
            await collect(kube.pods.watch_stream(resource_version="100"))


async def test_watch_stream_sends_the_raw_options() -> None:
    async with serving(supports_initial_events=True) as (server, kube):
        server.create("web-0", labels={"app": "web"})
        stream = kube.pods.watch_stream(
            label_selector={"app": "web"}, timeout_seconds=7, send_initial_events=True
        )
        events = await collect(stream, 2)
    assert [e.type for e in events] == ["ADDED", "BOOKMARK"]
    assert server.watch_requests()[0] == {
        "watch": "true", "labelSelector": "app=web", "resourceVersionMatch": "NotOlderThan",
        "timeoutSeconds": "7", "allowWatchBookmarks": "true", "sendInitialEvents": "true",
    }


def test_watch_stream_rejects_bad_options_before_any_request() -> None:
    session = kubeasync.Client(kubeasync.ClusterConfig(server="http://127.0.0.1:1"))
    with pytest.raises(ValueError, match="max_line_bytes"):
        session.pods.watch_stream(max_line_bytes=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        session.pods.watch_stream(idle_timeout=-1)
    with pytest.raises(ValueError, match="timeout_seconds"):
        session.pods.watch_stream(timeout_seconds=-1)


# ------------------------------------------------------------------ LineFramer alone


def frame(chunks: list[bytes], limit: int = 1 << 20) -> tuple[list[bytes], bytes]:
    framer = LineFramer(limit)
    lines = []
    for chunk in chunks:
        framer.feed(chunk)
        while (line := framer.next_line()) is not None:
            lines.append(line.removesuffix(b"\n"))
    return lines, framer.tail()


def test_line_framer_gives_the_same_lines_for_every_split() -> None:
    body = b'{"a":1}\n\n{"b":"\xc2\x85"}\nxyz\n{"c":3}\ntail'
    expected = body.split(b"\n")
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1):
            lines, tail = frame([body[:i], body[i:j], body[j:]])
            assert [*lines, tail] == expected, (i, j)


def test_line_framer_counts_the_limit_across_chunks() -> None:
    lines, _ = frame([b"12345", b"67\n"], limit=7)
    assert lines == [b"1234567"]
    with pytest.raises(kubeasync.StreamError, match="max_line_bytes=7"):
        frame([b"12345", b"678\n"], limit=7)
    with pytest.raises(kubeasync.StreamError, match="max_line_bytes=7"):
        frame([b"12345678"], limit=7)
    with pytest.raises(kubeasync.StreamError, match="max_line_bytes=7"):
        frame([b"ok\n12345678\n"], limit=7)


def test_one_decoder_types_the_object_by_event_type() -> None:
    decoder = event_decoder(Pod)
    added = decoder.decode(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}')
    late_tag = decoder.decode(b'{"object":{"metadata":{"name":"a"}},"type":"DELETED"}')
    error = decoder.decode(b'{"type":"ERROR","object":{"kind":"Status","status":"Failure"}}')
    assert isinstance(added.object, Pod) and added.type == "ADDED"
    assert isinstance(late_tag.object, Pod) and late_tag.type == "DELETED"
    assert isinstance(error, ErrorEvent) and error.object.status == "Failure"
    crd = event_decoder(dict).decode(b'{"type":"MODIFIED","object":{"spec":{"x":1}}}')
    assert crd.object == {"spec": {"x": 1}}
