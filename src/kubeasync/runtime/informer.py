"""Informers: a shared, indexed local cache of a collection, kept current by the watcher.

    async with kube.pods.informer(namespace="shop") as pods:
        await pods.wait_synced()
        pods.get("web-0"); pods.list(label_selector="app=web")
        async for change in pods.changes():
            change.type, change.object, change.old      # "added" | "updated" | "deleted"

One :class:`~kubeasync.Watcher` feeds one :class:`~kubeasync.runtime.store.Store`; any number of consumers read the
store and iterate :meth:`Informer.changes`. ``api.informer(...)`` with the same arguments
on the same client returns the same informer, so a process keeps one watch per
collection however many components read it.

How a relist stays atomic
-------------------------
The watcher already turns a relist (after 410 Gone, and the initial list) into the
difference from what it had yielded. The informer reads it through
:meth:`Watcher.next_batch`, which holds a resync's events back until the resync is
complete and returns them together (a live watch event comes alone). The informer applies
one batch to the store, its indexes and every consumer's queue in one synchronous step,
with no ``await`` in between: no reader, and no consumer of :meth:`changes`, can run in
the middle of it, so nobody observes half of a relist. A resync that found nothing new
still returns an (empty) batch, which is how the informer knows it is synced even when
the collection is empty. There is no second list+diff here: the watcher's one is used.

Consumers
---------
``changes()`` first waits for the informer to be synced, then yields the objects in the
store as ``added`` (as client-go does for a new event handler, so a consumer that comes
late still sees everything; ``replay=False`` skips that), then every change applied after
it subscribed, each exactly once, in order. The store is updated before the changes of a
batch are handed out, so ``informer.get()`` inside a handler sees at least that state.

Each consumer has its own queue, so a slow one never delays the informer or the others.
The queue holds at most ``max_queue`` batches (a live event is one batch; a relist, and
the replay at subscription, are one batch each, whatever their size). When a batch
arrives at a full queue, the queue is dropped and the consumer's iteration raises
:class:`ChangesLagged` at its next read: nothing is skipped silently and memory stays
bounded. The consumer then calls ``changes()`` again, which replays the current store
(objects it knew that are not in the replay were deleted meanwhile).

Errors
------
What the watcher cannot survive (401 after the credential refresh, 403, 404, undecodable
data), and an exception from a transform or an index function, stops the informer's
background task. The error is then raised by :meth:`Informer.wait_synced`, by every
``changes()`` iteration (after the changes queued before it), and by the reads
(``get``, ``list``, ``by_index``) while the informer is started, because the cache would
be silently stale; it is also logged. The informer stays failed until every ``start()``
has been matched by a ``stop()``; starting it again then begins from scratch.

What the watcher can survive (410, 5xx, cut connections, a relist answered by a gateway's
JSON) it retries forever, and the store keeps its last complete state meanwhile; when it
gets nowhere for a while, :attr:`Informer.healthy` turns False (and the watcher logs one
WARNING), so that a readiness check can say so.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import logging
import weakref
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from ..core.descriptor import ResourceDescriptor
from ..core.errors import KubeError
from ..core.names import validate_name
from ..core.objects import accessor_for
from ..core.params import WatcherConfig
from ..core.selectors import parse_label_selector
from ..streams.events import Event
from .store import Change, ChangeType, IndexFunc, Store
from .watcher import ServerFeatures, Watcher, WatcherStats

if TYPE_CHECKING:
    from ..transport.policy import Session

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "Change",
    "ChangeStream",
    "ChangeType",
    "ChangesLagged",
    "IndexFunc",
    "Informer",
    "InformerRegistry",
    "drop_managed_fields",
]

T = TypeVar("T")

log = logging.getLogger("kubeasync.informer")

DEFAULT_MAX_QUEUE = 10_000
"""Batches a ``changes()`` consumer may have waiting before it counts as lagged."""


class ChangesLagged(KubeError):
    """A ``changes()`` consumer fell ``max_queue`` batches behind and its queue was dropped.

    Its iteration is over; call ``informer.changes()`` again to get the current state
    (as ``added``) and the changes from then on. Objects the consumer knew that are not in
    that replay were deleted while it lagged.
    """


def drop_managed_fields(obj: T) -> T:
    """A transform that removes ``metadata.managedFields`` (server-side apply bookkeeping,
    often a third of an object) from a model instance or a dict, in place.

    It also frees the received buffers: a decoded ``fieldsV1`` is a ``msgspec.Raw`` view
    that keeps the whole list page or watch line it came from alive.
    """
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
        return obj
    meta = getattr(obj, "metadata", None)
    if meta is None or getattr(meta, "managed_fields", None) is None:
        return obj
    try:
        meta.managed_fields = None
    except AttributeError:  # a frozen model of the caller's: rebuild instead
        meta = msgspec.structs.replace(meta, managed_fields=None)
        return msgspec.structs.replace(obj, metadata=meta)  # type: ignore[type-var]
    return obj


class _Consumer(Generic[T]):
    """One ``changes()`` subscriber's queue of batches (shared, read-only lists)."""

    __slots__ = ("batches", "lagged", "max_queue", "offset", "wakeup")

    def __init__(self, max_queue: int) -> None:
        self.batches: collections.deque[Sequence[Change[T]]] = collections.deque()
        self.offset = 0  # how much of batches[0] was read
        self.max_queue = max_queue
        self.lagged = False
        self.wakeup = asyncio.Event()

    def push(self, batch: list[Change[T]]) -> None:
        if self.lagged:
            return
        if len(self.batches) >= self.max_queue:
            # Drop, never block the informer: the consumer learns it at its next read.
            self.lagged = True
            self.batches.clear()
            self.offset = 0
        else:
            self.batches.append(batch)
        self.wakeup.set()


