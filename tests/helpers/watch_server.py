"""A small scripted API server for pods, over real HTTP, for the watch and log tests.

It keeps pods as dicts with a resourceVersion counter and an event history, and serves
what a real kube-apiserver serves for them: paginated lists (``limit``/``continue``, the
list's resourceVersion), watches (chunked, one JSON event per line, replayed from a
resourceVersion, bookmarks, ``sendInitialEvents``, 200 + ERROR 410 Expired for a
compacted resourceVersion or an HTTP 410), and pod logs.

Faults are scripted: ``server.watch_faults`` / ``server.list_faults`` hold what the next
requests get instead of a normal answer (a status code, a stall, a cut after N events, a
clean end after N events), and ``server.end_watches()`` / ``server.cut_watches()`` act on
the streams open right now. ``chunk_size`` sends every event in pieces (1 = byte by
byte), ``gzip`` compresses the watch body.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import json
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

import kubeasync
from kubeasync import ClusterConfig
from kubeasync.transport.policy import NO_RETRY

Key = tuple[str, str]


@dataclass
class Fault:
    """What one request gets instead of (or on top of) a normal answer.

    kind: ``"status"`` (answer ``code`` with a Status body and optional Retry-After),
    ``"stall"`` (200, then ``after_events`` events, then silence until the client leaves),
    ``"cut"`` (``after_events`` events, half of the next line, then the connection is
    aborted), ``"end"`` (``after_events`` events, then a clean end).
    """

    kind: str
    code: int = 0
    reason: str = ""
    message: str = ""
    retry_after: str | None = None
    retry_after_seconds: int | None = None
    after_events: int = 0

    @classmethod
    def status(
        cls,
        code: int,
        reason: str,
        message: str = "scripted failure",
        *,
        retry_after: str | None = None,
        retry_after_seconds: int | None = None,
    ) -> Fault:
        return cls("status", code, reason, message, retry_after, retry_after_seconds)

    @classmethod
    def stall(cls, after_events: int = 0) -> Fault:
        return cls("stall", after_events=after_events)

    @classmethod
    def cut(cls, after_events: int) -> Fault:
        return cls("cut", after_events=after_events)

    @classmethod
    def end(cls, after_events: int) -> Fault:
        return cls("end", after_events=after_events)


@dataclass
class LogScript:
    """What ``GET .../pods/{name}/log`` answers: raw chunks, or an error."""

    chunks: list[bytes] = field(default_factory=list)
    status: int = 200
    body: bytes = b""


def status_body(code: int, reason: str, message: str, retry_after_seconds: int | None = None) -> bytes:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if retry_after_seconds is not None:
        status["details"] = {"retryAfterSeconds": retry_after_seconds}
    return json.dumps(status).encode()


class WatchServer:
    def __init__(
        self,
        *,
        supports_initial_events: bool = False,
        gone_as_http: bool = False,
        chunk_size: int | None = None,
        gzip: bool = False,
    ) -> None:
        self.supports_initial_events = supports_initial_events
        self.gone_as_http = gone_as_http
        self.chunk_size = chunk_size
        self.gzip = gzip
        self.pods: dict[Key, dict[str, Any]] = {}
        self.rv = 100
        # (resourceVersion, type, object); type "BOOKMARK" too, and the control entries
        # "END"/"CUT" that act on the streams open when they are appended.
        self.history: list[tuple[int, str, dict[str, Any] | None]] = []
        self.oldest = 0  # a watch from below this resourceVersion gets 410 Expired
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.watch_faults: collections.deque[Fault] = collections.deque()
        self.list_faults: collections.deque[Fault] = collections.deque()
        self.raw_watch_lines: collections.deque[list[bytes]] = collections.deque()
        self.logs: dict[Key, LogScript] = {}
        self.active_watches = 0  # watch handlers still streaming to a client
        self._continue_tokens: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._uids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> WatchServer:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._collection)
        app.router.add_get("/api/v1/pods", self._collection)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self._log)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def config(self) -> ClusterConfig:
        return ClusterConfig(server=self.url, namespace="ns")

    @property
    def open_connections(self) -> int:
        """HTTP connections the server still has from clients."""
        assert self._runner is not None and self._runner.server is not None
        return len(self._runner.server.connections)

    def watch_requests(self) -> list[dict[str, str]]:
        return [query for _, _, query in self.requests if query.get("watch") == "true"]

    def list_requests(self) -> list[dict[str, str]]:
        return [query for _, _, query in self.requests if query.get("watch") != "true"]

    # ------------------------------------------------------------ the store

    def _record(self, kind: str, obj: dict[str, Any] | None) -> None:
        self.history.append((self.rv, kind, obj))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def create(self, name: str, namespace: str = "ns", labels: dict[str, str] | None = None,
               **extra: Any) -> dict[str, Any]:
        self.rv += 1
        pod: dict[str, Any] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{next(self._uids)}",
                "resourceVersion": str(self.rv),
                "labels": dict(labels or {}),
            },
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": "Pending"},
            **extra,
        }
        self.pods[(namespace, name)] = pod
        self._record("ADDED", pod)
        return pod

    def modify(self, name: str, namespace: str = "ns", **labels: str) -> dict[str, Any]:
        self.rv += 1
        old = self.pods[(namespace, name)]
        pod = json.loads(json.dumps(old))
        pod["metadata"]["labels"].update(labels)
        pod["metadata"]["resourceVersion"] = str(self.rv)
        self.pods[(namespace, name)] = pod
        self._record("MODIFIED", pod)
        return pod

    def delete(self, name: str, namespace: str = "ns") -> dict[str, Any]:
        self.rv += 1
        pod = json.loads(json.dumps(self.pods.pop((namespace, name))))
        pod["metadata"]["resourceVersion"] = str(self.rv)
        self._record("DELETED", pod)
        return pod

    def bookmark(self) -> None:
        """A BOOKMARK at the current resourceVersion to every watch that allows them."""
        obj = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(self.rv)},
            "spec": {"containers": None},
            "status": {},
        }
        self._record("BOOKMARK", obj)

    def end_watches(self) -> None:
        """End the watch streams open now, cleanly, after what they have to send."""
        self._record("END", None)

    def cut_watches(self) -> None:
        """Abort the watch streams open now (no terminating chunk)."""
        self._record("CUT", None)

    def compact(self) -> None:
        """Forget the history: a watch from before the current resourceVersion gets 410."""
        self.oldest = self.rv

    def expire_continue_tokens(self) -> None:
        self._continue_tokens.clear()

    def state(self, namespace: str | None = "ns") -> dict[Key, str]:
        """What a client's view must converge to: key -> resourceVersion."""
        return {
            key: pod["metadata"]["resourceVersion"]
            for key, pod in self.pods.items()
            if namespace is None or key[0] == namespace
        }

    # ------------------------------------------------------------ HTTP

    @staticmethod
    def _matches(pod: dict[str, Any], namespace: str | None, selector: str | None) -> bool:
        meta = pod["metadata"]
        if namespace is not None and meta.get("namespace") != namespace:
            return False
        for term in (selector or "").split(","):
            if term:
                key, _, value = term.partition("=")
                if (meta.get("labels") or {}).get(key) != value:
                    return False
        return True

    def _error(self, fault: Fault) -> web.Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return web.Response(
            status=fault.code,
            body=status_body(fault.code, fault.reason, fault.message, fault.retry_after_seconds),
            content_type="application/json",
            headers=headers,
        )

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.method, request.path, query))
        namespace = request.match_info.get("ns")
        if query.get("watch") == "true":
            return await self._watch(request, namespace, query)
        return self._list(namespace, query)

    def _list(self, namespace: str | None, query: dict[str, str]) -> web.Response:
        if self.list_faults:
            return self._error(self.list_faults.popleft())
        token = query.get("continue")
        if token is not None:
            if token not in self._continue_tokens:
                return self._error(Fault.status(
                    410, "Expired", "The provided continue parameter is too old"
                ))
            version, remaining = self._continue_tokens.pop(token)
        else:
            version = str(self.rv)
            remaining = [
                json.loads(json.dumps(pod))
                for key, pod in sorted(self.pods.items())
                if self._matches(pod, namespace, query.get("labelSelector"))
            ]
        limit = int(query.get("limit", "0")) or len(remaining) or 1
        page, rest = remaining[:limit], remaining[limit:]
        metadata: dict[str, Any] = {"resourceVersion": version}
        if rest:
            new_token = base64.b64encode(f"{version}/{len(self._continue_tokens)}/{id(rest)}".encode()).decode()
            self._continue_tokens[new_token] = (version, rest)
            metadata["continue"] = new_token
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": page}
        return web.json_response(body)

    async def _watch(
        self, request: web.Request, namespace: str | None, query: dict[str, str]
    ) -> web.StreamResponse:
        fault = self.watch_faults.popleft() if self.watch_faults else None
        if fault is not None and fault.kind == "status":
            return self._error(fault)
        rv = query.get("resourceVersion", "")
        if (
            "sendInitialEvents" in query or "resourceVersionMatch" in query
        ) and not self.supports_initial_events:
            # What kube-apiserver 1.20 answers.
            return self._error(Fault.status(
                422, "Invalid",
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden:"
                " resourceVersionMatch is forbidden for watch",
            ))
        expired = rv not in ("", "0") and int(rv) < self.oldest
        if expired and self.gone_as_http:
            return self._error(Fault.status(410, "Expired", f"too old resource version: {rv}"))

        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if self.gzip:
            response.headers["Content-Encoding"] = "gzip"
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.active_watches += 1
        try:
            return await self._stream_watch(
                request, response, namespace, query, fault, rv, expired
            )
        finally:
            self.active_watches -= 1

    async def _stream_watch(
        self, request: web.Request, response: web.StreamResponse, namespace: str | None,
        query: dict[str, str], fault: Fault | None, rv: str, expired: bool,
    ) -> web.StreamResponse:
        bookmarks = query.get("allowWatchBookmarks") == "true"
        selector = query.get("labelSelector")
        initial: list[bytes] = []
        compressor = zlib.compressobj(wbits=31) if self.gzip else None

        async def write(data: bytes) -> None:
            if compressor is not None:
                data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            if self.chunk_size:
                for i in range(0, len(data), self.chunk_size):
                    await response.write(data[i : i + self.chunk_size])
            else:
                await response.write(data)

        async def finish() -> web.StreamResponse:
            if compressor is not None:
                await response.write(compressor.flush())
            await response.write_eof()
            return response

        if self.raw_watch_lines:
            for line in self.raw_watch_lines.popleft():
                await write(line)
            return await finish()

        if expired:
            await write(_event("ERROR", json.loads(status_body(
                410, "Expired", f"too old resource version: {rv} ({self.oldest})"
            ))))
            return await finish()

        if rv in ("", "0"):
            for _, pod in sorted(self.pods.items()):
                if self._matches(pod, namespace, selector):
                    initial.append(_event("ADDED", pod))
            if query.get("sendInitialEvents") == "true":
                initial.append(_event("BOOKMARK", {
                    "kind": "Pod", "apiVersion": "v1",
                    "metadata": {
                        "resourceVersion": str(self.rv),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }))
            start = self.rv
        else:
            start = int(rv)
        position = len(self.history)  # entries at or after this are new
        backlog = [
            entry for entry in self.history
            if entry[0] > start and entry[1] not in ("END", "CUT")
        ]
        sent = 0
        limit = fault.after_events if fault is not None else None

        async def send_event(data: bytes) -> bool:
            """Send one event; False when the fault says to stop here."""
            nonlocal sent
            if limit is not None and sent >= limit:
                return False
            await write(data)
            sent += 1
            return True

        try:
            for data in initial:
                if not await send_event(data):
                    return await self._fault_end(request, response, fault, data, write, finish)
            for _, kind, obj in backlog:
                data = self._entry_line(kind, obj, namespace, selector, bookmarks)
                if data is None:
                    continue
                if not await send_event(data):
                    return await self._fault_end(request, response, fault, data, write, finish)
            while True:
                while position < len(self.history):
                    _, kind, obj = self.history[position]
                    position += 1
                    if kind == "END":
                        return await finish()
                    if kind == "CUT":
                        await write(b'{"type":"MODIFIED","obj')
                        _abort(request)
                        return response
                    data = self._entry_line(kind, obj, namespace, selector, bookmarks)
                    if data is None:
                        continue
                    if not await send_event(data):
                        return await self._fault_end(request, response, fault, data, write, finish)
                if fault is not None and fault.kind == "stall" and sent >= fault.after_events:
                    await _wait_for_disconnect(request)
                    return response
                if request.transport is None or request.transport.is_closing():
                    return response
                async with self._changed:
                    # Wake up now and then to notice a client that went away.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.05)
        except (ConnectionError, RuntimeError):
            return response  # the client went away

    def _entry_line(
        self, kind: str, obj: dict[str, Any] | None, namespace: str | None,
        selector: str | None, bookmarks: bool,
    ) -> bytes | None:
        assert obj is not None
        if kind == "BOOKMARK":
            return _event(kind, obj) if bookmarks else None
        if not self._matches(obj, namespace, selector):
            return None
        return _event(kind, obj)

    async def _fault_end(
        self, request: web.Request, response: web.StreamResponse, fault: Fault | None,
        data: bytes, write: Any, finish: Any,
    ) -> web.StreamResponse:
        assert fault is not None
        if fault.kind == "end":
            return await finish()  # type: ignore[no-any-return]
        if fault.kind == "stall":
            await _wait_for_disconnect(request)
            return response
        # "cut": half of the next event, then the connection is aborted.
        await write(data[: len(data) // 2])
        _abort(request)
        return response

    async def _log(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        key = (request.match_info["ns"], request.match_info["name"])
        script = self.logs.get(key)
        if script is None:
            return web.Response(
                status=404, body=status_body(404, "NotFound", f'pods "{key[1]}" not found'),
                content_type="application/json",
            )
        if script.status != 200:
            return web.Response(status=script.status, body=script.body,
                                content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in script.chunks:
            await response.write(chunk)
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    # Go's encoder writes "type" first and leaves non-ASCII raw; so does this.
    return b'{"type":"' + kind.encode() + b'","object":' + json.dumps(
        obj, ensure_ascii=False, separators=(",", ":")
    ).encode() + b"}\n"


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


async def _wait_for_disconnect(request: web.Request) -> None:
    # aiohttp offers no event for "the client closed the connection": poll for it.
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[WatchServer, kubeasync.Client]]:
    """A started server and a client for it (no session-level retries: the watcher's own
    backoff is what the tests look at)."""
    server = await WatchServer(**options).start()
    try:
        async with kubeasync.Client(server.config(), retry=NO_RETRY) as kube:
            yield server, kube
    finally:
        await server.close()
