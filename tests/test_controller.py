"""The Controller against the embedded API server: sources, the queue, outcomes, leader
election and sharding in one process."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import (
    REQUEUE,
    Controller,
    ExponentialBackoff,
    LeaderElection,
    ObjectKey,
    Result,
    Sharding,
    generation_changed,
    requeue_after,
)
from kubeasync.core.descriptor import custom_resource
from kubeasync.kinds import CONFIG_MAPS, COORDINATION_V1_LEASES, PODS, SEED_RESOURCES
from kubeasync.runtime.clock import FakeClock
from kubeasync.runtime.sharding import assign_shards, shard_of
from kubeasync.testing import FakeApiServer

WIDGETS = custom_resource(group="example.com", version="v1", kind="Widget", plural="widgets")
FAST = ExponentialBackoff(base=0.001, maximum=0.01)


@pytest.fixture
def fake_apiserver_options() -> dict[str, Any]:
    return {"resources": (*SEED_RESOURCES, WIDGETS, COORDINATION_V1_LEASES)}


@pytest_asyncio.fixture
async def clients(fake_apiserver: FakeApiServer) -> AsyncIterator[Callable[[], kubeasync.Client]]:
    made: list[kubeasync.Client] = []

    def make() -> kubeasync.Client:
        made.append(kubeasync.Client(fake_apiserver.config()))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def widget(name: str, size: int = 1, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"size": size}}


def owned_by(owner: dict[str, Any], name: str) -> dict[str, Any]:
    meta = owner["metadata"]
    return {"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "example.com/v1", "kind": "Widget", "name": meta["name"],
        "uid": meta["uid"], "controller": True}]}, "data": {}}


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.01)


class Running:
    """A controller's run() as a task, cancelled at the end."""

    def __init__(self, controller: Controller[Any]) -> None:
        self.controller = controller
        self.task = asyncio.ensure_future(controller.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})
        if not self.task.cancelled() and self.task.exception() is not None:
            raise self.task.exception()  # type: ignore[misc]


# ------------------------------------------------------------------ sources


async def test_primary_owned_and_mapped_changes_enqueue_the_right_keys_after_sync(
    kube: kubeasync.Client
) -> None:
    widgets = kube.resource(WIDGETS)
    w1 = await widgets.create(widget("w1"))
    await widgets.create(widget("w2"))
    await kube.config_maps.create(owned_by(w1, "w1-child"))
    await kube.pods.create({"metadata": {"name": "p", "labels": {"widget": "w2"}},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    seen: list[ObjectKey] = []
    children_at_first_reconcile: list[int] = []

    async def reconcile(key: ObjectKey) -> None:
        if not seen:  # every informer is synced before the first reconcile
            children_at_first_reconcile.append(len(children.informer))
        seen.append(key)

    def widget_of(pod: Any) -> list[ObjectKey]:
        name = (pod.metadata.labels or {}).get("widget")
        return [ObjectKey(pod.metadata.namespace or "", name)] if name else []

    controller = Controller(kube, WIDGETS, reconcile, workers=2)
    controller.owns(CONFIG_MAPS).watches(PODS, widget_of)
    children = controller._sources[1]
    running = Running(controller)
    await until(lambda: set(seen) == {ObjectKey("default", "w1"), ObjectKey("default", "w2")})
    assert children_at_first_reconcile == [1]
    assert controller.get(ObjectKey("default", "w1")) is not None

    def count(name: str) -> int:
        return seen.count(ObjectKey("default", name))

    before = count("w1")
    await kube.config_maps.patch("w1-child", {"data": {"a": "1"}})  # owned: the owner's key
    await until(lambda: count("w1") > before)
    before = count("w1")
    await kube.config_maps.delete("w1-child")  # and its deletion too
    await until(lambda: count("w1") > before)
    before = count("w2")
    await kube.pods.patch("p", {"metadata": {"labels": {"x": "y"}}})  # mapped
    await until(lambda: count("w2") > before)
    # a ConfigMap without an owner, or owned by another kind, enqueues nothing
    total = len(seen)
    await kube.config_maps.create({"metadata": {"name": "orphan", "ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "Widget", "name": "w1", "uid": "u",
        "controller": True}]}})
    await asyncio.sleep(0.3)
    assert len(seen) == total
    await running.stop()