class _Run(Generic[T]):
    """One start-to-stop life of an informer: its watcher, task and subscribers."""

    def __init__(self, watcher: Watcher[T]) -> None:
        self.watcher = watcher
        self.task: asyncio.Task[None] | None = None
        self.synced = False
        self.done = False
        self.error: Exception | None = None
        self.settled = asyncio.Event()  # synced, failed or stopped
        self.consumers: set[_Consumer[T]] = set()

    def finish(self) -> None:
        self.done = True
        self.settled.set()
        for consumer in self.consumers:
            consumer.wakeup.set()


class Informer(Generic[T]):
    """A local cache of one collection, kept current by a resilient watch.

    Get one with ``api.informer(...)`` (shared: the same arguments on the same client
    return the same informer). Start it with ``async with informer:`` or
    :meth:`start`/:meth:`stop` (counted: the watch runs while any start is not matched by
    a stop), wait for the first complete state with :meth:`wait_synced`, then read
    (:meth:`get`, :meth:`list`, :meth:`by_index`) and follow (:meth:`changes`). Reads are
    synchronous and cheap; use the informer from its event loop's thread only.

    Attributes:
        descriptor: the resource.
        namespace: the namespace watched, or ``None`` for all namespaces (and for
            cluster-scoped resources).
        config: the :class:`~kubeasync.core.params.WatcherConfig` of its watch.
    """

    def __init__(
        self,
        session: Session,
        descriptor: ResourceDescriptor[T, Any],
        namespace: str | None,
        config: WatcherConfig[T],
        *,
        features: ServerFeatures | None = None,
        registry: InformerRegistry | None = None,
    ) -> None:
        if config.bookmarks:
            # The informer reads batches; bookmarks only move the checkpoint.
            config = WatcherConfig(**{**_fields(config), "bookmarks": False})
        self._session = session
        self.descriptor = descriptor
        self.namespace = namespace
        self.config = config
        self._features = features if features is not None else ServerFeatures()
        self._new_watcher()  # checks the scope now, before anything runs
        self._store: Store[T] = Store(accessor_for(descriptor.model), descriptor.model)
        self._access = accessor_for(descriptor.model)
        self._starts = 0
        self._run: _Run[T] | None = None
        self._registry = registry

    @property
    def label_selector(self) -> str | None:
        selector: str | None = self.config.label_selector
        return selector

    @property
    def field_selector(self) -> str | None:
        selector: str | None = self.config.field_selector
        return selector

    @property
    def transform(self) -> Any:
        return self.config.transform

    def _new_watcher(self) -> Watcher[T]:
        return Watcher(self._session, self.descriptor, self.namespace, self.config,
                       features=self._features)

    def __repr__(self) -> str:
        scope = f"namespace={self.namespace!r}" if self.namespace else "all namespaces"
        selectors = "".join(
            f" {name}={value!r}"
            for name, value in (("label_selector", self.label_selector),
                                ("field_selector", self.field_selector))
            if value
        )
        if self._run is None:
            state = "stopped"
        elif self._run.error is not None:
            state = f"failed ({type(self._run.error).__name__})"
        else:
            state = "synced" if self._run.synced else "syncing"
        return (
            f"<Informer {self.descriptor.plural} {scope}{selectors} {state},"
            f" {len(self._store)} objects>"
        )

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> Informer[T]:
        """Start watching (if not running yet); returns at once, see :meth:`wait_synced`.

        Each call must be matched by one :meth:`stop`. A stopped informer starts again
        from scratch: its store is emptied and filled by a new list.
        """
        self._starts += 1
        if self._run is None:
            loop = asyncio.get_running_loop()
            self._store.clear()
            run: _Run[T] = _Run(self._new_watcher())
            run.task = loop.create_task(self._main(run), name=repr(self))
            self._run = run
            if self._registry is not None:
                self._registry.running.add(self)
        return self

    async def stop(self) -> None:
        """Match one :meth:`start`; the last one stops the watch and closes its connection.

        ``changes()`` iterations then end (after what was queued for them), and the store
        keeps the last state for reads. Calling it more often than ``start()`` is harmless.
        """
        if self._starts == 0:
            return
        self._starts -= 1
        if self._starts == 0:
            await self._shutdown()

    async def _shutdown(self) -> None:
        run, self._run = self._run, None
        self._starts = 0
        if self._registry is not None:
            self._registry.running.discard(self)
        if run is None:
            return
        if run.task is not None and not run.task.done():
            run.task.cancel()
            # wait() neither raises the task's CancelledError nor swallows our caller's.
            await asyncio.wait({run.task})
        await run.watcher.aclose()
        run.finish()

    async def __aenter__(self) -> Informer[T]:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the informer is started (it may have failed: see :attr:`error`)."""
        return self._run is not None

    @property
    def synced(self) -> bool:
        """Whether the store holds a complete state of the collection (and has not failed)."""
        run = self._run
        return run is not None and run.synced and run.error is None

    @property
    def error(self) -> Exception | None:
        """What stopped the started informer, or ``None``."""
        return self._run.error if self._run is not None else None

    @property
    def healthy(self) -> bool:
        """Whether the informer is running, has not failed, and its watcher is healthy:
        False once the watcher has been failing for a while without progress (a server
        answering 410 or 5xx to every watch; see :attr:`Watcher.healthy`), while it keeps
        trying. The time of its last progress is ``stats.last_progress``."""
        run = self._run
        return run is not None and run.error is None and run.watcher.healthy

    @property
    def stats(self) -> WatcherStats:
        """The :class:`~kubeasync.WatcherStats` of its watcher since it was started
        (reconnections, relists, failures survived); all zero when it is not running."""
        return self._run.watcher.stats if self._run is not None else WatcherStats()

    async def wait_synced(self) -> None:
        """Wait until the store holds a complete state of the collection.

        Raises what made the informer fail (``kubeasync.Forbidden``, ...), and
        ``RuntimeError`` if it is not started or is stopped before it synced. Bound the
        wait with ``asyncio.wait_for`` or ``asyncio.timeout``.
        """
        run = await self._settled_run()
        if run is None:
            raise RuntimeError(f"{self!r} was stopped before it synced")

    async def _settled_run(self) -> _Run[T] | None:
        """The started run once synced (``None`` if it stopped first); raises its error."""
        run = self._run
        if run is None:
            raise RuntimeError(
                f"{self!r} is not started: use `async with informer:` or `await informer.start()`"
            )
        await run.settled.wait()
        if run.error is not None:
            raise run.error
        return run if run.synced and not run.done else None

    async def _main(self, run: _Run[T]) -> None:
        watcher = run.watcher
        try:
            while True:
                # Not kept in a local: a resync's batch holds every object decoded, and
                # this frame lives on while it waits for the next one.
                self._apply(run, await watcher.next_batch())
                if not run.synced:
                    run.synced = True
                    run.settled.set()
        except StopAsyncIteration:
            pass
        except Exception as exc:
            run.error = exc
            log.error("%r failed: %s: %s", self, type(exc).__name__, exc)
        finally:
            run.finish()

    def _apply(self, run: _Run[T], batch: builtins.list[Event[T]]) -> None:
        """Apply one batch to the store, its indexes and the consumers' queues, in one
        synchronous step."""
        changes = self._store.apply(batch)
        if changes:
            for consumer in run.consumers:
                consumer.push(changes)

    # ------------------------------------------------------------ reads

    def _check(self) -> None:
        run = self._run
        if run is not None and run.error is not None:
            raise run.error

    def _scope(self, namespace: str | None) -> str:
        if self.descriptor.namespaced and namespace is None and self.namespace is None:
            raise ValueError("namespace is required: this informer watches all namespaces")
        return self.descriptor.namespace_for(namespace, default=self.namespace) or ""

    def get(self, name: str, *, namespace: str | None = None) -> T | None:
        """The stored object, or ``None``. ``namespace`` defaults to the informer's own
        (required for an all-namespaces informer of a namespaced resource)."""
        key = (self._scope(namespace), validate_name(name))
        self._check()
        return self._store.get(key)

    def list(
        self, *, namespace: str | None = None, label_selector: object = None
    ) -> builtins.list[T]:
        """The stored objects, in no particular order, optionally only those of one
        namespace and those a label selector (a str or a mapping, the server's syntax,
        evaluated locally) selects."""
        selector = parse_label_selector(label_selector) if label_selector is not None else None
        prefix = self._scope(namespace) if namespace is not None else None
        self._check()
        store = self._store
        if selector is None and prefix is None:
            return store.objects()
        return store.objects(store.select(selector, prefix))

    def __len__(self) -> int:
        return len(self._store)

    # ------------------------------------------------------------ indexes

    def add_index(self, name: str, fn: IndexFunc[T]) -> None:
        """Add a named index: ``fn(obj)`` returns the object's index values (a list of
        str), and :meth:`by_index` finds the objects by one of them. Built over the current
        store at once, kept current afterwards. Adding the same name with the same
        function again does nothing (shared informers); with another one, it raises
        ``ValueError``. ``fn`` must not raise: an exception fails the informer.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        if not callable(fn):
            raise ValueError(f"fn must be a callable returning a list of str, got {fn!r}")
        self._store.add_index(name, fn)

    def by_index(self, name: str, value: str) -> builtins.list[T]:
        """The stored objects whose index ``name`` holds ``value``, in no particular order."""
        self._check()
        return self._store.by_index(name, value)

    # ------------------------------------------------------------ changes

    def changes(self, *, replay: bool = True, max_queue: int = DEFAULT_MAX_QUEUE) -> ChangeStream[T]:
        """Follow the store: ``async for change in informer.changes():``.

        The iteration waits until the informer is synced, yields every stored object as
        ``added`` (unless ``replay=False``), then each change applied from then on, once
        and in order. It ends when the informer stops, raises the informer's error if it
        fails, and raises :class:`ChangesLagged` if more than ``max_queue`` batches wait
        for this consumer (call ``changes()`` again to resync from the store).
        """
        if not isinstance(replay, bool):
            raise ValueError(f"replay must be a bool, got {replay!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an int >= 1, got {max_queue!r}")
        return ChangeStream(self, replay, max_queue)


