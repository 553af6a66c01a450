"""The resilient watch behind ``api.watch()``: a state machine over list and watch requests.

The watcher keeps ``seen``: ``(namespace, name) -> (uid, resourceVersion)`` for every
object it has yielded and not yet reported deleted, and ``resource_version``: the
checkpoint up to which everything has been yielded. It keeps identities, not objects (as
client-go's reflector and kube-rs's watcher do): holding the last state of every object is
a store's job (see :mod:`kubeasync.runtime.informer`), and a watch over a large collection
should not cost a copy of it. So a DELETED synthesized after a relist, for an object whose
deletion was never seen, carries a tombstone: an object with only ``kind``, ``apiVersion``
and ``metadata`` name, namespace, uid and the last resourceVersion seen, and
``event.final_state_unknown`` is True (client-go's ``DeletedFinalStateUnknown``).

States and transitions
----------------------
Each state is a small type holding only its own data, and :meth:`Watcher._step` is the one
function that takes a state and returns what it produced and the next state. ::

                     start
                       |  resource_version given?  yes --> Watching from it
                       v  no
    +------------->  resync: InitialEvents if the server streams initial events, else Listing
    |                  |
    |   Listing:       one page of a paginated GET (its continue token is the state's data);
    |                  every listed object is compared with ``seen``: new key -> ADDED; other
    |                  resourceVersion -> MODIFIED; other uid -> DELETED (a tombstone of the
    |                  old one) then ADDED; same -> nothing. After the last page every key of
    |                  ``seen`` that was not listed -> DELETED (a tombstone), and the
    |                  checkpoint is the list's resourceVersion. An expired continue token
    |                  (410) restarts the resync after a backoff; a token that repeats is a
    |                  server fault, handled the same way.
    |   InitialEvents: a watch with ``sendInitialEvents=true``; its ADDED events are compared
    |                  with ``seen`` as above, until the BOOKMARK annotated
    |                  ``k8s.io/initial-events-end``, which ends the resync (unlisted keys ->
    |                  DELETED, checkpoint := the bookmark's) and the same connection goes
    |                  on as Watching. A 400/422 answer in auto mode is remembered for the
    |                  client ("unsupported") and the resync is done by Listing instead.
    |                  |
    |                  v
    |                Watching  from the checkpoint, with bookmarks, ``timeoutSeconds`` drawn
    |                  |       in [T, 2T), and an idle timeout on the client
    |   ADDED/MODIFIED/DELETED -> record in ``seen``, checkpoint := the object's, yield (an
    |                             event identical to what was last yielded for that object,
    |                             or a DELETED of an object already gone, is a repeat: dropped)
    |   BOOKMARK               -> checkpoint := its; yielded only if asked
    |   the server ends the stream  -> Watching again at once if the stream made progress
    |                                  (a new event or checkpoint), else after Waiting
    |   cut, idle timeout, connection error, 429, 5xx -> Waiting, then the same state again
    +-- 410 Gone (an ERROR event or an HTTP answer) -> Waiting, then a resync
        Waiting: until its deadline (the backoff's delay, or the server's Retry-After up
                 to the backoff's maximum), then on to the state it holds.
        401 (after the session's one credential refresh), 403, 404, other 4xx, an
        undecodable event, a line over the size limit -> raised out of ``async for``
        Closed: the watcher was closed, or its client was: the iteration ends.

The backoff grows from 0.8 s to 30 s with jitter, and starts again from the bottom as soon
as a watch makes progress (a new event, a new checkpoint) or after ``reset_after`` seconds
without a failure. Bytes that arrive without progress (a repeated event, the same bookmark)
do not reset it, nor does a resync (a server that lists fine and then fails every watch
with 410 is listed less and less often), so a server that answers every request with
nothing new is asked less and less often.

Handing out events
------------------
``async for`` yields a resync's events as they are computed, page by page (a caller sees
the first objects before the list is complete). :meth:`Watcher.next_batch` instead holds a
resync's events until it is complete and returns them together (an empty list when nothing
changed), and a live event alone; so a caller that applies one batch without awaiting in
between never exposes half of a resync (the informer does so). The two differ only in
that: both run the same :meth:`Watcher._step`. In both, ``resource_version`` becomes a
resync's checkpoint when its last event has been handed out.

``transform`` (optional) is applied to every object before the watcher yields it (e.g. to
drop ``managedFields`` before a store keeps it), tombstones excepted.

Resource versions are opaque: they are only ever compared for equality.

Closing: the watcher holds at most one HTTP response and closes it when it ends, fails, is
cancelled, is closed (``aclose()``, ``async with``) or is dropped (``break`` out of
``async for api.watch(...)`` drops the iterator, which closes its connection).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NamedTuple, TypeVar, Union

import msgspec

from ..core.codec import decoder_for
from ..core.descriptor import ResourceDescriptor
from ..core.errors import ApiError, Gone, KubeError, StreamError, TransportError
from ..core.objects import Key, accessor_for
from ..core.params import WatcherConfig
from ..core.request import RequestBuilder
from ..streams.events import (
    AddedEvent,
    BookmarkEvent,
    DeletedEvent,
    ErrorEvent,
    Event,
    ModifiedEvent,
)
from ..streams.watch_stream import WatchStream
from ..transport.policy import Session

__all__ = ["IDLE_MARGIN", "ServerFeatures", "Watcher", "WatcherStats"]

T = TypeVar("T")

log = logging.getLogger("kubeasync.watch")

IDLE_MARGIN = 30.0
"""Seconds of silence beyond ``timeoutSeconds`` after which a watch connection is
considered stalled (the server should have ended it by then)."""

# Answers to a sendInitialEvents watch meaning "this server does not know that option".
_UNSUPPORTED_CODES = frozenset({400, 422})


class ServerFeatures:
    """What one client learned about its server, shared by its watchers.

    Attributes:
        initial_events: whether the server streams initial events (``sendInitialEvents``):
            ``None`` until a watcher tried.
    """

    __slots__ = ("initial_events",)

    def __init__(self) -> None:
        self.initial_events: bool | None = None


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
            resourceVersion or continue token, ``TooManyRequests``, ``ServerError`` for a
            5xx, ``RequestTimeout`` for a stalled connection, ``TransportError`` for a lost
            one, ...).
        throttled: waits whose length the server set (``Retry-After``), capped at the
            backoff's maximum.
    """

    watches: int = 0
    resyncs: int = 0
    resync_events: int = 0
    inferred_deletions: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    throttled: int = 0


