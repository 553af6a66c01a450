"""Sharding: N replicas of one controller split its keys, each shard a Lease.

    sharding = kubeasync.Sharding(kube, "websites", namespace="ops", shards=12)
    await sharding.run(work)    # runs work(shard) for each shard this replica holds

A key belongs to shard ``stable_hash(namespace/name) % shards`` (:meth:`Sharding.shard_of`;
SHA-256, so every process agrees). Each shard is a Lease named ``{name}-shard-{i}``, held
with exactly the semantics of :class:`~kubeasync.LeaderElection` (each shard *is* one
election): a replica runs a shard's work only while it holds the shard's Lease, and that
work is cancelled ``renew_deadline`` after the last successful renewal, before any other
replica can take the Lease over. So no key is ever handled by two replicas at once.

Who should hold what: every replica also holds its own member Lease
(``{name}-member-{digest of its identity}``), renewed like any other. The members are the
member Leases with a holder that this replica has seen change within their lease duration
(a member that exits releases its Lease and leaves at once; one that dies leaves when its
Lease expires). From the sorted members every replica computes the same assignment: each
member gets ``shards // n`` or one more, and each shard goes, in order, to the member that
ranks it highest (rendezvous hashing) among those with room left. A replica campaigns for
the shards assigned to it and gives up (stops the work, then releases the Lease) those
that are not, so when a replica joins or leaves the shards move to a fair share again.
While two replicas' views of the members differ, both may campaign for one shard: the
Lease still decides, and the views converge within a watch event or a lease duration.

All the Leases of one sharded controller carry the label ``kubeasync.io/lease-group`` and
are observed through one shared watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import KubeError
from ..core.names import validate_name, validate_namespace
from ..kinds import COORDINATION_V1_LEASES
from ..models.coordination_v1 import Lease
from .clock import MONOTONIC, Clock, DeadlineExceeded, run_until
from .informer import ChangesLagged
from .leader import LeaderElection

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.resource import ResourceApi

__all__ = ["GARBAGE_AFTER", "GROUP_LABEL", "Sharding", "assign_shards", "shard_of"]

log = logging.getLogger("kubeasync.sharding")

GROUP_LABEL = "kubeasync.io/lease-group"
"""The label of every Lease of one sharded controller (its value: the name, or a digest)."""

GARBAGE_AFTER = 10
"""A member Lease seen unchanged for this many lease durations is deleted."""

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard of ``namespace/name`` among ``shards`` (stable across processes)."""
    return _digest(f"{namespace}/{name}") % shards


def assign_shards(shards: int, members: Sequence[str]) -> list[str]:
    """Which member gets each shard: a fair share each (``shards // n`` or one more),
    each shard to the member ranking it highest among those with room left."""
    ordered = sorted(set(members))
    if not ordered:
        raise ValueError("assign_shards needs at least one member")
    base, extra = divmod(shards, len(ordered))
    room = {member: base + (1 if index < extra else 0) for index, member in enumerate(ordered)}
    owners: list[str] = []
    for shard in range(shards):
        ranked = sorted(ordered, key=lambda member: _digest(f"{shard}/{member}"), reverse=True)
        owner = next(member for member in ranked if room[member] > 0)
        room[owner] -= 1
        owners.append(owner)
    return owners