class ChangeStream(Generic[T]):
    """One consumer of an informer's changes (see :meth:`Informer.changes`).

    It subscribes at its first read. Close it with ``async with``, :meth:`aclose`, or by
    dropping it (``break``); a closed stream holds no queue.
    """

    def __init__(self, informer: Informer[T], replay: bool, max_queue: int) -> None:
        self._informer = informer
        self._replay = replay
        self._max_queue = max_queue
        self._run: _Run[T] | None = None
        self._consumer: _Consumer[T] | None = None
        self._closed = False

    def __aiter__(self) -> ChangeStream[T]:
        return self

    async def __aenter__(self) -> ChangeStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe at once. Safe to call twice."""
        self._closed = True
        run, consumer = self._run, self._consumer
        self._run = self._consumer = None
        if run is not None and consumer is not None:
            run.consumers.discard(consumer)

    def __del__(self) -> None:
        if getattr(self, "_consumer", None) is not None:
            self.close()

    def _subscribe(self, run: _Run[T]) -> _Consumer[T]:
        consumer: _Consumer[T] = _Consumer(self._max_queue)
        store = self._informer._store
        if self._replay and len(store):
            consumer.batches.append(store.snapshot())
        run.consumers.add(consumer)
        self._run, self._consumer = run, consumer
        return consumer

    async def __anext__(self) -> Change[T]:
        if self._closed:
            raise StopAsyncIteration
        consumer = self._consumer
        if consumer is None:
            try:
                run = await self._informer._settled_run()
            except BaseException:
                self.close()
                raise
            if run is None:
                self.close()
                raise StopAsyncIteration
            # No await since the run settled: the replay and the queue start together.
            consumer = self._subscribe(run)
        while True:
            batches = consumer.batches
            if batches:
                batch = batches[0]
                change = batch[consumer.offset]
                consumer.offset += 1
                if consumer.offset == len(batch):
                    batches.popleft()
                    consumer.offset = 0
                return change
            run = self._run
            assert run is not None
            if consumer.lagged:
                self.close()
                raise ChangesLagged(
                    f"this consumer of {self._informer!r} fell {consumer.max_queue} batches"
                    " behind and its queue was dropped; call changes() again to resync"
                    " from the store (or raise max_queue)"
                )
            if run.done:
                self.close()
                if run.error is not None:
                    raise run.error
                raise StopAsyncIteration
            consumer.wakeup.clear()
            await consumer.wakeup.wait()


# --------------------------------------------------------------------------- sharing


class InformerRegistry:
    """The informers of one client: one per resource, namespace and watcher config."""

    def __init__(self) -> None:
        # Weak: an informer nobody holds and that is not running may go away.
        self.informers: weakref.WeakValueDictionary[Hashable, Informer[Any]] = (
            weakref.WeakValueDictionary()
        )
        self.running: set[Informer[Any]] = set()

    def get(
        self,
        session: Session,
        descriptor: ResourceDescriptor[T, Any],
        namespace: str | None,
        config: WatcherConfig[T],
        features: ServerFeatures,
    ) -> Informer[T]:
        """The informer for these arguments, created on first use (selectors compare in
        their rendered form, the transform by identity, everything else by value)."""
        key: Hashable = (descriptor, namespace, config)
        informer: Informer[T] | None = self.informers.get(key)
        if informer is None:
            informer = Informer(session, descriptor, namespace, config,
                                features=features, registry=self)
            self.informers[key] = informer
        return informer

    async def stop_all(self) -> None:
        """Stop every running informer, whatever its start count (the client's
        ``close()`` calls it before closing the connections)."""
        for informer in list(self.running):
            await informer._shutdown()


def _fields(config: WatcherConfig[Any]) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__
            if config.__dataclass_fields__[name].init}
