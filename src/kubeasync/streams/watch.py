"""Watch streams and log streams.

Three layers, each usable on its own:

- **framing** (:class:`LineFramer`): a chunked body split into lines on ``b"\\n"`` with
  ``bytes.find``, across chunk boundaries, with a bound on the line length. Never aiohttp's
  ``readline()`` (it fails on long lines) and never ``str.splitlines()`` (it also splits on
  U+0085 and friends, which Go's JSON encoder leaves raw inside strings).
- :class:`WatchStream`: one watch request, decoded into typed events until the server ends
  it. Nothing is hidden: no retry, no relist, ``ERROR`` events are yielded as they come.
- :class:`Watcher`: the resilient watch behind ``api.watch()``, a state machine over list
  and watch requests that never misses or repeats a change (below).

Event decoding
--------------
An event line is ``{"type": "...", "object": {...}}`` and the type of ``object`` depends on
``type``: the resource's model for ADDED/MODIFIED/DELETED/BOOKMARK, a ``Status`` for ERROR.
Each event type is a msgspec Struct tagged by ``type`` (:class:`AddedEvent`, ...), and one
decoder per model decodes the union of them. msgspec reads the tag first, then decodes
``object`` straight into the right type: one pass over the bytes, no intermediate dict or
``msgspec.Raw`` (the API server writes ``type`` before ``object``; if a server did not,
msgspec would still decode correctly, with a little look-ahead).

The Watcher's state machine
---------------------------
The watcher keeps ``seen``: ``(namespace, name) -> (uid, resourceVersion)`` for every
object it has yielded and not yet reported deleted, and ``resource_version``: the
checkpoint up to which everything has been yielded. It keeps identities, not objects (as
client-go's reflector and kube-rs's watcher do): holding the last state of every object is
a store's job (see :mod:`kubeasync.informer`), and a watch over a large collection should
not cost a copy of it. So a DELETED synthesized after a relist, for an object whose
deletion was never seen, carries a tombstone: an object with only ``kind``, ``apiVersion``
and ``metadata`` name, namespace, uid and the last resourceVersion seen, and
``event.final_state_unknown`` is True (client-go's ``DeletedFinalStateUnknown``). ::

                     start
                       |  resource_version given?  yes --> WATCH from it
                       v  no
    +------------->  RESYNC  (INITIAL if the server streams initial events, else LIST)
    |                  |
    |   LIST:    paginated GET; every listed object is compared with ``seen``:
    |            new key -> ADDED; other resourceVersion -> MODIFIED; other uid -> DELETED
    |            (a tombstone of the old one) then ADDED; same -> nothing. After the last
    |            page every key of ``seen`` that was not listed -> DELETED (a tombstone),
    |            and resource_version := the list's resourceVersion.
    |            An expired continue token (410) restarts the list.
    |   INITIAL: a watch with ``sendInitialEvents=true``: its ADDED events are compared
    |            with ``seen`` as above, until the BOOKMARK annotated
    |            ``k8s.io/initial-events-end``, which ends the resync (unlisted keys ->
    |            DELETED, resource_version := the bookmark's) and the same connection
    |            goes on as WATCH. The resync's events are yielded once the marker has
    |            arrived, so in both modes the checkpoint is set when the resync's last
    |            event is yielded. A 400/422 answer in auto mode is remembered for the
    |            session ("unsupported") and the resync is done by LIST instead.
    |                  |
    |                  v
    |                WATCH  from resource_version, with bookmarks, ``timeoutSeconds``
    |                  |    drawn in [T, 2T), and an idle timeout on the client
    |   ADDED/MODIFIED/DELETED -> record in ``seen``, resource_version := the object's,
    |                             yield (an event identical to what was last yielded for
    |                             that object is dropped: it would be a repeat)
    |   BOOKMARK               -> resource_version := its; yielded only if asked
    |   the server ends the stream       -> WATCH again at once (after backoff if the
    |                                       stream carried no event at all)
    |   cut, idle timeout, connection error, 429, 5xx -> backoff, then the same step again
    +-- 410 Gone (an ERROR event or an HTTP answer)
        401 (after the session's one credential refresh), 403, 404, other 4xx, an
        undecodable event, a line over the size limit -> raised out of ``async for``

Batches: ``async for`` yields a resync's events as they are computed, page by page (a
caller sees the first objects before the list is complete). :meth:`Watcher.next_batch`
instead holds a resync's events back until it is complete and returns them together (an
empty list when nothing changed), and a live event alone; so a caller that applies one
batch without awaiting in between never exposes half of a resync (the informer does so).

``transform`` (optional) is applied to every object before the watcher yields it (e.g. to
drop ``managedFields`` before a store keeps it), tombstones excepted.

Backoff grows from 0.8 s to 30 s with jitter, honours ``Retry-After`` /
``retryAfterSeconds``, and starts again from the bottom once no failure happened for two
minutes (as client-go's reflector and kube-rs's watcher do).

Resource versions are opaque: they are only ever compared for equality.

Closing: every iterator here holds at most one HTTP response and closes it when it ends,
fails, is cancelled, is closed (``aclose()``, ``async with``) or is dropped (``break`` out
of ``async for api.watch(...)`` drops the iterator, which closes its connection).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import random
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, Union

import aiohttp
import msgspec

from ..core.errors import (
    ApiError,
    DecodeError,
    Gone,
    KubeError,
    RequestTimeout,
    StreamError,
    TransportError,
    error_class,
)
from ..core.request import Request, RequestBuilder
from ..core.selectors import render_field_selector, render_label_selector
from ..models import Status
from ..transport.session import GC_PAUSE_THRESHOLD, Session, decoder_for

if TYPE_CHECKING:
    from ..core.descriptor import ResourceDescriptor

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "AddedEvent",
    "Backoff",
    "BookmarkEvent",
    "DeletedEvent",
    "ErrorEvent",
    "EventType",
    "LineFramer",
    "LogStream",
    "ModifiedEvent",
    "WatchEvent",
    "WatchStream",
    "Watcher",
    "stream_lines",
]

T = TypeVar("T")

log = logging.getLogger("kubeasync.watch")

DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024
"""The longest line a stream accepts by default: twice the 16 MiB an object can reach."""

IDLE_MARGIN = 30.0
"""Seconds of silence beyond ``timeoutSeconds`` after which a watch connection is
considered stalled (the server should have ended it by then)."""

INITIAL_EVENTS_END = "k8s.io/initial-events-end"

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


# --------------------------------------------------------------------------- events


class WatchEvent(msgspec.Struct, Generic[T], tag_field="type", frozen=True, gc=False):
    """One watch event: ``event.type`` and ``event.object``.

    Each type is its own subclass (:class:`AddedEvent`, :class:`ModifiedEvent`,
    :class:`DeletedEvent`, :class:`BookmarkEvent`, :class:`ErrorEvent`), so both
    ``event.type == "ADDED"`` and ``isinstance(event, AddedEvent)`` work.

    ``object`` is the resource's model for ADDED, MODIFIED and DELETED (for DELETED, its
    last state), and for BOOKMARK an instance of the model in which only ``kind``,
    ``apiVersion`` and ``metadata.resourceVersion`` are set. ERROR events (only from
    :class:`WatchStream`) carry a :class:`~kubeasync.models.Status`.
    """

    object: T
    type: ClassVar[EventType]


class AddedEvent(WatchEvent[T], tag="ADDED", frozen=True):
    """An object was created (or, during a watcher's resync, first seen)."""

    type = "ADDED"


class ModifiedEvent(WatchEvent[T], tag="MODIFIED", frozen=True):
    """An object changed; ``object`` is its new state."""

    type = "MODIFIED"


class DeletedEvent(WatchEvent[T], tag="DELETED", frozen=True):
    """An object was deleted; ``object`` is its last state.

    ``final_state_unknown`` is True for a deletion the watcher inferred after a relist (the
    object was gone from the new list): its last state was never seen, and ``object`` is a
    tombstone holding only ``kind``, ``apiVersion`` and the ``metadata`` name, namespace,
    uid and last resourceVersion the watcher saw. Keep the objects yourself, or use an
    informer, when you need their final state.
    """

    type = "DELETED"
    final_state_unknown: bool = False


class BookmarkEvent(WatchEvent[T], tag="BOOKMARK", frozen=True):
    """The collection reached ``object.metadata.resource_version`` (nothing else is set)."""

    type = "BOOKMARK"


class ErrorEvent(WatchEvent[Status], tag="ERROR", frozen=True):
    """The server reported an error inside the stream (e.g. 410 Expired), then ended it."""

    type = "ERROR"

    def to_error(self) -> ApiError:
        """The typed :class:`~kubeasync.ApiError` this event stands for (410 -> ``Gone``)."""
        return _error_from_status(self.object)


def _error_from_status(status: Status) -> ApiError:
    code = status.code or 500
    details = status.details
    retry_after = (
        float(details.retry_after_seconds)
        if details is not None and details.retry_after_seconds is not None
        else None
    )
    return error_class(code, status.reason)(status, code=code, retry_after=retry_after)


_EVENT_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def event_decoder(model: type[T]) -> msgspec.json.Decoder[WatchEvent[T] | ErrorEvent]:
    """The shared decoder of watch event lines for a model (built once, reused)."""
    decoder = _EVENT_DECODERS.get(model)
    if decoder is None:
        obj: Any = dict[str, Any] if model is dict else model
        union = Union[  # noqa: UP007 - a runtime type expression built from a variable
            AddedEvent[obj], ModifiedEvent[obj], DeletedEvent[obj], BookmarkEvent[obj], ErrorEvent
        ]
        decoder = msgspec.json.Decoder(union)
        _EVENT_DECODERS[model] = decoder
    return decoder


# --------------------------------------------------------------------------- framing


class LineFramer:
    """Splits a stream of byte chunks into lines on ``b"\\n"``.

    Feed a chunk only after :meth:`next_line` returned ``None`` (it has consumed the one
    before). Lines come back as immutable ``bytes`` (a ``msgspec.Raw`` decoded from one
    keeps a view of it, so it must never be a reused buffer), without the newline, except
    that a chunk holding exactly one whole line is returned as it is, newline included, to
    save a copy (JSON decoders ignore the trailing whitespace; text callers strip it).
    Only a line split across chunks is copied into a reused ``bytearray``.
    """

    __slots__ = ("_chunk", "_partial", "_pos", "max_line_bytes")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = _positive_int(max_line_bytes, "max_line_bytes")
        self._chunk = b""
        self._pos = 0
        self._partial = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._chunk = chunk
        self._pos = 0

    def next_line(self) -> bytes | None:
        """The next complete line, or ``None`` when more data is needed."""
        chunk = self._chunk
        pos = self._pos
        nl = chunk.find(b"\n", pos)
        partial = self._partial
        if nl < 0:
            if pos < len(chunk):
                self._check(len(partial) + len(chunk) - pos)
                partial += memoryview(chunk)[pos:]
            self._chunk = b""
            self._pos = 0
            return None
        self._pos = nl + 1
        if partial:
            self._check(len(partial) + nl - pos)
            partial += memoryview(chunk)[pos:nl]
            line = bytes(partial)
            partial.clear()
            return line
        if nl - pos > self.max_line_bytes:
            self._check(nl - pos)
        if pos == 0 and nl == len(chunk) - 1:
            return chunk
        return chunk[pos:nl]

    def tail(self) -> bytes:
        """What is left after the last newline (call at the end of the stream)."""
        rest = bytes(self._partial) + self._chunk[self._pos :]
        self._partial.clear()
        self._chunk = b""
        self._pos = 0
        return rest

    def _check(self, size: int) -> None:
        if size > self.max_line_bytes:
            raise StreamError(
                f"a line of the stream is longer than max_line_bytes={self.max_line_bytes}"
                f" bytes (at least {size} bytes); raise max_line_bytes to accept it"
            )


def _positive_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{argument} must be an int >= 1, got {value!r}")
    return value


def _positive_float(value: object, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{argument} must be a number > 0, got {value!r}")
    return float(value)


class _ResponseStream:
    """The part every stream shares: open one response lazily, read chunks, close it.

    ``close_now()`` is synchronous so that it can run from ``__del__``: an iterator dropped
    by ``break`` closes its connection right there, not at the next garbage collection.
    """

    def __init__(
        self,
        session: Session,
        request: Request,
        *,
        read_timeout: float | None,
        retry: bool,
        max_line_bytes: int,
    ) -> None:
        self._session = session
        self.request = request
        self._read_timeout = read_timeout
        self._retry = retry
        self._lines = LineFramer(max_line_bytes)
        self._resp: aiohttp.ClientResponse | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def _open(self) -> None:
        self._resp = await self._session.open_stream(
            self.request, read_timeout=self._read_timeout, retry=self._retry
        )

    async def _read(self) -> bytes:
        """The next chunk of the body, ``b""`` at its end."""
        if self._resp is None:
            await self._open()
            assert self._resp is not None
        where = f"{self.request.method} {self.request.path}"
        try:
            return await self._resp.content.readany()
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"{where}: no data for {self._read_timeout} s: the connection stalled"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{where}: the stream was cut: {exc!r}") from None

    def close_now(self) -> None:
        self._closed = True
        resp, self._resp = self._resp, None
        if resp is not None:
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()

    async def aclose(self) -> None:
        """Close the connection (at once; nothing is drained). Safe to call twice."""
        self.close_now()

    def __del__(self) -> None:
        if getattr(self, "_resp", None) is not None:
            self.close_now()


class WatchStream(_ResponseStream, Generic[T]):
    """One raw watch request: ``async for event in stream`` until the server ends it.

    No retries, no relist: ``ERROR`` events (410 Expired included) are yielded as they
    come, and failures raise (:class:`~kubeasync.ApiError` for a non-2xx answer,
    :class:`~kubeasync.TransportError` for a cut or stalled connection,
    :class:`~kubeasync.StreamError` for a line over ``max_line_bytes``,
    :class:`~kubeasync.DecodeError` for a line that is not an event).

    Args:
        session: the session to send through.
        request: the watch request (``api.watch_stream()`` builds it).
        model: the type objects decode into.
        idle_timeout: seconds without a byte after which the connection counts as stalled
            (raises :class:`~kubeasync.RequestTimeout`); ``None`` waits forever.
        max_line_bytes: the longest event accepted.
    """

    def __init__(
        self,
        session: Session,
        request: Request,
        model: type[T],
        *,
        idle_timeout: float | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if idle_timeout is not None:
            idle_timeout = _positive_float(idle_timeout, "idle_timeout")
        super().__init__(
            session, request, read_timeout=idle_timeout, retry=False,
            max_line_bytes=max_line_bytes,
        )
        self._decode = event_decoder(model).decode
        self.events = 0
        """How many events this stream has produced."""

    def __aiter__(self) -> WatchStream[T]:
        return self

    async def __aenter__(self) -> WatchStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_now()

    async def __anext__(self) -> WatchEvent[T] | ErrorEvent:
        if self._closed:
            raise StopAsyncIteration
        lines = self._lines
        try:
            while True:
                line = lines.next_line()
                if line is None:
                    chunk = await self._read()
                    if not chunk:
                        self._end()
                    lines.feed(chunk)
                    continue
                try:
                    if len(line) < GC_PAUSE_THRESHOLD:
                        event = self._decode(line)
                    else:
                        event = _decode_paused(self._decode, line)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    if not line.strip():
                        continue  # a keep-alive blank line from a proxy
                    raise DecodeError(
                        f"{self.request.method} {self.request.path}: not a watch event: {exc}"
                    ) from None
                self.events += 1
                return event
        except BaseException:
            self.close_now()
            raise

    def _end(self) -> None:
        tail = self._lines.tail()
        self.close_now()
        if tail.strip():
            # The API server ends every event with a newline: a tail is a cut event.
            raise TransportError(
                f"{self.request.method} {self.request.path}: the stream ended in the middle"
                f" of an event ({len(tail)} bytes)"
            )
        raise StopAsyncIteration

    def __repr__(self) -> str:
        return f"<WatchStream {self.request.target}>"


def _decode_paused(decode: Callable[[bytes], Any], line: bytes) -> Any:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return decode(line)
    finally:
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------- logs


class LogStream(_ResponseStream):
    """Log lines as text, as they arrive: ``async for line in api.stream_logs(...)``.

    Lines come without their newline; invalid UTF-8 is replaced (U+FFFD), never raised; a
    last line without a newline is yielded too; the iteration ends when the server ends
    the stream (with ``follow=True``: when the container stops or the pod goes away).
    """

    def __init__(
        self,
        session: Session,
        request: Request,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        super().__init__(
            session, request, read_timeout=None, retry=True, max_line_bytes=max_line_bytes
        )

    def __aiter__(self) -> LogStream:
        return self

    async def __aenter__(self) -> LogStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close_now()

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        lines = self._lines
        try:
            while True:
                line = lines.next_line()
                if line is not None:
                    text = line.decode("utf-8", "replace")
                    return text[:-1] if text.endswith("\n") else text
                chunk = await self._read()
                if not chunk:
                    tail = lines.tail()
                    self.close_now()
                    if tail:
                        return tail.decode("utf-8", "replace")
                    raise StopAsyncIteration
                lines.feed(chunk)
        except BaseException:
            self.close_now()
            raise

    def __repr__(self) -> str:
        return f"<LogStream {self.request.target}>"


def stream_lines(
    session: Session, request: Request, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> LogStream:
    """The lines of a streamed text answer (pod logs)."""
    return LogStream(session, request, max_line_bytes=max_line_bytes)


# --------------------------------------------------------------------------- backoff


@dataclass(frozen=True)
class Backoff:
    """How long the :class:`Watcher` waits before trying again after a failure.

    The n-th consecutive failure waits ``min(maximum, initial * factor**n)`` stretched by a
    random factor in ``[1, 1 + jitter]`` (capped at ``maximum``), so that many clients cut
    off at once do not come back at once. A server's ``Retry-After`` (or
    ``retryAfterSeconds``) is used as given instead. The count starts again from zero once
    ``reset_after`` seconds passed without a failure.
    """

    initial: float = 0.8
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    reset_after: float = 120.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "reset_after"):
            _positive_float(getattr(self, name), name)
        if not isinstance(self.factor, (int, float)) or self.factor < 1:
            raise ValueError(f"factor must be a number >= 1, got {self.factor!r}")
        if not isinstance(self.jitter, (int, float)) or self.jitter < 0:
            raise ValueError(f"jitter must be a number >= 0, got {self.jitter!r}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum ({self.maximum}) must be >= initial ({self.initial})")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return min(self.maximum, base * (1 + self.jitter * random.random()))


# --------------------------------------------------------------------------- watcher

# What the watcher is doing; see the module docstring for the transitions.
_LIST = "LIST"
_INITIAL = "INITIAL"
_WATCH = "WATCH"
_CLOSED = "CLOSED"

# Answers to a sendInitialEvents watch meaning "this server does not know that option".
_UNSUPPORTED_CODES = frozenset({400, 422})

# Per session: whether its server streams initial events (absent: not tried yet).
_INITIAL_EVENTS_SUPPORT: weakref.WeakKeyDictionary[Session, bool] = weakref.WeakKeyDictionary()

_Identity = tuple[tuple[str, str], str | None, str | None]


@dataclass
class WatcherStats:
    """What a :class:`Watcher` has been through: for metrics, logs and tests. The counters
    only grow; read them at any time.

    Attributes:
        watches: watch requests opened; every reconnection is one more.
        resyncs: times the whole state was fetched (by a list or by initial events), the
            first one included.
        resync_events: the events resyncs produced for a caller that had already seen the
            state: the changes it missed while away (ADDED, MODIFIED and DELETED).
        inferred_deletions: of those, the DELETED events with ``final_state_unknown``.
        failures: the failures survived, by exception class name (``Gone`` for an expired
            resourceVersion or continue token, ``TooManyRequests``, ``ServiceUnavailable``,
            ``RequestTimeout`` for a stalled connection, ``TransportError`` for a lost
            one, ...).
    """

    watches: int = 0
    resyncs: int = 0
    resync_events: int = 0
    inferred_deletions: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)


def _struct_identity(obj: Any) -> _Identity:
    meta = obj.metadata
    if meta is None:
        return ("", ""), None, None
    return (meta.namespace or "", meta.name or ""), meta.uid, meta.resource_version


def _dict_identity(obj: Any) -> _Identity:
    meta = obj.get("metadata") or {}
    return (
        (meta.get("namespace") or "", meta.get("name") or ""),
        meta.get("uid"),
        meta.get("resourceVersion"),
    )


def _bookmark_version(obj: Any) -> tuple[str | None, bool]:
    """A bookmark's resourceVersion, and whether it ends the initial events."""
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        rv, annotations = meta.get("resourceVersion"), meta.get("annotations") or {}
    else:
        meta = obj.metadata
        if meta is None:
            return None, False
        rv, annotations = meta.resource_version, meta.annotations or {}
    return rv, annotations.get(INITIAL_EVENTS_END) == "true"


def _list_parts(page: Any) -> tuple[list[Any], str | None, str | None]:
    """A list page's items, continue token and resourceVersion."""
    if isinstance(page, dict):
        meta = page.get("metadata") or {}
        return (
            list(page.get("items") or []),
            meta.get("continue") or None,
            meta.get("resourceVersion") or None,
        )
    meta = page.metadata
    if meta is None:
        return list(page.items or []), None, None
    return list(page.items or []), meta.continue_ or None, meta.resource_version or None


class Watcher(Generic[T]):
    """The resilient watch: ``async for event in api.watch(...)`` (see the module docstring).

    It first yields ADDED for every existing object (the initial state), then every
    change as it happens. Across disconnects, stalls and expired resourceVersions the
    caller's view (the events applied in order) converges to the server's with no change
    missed and none repeated. Use it as ``async with api.watch(...) as events:`` or call
    :meth:`aclose` to close its connection deterministically.

    Attributes:
        resource_version: the checkpoint: every change up to it has been yielded. Save it
            and resume with ``api.watch(resource_version=saved)``. ``None`` until the
            initial state has been yielded.
        stats: a :class:`WatcherStats`: reconnections, resyncs and the failures survived.
    """

    def __init__(
        self,
        session: Session,
        descriptor: ResourceDescriptor[T, Any],
        *,
        namespace: str | None = None,
        label_selector: object = None,
        field_selector: object = None,
        resource_version: str | None = None,
        send_initial_events: bool | None = None,
        bookmarks: bool = False,
        timeout_seconds: int = 300,
        idle_timeout: float | None = None,
        page_size: int = 500,
        backoff: Backoff | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        transform: Callable[[T], T] | None = None,
    ) -> None:
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be a callable or None, got {transform!r}")
        if resource_version is not None and (
            not isinstance(resource_version, str) or not resource_version
        ):
            raise ValueError(
                f"resource_version must be a non-empty str (they are opaque), got {resource_version!r}"
            )
        if send_initial_events not in (None, True, False):
            raise ValueError(
                "send_initial_events must be None (auto), True or False,"
                f" got {send_initial_events!r}"
            )
        if not isinstance(bookmarks, bool):
            raise ValueError(f"bookmarks must be a bool, got {bookmarks!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise ValueError(f"backoff must be a kubeasync.watch.Backoff, got {backoff!r}")
        self.timeout_seconds = _positive_int(timeout_seconds, "timeout_seconds")
        self.idle_timeout = (
            _positive_float(idle_timeout, "idle_timeout") if idle_timeout is not None else None
        )
        self.page_size = _positive_int(page_size, "page_size")
        self.max_line_bytes = _positive_int(max_line_bytes, "max_line_bytes")
        self.label_selector = (
            render_label_selector(label_selector) or None if label_selector is not None else None
        )
        self.field_selector = (
            render_field_selector(field_selector) or None if field_selector is not None else None
        )
        self.backoff = backoff if backoff is not None else Backoff()
        self.transform = transform
        self.bookmarks = bookmarks
        self.send_initial_events = send_initial_events
        self.namespace = namespace
        self.descriptor = descriptor
        self._session = session
        self._requests = RequestBuilder(descriptor)
        self._requests.watch(namespace)  # raises ValueError now if the scope is wrong
        self._list_decoder = decoder_for(descriptor.list_model)
        self._object_decoder = decoder_for(descriptor.model)
        self._identity = _dict_identity if descriptor.model is dict else _struct_identity

        self.resource_version = resource_version
        self.stats = WatcherStats()
        # After the first sync (or from a given resourceVersion) the caller holds a view,
        # and what a resync yields is what it missed.
        self._caller_has_view = resource_version is not None
        self._seen: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self._pending: collections.deque[WatchEvent[T]] = collections.deque()
        self._version_when_drained: str | None = None
        self._state = _WATCH if resource_version is not None else self._resync_state()
        self._stream: WatchStream[T] | None = None
        self._continue: str | None = None
        self._listed: set[tuple[str, str]] = set()
        self._delay = 0.0
        self._attempt = 0
        self._last_failure = -float("inf")
        # next_batch(): hold a resync's events until it is complete; set when it is.
        self._batching = False
        self._resynced = False

    # ------------------------------------------------------------ iteration

    def __aiter__(self) -> Watcher[T]:
        return self

    async def __aenter__(self) -> Watcher[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop watching and close the connection at once. Safe to call twice."""
        self._close_now()

    def _close_now(self) -> None:
        self._state = _CLOSED
        self._pending.clear()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close_now()

    def __del__(self) -> None:
        if getattr(self, "_stream", None) is not None:
            self._close_now()

    @property
    def closed(self) -> bool:
        return self._state is _CLOSED

    async def __anext__(self) -> WatchEvent[T]:
        try:
            while True:
                if self._pending:
                    return self._pop_pending()
                stream = self._stream
                if stream is not None and self._state is _WATCH:
                    # The hot path: one decoded event in, at most one event out.
                    try:
                        event = await stream.__anext__()
                    except StopAsyncIteration:
                        self._stream_ended(stream)
                        continue
                    except KubeError as exc:
                        self._failed(exc)
                        continue
                    out = self._on_watch_event(event)
                    if out is not None:
                        return out
                    continue
                if self._state is _CLOSED:
                    raise StopAsyncIteration
                await self._step()
        except BaseException:
            self._close_now()
            raise

    async def next_batch(self) -> list[WatchEvent[T]]:
        """The next changes that belong together, for a caller that must apply a resync
        as one step: every event of a resync (the initial state, or the difference found
        by a relist after 410) at once, possibly none when nothing changed, or one event
        from the watch. ``resource_version`` is the batch's checkpoint when it returns.

        Raises ``StopAsyncIteration`` once closed, and what ``async for`` would raise.
        Use either this or ``async for`` on one watcher, not both.
        """
        self._batching = True
        try:
            while True:
                if self._resynced:
                    self._resynced = False
                    batch = list(self._pending)
                    self._pending.clear()
                    if self._version_when_drained is not None:
                        self.resource_version = self._version_when_drained
                        self._version_when_drained = None
                    return batch
                stream = self._stream
                if stream is not None and self._state is _WATCH:
                    try:
                        event = await stream.__anext__()
                    except StopAsyncIteration:
                        self._stream_ended(stream)
                        continue
                    except KubeError as exc:
                        self._failed(exc)
                        continue
                    out = self._on_watch_event(event)
                    if out is not None:
                        return [out]
                    continue
                if self._state is _CLOSED:
                    raise StopAsyncIteration
                await self._step()
        except BaseException:
            self._close_now()
            raise

    def _pop_pending(self) -> WatchEvent[T]:
        event = self._pending.popleft()
        if not self._pending and self._version_when_drained is not None:
            self.resource_version = self._version_when_drained
            self._version_when_drained = None
        return event

    # ------------------------------------------------------------ transitions

    def _resync_state(self) -> str:
        if self.send_initial_events is False:
            return _LIST
        if self.send_initial_events is None and _INITIAL_EVENTS_SUPPORT.get(self._session) is False:
            return _LIST
        return _INITIAL

    def _start_resync(self) -> None:
        """Forget the expired resourceVersion's connection and resync from scratch."""
        self._drop_stream()
        self._state = self._resync_state()
        self._continue = None
        self._listed = set()

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close_now()

    def _failed(self, exc: BaseException) -> None:
        """Decide what a failure means: resync, retry after backoff, or raise it."""
        self._drop_stream()
        self.stats.failures[type(exc).__name__] += 1
        retry_after: float | None = None
        if isinstance(exc, Gone):
            # Resync, but through the backoff as any failure: a server answering 410 to
            # every watch must not make us list in a tight loop (client-go does the same).
            log.debug("%s: resourceVersion expired (%s); resyncing", self, exc)
            self._start_resync()
        elif isinstance(exc, ApiError):
            if (
                self._state is _INITIAL
                and exc.code in _UNSUPPORTED_CODES
                and self.send_initial_events is None
            ):
                log.debug("%s: the server does not stream initial events (%s); listing",
                          self, exc)
                _INITIAL_EVENTS_SUPPORT[self._session] = False
                self._start_resync()
                return
            if exc.code != 429 and exc.code < 500:
                raise exc
            retry_after = exc.retry_after
        elif not isinstance(exc, TransportError):
            raise exc  # undecodable data or a line over the limit: retrying cannot help
        now = time.monotonic()
        if now - self._last_failure >= self.backoff.reset_after:
            self._attempt = 0
        self._last_failure = now
        self._delay = self.backoff.delay(self._attempt, retry_after)
        self._attempt += 1
        log.debug("%s: %s; trying again in %.2f s", self, exc, self._delay)

    def _stream_ended(self, stream: WatchStream[T]) -> None:
        self._stream = None
        if stream.events == 0:
            # A server (or a proxy) closing at once would otherwise make us spin.
            self._failed(TransportError(f"{stream.request.path}: the watch ended empty"))

    async def _step(self) -> None:
        """Make progress in a state without a running watch: wait, then list or connect."""
        if self._delay:
            delay, self._delay = self._delay, 0.0
            await asyncio.sleep(delay)
        try:
            if self._state is _LIST:
                await self._list_page()
            elif self._stream is None:
                self._stream = self._open_watch()
                if self._state is _INITIAL:
                    await self._initial_events(self._stream)
            else:
                await self._initial_events(self._stream)
        except KubeError as exc:
            self._failed(exc)

    def _open_watch(self) -> WatchStream[T]:
        self.stats.watches += 1
        initial = self._state is _INITIAL
        if initial:
            # A new attempt at the initial events: only what it streams counts as listed.
            self._listed = set()
        # Spread the reconnections of many watchers over time, as client-go does.
        server_timeout = random.randint(self.timeout_seconds, 2 * self.timeout_seconds - 1)
        request = self._requests.watch(
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=None if initial else self.resource_version,
            resource_version_match="NotOlderThan" if initial else None,
            timeout_seconds=server_timeout,
            allow_bookmarks=True,
            send_initial_events=initial,
        )
        idle = self.idle_timeout if self.idle_timeout is not None else server_timeout + IDLE_MARGIN
        return WatchStream(
            self._session, request, self.descriptor.model,
            idle_timeout=idle, max_line_bytes=self.max_line_bytes,
        )

    # ------------------------------------------------------------ resync

    def _reconcile(self, obj: T) -> None:
        """Compare one object of the server's current state with what was yielded."""
        key, uid, rv = self._identity(obj)
        if self.transform is not None:
            obj = self.transform(obj)
        self._listed.add(key)
        seen = self._seen
        previous = seen.get(key)
        seen[key] = (uid, rv)
        pending = self._pending
        before = len(pending)
        if previous is None:
            pending.append(AddedEvent(obj))
        elif previous[0] != uid:
            pending.append(self._tombstone(key, *previous))
            pending.append(AddedEvent(obj))
        elif previous[1] != rv:
            pending.append(ModifiedEvent(obj))
        if self._caller_has_view:
            self.stats.resync_events += len(pending) - before

    def _tombstone(self, key: tuple[str, str], uid: str | None, rv: str | None
                   ) -> DeletedEvent[T]:
        """A DELETED event for an object whose deletion was inferred, not seen."""
        namespace, name = key
        metadata = {"name": name, "namespace": namespace or None, "uid": uid,
                    "resourceVersion": rv}
        body = {"kind": self.descriptor.kind, "apiVersion": self.descriptor.api_version,
                "metadata": {k: v for k, v in metadata.items() if v is not None}}
        obj = self._object_decoder.decode(msgspec.json.encode(body))
        self.stats.inferred_deletions += 1
        return DeletedEvent(obj, final_state_unknown=True)

    def _finish_resync(self, resource_version: str | None) -> None:
        """Report what disappeared while away; the resync's version becomes the checkpoint."""
        listed = self._listed
        vanished = [key for key in self._seen if key not in listed]
        for key in vanished:
            uid, rv = self._seen.pop(key)
            self._pending.append(self._tombstone(key, uid, rv))
        if self._caller_has_view:
            self.stats.resync_events += len(vanished)
        self._caller_has_view = True
        self.stats.resyncs += 1
        self._listed = set()
        self._state = _WATCH
        self._resynced = True
        if self._pending:
            self._version_when_drained = resource_version
        else:
            self.resource_version = resource_version

    async def _list_page(self) -> None:
        request = self._requests.list(
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            limit=self.page_size,
            continue_=self._continue,
        )
        try:
            page = await self._session.request(request, self._list_decoder)
        except Gone:
            if self._continue is None:
                raise
            log.debug("%s: the list's continue token expired; listing again", self)
            self.stats.failures["Gone"] += 1
            self._start_resync()
            return
        items, self._continue, list_version = _list_parts(page)
        for item in items:
            self._reconcile(item)
        if self._continue is None:
            self._finish_resync(list_version)

    async def _initial_events(self, stream: WatchStream[T]) -> None:
        """Read the initial events of a ``sendInitialEvents`` watch up to the end marker.

        They are held back a page (``page_size`` events) at a time, and the last page until
        the marker, as a list's pages are: memory stays bounded, and ``resource_version`` is
        the checkpoint as soon as the resync's last event has been yielded. For next_batch()
        they are all held until the marker.
        """
        while self._batching or len(self._pending) < self.page_size:
            try:
                event = await stream.__anext__()
            except StopAsyncIteration:
                self._stream_ended(stream)
                return
            _INITIAL_EVENTS_SUPPORT[self._session] = True
            if type(event) is AddedEvent:
                self._reconcile(event.object)
            elif type(event) is BookmarkEvent:
                version, end = _bookmark_version(event.object)
                if end:
                    self._finish_resync(version)
                    return
            elif type(event) is ErrorEvent:
                raise event.to_error()
            else:
                # MODIFIED/DELETED before the end marker: this server ignored
                # sendInitialEvents (it would never send the marker). Resync by listing.
                if self.send_initial_events:
                    raise StreamError(
                        f"{stream.request.path}: the server ignored sendInitialEvents=true"
                        f" (a {event.type} event came before the initial-events-end bookmark);"
                        " use send_initial_events=None or False"
                    )
                _INITIAL_EVENTS_SUPPORT[self._session] = False
                self._start_resync()
                return

    # ------------------------------------------------------------ watching

    def _on_watch_event(self, event: WatchEvent[T] | ErrorEvent) -> WatchEvent[T] | None:
        cls = type(event)
        if cls is BookmarkEvent:
            version, _ = _bookmark_version(event.object)
            if version:
                self.resource_version = version
            return event if self.bookmarks else None  # type: ignore[return-value]
        if cls is ErrorEvent:
            assert isinstance(event, ErrorEvent)
            self._failed(event.to_error())
            return None
        obj: T = event.object  # type: ignore[assignment]
        key, uid, rv = self._identity(obj)
        seen = self._seen
        if cls is DeletedEvent:
            seen.pop(key, None)
        else:
            previous = seen.get(key)
            if rv is not None and previous is not None and previous[1] == rv \
                    and previous[0] == uid:
                return None  # exactly what was yielded last for this object: a repeat
        if self.transform is not None:
            obj = self.transform(obj)
            event = cls(obj)  # type: ignore[arg-type]
        if cls is not DeletedEvent:
            seen[key] = (uid, rv)
        if rv:
            self.resource_version = rv
        return event  # type: ignore[return-value]

    def __repr__(self) -> str:
        scope = f"namespace={self.namespace!r}" if self.namespace else "all namespaces"
        return (
            f"<Watcher {self.descriptor.plural} {scope} state={self._state}"
            f" resource_version={self.resource_version!r}>"
        )
