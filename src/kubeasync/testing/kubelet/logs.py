"""Container logs: the book of lines, and how the kubelet's ``/containerLogs`` serves them.

The same code serves a log for the virtual kubelet and, for pods on no node, for the
embedded API server itself (lines a test appended with ``FakeApiServer.append_log``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from aiohttp import web

from ...models import parse_time

__all__ = ["LogBook", "LogQuery", "LogQueryError", "serve_log"]

Key = tuple[str, str, str]  # (namespace, pod, container)
_TRUE = ("1", "t", "T", "true", "TRUE", "True")  # Go's strconv.ParseBool


class LogBook:
    """Container logs: lines with their time, per (namespace, pod, container), for the
    current instance of each container and for the previous one (after a restart)."""

    def __init__(self) -> None:
        self._lines: dict[Key, list[tuple[datetime, str]]] = {}
        self._previous: dict[Key, list[tuple[datetime, str]]] = {}
        self._changed = asyncio.Event()

    def append(self, namespace: str, pod: str, container: str, line: str, *,
               previous: bool = False, at: datetime | None = None) -> None:
        """Add a line (or several, split on newlines); followers see it at once."""
        book = self._previous if previous else self._lines
        when = at if at is not None else datetime.now(timezone.utc)
        for part in line.split("\n"):
            book.setdefault((namespace, pod, container), []).append((when, part))
        self.notify()

    def lines(self, namespace: str, pod: str, container: str, *,
              previous: bool = False) -> list[tuple[datetime, str]]:
        book = self._previous if previous else self._lines
        return book.get((namespace, pod, container), [])

    def current(self, namespace: str, pod: str, container: str) -> list[tuple[datetime, str]]:
        """The live list of the current instance's lines (a follower keeps it: after a
        restart, new lines go to a new list)."""
        return self._lines.setdefault((namespace, pod, container), [])

    def has_previous(self, namespace: str, pod: str, container: str) -> bool:
        return (namespace, pod, container) in self._previous

    def has_any(self, namespace: str, pod: str) -> bool:
        return any(k[:2] == (namespace, pod) and lines for k, lines in self._lines.items())

    def restart(self, namespace: str, pod: str, container: str) -> None:
        """A container restarted: its log becomes the previous one, the new one is empty."""
        key = (namespace, pod, container)
        self._previous[key] = self._lines.pop(key, [])
        self.notify()

    def forget(self, namespace: str, pod: str) -> None:
        for book in (self._lines, self._previous):
            for key in [k for k in book if k[:2] == (namespace, pod)]:
                del book[key]
        self.notify()

    def notify(self) -> None:
        """Wake every follower (new lines, or a pod that may have finished)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """The event the next :meth:`notify` sets; take it before checking for news."""
        return self._changed


class LogQueryError(ValueError):
    """A query parameter of a log request that cannot be used (the server answers 400)."""


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise LogQueryError(f'{name}: Invalid value: "{value}": must be an integer') from None


@dataclass(frozen=True)
class LogQuery:
    """The options of a log request (``PodLogOptions``), parsed from its query."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: datetime | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> LogQuery:
        since_seconds = _int_param(query, "sinceSeconds")
        since_time = query.get("sinceTime")
        since: datetime | None = None
        if since_seconds is not None:
            since = datetime.now(timezone.utc) - timedelta(seconds=since_seconds)
        elif since_time:
            try:
                since = parse_time(since_time)
            except ValueError:
                raise LogQueryError(f'sinceTime: Invalid value: "{since_time}"') from None
        return cls(
            follow=query.get("follow") in _TRUE,
            previous=query.get("previous") in _TRUE,
            timestamps=query.get("timestamps") in _TRUE,
            tail_lines=_int_param(query, "tailLines"),
            limit_bytes=_int_param(query, "limitBytes"),
            since=since,
        )

    def render(self, entries: list[tuple[datetime, str]]) -> bytes:
        out = []
        for at, text in entries:
            if self.since is not None and at < self.since:
                continue
            prefix = at.strftime("%Y-%m-%dT%H:%M:%S.%f000Z ") if self.timestamps else ""
            out.append(f"{prefix}{text}\n")
        return "".join(out).encode("utf-8")


async def serve_log(request: web.Request, book: LogBook, key: Key, query: LogQuery, *,
                    ended: Callable[[], bool], stopping: asyncio.Event) -> web.StreamResponse:
    """Answer a log request from ``book``: the lines so far (``tailLines``,
    ``sinceSeconds``/``sinceTime``, ``limitBytes``, ``timestamps``), and with ``follow``
    every new line until ``ended()`` says the container is done, the client leaves or the
    server stops."""
    namespace, pod, container = key
    if query.previous:
        lines = book.lines(namespace, pod, container, previous=True)
    else:
        lines = book.current(namespace, pod, container)
    tail = query.tail_lines
    selected = lines[-tail:] if tail is not None and tail > 0 else ([] if tail == 0 else lines)
    body = query.render(list(selected))
    limit = query.limit_bytes
    if limit is not None:
        body = body[:limit]
    seen = len(lines)  # before any await: a line added meanwhile is news
    if not query.follow or query.previous:
        return web.Response(body=body, headers={"Content-Type": "text/plain"})
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    written = len(body)
    try:
        if body:
            await response.write(body)
        while limit is None or written < limit:
            changed = book.changed()
            if len(lines) > seen:
                chunk = query.render(lines[seen:])
                seen = len(lines)
                if limit is not None:
                    chunk = chunk[: limit - written]
                if chunk:
                    await response.write(chunk)
                    written += len(chunk)
                continue
            if ended() or stopping.is_set() or book.current(namespace, pod, container) is not lines:
                break  # done, or this instance of the container was replaced by a restart
            stop = asyncio.ensure_future(stopping.wait())
            waiter = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait({stop, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                waiter.cancel()
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return response