# --------------------------------------------------------------------------- states


@dataclass(slots=True)
class Listing:
    """Resync by a paginated list: the next page's continue token, the keys listed so far."""

    continue_: str | None = None
    listed: set[Key] = field(default_factory=set)


@dataclass(slots=True)
class InitialEvents(Generic[T]):
    """Resync by a ``sendInitialEvents`` watch, up to its end marker."""

    stream: WatchStream[T] | None = None
    listed: set[Key] = field(default_factory=set)


@dataclass(slots=True)
class Watching(Generic[T]):
    """Following changes from the checkpoint (``stream`` is opened on the first step)."""

    stream: WatchStream[T] | None = None
    progressed: bool = False


@dataclass(slots=True)
class Waiting:
    """Waiting after a failure until ``until`` (monotonic seconds), then ``then``."""

    until: float
    then: Listing | InitialEvents[Any] | Watching[Any]


class Closed:
    """Closed: nothing more comes."""

    __slots__ = ()


CLOSED = Closed()

State = Union[Listing, InitialEvents[T], Watching[T], Waiting, Closed]  # noqa: UP007


class Progress(NamedTuple, Generic[T]):
    """What one step produced.

    ``events`` are handed out in order; once the last is, ``checkpoint`` (when set) becomes
    the watcher's ``resource_version``. ``resync`` says whether the events are part of a
    resync (``"part"``), complete one (``"done"``), or are live (``None``).
    """

    events: Sequence[Event[T]]
    checkpoint: str | None = None
    resync: Literal["part", "done"] | None = None


