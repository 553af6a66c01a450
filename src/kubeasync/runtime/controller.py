"""The Controller: a reconcile loop over the keys of one kind, fed by shared informers.

    async def reconcile(key: ObjectKey) -> Result | None:
        website = controller.get(key)          # the informer's cached object, or None
        ...                                    # make the world match it
        return None                            # done (or REQUEUE, requeue_after(30))

    controller = kubeasync.Controller(kube, WEBSITES, reconcile, workers=4)
    controller.owns(APPS_V1_DEPLOYMENTS)       # a Deployment's change -> its owner's key
    controller.watches(CONFIG_MAPS, mapper)    # any kind, through a mapping function
    await controller.run()

How it runs
-----------
- Every source is a shared informer (``api.informer(...)``: the same watch serves every
  component of the process that asks for it). They are started together, and the workers
  start only once all of them are synced, so a reconcile never reads a half-filled cache.
- The primary kind's changes enqueue their own key; an owned kind's changes enqueue the key
  of the owner that ``controller``-owns them (an ownerReference with ``controller: true``
  whose kind and API group are the primary's), for the old state and the new; a watched
  kind's changes enqueue what ``mapper(obj)`` returns. Predicates (e.g.
  :func:`generation_changed`) skip updates that change nothing the reconcile reads.
- Keys go through a :class:`~kubeasync.runtime.workqueue.WorkQueue`: deduplicated, never
  held by two workers at once, and a key changed while it is reconciled is reconciled
  again afterwards. ``workers`` reconcile different keys concurrently.
- ``reconcile(key)`` returns ``None``/:data:`DONE` (forget the key's backoff),
  :data:`REQUEUE` (again after the key's backoff) or :func:`requeue_after` (again after that
  many seconds). An exception is logged with the key and the key is retried with backoff.
- With ``leader_election=`` it reconciles only while leading (the informers run all along,
  so a new leader starts from a warm cache); each term starts by enqueueing every key.
  With ``sharding=`` each replica reconciles only the keys of the shards it holds, and a
  shard's reconciles are cancelled and awaited before its Lease is released or can expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from ..core.descriptor import ResourceDescriptor
from ..core.errors import ApiError, TransportError
from ..core.objects import accessor_for
from .clock import MONOTONIC, Clock
from .informer import ChangesLagged, Informer
from .store import Change
from .workqueue import QueueShutDown, RateLimiter, WorkQueue

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.resource import ResourceApi
    from .leader import LeaderElection
    from .sharding import Sharding

__all__ = [
    "DONE",
    "REQUEUE",
    "Controller",
    "ControllerStats",
    "Mapper",
    "ObjectKey",
    "Predicate",
    "Reconcile",
    "Result",
    "annotations_changed",
    "generation_changed",
    "labels_changed",
    "owner_keys",
    "requeue_after",
]

T = TypeVar("T")

log = logging.getLogger("kubeasync.controller")


class ObjectKey(NamedTuple):
    """What a controller reconciles: ``(namespace, name)``, ``""`` as the namespace of a
    cluster-scoped object. ``str(key)`` is ``"namespace/name"`` (client-go's key)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing (:data:`DONE`), a retry after the key's
    backoff (:data:`REQUEUE`), or another reconcile after ``after`` seconds
    (:func:`requeue_after`)."""

    requeue: bool = False
    after: float | None = None


DONE = Result()
REQUEUE = Result(requeue=True)


def requeue_after(seconds: float) -> Result:
    """Reconcile the key again after ``seconds`` (its backoff is reset)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
    return Result(after=float(seconds))


Reconcile = Callable[[ObjectKey], Awaitable["Result | None"]]
"""``async def reconcile(key: ObjectKey) -> Result | None``."""

Predicate = Callable[[Change[Any]], bool]
"""Whether a change should enqueue its key(s): ``predicate(change) -> bool``."""

Mapper = Callable[[Any], Iterable[ObjectKey]]
"""The keys a watched object's change concerns: ``mapper(obj) -> Iterable[ObjectKey]``."""


def _meta(obj: Any, field_name: str, wire_name: str) -> Any:
    if isinstance(obj, dict):
        return (obj.get("metadata") or {}).get(wire_name)
    return getattr(obj.metadata, field_name, None)


def generation_changed(change: Change[Any]) -> bool:
    """Pass additions, deletions, and updates of ``metadata.generation`` (a spec change)
    or of the deletion timestamp; skip status-only and metadata-only updates."""
    if change.type != "updated" or change.old is None:
        return True
    return bool(_meta(change.object, "generation", "generation")
                != _meta(change.old, "generation", "generation")
                or _meta(change.object, "deletion_timestamp", "deletionTimestamp")
                != _meta(change.old, "deletion_timestamp", "deletionTimestamp"))


def labels_changed(change: Change[Any]) -> bool:
    """Pass additions, deletions, and updates of the labels."""
    if change.type != "updated" or change.old is None:
        return True
    return bool(_meta(change.object, "labels", "labels") != _meta(change.old, "labels", "labels"))


def annotations_changed(change: Change[Any]) -> bool:
    """Pass additions, deletions, and updates of the annotations."""
    if change.type != "updated" or change.old is None:
        return True
    return bool(_meta(change.object, "annotations", "annotations")
                != _meta(change.old, "annotations", "annotations"))


def owner_keys(obj: Any, owner: ResourceDescriptor[Any, Any]) -> list[ObjectKey]:
    """The keys of the objects of kind ``owner`` that control ``obj`` (its
    ownerReferences with ``controller: true`` and the owner's kind and API group; any
    version). An owner is in the owned object's namespace (or cluster-scoped)."""
    references = _meta(obj, "owner_references", "ownerReferences") or []
    namespace = (_meta(obj, "namespace", "namespace") or "") if owner.namespaced else ""
    keys = []
    for reference in references:
        if isinstance(reference, dict):
            kind, api_version = reference.get("kind"), reference.get("apiVersion") or ""
            controller, name = reference.get("controller"), reference.get("name")
        else:
            kind, api_version = reference.kind, reference.api_version or ""
            controller, name = reference.controller, reference.name
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        if controller and name and kind == owner.kind and group == owner.group:
            keys.append(ObjectKey(namespace, name))
    return keys


@dataclass
class ControllerStats:
    """What a controller has done: for metrics, logs and tests.

    Attributes:
        reconciles: reconciles run (each outcome below counts one).
        failures: reconciles that raised (retried with backoff).
        requeues: reconciles that asked for a retry or a later reconcile.
        skipped: keys taken from the queue but not reconciled (their shard was not held).
    """

    reconciles: int = 0
    failures: int = 0
    requeues: int = 0
    skipped: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


class _Source:
    """One informer feeding the queue, and how its changes become keys."""

    def __init__(self, informer: Informer[Any], keys: Callable[[Any], Iterable[ObjectKey]],
                 predicates: Sequence[Predicate]) -> None:
        self.informer = informer
        self.keys = keys
        self.predicates = tuple(predicates)

    def keys_of(self, change: Change[Any]) -> set[ObjectKey]:
        if not all(predicate(change) for predicate in self.predicates):
            return set()
        found = set(self.keys(change.object))
        if change.old is not None:
            found.update(self.keys(change.old))
        return found


class Controller(Generic[T]):
    """Reconcile the objects of one kind (see the module docstring).

    Args:
        kube: the client.
        resource: the primary kind: a descriptor (``WEBSITES``, ``kubeasync.PODS``) or an
            API (``kube.pods``).
        reconcile: ``async def reconcile(key: ObjectKey) -> Result | None``.
        namespace: watch one namespace; ``None`` (the default) watches all of them.
        label_selector: only the primary objects it selects.
        workers: how many keys are reconciled at once (never one key twice).
        predicates: changes of the primary kind pass all of them to enqueue their key.
        leader_election: reconcile only while this election leads.
        sharding: reconcile only the keys of the shards this replica holds.
        rate_limiter: the queue's retry policy (default: client-go's).
        resync_period: also enqueue every key this often (seconds; off by default).
        informer_options: more keyword arguments for every informer the controller
            asks for (``api.informer(...)``'s: ``backoff``, ``idle_timeout``,
            ``transform``, ...).
        name: the controller's name in logs and metrics (default: the plural).
        clock: the time source of the queue.
    """

    def __init__(
        self,
        kube: Client,
        resource: ResourceDescriptor[T, Any] | ResourceApi[T, Any],
        reconcile: Reconcile,
        *,
        namespace: str | None = None,
        label_selector: object = None,
        workers: int = 1,
        predicates: Sequence[Predicate] = (),
        leader_election: LeaderElection | None = None,
        sharding: Sharding | None = None,
        rate_limiter: RateLimiter[ObjectKey] | None = None,
        resync_period: float | None = None,
        informer_options: Mapping[str, Any] | None = None,
        name: str | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self._kube = kube
        self._informer_options = dict(informer_options or {})
        self.descriptor: ResourceDescriptor[T, Any] = (
            resource if isinstance(resource, ResourceDescriptor) else resource.descriptor
        )
        if not callable(reconcile):
            raise ValueError(f"reconcile must be an async function of a key, got {reconcile!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        if leader_election is not None and sharding is not None:
            raise ValueError("give leader_election or sharding, not both")
        if resync_period is not None and (isinstance(resync_period, bool) or not isinstance(
                resync_period, (int, float)) or resync_period <= 0):
            raise ValueError(f"resync_period must be a number of seconds > 0, got"
                             f" {resync_period!r}")
        self._reconcile = reconcile
        self.namespace = namespace
        self.workers = workers
        self.leader_election = leader_election
        self.sharding = sharding
        self.resync_period = resync_period
        self.name = name if name is not None else self.descriptor.plural
        self._clock = clock
        self.queue: WorkQueue[ObjectKey] = WorkQueue(self.name, rate_limiter=rate_limiter,
                                                     clock=clock)
        self.stats = ControllerStats()
        self.informer: Informer[T] = self._informer_for(self.descriptor, namespace,
                                                        label_selector)
        access = accessor_for(self.descriptor.model)
        self._sources = [_Source(self.informer, lambda obj: (ObjectKey(*access.key(obj)),),
                                 predicates)]
        self._active: set[int] = set()  # shards held (sharding only)
        self._inflight: dict[int, set[asyncio.Task[None]]] = {}
        self._running = False

    def __repr__(self) -> str:
        return f"<Controller {self.name} queue={self.queue!r}>"

    def _informer_for(self, descriptor: ResourceDescriptor[Any, Any], namespace: str | None,
                      label_selector: object = None) -> Informer[Any]:
        api = self._kube.resource(descriptor)
        options = self._informer_options
        if not descriptor.namespaced:
            return api.informer(label_selector=label_selector, **options)
        if namespace is None:
            return api.informer(all_namespaces=True, label_selector=label_selector, **options)
        return api.informer(namespace=namespace, label_selector=label_selector, **options)

    # ------------------------------------------------------------ sources

    def owns(
        self,
        resource: ResourceDescriptor[Any, Any] | ResourceApi[Any, Any],
        *,
        predicates: Sequence[Predicate] = (),
    ) -> Controller[T]:
        """Also reconcile the owner when an object of this kind that it controls changes
        (or is deleted). Returns the controller."""
        descriptor = resource if isinstance(resource, ResourceDescriptor) else resource.descriptor
        primary = self.descriptor
        self._add_source(_Source(self._informer_for(descriptor, self.namespace),
                                 lambda obj: owner_keys(obj, primary), predicates))
        return self

    def watches(
        self,
        resource: ResourceDescriptor[Any, Any] | ResourceApi[Any, Any],
        mapper: Mapper,
        *,
        label_selector: object = None,
        predicates: Sequence[Predicate] = (),
    ) -> Controller[T]:
        """Also reconcile the keys ``mapper(obj)`` returns when an object of this kind
        changes (for the old state and the new). Returns the controller."""
        if not callable(mapper):
            raise ValueError(f"mapper must be a function of an object, got {mapper!r}")
        descriptor = resource if isinstance(resource, ResourceDescriptor) else resource.descriptor
        self._add_source(_Source(self._informer_for(descriptor, self.namespace, label_selector),
                                 mapper, predicates))
        return self

    def _add_source(self, source: _Source) -> None:
        if self._running:
            raise RuntimeError("add sources before run()")
        self._sources.append(source)

    # ------------------------------------------------------------ reads

    def get(self, key: ObjectKey | tuple[str, str]) -> T | None:
        """The primary object of ``key`` in the informer's cache, or ``None``."""
        namespace, name = key
        if not self.descriptor.namespaced:
            return self.informer.get(name)
        return self.informer.get(name, namespace=namespace)

    def cache(self, resource: ResourceDescriptor[Any, Any] | ResourceApi[Any, Any]
              ) -> Informer[Any]:
        """The informer of a kind this controller watches (the primary, an owned or a
        watched kind), to read owned objects from the cache instead of the server."""
        descriptor = resource if isinstance(resource, ResourceDescriptor) else resource.descriptor
        for source in self._sources:
            if source.informer.descriptor == descriptor:
                return source.informer
        raise ValueError(f"{self!r} does not watch {descriptor.plural}")

    def keys(self) -> list[ObjectKey]:
        """The keys of every primary object in the cache."""
        access = accessor_for(self.descriptor.model)
        return [ObjectKey(*access.key(obj)) for obj in self.informer.list()]

    # ------------------------------------------------------------ run

    async def run(self) -> None:
        """Start the informers, wait until they are synced, and reconcile until cancelled
        (or until a source fails: its error is raised)."""
        if self._running:
            raise RuntimeError(f"{self!r} is already running")
        self._running = True
        informers = list({id(s.informer): s.informer for s in self._sources}.values())
        tasks: list[asyncio.Future[Any]] = []
        try:
            for informer in informers:
                await informer.start()
            await asyncio.gather(*(informer.wait_synced() for informer in informers))
            tasks = [asyncio.ensure_future(self._feed(source)) for source in self._sources]
            if self.resync_period is not None:
                tasks.append(asyncio.ensure_future(self._resync(self.resync_period)))
            if self.leader_election is not None:
                tasks.append(asyncio.ensure_future(self.leader_election.run(self._work)))
            elif self.sharding is not None:
                tasks.append(asyncio.ensure_future(self.sharding.run(self._shard_work)))
                tasks.append(asyncio.ensure_future(self._work(enqueue_all=False)))
            else:
                tasks.append(asyncio.ensure_future(self._work()))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what stopped it
            # Only a feed can end without an error: its informer was stopped (the client closed).
            raise RuntimeError(f"{self!r}: an informer stopped (was the client closed?)")
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            await self.queue.shutdown()
            for informer in informers:
                await informer.stop()
            self._running = False

    def _enqueue(self, key: ObjectKey) -> None:
        if self.sharding is not None and self.sharding.shard_of(key) not in self._active:
            return  # another replica's key (if this one gets the shard, it enqueues it)
        self.queue.add(key)

    async def _feed(self, source: _Source) -> None:
        while True:
            try:
                async for change in source.informer.changes():
                    for key in source.keys_of(change):
                        self._enqueue(key)
                return
            except ChangesLagged:
                log.warning("%r: fell behind %r; resyncing its keys", self, source.informer)

    async def _resync(self, period: float) -> None:
        while True:
            await self._clock.sleep(period)
            for key in self.keys():
                self._enqueue(key)

    async def _work(self, *, enqueue_all: bool = True) -> None:
        """Run the workers until cancelled (then cancel and await their reconciles)."""
        if enqueue_all:
            for key in self.keys():
                self.queue.add(key)
        workers = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.wait(workers)

    async def _shard_work(self, shard: int) -> None:
        """While this replica holds ``shard``: its keys are enqueued and reconciled; when
        it stops, the shard's running reconciles are cancelled and awaited."""
        assert self.sharding is not None
        self._active.add(shard)
        try:
            for key in self.keys():
                if self.sharding.shard_of(key) == shard:
                    self.queue.add(key)
            await asyncio.Event().wait()
        finally:
            self._active.discard(shard)
            running = self._inflight.pop(shard, set())
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)

    async def _worker(self) -> None:
        queue = self.queue
        sharding = self.sharding
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            try:
                if sharding is None:
                    await self._reconcile_key(key)
                    continue
                shard = sharding.shard_of(key)
                if shard not in self._active:
                    self.stats.skipped += 1
                    continue
                # A task of the shard's, so that losing the shard cancels it (not the worker).
                task = asyncio.ensure_future(self._reconcile_key(key))
                running = self._inflight.setdefault(shard, set())
                running.add(task)
                try:
                    await asyncio.wait({task})
                finally:
                    running.discard(task)
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            finally:
                queue.done(key)

    async def _reconcile_key(self, key: ObjectKey) -> None:
        queue = self.queue
        self.stats.reconciles += 1
        try:
            result = await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.failures += 1
            name = type(exc).__name__
            self.stats.by_error[name] = self.stats.by_error.get(name, 0) + 1
            log.error("%s: reconciling %s failed (retry %d): %s: %s", self.name, key,
                      queue.num_requeues(key) + 1, name, exc,
                      exc_info=not isinstance(exc, _QUIET_ERRORS))
            queue.add_rate_limited(key)
            return
        if result is None or result == DONE:
            queue.forget(key)
        elif result.after is not None:
            self.stats.requeues += 1
            queue.forget(key)
            queue.add_after(key, result.after)
        elif result.requeue:
            self.stats.requeues += 1
            queue.add_rate_limited(key)
        else:  # pragma: no cover - Result has no other shape
            queue.forget(key)


# Expected while a cluster misbehaves: logged without a traceback.
_QUIET_ERRORS = (ApiError, TransportError)