async def test_predicates_skip_status_only_updates(kube: kubeasync.Client) -> None:
    widgets = kube.resource(WIDGETS)
    await widgets.create(widget("w"))
    seen: list[ObjectKey] = []

    async def reconcile(key: ObjectKey) -> None:
        seen.append(key)

    controller = Controller(kube, WIDGETS, reconcile, predicates=[generation_changed])
    running = Running(controller)
    await until(lambda: len(seen) == 1)
    await widgets.patch_status("w", {"status": {"ready": True}})
    await widgets.patch("w", {"metadata": {"labels": {"a": "b"}}})
    await asyncio.sleep(0.3)
    assert len(seen) == 1  # neither changed the generation
    await widgets.patch("w", {"spec": {"size": 2}})
    await until(lambda: len(seen) == 2)
    await widgets.delete("w")
    await until(lambda: len(seen) == 3)  # deletions pass
    await running.stop()


# ------------------------------------------------------------------ outcomes


async def test_an_exception_is_logged_with_the_key_and_retried_with_backoff(
    kube: kubeasync.Client, caplog: pytest.LogCaptureFixture
) -> None:
    await kube.resource(WIDGETS).create(widget("flaky"))
    attempts: list[int] = []

    async def reconcile(key: ObjectKey) -> None:
        attempts.append(controller.queue.num_requeues(key))
        if len(attempts) <= 3:
            raise RuntimeError(f"attempt {len(attempts)} failed")

    controller = Controller(kube, WIDGETS, reconcile, rate_limiter=FAST)
    with caplog.at_level(logging.ERROR, logger="kubeasync.controller"):
        running = Running(controller)
        await until(lambda: len(attempts) == 4)
        await asyncio.sleep(0.05)
    assert attempts == [0, 1, 2, 3]  # each retry went through the rate limiter
    assert controller.queue.num_requeues(ObjectKey("default", "flaky")) == 0  # success: forgotten
    assert controller.stats.failures == 3 and controller.stats.by_error == {"RuntimeError": 3}
    messages = [r.getMessage() for r in caplog.records]
    assert "widgets: reconciling default/flaky failed (retry 1): RuntimeError: attempt 1 failed" \
        in messages
    assert len(attempts) == 4  # and nothing more after the success
    await running.stop()


async def test_requeue_and_requeue_after_on_the_queues_clock(kube: kubeasync.Client) -> None:
    await kube.resource(WIDGETS).create(widget("later"))
    await kube.resource(WIDGETS).create(widget("again"))
    clock = FakeClock()
    outcomes: dict[str, list[Result | None]] = {
        "later": [requeue_after(30), None], "again": [REQUEUE, REQUEUE, None]}
    seen: list[tuple[str, float]] = []

    async def reconcile(key: ObjectKey) -> Result | None:
        seen.append((key.name, clock.now()))
        return outcomes[key.name].pop(0)

    controller = Controller(kube, WIDGETS, reconcile, clock=clock,
                            rate_limiter=ExponentialBackoff(base=1.0, maximum=10.0))
    running = Running(controller)
    await until(lambda: len(seen) == 2)
    start = clock.now()
    for _ in range(4):
        await clock.wait_for_sleepers(1)
        clock.advance(1)
        await asyncio.sleep(0.05)
    # REQUEUE: after the key's backoff, 1 s then 2 s
    assert [t - start for name, t in seen if name == "again"][1:] == [1.0, 3.0]
    assert [name for name, _ in seen].count("later") == 1
    clock.advance(26)
    await until(lambda: [name for name, _ in seen].count("later") == 2)
    assert [t - start for name, t in seen if name == "later"][1] == 30.0
    assert controller.stats.requeues == 3
    await running.stop()


async def test_workers_never_share_a_key_and_a_change_during_a_reconcile_runs_it_again(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    widgets = kube.resource(WIDGETS)
    names = [f"w{i}" for i in range(6)]
    for name in names:
        await widgets.create(widget(name))
    active: collections.Counter[str] = collections.Counter()
    overlaps: list[str] = []
    last_version: dict[str, str] = {}

    async def reconcile(key: ObjectKey) -> None:
        active[key.name] += 1
        if active[key.name] > 1:
            overlaps.append(key.name)
        obj = controller.get(key)
        try:
            await asyncio.sleep(0.02)
        finally:
            active[key.name] -= 1
        if obj is not None:
            last_version[key.name] = obj["metadata"]["resourceVersion"]

    controller = Controller(kube, WIDGETS, reconcile, workers=4)
    running = Running(controller)
    for round_ in range(10):
        await asyncio.gather(*(widgets.patch(name, {"spec": {"size": round_}}) for name in names))
        await asyncio.sleep(0.005)

    def caught_up() -> bool:
        final = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                 for o in fake_apiserver.list_objects(WIDGETS)}
        return last_version == final and controller.queue.processing == 0

    await until(caught_up)
    assert overlaps == []
    assert controller.stats.reconciles < 6 * 11  # changes that came together were merged
    await running.stop()


# ------------------------------------------------------------------ leader election