_NOTHING: Progress[Any] = Progress(())


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
        namespace: str | None,
        config: WatcherConfig[T],
        *,
        resource_version: str | None = None,
        features: ServerFeatures | None = None,
    ) -> None:
        if resource_version is not None and (
            not isinstance(resource_version, str) or not resource_version
        ):
            raise ValueError(
                f"resource_version must be a non-empty str (they are opaque), got {resource_version!r}"
            )
        if not isinstance(config, WatcherConfig):
            raise ValueError(f"config must be a WatcherConfig, got {config!r}")
        self.descriptor = descriptor
        self.namespace = namespace
        self.config = config
        self._session = session
        self._features = features if features is not None else ServerFeatures()
        self._requests = RequestBuilder(descriptor)
        self._requests.collection_path(namespace, all_namespaces_ok=True)  # checks the scope
        self._list_decoder = decoder_for(descriptor.list_model)
        self._object_decoder = decoder_for(descriptor.model)
        self._access = accessor_for(descriptor.model)

        self.resource_version = resource_version
        self.stats = WatcherStats()
        # After the first sync (or from a given resourceVersion) the caller holds a view,
        # and what a resync yields is what it missed.
        self._caller_has_view = resource_version is not None
        # Whether seen holds every object the caller knows (after a resync): only then is
        # a DELETED of an unknown key a repeat.
        self._seen_complete = False
        self._seen: dict[Key, tuple[str | None, str | None]] = {}
        self._state: State[T] = Watching() if resource_version is not None else self._resync()
        self._pending: collections.deque[Event[T]] = collections.deque()
        self._checkpoint_when_drained: str | None = None
        self._attempt = 0
        self._last_failure = -float("inf")

    # ------------------------------------------------------------ handing out

    def __aiter__(self) -> Watcher[T]:
        return self

    async def __aenter__(self) -> Watcher[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def __anext__(self) -> Event[T]:
        pending = self._pending
        try:
            while not pending:
                progress, self._state = await self._step(self._state)
                events = progress.events
                if not events:
                    if progress.checkpoint is not None:
                        self.resource_version = progress.checkpoint
                elif len(events) == 1 and progress.resync is None:
                    # The hot path: one live event, handed out at once.
                    if progress.checkpoint is not None:
                        self.resource_version = progress.checkpoint
                    return events[0]
                else:
                    pending.extend(events)
                    if progress.checkpoint is not None:
                        self._checkpoint_when_drained = progress.checkpoint
        except BaseException:
            self._close_now()
            raise
        event = pending.popleft()
        if not pending and self._checkpoint_when_drained is not None:
            self.resource_version = self._checkpoint_when_drained
            self._checkpoint_when_drained = None
        return event

    async def next_batch(self) -> list[Event[T]]:
        """The next changes that belong together, for a caller that must apply a resync
        as one step: every event of a resync (the initial state, or the difference found
        by a relist after 410) at once, possibly none when nothing changed, or one event
        from the watch. ``resource_version`` is the batch's checkpoint when it returns.

        Raises ``StopAsyncIteration`` once closed, and what ``async for`` would raise.
        Use either this or ``async for`` on one watcher, not both.
        """
        batch: list[Event[T]] = []
        try:
            while True:
                progress, self._state = await self._step(self._state)
                batch.extend(progress.events)
                if progress.resync == "part":
                    continue
                if progress.checkpoint is not None:
                    self.resource_version = progress.checkpoint
                if progress.resync == "done" or batch:
                    return batch
        except BaseException:
            self._close_now()
            raise

    async def aclose(self) -> None:
        """Stop watching and close the connection at once. Safe to call twice."""
        self._close_now()

    def _close_now(self) -> None:
        state, self._state = self._state, CLOSED
        self._pending.clear()
        _close_stream(state)

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None:
            _close_stream(self._state)

    @property
    def closed(self) -> bool:
        return self._state is CLOSED

    @property
    def state(self) -> str:
        """The name of the current state (``"Listing"``, ``"Watching"``, ...)."""
        return type(self._state).__name__

    # ------------------------------------------------------------ the transitions

    async def _step(self, state: State[T]) -> tuple[Progress[T], State[T]]:
        """One step of the state machine: what ``state`` produces, and the next state."""
        if self._session.closed:
            _close_stream(state)
            state = CLOSED
        try:
            if type(state) is Watching:
                return await self._watching(state)
            if type(state) is Listing:
                return await self._listing(state)
            if type(state) is InitialEvents:
                return await self._initial_events(state)
            if type(state) is Waiting:
                await asyncio.sleep(max(0.0, state.until - time.monotonic()))
                return _NOTHING, state.then
            raise StopAsyncIteration
        except KubeError as exc:
            _close_stream(state)
            if self._session.closed:
                return _NOTHING, CLOSED
            return _NOTHING, self._after_failure(exc, state)

    def _resync(self) -> Listing | InitialEvents[T]:
        """The resync state: streamed initial events where they work, else a list."""
        wanted = self.config.send_initial_events
        if wanted is False or (wanted is None and self._features.initial_events is False):
            return Listing()
        return InitialEvents()

    def _after_failure(self, exc: KubeError, state: State[T]) -> State[T]:
        """Where a failure in ``state`` leads: a resync or the same state after a
        backoff, or (raised) nowhere, when retrying cannot help."""
        self.stats.failures[type(exc).__name__] += 1
        retry_after: float | None = None
        resume: Listing | InitialEvents[T] | Watching[T]
        if isinstance(exc, Gone):
            # Resync, but through the backoff as any failure: a server answering 410 to
            # every watch (or every continue token) must not make us list in a tight loop.
            log.debug("%r: resourceVersion expired (%s); resyncing", self, exc)
            resume = self._resync()
        elif isinstance(exc, ApiError):
            if (type(state) is InitialEvents and exc.code in _UNSUPPORTED_CODES
                    and self.config.send_initial_events is None):
                log.debug("%r: the server does not stream initial events (%s); listing",
                          self, exc)
                self._features.initial_events = False
                return Listing()
            if exc.code != 429 and exc.code < 500:
                raise exc
            retry_after = exc.retry_after
            resume = _fresh(state)
        elif isinstance(exc, TransportError) and exc.retryable:
            resume = _fresh(state)
        else:
            raise exc  # undecodable data, a line over the limit: retrying cannot help
        if retry_after is not None:
            self.stats.throttled += 1
        backoff = self.config.backoff
        now = time.monotonic()
        if now - self._last_failure >= backoff.reset_after:
            self._attempt = 0
        self._last_failure = now
        delay = backoff.delay(self._attempt, retry_after)
        self._attempt += 1
        log.debug("%r: %s; trying again in %.2f s", self, exc, delay)
        return Waiting(now + delay, resume)

    def _made_progress(self) -> None:
        self._attempt = 0

    # Watching ------------------------------------------------------------

    async def _watching(self, state: Watching[T]) -> tuple[Progress[T], State[T]]:
        stream = state.stream
        if stream is None:
            stream = state.stream = self._open_watch(initial=False)
        try:
            event = await stream.__anext__()
        except StopAsyncIteration:
            if state.progressed:
                return _NOTHING, Watching()
            # Nothing new in the whole stream: a server (or proxy) that ends every watch
            # at once, or with one already-seen event, must not make us spin.
            raise TransportError(f"{stream.request.path}: the watch ended with no progress"
                                 ) from None
        if type(event) is BookmarkEvent:
            version, _ = self._access.bookmark(event.object)
            if version and version != self.resource_version:
                state.progressed = True
                self._made_progress()
            return Progress((event,) if self.config.bookmarks else (), version or None), state
        if type(event) is ErrorEvent:
            raise event.to_error()
        live = self._live(event)  # type: ignore[arg-type]
        if live is None:
            return _NOTHING, state
        state.progressed = True
        self._made_progress()
        return live, state

    def _live(self, event: AddedEvent[T] | ModifiedEvent[T] | DeletedEvent[T]) -> Progress[T] | None:
        """A watch event as the caller gets it, or ``None`` when it is a repeat."""
        obj = event.object
        key, uid, rv = self._access.identity(obj)
        seen = self._seen
        previous = seen.get(key)
        cls = type(event)
        if cls is DeletedEvent:
            if previous is None and self._seen_complete:
                return None  # it was already reported deleted
            seen.pop(key, None)
        else:
            if rv is not None and previous is not None and previous == (uid, rv):
                return None  # exactly what was yielded last for this object
            seen[key] = (uid, rv)
        transform = self.config.transform
        if transform is not None:
            event = cls(transform(obj))
        return Progress((event,), rv or None)

    def _open_watch(self, *, initial: bool) -> WatchStream[T]:
        self.stats.watches += 1
        config = self.config
        # Spread the reconnections of many watchers over time, as client-go does.
        server_timeout = random.randint(config.timeout_seconds, 2 * config.timeout_seconds - 1)
        params = config.watch_params(self.resource_version, server_timeout, initial_events=initial)
        request = self._requests.watch(self.namespace, params)
        idle = config.idle_timeout if config.idle_timeout is not None else server_timeout + IDLE_MARGIN
        return WatchStream(self._session, request, self.descriptor.model,
                           idle_timeout=idle, max_line_bytes=config.max_line_bytes)

    # Resync by Listing ------------------------------------------------------

    async def _listing(self, state: Listing) -> tuple[Progress[T], State[T]]:
        request = self._requests.list(self.namespace, self.config.list_params(state.continue_))
        page = await self._session.request(request, self._list_decoder)
        items, token, list_version = self._access.list_parts(page)
        if token is not None and token == state.continue_:
            raise TransportError(
                f"{request.path}: the server answered the continue token it was sent;"
                " listing again from the start"
            )
        events: list[Event[T]] = []
        for item in items:
            self._reconcile(item, state.listed, events)
        if token is not None:
            return Progress(events, None, "part"), Listing(token, state.listed)
        return self._finish_resync(state.listed, events, list_version), Watching()

    # Resync by InitialEvents -----------------------------------------------

    async def _initial_events(self, state: InitialEvents[T]) -> tuple[Progress[T], State[T]]:
        """Read the initial events of a ``sendInitialEvents`` watch, a page at a time (as
        a list's pages are: memory stays bounded), up to the end marker."""
        stream = state.stream
        if stream is None:
            stream = state.stream = self._open_watch(initial=True)
        events: list[Event[T]] = []
        while len(events) < self.config.page_size:
            try:
                event = await stream.__anext__()
            except StopAsyncIteration:
                raise TransportError(
                    f"{stream.request.path}: the watch ended before its initial events did"
                ) from None
            self._features.initial_events = True
            cls = type(event)
            if cls is AddedEvent:
                self._reconcile(event.object, state.listed, events)  # type: ignore[arg-type]
            elif cls is BookmarkEvent:
                version, end = self._access.bookmark(event.object)
                if end:
                    progress = self._finish_resync(state.listed, events, version)
                    return progress, Watching(stream)
            elif cls is ErrorEvent:
                raise event.to_error()  # type: ignore[union-attr]
            else:
                # MODIFIED/DELETED before the end marker: this server ignored
                # sendInitialEvents (it would never send the marker). Resync by listing.
                if self.config.send_initial_events:
                    raise StreamError(
                        f"{stream.request.path}: the server ignored sendInitialEvents=true"
                        f" (a {event.type} event came before the initial-events-end"
                        " bookmark); use send_initial_events=None or False"
                    )
                stream.close_now()
                self._features.initial_events = False
                return _NOTHING, Listing()
        return Progress(events, None, "part"), state

    # Resync, both ways ------------------------------------------------------

    def _reconcile(self, obj: T, listed: set[Key], events: list[Event[T]]) -> None:
        """Compare one object of the server's current state with what was yielded."""
        key, uid, rv = self._access.identity(obj)
        transform = self.config.transform
        if transform is not None:
            obj = transform(obj)
        listed.add(key)
        seen = self._seen
        previous = seen.get(key)
        seen[key] = (uid, rv)
        before = len(events)
        if previous is None:
            events.append(AddedEvent(obj))
        elif previous[0] != uid:
            events.append(self._tombstone(key, *previous))
            events.append(AddedEvent(obj))
        elif previous[1] != rv:
            events.append(ModifiedEvent(obj))
        if self._caller_has_view:
            self.stats.resync_events += len(events) - before

    def _finish_resync(self, listed: set[Key], events: list[Event[T]],
                       checkpoint: str | None) -> Progress[T]:
        """Report what disappeared while away; the resync's version becomes the checkpoint."""
        vanished = [key for key in self._seen if key not in listed]
        for key in vanished:
            uid, rv = self._seen.pop(key)
            events.append(self._tombstone(key, uid, rv))
        if self._caller_has_view:
            self.stats.resync_events += len(vanished)
        self._caller_has_view = True
        self._seen_complete = True
        self.stats.resyncs += 1
        return Progress(events, checkpoint, "done")

    def _tombstone(self, key: Key, uid: str | None, rv: str | None) -> DeletedEvent[T]:
        """A DELETED event for an object whose deletion was inferred, not seen."""
        namespace, name = key
        metadata = {"name": name, "namespace": namespace or None, "uid": uid,
                    "resourceVersion": rv}
        body = {"kind": self.descriptor.kind, "apiVersion": self.descriptor.api_version,
                "metadata": {k: v for k, v in metadata.items() if v is not None}}
        obj = self._object_decoder.decode(msgspec.json.encode(body))
        self.stats.inferred_deletions += 1
        return DeletedEvent(obj, final_state_unknown=True)

    def __repr__(self) -> str:
        scope = f"namespace={self.namespace!r}" if self.namespace else "all namespaces"
        return (
            f"<Watcher {self.descriptor.plural} {scope} state={self.state}"
            f" resource_version={self.resource_version!r}>"
        )


def _fresh(state: State[Any]) -> Listing | InitialEvents[Any] | Watching[Any]:
    """The state to try again after a failure in ``state``: the same step, with no
    connection (a list restarts at its page; a watch reconnects from the checkpoint)."""
    if type(state) is Listing:
        return state
    if type(state) is InitialEvents:
        return InitialEvents()
    if type(state) is Waiting:
        return state.then
    return Watching()


def _close_stream(state: State[Any]) -> None:
    stream = getattr(state, "stream", None)
    if stream is not None:
        stream.close_now()