class Sharding:
    """Split the keys of a controller over ``shards`` Leases held by its replicas.

    Args:
        kube: the client.
        name: the sharded controller's name (the Leases' prefix; at most 200 characters).
        namespace: where the Leases live (default: the client's namespace).
        shards: how many shards (at least 1; more shards than replicas spread better).
        identity: this replica's identity, unique among the replicas (default: the host
            name and a random UUID).
        lease_duration: the timing of every Lease, as for
            :class:`~kubeasync.LeaderElection`.
        renew_deadline: likewise.
        retry_period: likewise.
        clock: the monotonic time source.
    """

    def __init__(
        self,
        kube: Client,
        name: str,
        *,
        namespace: str | None = None,
        shards: int = 12,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.name = validate_name(name)
        if len(self.name) > 200:
            raise ValueError(f"name must be at most 200 characters, got {len(self.name)}")
        self.namespace = validate_namespace(kube.namespace if namespace is None else namespace)
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be an int >= 1, got {shards!r}")
        self.shards = shards
        self.identity = identity if identity is not None else \
            f"{socket.gethostname()}_{uuid.uuid4()}"
        group = self.name if _LABEL_VALUE.match(self.name) else \
            f"g-{_digest(self.name):016x}"
        self.labels = {GROUP_LABEL: group}
        timing: dict[str, Any] = {"lease_duration": lease_duration,
                                  "renew_deadline": renew_deadline, "retry_period": retry_period}
        self._kube = kube
        self._clock = clock
        self._api: ResourceApi[Lease, Any] = kube.resource(COORDINATION_V1_LEASES)
        self._member_prefix = f"{self.name}-member-"
        self.member = LeaderElection(
            kube, self._member_name(self.identity), namespace=self.namespace,
            identity=self.identity, labels=self.labels, clock=clock, **timing)
        self.elections = [
            LeaderElection(kube, f"{self.name}-shard-{index}", namespace=self.namespace,
                           identity=self.identity, labels=self.labels, clock=clock, **timing)
            for index in range(shards)
        ]
        self.lease_duration = self.member.lease_duration
        self.retry_period = self.member.retry_period
        self._seen: dict[str, tuple[Lease, float]] = {}  # member Leases: (last seen, since)
        self._changed = asyncio.Event()
        self._campaigns: dict[int, asyncio.Task[None]] = {}
        self._stopping: dict[int, asyncio.Task[None]] = {}  # given up, still releasing
        self._held: set[int] = set()
        self.assignment: tuple[str, ...] = ()
        """The owner of each shard in this replica's current view."""

    def __repr__(self) -> str:
        return (f"<Sharding {self.namespace}/{self.name} identity={self.identity!r}"
                f" holds {sorted(self._held)} of {self.shards}>")

    def _member_name(self, identity: str) -> str:
        return f"{self._member_prefix}{hashlib.sha256(identity.encode()).hexdigest()[:16]}"

    # ------------------------------------------------------------ the view

    def shard_of(self, key: tuple[str, str]) -> int:
        """The shard of a ``(namespace, name)`` key."""
        return shard_of(key[0], key[1], self.shards)

    @property
    def held(self) -> frozenset[int]:
        """The shards whose work runs in this replica now."""
        return frozenset(self._held)

    @property
    def members(self) -> tuple[str, ...]:
        """The live members in this replica's view (itself included), sorted."""
        now = self._clock.now()
        live = {self.identity}
        for lease, since in self._seen.values():
            spec = lease.spec
            holder = spec.holder_identity if spec is not None else None
            seconds = spec.lease_duration_seconds if spec is not None else None
            duration = float(seconds) if seconds else self.lease_duration
            if holder and now < since + duration:
                live.add(holder)
        return tuple(sorted(live))

    def _next_expiry(self) -> float:
        """When the next member would leave (if its Lease does not change first)."""
        expiries = [since + float((lease.spec.lease_duration_seconds if lease.spec else None)
                                  or self.lease_duration)
                    for lease, since in self._seen.values()
                    if lease.spec is not None and lease.spec.holder_identity]
        now = self._clock.now()
        future = [expiry for expiry in expiries if expiry > now]
        return min(future) if future else math.inf

    # ------------------------------------------------------------ run

    async def run(self, work: Callable[[int], Awaitable[None]]) -> None:
        """Hold a fair share of the shards and run ``await work(shard)`` for each one
        held, until cancelled. ``work(shard)`` is cancelled (and awaited) when the shard
        is lost or given up; it should run until then. On cancellation every shard's
        work is stopped, every shard Lease released and the member Lease deleted."""
        informer = self._api.informer(namespace=self.namespace, label_selector=self.labels)
        await informer.start()
        follower = asyncio.ensure_future(self._follow(informer))
        member = asyncio.ensure_future(self.member.run(_forever))
        member.add_done_callback(self._wake)
        try:
            # Start from a complete view of the other members, and as a member.
            with contextlib.suppress(KubeError):
                await informer.wait_synced()
            while not self.member.is_leader and not member.done():
                await self._wait(self._clock.now() + self.retry_period)
            while True:
                if member.done():
                    member.result()  # raises what stopped it
                self._rebalance(work)
                await self._collect_garbage()
                await self._wait(min(self._next_expiry(),
                                     self._clock.now() + self.retry_period))
        finally:
            tasks = [*self._campaigns.values(), *self._stopping.values()]
            self._campaigns.clear()
            self._stopping.clear()
            for task in (*tasks, follower, member):
                task.cancel()
            await asyncio.wait({*tasks, follower, member})
            await informer.stop()
            with contextlib.suppress(KubeError, asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._api.delete(self.member.name, namespace=self.namespace),
                    self.member.renew_deadline)

    def _wake(self, _task: object = None) -> None:
        self._changed.set()

    async def _wait(self, deadline: float) -> None:
        self._changed.clear()
        with contextlib.suppress(DeadlineExceeded):
            await run_until(self._clock, self._changed.wait(), deadline)

    async def _follow(self, informer: Any) -> None:
        """Keep the view of the member Leases, and let every shard's election observe its
        Lease even while it is not campaigning: a campaign that starts when a replica
        dies then counts from when this replica last saw the dead one renew, not from its
        own first look (which would add a whole lease duration to every takeover)."""
        shard_prefix = f"{self.name}-shard-"
        while True:
            try:
                async for change in informer.changes():
                    name = change.key[1]
                    if name.startswith(shard_prefix):
                        index = name[len(shard_prefix):]
                        if index.isdigit() and int(index) < self.shards \
                                and change.type != "deleted":
                            self.elections[int(index)]._observe(change.object)
                        continue
                    if not name.startswith(self._member_prefix):
                        continue
                    if change.type == "deleted":
                        self._seen.pop(name, None)
                    else:
                        lease: Lease = change.object
                        seen = self._seen.get(name)
                        if seen is None or seen[0].metadata.resource_version \
                                != lease.metadata.resource_version:
                            self._seen[name] = (lease, self._clock.now())
                    self._changed.set()
                return
            except ChangesLagged:
                continue
            except KubeError as exc:
                log.warning("%r: the watch of the Leases failed (%s)", self, exc)
                return

    def _rebalance(self, work: Callable[[int], Awaitable[None]]) -> None:
        """Campaign for the shards assigned to this replica, give up the others."""
        owners = tuple(assign_shards(self.shards, self.members))
        if owners != self.assignment:
            mine = [shard for shard, owner in enumerate(owners) if owner == self.identity]
            log.info("%r: %d members, assigned shards %s", self, len(set(owners)), mine)
            self.assignment = owners
        for shard, stopping in list(self._stopping.items()):
            if stopping.done():
                del self._stopping[shard]
        for shard, owner in enumerate(owners):
            task: asyncio.Task[None] | None = self._campaigns.get(shard)
            if task is not None and task.done():
                del self._campaigns[shard]
                if not task.cancelled() and task.exception() is not None:
                    log.error("%r: the work of shard %d failed: %r", self, shard,
                              task.exception())
                task = None
            if owner == self.identity:
                if task is None and shard not in self._stopping:
                    task = asyncio.ensure_future(
                        self.elections[shard].run(functools.partial(self._hold, shard, work)))
                    task.add_done_callback(self._wake)
                    self._campaigns[shard] = task
            elif task is not None:
                # Not ours in this view: stop its work, then release its Lease (run()
                # does both when cancelled); it may be campaigned for again once done.
                del self._campaigns[shard]
                self._stopping[shard] = task
                task.cancel()

    async def _collect_garbage(self) -> None:
        """Delete member Leases that have been expired for long (replicas that died),
        each only in the version seen expired (a renewed one stays)."""
        now = self._clock.now()
        for name, (lease, since) in list(self._seen.items()):
            spec = lease.spec
            seconds = (spec.lease_duration_seconds if spec is not None else None) \
                or self.lease_duration
            if name == self.member.name or now < since + GARBAGE_AFTER * float(seconds):
                continue
            version = lease.metadata.resource_version
            try:
                await self._api.delete(
                    name, namespace=self.namespace,
                    preconditions={"resourceVersion": version} if version else None)
            except KubeError as exc:
                log.debug("%r: deleting the stale member Lease %s: %s", self, name, exc)
            self._seen.pop(name, None)

    async def _hold(self, shard: int, work: Callable[[int], Awaitable[None]]) -> None:
        self._held.add(shard)
        try:
            await work(shard)
        finally:
            self._held.discard(shard)


async def _forever() -> None:
    await asyncio.Event().wait()
