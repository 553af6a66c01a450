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
    |                  (410) restarts the resync after a backoff; so does a page that is not
    |                  a list of the right kind (a gateway's ``{"error": ...}``, another
    |                  kind: a retryable DecodeError) and a continue token that was already
    |                  sent: the objects listed so far stay as they are, nothing is deleted.
    |   InitialEvents: a watch with ``sendInitialEvents=true``; its ADDED events are compared
    |                  with ``seen`` as above, until the BOOKMARK annotated
    |                  ``k8s.io/initial-events-end``, which ends the resync (unlisted keys ->
    |                  DELETED, checkpoint := the bookmark's) and the same connection goes
    |                  on as Watching. A 400/422 answer in auto mode is remembered for the
    |                  client ("unsupported") and the resync is done by Listing instead.
    |                  A failure after part of a page was read hands that part out first
    |                  (its objects are already in ``seen``), then fails.
    |                  |
    |                  v
    |                Watching  from the checkpoint, with bookmarks, ``timeoutSeconds`` drawn
    |                  |       in [T, 2T), and an idle timeout on the client
    |   ADDED/MODIFIED/DELETED -> record in ``seen``, checkpoint := the object's, yield (an
    |                             event identical to what was last yielded for that object,
    |                             or a DELETED of an object already gone, is a repeat: dropped)
    |   BOOKMARK               -> checkpoint := its; yielded only if asked
    |   the server ends the stream  -> Watching again at once if the stream made progress
    |                                  (a new event or checkpoint) or lasted at least the
    |                                  backoff's maximum, else after Waiting
    |   cut, idle timeout, a dead connection (no byte, and the server did not answer the
    |   session's probe), connection error, 429, 5xx -> Waiting, then the same state again
    +-- 410 Gone (an ERROR event or an HTTP answer) -> Waiting, then a resync
        Waiting: until its deadline (the backoff's delay, or the server's Retry-After up
                 to the backoff's maximum), then on to the state it holds.
        401 (after the session's one credential refresh), 403, 404, other 4xx, an
        undecodable event, a line over the size limit -> raised out of ``async for``
        Closed: the watcher was closed, or its client was (also while Waiting, at once):
                the iteration ends.

The backoff grows from 0.8 s to 30 s with jitter, and starts again from the bottom as soon
as a watch makes progress (a new event, a new checkpoint) or after ``reset_after`` seconds
without a failure. Bytes that arrive without progress (a repeated event, the same bookmark)
do not reset it, nor does a resync (a server that lists fine and then fails every watch
with 410 is listed less and less often), so a server that answers every request with
nothing new is asked less and less often.

Health
------
The watcher never gives up on what retrying can fix (client-go's reflector does not
either), but it says when it is not getting anywhere: once it has been failing for
``unhealthy_after`` seconds (default :data:`UNHEALTHY_AFTER`) with no progress and no watch
connection that stayed up for :data:`STABLE_AFTER` seconds, :attr:`Watcher.healthy` is
False and one WARNING is logged (one per episode; an INFO when it makes progress again).
``stats.last_progress`` and ``stats.failing_since`` hold the times (``time.monotonic()``).

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

import collections
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NamedTuple, TypeVar, Union

import msgspec

from ..core.backoff import positive_number
from ..core.codec import check_continue, decoder_for, kind_decoder
from ..core.descriptor import ResourceDescriptor
from ..core.errors import ApiError, DecodeError, Gone, KubeError, StreamError, TransportError
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

__all__ = ["IDLE_MARGIN", "STABLE_AFTER", "UNHEALTHY_AFTER", "ServerFeatures", "Watcher",
           "WatcherStats"]

T = TypeVar("T")

log = logging.getLogger("kubeasync.watch")

IDLE_MARGIN = 30.0
"""Seconds of silence beyond ``timeoutSeconds`` after which a watch connection is
considered stalled (the server should have ended it by then)."""

UNHEALTHY_AFTER = 60.0
"""Seconds of failures without progress after which a watcher is unhealthy (and says so,
once, with a WARNING)."""

STABLE_AFTER = 10.0
"""Seconds a watch connection must stay up without failing to end a run of failures, on a
collection so quiet that no event proves the watch works."""

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
            5xx, ``RequestTimeout`` for a stalled or dead connection, ``TransportError``
            for a lost one or a watch that ended early with nothing new, ``DecodeError``
            for a list page that was not a page of the list, ...).
        throttled: waits whose length the server set (``Retry-After``), capped at the
            backoff's maximum.
        last_progress: when a watch last brought something new (an event, a checkpoint),
            in ``time.monotonic()`` seconds; ``None`` until then.
        failing_since: when the current run of failures began (``time.monotonic()``), or
            ``None`` when the watcher is not failing.
    """

    watches: int = 0
    resyncs: int = 0
    resync_events: int = 0
    inferred_deletions: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    throttled: int = 0
    last_progress: float | None = None
    failing_since: float | None = None


# --------------------------------------------------------------------------- states


@dataclass(slots=True)
class Listing:
    """Resync by a paginated list: the next page's continue token, the keys listed so far,
    and the tokens already sent (one handed back again would loop)."""

    continue_: str | None = None
    listed: set[Key] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)


@dataclass(slots=True)
class InitialEvents(Generic[T]):
    """Resync by a ``sendInitialEvents`` watch, up to its end marker; ``failure`` is one
    that came after part of a page was read (that part is handed out first)."""

    stream: WatchStream[T] | None = None
    listed: set[Key] = field(default_factory=set)
    failure: KubeError | None = None


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
        healthy: False once it has been failing for ``unhealthy_after`` seconds without
            progress (see "Health" in the module docstring).
        unhealthy_after: that delay, in seconds (default :data:`UNHEALTHY_AFTER`).
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
        unhealthy_after: float | None = None,
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
        self._list_decoder = kind_decoder(descriptor.list_model, descriptor.list_kind,
                                          descriptor.api_version)
        self._object_decoder = decoder_for(descriptor.model)
        self.unhealthy_after = (
            UNHEALTHY_AFTER if unhealthy_after is None
            else positive_number(unhealthy_after, "unhealthy_after")
        )
        self._warned = False
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
        in_resync = False
        try:
            while True:
                progress, self._state = await self._step(self._state)
                batch.extend(progress.events)
                if progress.resync == "part":
                    in_resync = True
                    continue
                if progress.checkpoint is not None:
                    self.resource_version = progress.checkpoint
                if progress.resync == "done" or (batch and not in_resync):
                    # A resync that failed half-way goes on (through Waiting) until it is
                    # complete: its first pages are not handed out alone.
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

    @property
    def healthy(self) -> bool:
        """False once the watcher has been failing for :attr:`unhealthy_after` seconds with
        no progress and no watch connection that stayed up :data:`STABLE_AFTER` seconds
        (it keeps trying all the same). A closed watcher is not healthy."""
        if self._state is CLOSED:
            return False
        since = self.stats.failing_since
        if since is None:
            return True
        now = time.monotonic()
        if now - since < self.unhealthy_after:
            return True
        return _stable(self._state, now)

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
                # Returns early when the client is closed, which the next step sees.
                await self._session.pause(state.until - time.monotonic())
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
        if isinstance(exc, DecodeError) and exc.retryable and type(state) is Listing:
            # Not a page of the list (a gateway's JSON, another kind, a token handed back):
            # list again from the start after the backoff; what was yielded stays.
            log.debug("%r: %s; listing again", self, exc)
            resume = Listing()
        elif isinstance(exc, Gone):
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
        self._failing(exc, state, now)
        log.debug("%r: %s; trying again in %.2f s", self, exc, delay)
        return Waiting(now + delay, resume)

    def _failing(self, exc: KubeError, state: State[T], now: float) -> None:
        """Keep the run of failures: it starts at the first failure after progress (or
        after a connection that stayed up), and past ``unhealthy_after`` it is logged."""
        stats = self.stats
        if stats.failing_since is None or _stable(state, now):
            stats.failing_since = now
            self._warned = False
        elif not self._warned and now - stats.failing_since >= self.unhealthy_after:
            self._warned = True
            log.warning(
                "%r has made no progress for %.0f s and keeps retrying: last failure %s: %s"
                " (failures so far: %s)", self, now - stats.failing_since,
                type(exc).__name__, exc, dict(stats.failures),
            )

    def _made_progress(self) -> None:
        self._attempt = 0
        stats = self.stats
        stats.last_progress = time.monotonic()
        if stats.failing_since is not None:
            if self._warned:
                log.info("%r makes progress again", self)
            stats.failing_since = None
            self._warned = False

    # Watching ------------------------------------------------------------

    async def _watching(self, state: Watching[T]) -> tuple[Progress[T], State[T]]:
        stream = state.stream
        if stream is None:
            stream = state.stream = self._open_watch(initial=False)
        try:
            event = await stream.__anext__()
        except StopAsyncIteration:
            if state.progressed or self._session.closed:
                return _NOTHING, Watching()
            lasted = time.monotonic() - (stream.opened_at or time.monotonic())
            if lasted >= self.config.backoff.maximum:
                return _NOTHING, Watching()  # a quiet watch that ran its course
            # Nothing new in a short stream: a server (or proxy) that ends every watch at
            # once, or with one already-seen event or bookmark, must not make us spin.
            raise TransportError(
                f"{stream.request.path}: the watch ended after {lasted:.1f} s with nothing new"
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
        page = await self._session.request(request, self._list_decoder)  # of the list kind
        items, token, list_version = self._access.list_parts(page)
        check_continue(token, state.sent, request)
        events: list[Event[T]] = []
        for item in items:
            self._reconcile(item, state.listed, events)
        if token is not None:
            state.sent.add(token)
            return Progress(events, None, "part"), Listing(token, state.listed, state.sent)
        return self._finish_resync(state.listed, events, list_version), Watching()

    # Resync by InitialEvents -----------------------------------------------

    async def _initial_events(self, state: InitialEvents[T]) -> tuple[Progress[T], State[T]]:
        """Read the initial events of a ``sendInitialEvents`` watch, a page at a time (as
        a list's pages are: memory stays bounded), up to the end marker."""
        if state.failure is not None:
            raise state.failure
        stream = state.stream
        if stream is None:
            stream = state.stream = self._open_watch(initial=True)
        events: list[Event[T]] = []
        while len(events) < self.config.page_size:
            try:
                event = await stream.__anext__()
            except (KubeError, StopAsyncIteration) as exc:
                failure = exc if isinstance(exc, KubeError) else TransportError(
                    f"{stream.request.path}: the watch ended before its initial events did")
                if not events:
                    raise failure from None
                # The objects read so far are recorded in ``seen``: hand their events out
                # now (a part of the resync), and fail at the next step. Dropping them
                # would lose them for good: the next resync would find them "unchanged".
                state.failure = failure
                return Progress(events, None, "part"), state
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
                error = event.to_error()  # type: ignore[union-attr]
                if not events:
                    raise error
                stream.close_now()
                state.failure = error  # as above: what was read first, then the error
                return Progress(events, None, "part"), state
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
                return Progress(events, None, "part"), Listing()  # what was read so far
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


def _stable(state: State[Any], now: float) -> bool:
    """Whether ``state`` is a watch whose connection has been up :data:`STABLE_AFTER` s."""
    stream = getattr(state, "stream", None) if type(state) is Watching else None
    opened = stream.opened_at if stream is not None else None
    return opened is not None and now - opened >= STABLE_AFTER


def _close_stream(state: State[Any]) -> None:
    stream = getattr(state, "stream", None)
    if stream is not None:
        stream.close_now()