async def test_only_the_leader_reconciles_and_the_next_one_takes_over(
    clients: Callable[[], kubeasync.Client]
) -> None:
    setup = clients()
    for name in ("a", "b", "c"):
        await setup.resource(WIDGETS).create(widget(name))
    seen: dict[str, list[str]] = {"one": [], "two": []}

    def make(who: str) -> Controller[Any]:
        kube = clients()

        async def reconcile(key: ObjectKey) -> None:
            seen[who].append(key.name)

        election = LeaderElection(kube, "widgets", identity=who, lease_duration=2,
                                  renew_deadline=1.5, retry_period=0.2)
        return Controller(kube, WIDGETS, reconcile, leader_election=election)

    one = Running(make("one"))
    await until(lambda: sorted(seen["one"]) == ["a", "b", "c"])
    two = Running(make("two"))
    await asyncio.sleep(0.5)
    await setup.resource(WIDGETS).patch("a", {"spec": {"size": 5}})
    await until(lambda: seen["one"].count("a") == 2)
    assert seen["two"] == []  # synced and standing by, never reconciling
    await one.stop()  # releases the Lease: "two" leads at once, starting with every key
    await until(lambda: sorted(seen["two"]) == ["a", "b", "c"])
    await two.stop()


# ------------------------------------------------------------------ sharding


def test_assignment_is_a_fair_share_and_stable() -> None:
    for members in (["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d", "e"]):
        owners = assign_shards(12, members)
        counts = collections.Counter(owners)
        assert set(counts) == set(members)
        assert max(counts.values()) - min(counts.values()) <= 1
        assert assign_shards(12, list(reversed(members))) == owners  # any order: the same
    # a member joining moves only some shards
    before, after = assign_shards(12, ["a", "b", "c"]), assign_shards(12, ["a", "b", "c", "d"])
    assert sum(x != y for x, y in zip(before, after, strict=True)) <= 6
    # the shard of a key is stable (a digest, not Python's salted hash)
    assert shard_of("default", "w1", 12) == shard_of("default", "w1", 12)
    assert len({shard_of("ns", f"n{i}", 12) for i in range(200)}) == 12


async def test_sharded_replicas_split_the_keys_and_take_over_a_leaving_replicas_shards(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client]
) -> None:
    setup = clients()
    names = [f"w{i:02d}" for i in range(40)]
    for name in names:
        await setup.resource(WIDGETS).create(widget(name))
    running_now: dict[str, str] = {}
    overlaps: list[str] = []
    reconciled: dict[str, set[str]] = collections.defaultdict(set)

    def make(who: str) -> tuple[Controller[Any], Sharding]:
        kube = clients()
        sharding = Sharding(kube, "widgets", identity=who, shards=6, lease_duration=2,
                            renew_deadline=1.5, retry_period=0.2)

        async def reconcile(key: ObjectKey) -> None:
            if key.name in running_now:
                overlaps.append(f"{key.name}: {running_now[key.name]} and {who}")
            running_now[key.name] = who
            try:
                await asyncio.sleep(0.01)
            finally:
                del running_now[key.name]
            reconciled[who].add(key.name)

        return Controller(kube, WIDGETS, reconcile, sharding=sharding, workers=3), sharding

    replicas = {who: make(who) for who in ("r1", "r2", "r3")}
    runs = {who: Running(controller) for who, (controller, _) in replicas.items()}

    def shares() -> dict[str, frozenset[int]]:
        return {who: sharding.held for who, (_, sharding) in replicas.items() if who in runs}

    await until(lambda: sorted(s for held in shares().values() for s in held) == list(range(6))
                and all(len(held) == 2 for held in shares().values()), timeout=30)
    await until(lambda: set().union(*reconciled.values()) >= set(names))
    for who, (_, sharding) in replicas.items():  # each reconciled only its shards' keys
        assert all(sharding.shard_of(("default", name)) in sharding.held
                   for name in reconciled[who])
    # r3 leaves: r1 and r2 take its shards, three each, and reconcile their keys
    r3_keys = reconciled["r3"]
    await runs.pop("r3").stop()
    reconciled.clear()
    await until(lambda: sorted(s for held in shares().values() for s in held) == list(range(6))
                and all(len(held) == 3 for held in shares().values()), timeout=30)
    await until(lambda: set().union(*reconciled.values()) >= r3_keys)
    assert overlaps == []
    lease = fake_apiserver.get_object(COORDINATION_V1_LEASES, "widgets-shard-0")
    assert lease is not None and lease["metadata"]["labels"] == {
        "kubeasync.io/lease-group": "widgets"}
    for run in runs.values():
        await run.stop()
    members = [o for o in fake_apiserver.list_objects(COORDINATION_V1_LEASES)
               if "-member-" in o["metadata"]["name"]]
    assert members == []  # members leaving delete their Lease
