"""A local server process that answers like kube-apiserver, for the benchmarks.

It serves pre-built apiserver-shaped bytes (see :mod:`benchmarks.data`) over HTTP/1.1 with
keep-alive, so that its own cost stays small next to the clients'. It is a plain asyncio
protocol, not a web framework: a benchmark server must not be the bottleneck.

What it does, per namespace (the namespace picks the scenario, so that every client can
reach every scenario through its own idiomatic API):

- ``/api/v1/namespaces/pods-{N}/pods``: a PodList of N pods (~6.8 KB each). ``limit`` and
  ``continue`` page through it (kr8s always pages by 100), ``fieldSelector=metadata.name=X``
  answers a one-item list of the small pod named X (kr8s' ``Pod.get`` is such a list).
- ``/api/v1/namespaces/{ns}/pods/{name}``: the small pod (~0.9 KB), for GET benchmarks.
- ``?watch=true`` on ``events-{N}``: N pre-built MODIFIED events, one JSON object per line,
  one chunk each, written as fast as the client reads (flow control), then the terminating
  chunk. On ``idle``: headers only; the connection then stays silent until ``/_bench/fire``
  writes one event to the next idle watch in turn (``?to=all``: to every idle watch),
  stamped with the ``time.monotonic()`` of the moment it is written to that watch
  (``metadata.annotations["bench.kubeasync.dev/sent"]``; the clock is system-wide).
- any other LIST answers an empty PodList (a resilient watcher's initial list).
- ``/version``, ``/api``, ``/api/v1``, ``/apis``: discovery, for clients that ask for it.

Like kube-apiserver (``defaultGzipThresholdBytes``, ``BestSpeed``), bodies over 128 KiB are
gzipped at level 1 when the request's ``Accept-Encoding`` allows it, and sent chunked;
small ones carry a Content-Length. Watch streams are never compressed. Gzipped bodies are
compressed once and cached, so a repeated request costs the server only the write.

``/_bench/stats`` answers counters (requests, how many LIST requests asked for gzip, how
many got it, the open idle watches) and ``/_bench/stats?reset=1`` resets them.

Run: ``python -m benchmarks.server --lists 1000,10000 --events 20000``; it prints one JSON
line ``{"port": ...}`` once everything is built, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
import zlib
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote

from . import data

GZIP_THRESHOLD = 128 * 1024
WRITE_SLICE = 256 * 1024
CHUNK = 64 * 1024
SENT_PLACEHOLDER = b"@@SENT@@@@@@@@@@@@@@"  # 20 bytes, replaced by a fixed-width number
RV_PLACEHOLDER = b"@@RV@@@@@@@@"  # 12 bytes: each fired event gets a new resourceVersion

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.1",
    "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
    "gitTreeState": "clean",
    "buildDate": "2025-05-15T08:19:08Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
API_VERSIONS = {
    "kind": "APIVersions",
    "versions": ["v1"],
    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
}
API_GROUPS = {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
API_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {
            "name": "pods",
            "singularName": "pod",
            "namespaced": True,
            "kind": "Pod",
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch",
                      "update", "watch"],
            "shortNames": ["po"],
            "categories": ["all"],
        },
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get"]},
        {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "patch", "update"]},
    ],
}


def gzip_level1(body: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def chunked(body: bytes, size: int = CHUNK) -> bytes:
    parts = []
    for start in range(0, len(body), size):
        piece = body[start:start + size]
        parts.append(b"%x\r\n%b\r\n" % (len(piece), piece))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


class Dataset:
    """Everything the server answers, built once."""

    def __init__(self, list_sizes: list[int], event_counts: list[int]) -> None:
        largest = max(list_sizes, default=0)
        self.items = [data.pod_bytes(i, namespace="bench") for i in range(largest)]
        self.lists: dict[int, bytes] = {n: data.list_body(self.items[:n]) for n in list_sizes}
        self.pages: dict[tuple[int, int, int], bytes] = {}
        self.gzipped: dict[int, bytes] = {}  # id(body) -> framed gzip body
        self.framed: dict[int, bytes] = {}  # id(body) -> framed identity body
        self.keep: list[bytes] = []  # bodies whose id() is used as a cache key
        self.empty_list = data.list_body([])
        self.small = data.small_pod()
        self.streams: dict[int, bytes] = {}
        for n in event_counts:
            lines = (
                data.event_line("MODIFIED", data.pod_bytes(i % 1000, resource_version=200000 + i))
                for i in range(n)
            )
            self.streams[n] = b"".join(b"%x\r\n%b\r\n" % (len(x), x) for x in lines) + b"0\r\n\r\n"
        sent = data.pod_bytes(0, namespace="idle",
                              annotations={data.SENT_ANNOTATION: SENT_PLACEHOLDER.decode()})
        sent = sent.replace(b'"resourceVersion":"100000"',
                            b'"resourceVersion":"' + RV_PLACEHOLDER + b'"')
        assert RV_PLACEHOLDER in sent
        line = data.event_line("MODIFIED", sent)
        self.idle_event = b"%x\r\n%b\r\n" % (len(line), line)
        self.discovery = {
            "/version": json.dumps(VERSION).encode(),
            "/api": json.dumps(API_VERSIONS).encode(),
            "/apis": json.dumps(API_GROUPS).encode(),
            "/api/v1": json.dumps(API_V1).encode(),
        }
        for n, body in self.lists.items():  # compress the big ones now, not while timed
            if len(body) > GZIP_THRESHOLD:
                self.gzipped[id(body)] = chunked(gzip_level1(body))
                self.framed[id(body)] = chunked(body, len(body))
            self.keep.append(body)
            del n

    def page(self, n: int, start: int, limit: int) -> bytes:
        key = (n, start, limit)
        body = self.pages.get(key)
        if body is None:
            end = min(n, start + limit)
            cont = str(end) if end < n else None
            body = data.list_body(self.items[start:end], continue_=cont, remaining=n - end)
            self.pages[key] = body
        return body

    def encoded(self, body: bytes, gzip: bool) -> bytes:
        cache = self.gzipped if gzip else self.framed
        framed = cache.get(id(body))
        if framed is None:
            framed = chunked(gzip_level1(body)) if gzip else chunked(body, len(body))
            cache[id(body)] = framed
            self.keep.append(body)
        return framed


class Stats:
    def __init__(self) -> None:
        self.reset()
        self.idle_open = 0

    def reset(self) -> None:
        self.requests = 0
        self.lists = 0
        self.list_gzip_asked = 0
        self.gzip_served = 0
        self.gets = 0
        self.watches = 0
        self.watch_params: list[str] = []
        self.accept_encoding: dict[str, int] = {}
        self.user_agents: dict[str, int] = {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "lists": self.lists,
            "list_gzip_asked": self.list_gzip_asked,
            "gzip_served": self.gzip_served,
            "gets": self.gets,
            "watches": self.watches,
            "idle_open": self.idle_open,
            "watch_params": self.watch_params[:5],
            "accept_encoding": self.accept_encoding,
            "user_agents": self.user_agents,
        }


class Server:
    def __init__(self, dataset: Dataset) -> None:
        self.data = dataset
        self.stats = Stats()
        self.idle: dict[HttpProtocol, None] = {}  # insertion-ordered set
        self._next_idle = -1
        self._fired = 0
        self._audit = 0
        self._date = formatdate(usegmt=True).encode()
        self._date_at = time.monotonic()

    def headers(self, status: str, extra: bytes) -> bytes:
        now = time.monotonic()
        if now - self._date_at > 1:
            self._date = formatdate(usegmt=True).encode()
            self._date_at = now
        self._audit += 1
        return (
            b"HTTP/1.1 " + status.encode() + b"\r\n"
            b"Audit-Id: 3f1c2a9e-0000-4000-8000-%012d\r\n"
            b"Cache-Control: no-cache, private\r\n"
            b"Content-Type: application/json\r\n"
            b"X-Kubernetes-Pf-Flowschema-Uid: 9d2f3c1e-5b7a-4c8d-9e1f-2a3b4c5d6e7f\r\n"
            b"X-Kubernetes-Pf-Prioritylevel-Uid: 1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d\r\n"
            b"Date: " % self._audit
        ) + self._date + b"\r\n" + extra + b"\r\n"

    def fire(self, everyone: bool) -> int:
        """Write one stamped event to the next open idle watch (round robin), or to all."""
        template = self.data.idle_event
        targets = list(self.idle)
        if not targets:
            return 0
        if not everyone:
            self._next_idle = (self._next_idle + 1) % len(targets)
            targets = [targets[self._next_idle]]
        for proto in targets:
            self._fired += 1  # a new resourceVersion per event, as a real change has
            event = template.replace(RV_PLACEHOLDER, b"%012d" % (300000 + self._fired))
            proto.write(event.replace(SENT_PLACEHOLDER, b"%20.6f" % time.monotonic()))
        return len(targets)


class HttpProtocol(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.pending: memoryview | None = None
        self.offset = 0
        self.streaming = False

    # ---------------------------------------------------------------- transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=1024 * 1024, low=256 * 1024)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.server.idle:
            del self.server.idle[self]
            self.server.stats.idle_open -= 1
        self.transport = None
        self.pending = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()

    def write(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(payload)

    def send(self, payload: bytes) -> None:
        """Write a (possibly huge) payload, no faster than the client reads it."""
        self.pending = memoryview(payload)
        self.offset = 0
        self._pump()

    def _pump(self) -> None:
        while self.pending is not None and not self.paused and self.transport is not None:
            end = self.offset + WRITE_SLICE
            self.transport.write(self.pending[self.offset:end])
            self.offset = end
            if end >= len(self.pending):
                # done: the connection serves its next request (keep-alive)
                self.pending = None
                self.streaming = False
                self._drain_requests()

    # ---------------------------------------------------------------- requests

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        self._drain_requests()

    def _drain_requests(self) -> None:
        while self.pending is None and not self.streaming:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            method, target, _ = lines[0].split(" ", 2)
            self.handle(method, target, headers)

    def reply(self, status: str, body: bytes, *, gzip_ok: bool = False) -> None:
        if len(body) > GZIP_THRESHOLD:
            framed = self.server.data.encoded(body, gzip_ok)
            extra = b"Transfer-Encoding: chunked\r\n"
            if gzip_ok:
                extra = b"Content-Encoding: gzip\r\n" + extra
                self.server.stats.gzip_served += 1
            self.write(self.server.headers(status, extra))
            self.send(framed)
        else:
            self.write(
                self.server.headers(status, b"Content-Length: %d\r\n" % len(body)) + body
            )

    def not_found(self, what: str) -> None:
        status = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"{what} not found", "reason": "NotFound", "code": 404,
        }
        self.reply("404 Not Found", json.dumps(status).encode())

    def handle(self, method: str, target: str, headers: dict[str, str]) -> None:
        stats = self.server.stats
        stats.requests += 1
        agent = headers.get("user-agent", "")[:40]
        stats.user_agents[agent] = stats.user_agents.get(agent, 0) + 1
        path, _, query_string = target.partition("?")
        path = path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        if path.startswith("/_bench/"):
            self.control(path, query)
            return
        discovery = self.server.data.discovery.get(path)
        if discovery is not None:
            self.reply("200 OK", discovery)
            return
        parts = [unquote(p) for p in path.strip("/").split("/")]
        # api v1 namespaces {ns} pods [name]
        if len(parts) < 5 or parts[:3] != ["api", "v1", "namespaces"] or parts[4] != "pods":
            self.not_found(path)
            return
        namespace = parts[3]
        if len(parts) == 6:
            stats.gets += 1
            self.reply("200 OK", self.server.data.small)
            return
        if len(parts) != 5:
            self.not_found(path)
            return
        if query.get("watch", "").lower() in ("true", "1"):
            self.watch(namespace, query)
            return
        self.list(namespace, query, headers)

    def list(self, namespace: str, query: dict[str, str], headers: dict[str, str]) -> None:
        stats = self.server.stats
        stats.lists += 1
        accept = headers.get("accept-encoding", "")
        stats.accept_encoding[accept] = stats.accept_encoding.get(accept, 0) + 1
        gzip_ok = "gzip" in accept
        stats.list_gzip_asked += gzip_ok
        dataset = self.server.data
        selector = query.get("fieldSelector", "")
        if selector.startswith("metadata.name="):
            name = selector.split("=", 1)[1].split(",", 1)[0]
            body = data.list_body([data.small_pod(name=name, namespace=namespace)])
            self.reply("200 OK", body, gzip_ok=gzip_ok)
            return
        size = _suffix_int(namespace, "pods-")
        if size is None or size not in dataset.lists:
            self.reply("200 OK", dataset.empty_list, gzip_ok=gzip_ok)
            return
        limit = int(query.get("limit", "0") or 0)
        start = int(query.get("continue", "0") or 0)
        if limit and (limit < size or start):
            body = dataset.page(size, start, limit)
        else:
            body = dataset.lists[size]
        self.reply("200 OK", body, gzip_ok=gzip_ok)

    def watch(self, namespace: str, query: dict[str, str]) -> None:
        stats = self.server.stats
        stats.watches += 1
        stats.watch_params.append("&".join(f"{k}={v}" for k, v in sorted(query.items())))
        head = self.server.headers("200 OK", b"Transfer-Encoding: chunked\r\n")
        count = _suffix_int(namespace, "events-")
        prefix = b""
        if query.get("sendInitialEvents") == "true":
            bookmark = data.event_line("BOOKMARK", json.dumps({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "resourceVersion": data.LIST_RESOURCE_VERSION,
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            }, separators=(",", ":")).encode())
            prefix = b"%x\r\n%b\r\n" % (len(bookmark), bookmark)
        self.streaming = True
        if count is not None and count in self.server.data.streams:
            self.write(head + prefix)
            self.send(self.server.data.streams[count])
        else:
            self.write(head + prefix)
            if self not in self.server.idle:
                self.server.idle[self] = None
                stats.idle_open += 1

    def control(self, path: str, query: dict[str, str]) -> None:
        stats = self.server.stats
        if path == "/_bench/stats":
            answer = stats.as_dict()
            if query.get("reset"):
                stats.reset()
        elif path == "/_bench/fire":
            delay = float(query.get("delay", "0.005"))
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.server.fire, query.get("to") == "all")
            answer = {"watches": len(self.server.idle)}
        else:
            self.not_found(path)
            return
        self.reply("200 OK", json.dumps(answer).encode())


def _suffix_int(value: str, prefix: str) -> int | None:
    if value.startswith(prefix) and value[len(prefix):].isdigit():
        return int(value[len(prefix):])
    return None


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


async def serve(host: str, port: int, dataset: Dataset) -> None:
    server = Server(dataset)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: HttpProtocol(server), host, port, backlog=1024, reuse_address=True
    )
    bound = listener.sockets[0].getsockname()[1]
    print(json.dumps({"port": bound}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with listener:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lists", default="1000,10000", help="list sizes to pre-build")
    parser.add_argument("--events", default="20000", help="watch stream lengths to pre-build")
    args = parser.parse_args(argv)
    dataset = Dataset(_ints(args.lists), _ints(args.events))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, dataset))
    sys.exit(0)


if __name__ == "__main__":
    main()
