"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm.

    election = kubeasync.LeaderElection(kube, "my-controller", namespace="ops",
                                        lease_duration=15, renew_deadline=10, retry_period=2)
    await election.run(work)    # campaigns, runs work() while leading, returns its result

Kubernetes is the coordination engine: the Lease object is the lock, and the API server's
optimistic concurrency (every write carries the resourceVersion it read; a concurrent
writer gets 409 Conflict and loses) decides every race. Nothing here trusts a clock that
another process wrote.

The algorithm (client-go's ``tools/leaderelection``)
-----------------------------------------------------
A candidate tries to acquire the Lease, then waits ``retry_period`` stretched by a random
factor in ``[1, 2.2]`` (client-go's jitter) and tries again. One try:

1. A leader renews first from its **cached** Lease (its last write's answer): one PUT,
   no GET. If that fails (409: someone else wrote it; or any error), it goes on with 2.
2. GET the Lease; if there is none, CREATE it holding it (a concurrent creator gets 409
   AlreadyExists and loses), unless this client saw another holder whose lease has not
   expired yet (the Lease was deleted under it: it may still be working).
3. If another holder has it and the Lease has **not changed for lease_duration on this
   client's monotonic clock** (counted from the moment this client first saw the Lease in
   its current resourceVersion), back off: the holder is alive, or has not been dead long
   enough. The ``renewTime`` written in the Lease is never read: the writer's clock may be
   skewed.
4. Otherwise PUT the Lease with this candidate as holder, carrying the resourceVersion of
   step 2 (409: someone else won). ``leaseTransitions`` counts the changes of holder;
   ``acquireTime`` is kept while the holder stays the same.

A leader renews every ``retry_period``. Its leadership is valid for ``renew_deadline``
counted from the moment it **sent** its last successful write; when the deadline passes
without a new success (the server is unreachable, every write fails), ``work()`` is
cancelled at once, and the candidate campaigns again. A leader that sees another holder
stops at once too.

Why two leaders never overlap: another candidate takes over only after it has seen the
Lease unchanged for ``lease_duration``, counted from when it saw the leader's last write,
which is after the leader sent it; the old leader stopped ``renew_deadline`` after sending
it, and ``renew_deadline < lease_duration``. The difference is the time ``work()`` has to
finish its cancellation; the guarantee also assumes that the two machines' monotonic
clocks run at about the same rate (not that they agree).

Observing the Lease: each election also watches its Lease (a shared informer selecting it
by name, or by ``labels``), so that a candidate sees every renewal as it happens and tries
again exactly when the lease would expire, or at once when the holder releases it. Failover
after a leader dies is then about ``lease_duration`` after its last renewal. Without the
watch (it is refused, say) the tries still GET the Lease, as client-go does.

On exit (``work()`` returned or raised, or ``run()`` was cancelled) the leader stops
``work()``, then releases the Lease: it clears the holder, so the next candidate takes over
at its next try instead of waiting for the lease to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from ..core.errors import ApiError, KubeError, NotFound
from ..core.names import validate_name, validate_namespace
from ..kinds import COORDINATION_V1_LEASES
from ..models import format_time
from ..models.coordination_v1 import Lease, LeaseSpec
from ..models.meta_v1 import ObjectMeta
from .clock import MONOTONIC, Clock, DeadlineExceeded, run_until
from .informer import ChangesLagged, Informer

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.resource import ResourceApi

__all__ = ["JITTER_FACTOR", "LeaderElection"]

R = TypeVar("R")

log = logging.getLogger("kubeasync.leader")

JITTER_FACTOR = 1.2
"""A candidate waits ``retry_period * (1 + JITTER_FACTOR * random())`` between tries."""

_Try = Literal["held", "other", "error"]


def _positive_seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _wall_now() -> str:
    return format_time(datetime.now(timezone.utc), micro=True)


class LeaderElection:
    """Elect one leader among the candidates sharing a Lease (see the module docstring).

    Args:
        kube: the client.
        name: the Lease's name (shared by all candidates).
        namespace: the Lease's namespace (default: the client's).
        identity: this candidate's identity, unique among the candidates of every
            process (default: the host name and a random UUID). Two processes with one
            identity would both take themselves for the holder.
        lease_duration: seconds a candidate waits, from when it last saw the Lease
            change, before it takes the Lease over (written as ``leaseDurationSeconds``,
            rounded up).
        renew_deadline: seconds a leader keeps leading after sending its last successful
            renewal.
        retry_period: seconds between tries (candidates add jitter).
        release_on_exit: clear the holder when ``run()`` ends.
        labels: labels of the Lease when this election creates it; the election then
            watches the Leases with these labels (elections sharing them share one
            watch) instead of its Lease by name.
        clock: the monotonic time source (a :class:`~kubeasync.runtime.clock.FakeClock`
            in tests).

    Requires ``lease_duration > renew_deadline > 1.2 * retry_period`` (client-go's rule);
    otherwise ``ValueError``.
    """

    def __init__(
        self,
        kube: Client,
        name: str,
        *,
        namespace: str | None = None,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_exit: bool = True,
        labels: Mapping[str, str] | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.name = validate_name(name)
        self.namespace = validate_namespace(kube.namespace if namespace is None else namespace)
        if identity is None:
            identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        if not isinstance(identity, str) or not identity or len(identity) > 1024:
            raise ValueError(f"identity must be a non-empty str (at most 1024 characters),"
                             f" got {identity!r}")
        self.identity = identity
        self.lease_duration = _positive_seconds(lease_duration, "lease_duration")
        self.renew_deadline = _positive_seconds(renew_deadline, "renew_deadline")
        self.retry_period = _positive_seconds(retry_period, "retry_period")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(f"lease_duration ({lease_duration}) must be greater than"
                             f" renew_deadline ({renew_deadline})")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(f"renew_deadline ({renew_deadline}) must be greater than"
                             f" {JITTER_FACTOR} * retry_period ({retry_period})")
        if not isinstance(release_on_exit, bool):
            raise ValueError(f"release_on_exit must be a bool, got {release_on_exit!r}")
        self.release_on_exit = release_on_exit
        if labels is not None and (not isinstance(labels, Mapping) or not labels or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
            raise ValueError(f"labels must be a non-empty mapping of str to str, got {labels!r}")
        self.labels = dict(labels) if labels is not None else None
        if not isinstance(clock, Clock):
            raise ValueError(f"clock must be a kubeasync.runtime.clock.Clock, got {clock!r}")
        self._clock = clock
        self._api: ResourceApi[Lease, Any] = kube.resource(COORDINATION_V1_LEASES)
        # What this client last saw of the Lease, and when (monotonic) it first saw it so.
        self._observed: Lease | None = None
        self._observed_version: str | None = None
        self._observed_at = -math.inf
        self._changed = asyncio.Event()  # set when the watch shows a new version
        # The leader's own view: its last write's answer, and when that write was sent.
        self._lease: Lease | None = None
        self._leading = False
        self._renewed_at = -math.inf
        self._valid_until = -math.inf
        self._running = False
        self.terms = 0
        """How many times this candidate became the leader."""

    def __repr__(self) -> str:
        role = "leader" if self.is_leader else f"candidate (holder {self.holder!r})"
        return (f"<LeaderElection {self.namespace}/{self.name} identity={self.identity!r}"
                f" {role}>")

    # ------------------------------------------------------------ the current view

    @property
    def is_leader(self) -> bool:
        """Whether this candidate leads now: it holds the Lease and its renew deadline
        has not passed (it turns False at the deadline, even before ``work()`` is
        cancelled)."""
        return self._leading and self._clock.now() < self._valid_until

    @property
    def holder(self) -> str | None:
        """The holder of the Lease as this client last saw it (``None``: nobody)."""
        if self._observed is None or self._observed.spec is None:
            return None
        return self._observed.spec.holder_identity or None

    @property
    def transitions(self) -> int:
        """The Lease's ``leaseTransitions`` as last seen."""
        spec = self._observed.spec if self._observed is not None else None
        return (spec.lease_transitions or 0) if spec is not None else 0

    @property
    def lease(self) -> Lease | None:
        """The Lease as this client last saw it."""
        return self._observed

    # ------------------------------------------------------------ run

    async def run(self, work: Callable[[], Awaitable[R]]) -> R:
        """Campaign; run ``await work()`` while leading; return what it returns.

        When leadership is lost (the renew deadline passed, or another holder took the
        Lease), ``work()`` is cancelled and awaited, and the candidate campaigns again
        (calling ``work()`` anew once it leads again). When ``work()`` returns or raises,
        or ``run()`` is cancelled, the Lease is released (``release_on_exit``) and the
        result, exception or cancellation goes to the caller. ``work()`` must end soon
        after it is cancelled: within ``lease_duration - renew_deadline`` seconds, the
        time before another candidate may take over.
        """
        if self._running:
            raise RuntimeError(f"{self!r} is already running")
        self._running = True
        informer = self._informer()
        follower: asyncio.Task[None] | None = None
        try:
            try:
                await informer.start()
            except KubeError as exc:  # pragma: no cover - start() does no I/O
                log.warning("%r: cannot watch the Lease (%s); polling only", self, exc)
            else:
                follower = asyncio.ensure_future(self._follow(informer))
            while True:
                await self._campaign()
                done = await self._lead(work)
                if done is not None:
                    return done.result()
        finally:
            if follower is not None:
                follower.cancel()
                await asyncio.wait({follower})
            await informer.stop()
            self._leading = False
            self._running = False

    def _informer(self) -> Informer[Lease]:
        if self.labels is not None:
            return self._api.informer(namespace=self.namespace, label_selector=self.labels)
        return self._api.informer(namespace=self.namespace,
                                  field_selector={"metadata.name": self.name})

    async def _follow(self, informer: Informer[Lease]) -> None:
        """Observe every version of the Lease as the watch delivers it."""
        key = (self.namespace, self.name)
        while True:
            try:
                async for change in informer.changes():
                    if change.key != key:
                        continue
                    if change.type == "deleted":
                        # Gone, but its holder's term is not over: see _try.
                        self._observed_version = None
                        self._changed.set()
                    elif self._observe(change.object):
                        self._changed.set()
                return
            except ChangesLagged:
                continue
            except KubeError as exc:
                log.warning("%r: the watch of the Lease failed (%s); polling only", self, exc)
                return

    # ------------------------------------------------------------ campaigning

    async def _campaign(self) -> None:
        """Try until this candidate holds the Lease."""
        while True:
            self._changed.clear()
            if await self._try_bounded() == "held":
                self.terms += 1
                log.info("%r: became the leader (term %d, %d transitions)", self,
                         self.terms, self.transitions)
                return
            await self._wait_to_retry()

    async def _try_bounded(self) -> _Try:
        try:
            return await run_until(self._clock, self._try(),
                                   self._clock.now() + self.renew_deadline)
        except DeadlineExceeded:
            return "error"

    async def _wait_to_retry(self) -> None:
        """Until the next try: ``retry_period`` with jitter, or the moment the holder's
        lease expires in this client's view, or at once when the watch shows the Lease
        released."""
        clock = self._clock
        retry_at = clock.now() + self.retry_period * (1 + JITTER_FACTOR * random.random())
        while True:
            expiry = self._expiry()
            deadline = retry_at if expiry is None else min(retry_at, expiry)
            if self._changed.is_set():
                self._changed.clear()
                if self.holder is None:
                    return  # released (or deleted): try at once
                continue  # renewed: the expiry moved
            if clock.now() >= deadline:
                return
            with contextlib.suppress(DeadlineExceeded):
                await run_until(clock, self._changed.wait(), deadline)

    def _expiry(self) -> float | None:
        """When the observed holder's lease expires in this client's view (``None`` when
        nobody else holds it)."""
        holder = self.holder
        if holder is None or holder == self.identity:
            return None
        return self._observed_at + self._observed_duration()

    def _observed_duration(self) -> float:
        spec = self._observed.spec if self._observed is not None else None
        seconds = spec.lease_duration_seconds if spec is not None else None
        return float(seconds) if seconds is not None and seconds > 0 else self.lease_duration

    def _observe(self, lease: Lease) -> bool:
        """Record a version of the Lease; its clock starts when it is first seen."""
        version = lease.metadata.resource_version
        if version is not None and version == self._observed_version:
            return False
        self._observed, self._observed_version = lease, version
        self._observed_at = self._clock.now()
        return True

    # ------------------------------------------------------------ one try

    async def _try(self) -> _Try:
        """Acquire or renew once: ``"held"``, ``"other"`` (someone else validly holds it)
        or ``"error"``."""
        sent = self._clock.now()
        # 1. The leader's fast path: renew from its cached Lease, without a GET.
        if self._leading and self._lease is not None and sent < self._valid_until:
            try:
                renewed = await self._api.replace(self.name, self._record(self._lease),
                                                  namespace=self.namespace)
            except KubeError as exc:
                log.info("%r: renewing from the cached Lease failed (%s); reading it", self, exc)
            else:
                self._hold(renewed, sent)
                return "held"
        # 2. Read it, create it if there is none.
        try:
            current = await self._api.get(self.name, namespace=self.namespace)
        except NotFound:
            # Deleted under a holder this client saw (an operator's kubectl delete): that
            # holder may still be working, so its term ends as if the Lease were there.
            expiry = self._expiry()
            if expiry is not None and self._clock.now() < expiry:
                self._leading = False
                return "other"
            return await self._create(sent)
        except KubeError as exc:
            log.info("%r: reading the Lease failed: %s", self, exc)
            return "error"
        self._observe(current)
        spec = current.spec or LeaseSpec()
        holder = spec.holder_identity or None
        # 3. Held by another, and not seen unchanged for its lease duration yet: back off.
        if holder is not None and holder != self.identity \
                and self._clock.now() < self._observed_at + self._observed_duration():
            self._leading = False
            return "other"
        # 4. Take it (or keep it), with the resourceVersion just read.
        try:
            taken = await self._api.replace(self.name, self._record(current),
                                            namespace=self.namespace)
        except ApiError as exc:
            log.info("%r: taking the Lease failed: %s", self, exc)
            return "other" if exc.code == 409 else "error"
        except KubeError as exc:
            log.info("%r: taking the Lease failed: %s", self, exc)
            return "error"
        self._hold(taken, sent)
        return "held"

    async def _create(self, sent: float) -> _Try:
        now = _wall_now()
        lease = Lease(
            metadata=ObjectMeta(name=self.name, namespace=self.namespace, labels=self.labels),
            spec=LeaseSpec(holder_identity=self.identity,
                           lease_duration_seconds=math.ceil(self.lease_duration),
                           acquire_time=now, renew_time=now, lease_transitions=0),
        )
        try:
            created = await self._api.create(lease, namespace=self.namespace)
        except ApiError as exc:
            log.info("%r: creating the Lease failed: %s", self, exc)
            return "other" if exc.code == 409 else "error"
        except KubeError as exc:
            log.info("%r: creating the Lease failed: %s", self, exc)
            return "error"
        self._hold(created, sent)
        return "held"

    def _record(self, base: Lease) -> Lease:
        """``base`` (with its resourceVersion) with this candidate as the holder."""
        spec = base.spec or LeaseSpec()
        now = _wall_now()
        keeps = spec.holder_identity == self.identity
        transitions = spec.lease_transitions or 0
        new_spec = msgspec.structs.replace(
            spec,
            holder_identity=self.identity,
            lease_duration_seconds=math.ceil(self.lease_duration),
            renew_time=now,
            acquire_time=spec.acquire_time if keeps and spec.acquire_time else now,
            lease_transitions=transitions if keeps else transitions + 1,
        )
        return msgspec.structs.replace(base, spec=new_spec)

    def _hold(self, lease: Lease, sent: float) -> None:
        self._lease = lease
        self._observe(lease)
        self._leading = True
        self._renewed_at = sent
        self._valid_until = sent + self.renew_deadline

    # ------------------------------------------------------------ leading

    async def _lead(self, work: Callable[[], Awaitable[R]]) -> asyncio.Future[R] | None:
        """Run ``work()`` while renewing; its finished task, or ``None`` when leadership
        was lost (``work()`` cancelled)."""
        work_task: asyncio.Future[R] = asyncio.ensure_future(work())
        renewer = asyncio.ensure_future(self._keep_renewing())
        both: set[asyncio.Future[Any]] = {work_task, renewer}
        try:
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            work_task.cancel()
            renewer.cancel()
            await asyncio.wait(both)
            await self._release()
            raise
        if not work_task.done():
            # The renew deadline passed (or another holder took over): stop now.
            log.warning("%r: lost the leadership; stopping the work", self)
            self._leading = False
            work_task.cancel()
            await asyncio.wait({work_task})
            if work_task.cancelled():
                return None
            # It finished (or failed) while being cancelled: that is its outcome.
        renewer.cancel()
        await asyncio.wait({renewer})
        await self._release()
        return work_task

    async def _keep_renewing(self) -> None:
        """Renew every ``retry_period``; return once leadership is lost."""
        clock = self._clock
        while True:
            await clock.sleep_until(min(self._renewed_at + self.retry_period, self._valid_until))
            while True:
                if clock.now() >= self._valid_until:
                    return
                try:
                    outcome = await run_until(clock, self._try(), self._valid_until)
                except DeadlineExceeded:
                    return
                if outcome == "held":
                    break
                if outcome == "other":
                    return
                await clock.sleep_until(min(clock.now() + self.retry_period, self._valid_until))

    async def _release(self) -> None:
        """Clear the holder (with the cached resourceVersion: a newer writer keeps it)."""
        lease, self._lease = self._lease, None
        self._leading = False
        self._valid_until = -math.inf
        if not self.release_on_exit or lease is None or lease.spec is None \
                or lease.spec.holder_identity != self.identity:
            return
        now = _wall_now()
        released = msgspec.structs.replace(
            lease, spec=msgspec.structs.replace(
                lease.spec, holder_identity=None, lease_duration_seconds=1,
                acquire_time=now, renew_time=now))
        try:
            answer = await asyncio.wait_for(
                self._api.replace(self.name, released, namespace=self.namespace),
                self.renew_deadline)
        except (KubeError, asyncio.TimeoutError) as exc:
            log.info("%r: releasing the Lease failed: %s", self, exc)
        else:
            self._observe(answer)
            log.info("%r: released the Lease", self)
