"""Leader election on the embedded API server, timed by a clock the tests move by hand.

Every test runs the candidates against real HTTP (the embedded server serving Leases) and
reads time from one FakeClock: a 15-second lease expires when the test says so. Times are
asserted in fake seconds, which the machine's load cannot shift.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import LeaderElection
from kubeasync.kinds import COORDINATION_V1_LEASES, SEED_RESOURCES
from kubeasync.models.coordination_v1 import Lease
from kubeasync.runtime.clock import FakeClock
from kubeasync.testing import FakeApiServer
from kubeasync.transport.policy import NO_RETRY
from tests.helpers.partition import partition_proxy

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/default/leases/lock"
TIMING = {"lease_duration": 15, "renew_deadline": 10, "retry_period": 2}


@pytest.fixture
def fake_apiserver_options() -> dict[str, Any]:
    return {"resources": (*SEED_RESOURCES, COORDINATION_V1_LEASES)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def clients(fake_apiserver: FakeApiServer) -> AsyncIterator[Callable[[], kubeasync.Client]]:
    made: list[kubeasync.Client] = []

    def make() -> kubeasync.Client:
        client = kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def election(kube: kubeasync.Client, identity: str, clock: FakeClock,
             **options: Any) -> LeaderElection:
    return LeaderElection(kube, "lock", identity=identity, clock=clock,
                          **{**TIMING, **options})


class Work:
    """A leader's work that records, in fake seconds, when it started and stopped."""

    def __init__(self, clock: FakeClock, result: object = None) -> None:
        self.clock = clock
        self.intervals: list[list[float]] = []
        self.running = asyncio.Event()
        self.finish = asyncio.Event()
        self.result = result

    async def __call__(self) -> object:
        self.intervals.append([self.clock.now(), float("inf")])
        self.running.set()
        try:
            await self.finish.wait()
            return self.result
        finally:
            self.intervals[-1][1] = self.clock.now()
            self.running.clear()


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait in real time (bounded) for something the code under test does without the
    clock (an HTTP round trip, a watch event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.002)


async def settle(clock: FakeClock, server: FakeApiServer) -> None:
    """Wait (real time) until nothing moves: no new request reaches the server and the
    sleepers stay the same for a few milliseconds. Work that comes later than that only
    happens later in fake time, which the tests' one-sided assertions allow."""
    last: object = None
    stable = 0
    while stable < 3:
        await asyncio.sleep(0.002)
        snapshot = (len(server.requests), clock.sleepers, clock.next_deadline)
        stable = stable + 1 if snapshot == last else 0
        last = snapshot


async def advance(clock: FakeClock, server: FakeApiServer, seconds: float) -> None:
    """Move the fake clock forward by ``seconds``, stopping at every sleeper's deadline
    on the way and letting the code under test run (and do its HTTP) at each."""
    target = clock.now() + seconds
    while True:
        await settle(clock, server)
        deadline = clock.next_deadline
        if deadline is None or deadline > target:
            clock.advance(max(0.0, target - clock.now()))
            await settle(clock, server)
            return
        clock.advance(max(0.0, deadline - clock.now()))


def lease_of(server: FakeApiServer) -> dict[str, Any]:
    found = server.get_object(COORDINATION_V1_LEASES, "lock")
    assert found is not None
    return found


# ------------------------------------------------------------------ validation


async def test_the_timings_are_validated_as_client_go_does(
    clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    kube = clients()
    with pytest.raises(ValueError, match=r"lease_duration .* greater than renew_deadline"):
        LeaderElection(kube, "lock", lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match=r"renew_deadline .* greater than 1.2 \* retry_period"):
        LeaderElection(kube, "lock", lease_duration=15, renew_deadline=2.4, retry_period=2)
    with pytest.raises(ValueError, match="retry_period must be a number of seconds > 0"):
        LeaderElection(kube, "lock", retry_period=0)
    with pytest.raises(ValueError, match="identity"):
        LeaderElection(kube, "lock", identity="")
    with pytest.raises(ValueError, match="name"):
        LeaderElection(kube, "bad/name")
    default = LeaderElection(kube, "lock")
    assert default.identity and default.namespace == "default"
    assert LeaderElection(kube, "lock").identity != default.identity  # unique per instance


# ------------------------------------------------------------------ acquiring and renewing


async def test_the_first_candidate_creates_the_lease_and_renews_from_its_cache(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    a = election(clients(), "a", clock)
    work = Work(clock, result="finished")
    run = asyncio.ensure_future(a.run(work))
    await asyncio.wait_for(work.running.wait(), 10)
    assert a.is_leader and a.holder == "a" and a.terms == 1
    spec = lease_of(fake_apiserver)["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0 and spec["acquireTime"] == spec["renewTime"]
    requests_before = len(fake_apiserver.requests)
    versions = {lease_of(fake_apiserver)["metadata"]["resourceVersion"]}
    for _ in range(5):  # five renewals, one per retry_period
        await clock.wait_for_sleepers(1)
        clock.advance(2)
        await until(lambda: lease_of(fake_apiserver)["metadata"]["resourceVersion"]
                    not in versions)
        versions.add(lease_of(fake_apiserver)["metadata"]["resourceVersion"])
    on_lease = [(m, p) for m, p in fake_apiserver.requests[requests_before:]
                if p.split("?")[0] == LEASE_PATH]
    assert on_lease == [("PUT", LEASE_PATH)] * 5  # renewals from the cache: no GET
    spec = lease_of(fake_apiserver)["spec"]
    assert spec["acquireTime"] != spec["renewTime"]  # kept from the acquisition
    assert spec["leaseTransitions"] == 0
    work.finish.set()
    assert await asyncio.wait_for(run, 10) == "finished"
    # released on exit: no holder, and the election is not leading any more
    assert "holderIdentity" not in lease_of(fake_apiserver)["spec"]
    assert not a.is_leader


async def test_a_candidate_waits_lease_duration_from_when_it_saw_the_lease_change(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    # A dead holder's Lease, with a renewTime far in the past and one in the future: the
    # timestamps written in it must not matter (clock skew), only this client's observation.
    for renew_time in ("1970-01-01T00:00:00.000000Z", "2999-01-01T00:00:00.000000Z"):
        fake_apiserver.store.compact()
        with contextlib.suppress(Exception):
            fake_apiserver.delete_object(COORDINATION_V1_LEASES, "lock")
        fake_apiserver.put_object(COORDINATION_V1_LEASES, {
            "metadata": {"name": "lock", "namespace": "default"},
            "spec": {"holderIdentity": "dead", "leaseDurationSeconds": 15,
                     "renewTime": renew_time, "acquireTime": renew_time,
                     "leaseTransitions": 4}})
        b = election(clients(), "b", clock)
        work = Work(clock)
        started = clock.now()
        run = asyncio.ensure_future(b.run(work))
        await until(lambda b=b: b.holder == "dead")
        await advance(clock, fake_apiserver, 14.8)
        assert not work.running.is_set() and not b.is_leader, renew_time
        await advance(clock, fake_apiserver, 2.5)
        await asyncio.wait_for(work.running.wait(), 10)
        assert work.intervals[0][0] >= started + 15
        assert lease_of(fake_apiserver)["spec"]["leaseTransitions"] == 5
        assert b.holder == "b" and b.transitions == 5
        run.cancel()
        await asyncio.wait({run})


async def test_the_holders_lease_duration_counts_not_the_candidates(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    fake_apiserver.put_object(COORDINATION_V1_LEASES, {
        "metadata": {"name": "lock", "namespace": "default"},
        "spec": {"holderIdentity": "slow", "leaseDurationSeconds": 40}})
    b = election(clients(), "b", clock)
    work = Work(clock)
    run = asyncio.ensure_future(b.run(work))
    await until(lambda: b.holder == "slow")
    await advance(clock, fake_apiserver, 39.5)
    assert not work.running.is_set()
    await advance(clock, fake_apiserver, 3)
    await asyncio.wait_for(work.running.wait(), 10)
    run.cancel()
    await asyncio.wait({run})


async def test_a_renewal_seen_resets_the_candidates_wait(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    a, b = election(clients(), "a", clock), election(clients(), "b", clock)
    a_work, b_work = Work(clock), Work(clock)
    a_run = asyncio.ensure_future(a.run(a_work))
    await asyncio.wait_for(a_work.running.wait(), 10)
    b_run = asyncio.ensure_future(b.run(b_work))
    await until(lambda: b.holder == "a")
    # A keeps renewing for 60 fake seconds: B never takes over.
    await advance(clock, fake_apiserver, 60)
    assert a.is_leader and not b_work.intervals
    assert lease_of(fake_apiserver)["spec"]["holderIdentity"] == "a"
    for run in (a_run, b_run):
        run.cancel()
    await asyncio.wait({a_run, b_run})


# ------------------------------------------------------------------ losing


async def test_a_leader_that_cannot_renew_stops_at_its_deadline_before_another_starts(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    server = fake_apiserver
    async with partition_proxy(server.host, server.port) as net:
        cut_off = kubeasync.Client(
            kubeasync.ClusterConfig(server=net.url.replace("https:", "http:"),
                                    namespace="default"), retry=NO_RETRY)
        async with cut_off:
            a = election(cut_off, "a", clock)
            b = election(clients(), "b", clock)
            a_work, b_work = Work(clock), Work(clock)
            a_run = asyncio.ensure_future(a.run(a_work))
            await asyncio.wait_for(a_work.running.wait(), 10)
            b_run = asyncio.ensure_future(b.run(b_work))
            await until(lambda: b.holder == "a")
            await advance(clock, fake_apiserver, 4.2)  # two renewals
            renewed_at = a._renewed_at
            assert renewed_at > a_work.intervals[0][0]
            net.partition()  # A's renewals now fail (connections refused)
            await advance(clock, fake_apiserver, renewed_at + 9.9 - clock.now())
            assert a.is_leader and a_work.running.is_set()  # until its deadline
            await advance(clock, fake_apiserver, 30)
            await asyncio.wait_for(b_work.running.wait(), 10)
            # A stopped at its renew deadline (to a step), not later, and not early.
            assert renewed_at + 10 <= a_work.intervals[0][1] <= renewed_at + 10.1
            assert not a.is_leader
            # B started only lease_duration after it saw A's last renewal.
            assert b_work.intervals[0][0] >= renewed_at + 15
            assert a_work.intervals[0][1] < b_work.intervals[0][0]
            assert lease_of(server)["spec"]["leaseTransitions"] == 1
            net.heal()
            for run in (a_run, b_run):
                run.cancel()
            await asyncio.wait({a_run, b_run})
    # A campaigned again after it lost; it never led twice at once with B.
    assert a.terms == 1 and b.terms == 1


async def test_a_leader_that_sees_another_holder_stops_at_once(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    a = election(clients(), "a", clock)
    work = Work(clock)
    run = asyncio.ensure_future(a.run(work))
    await asyncio.wait_for(work.running.wait(), 10)
    # Someone overwrites the Lease (an operator, a misconfigured candidate).
    lease = lease_of(fake_apiserver)
    fake_apiserver.registry.replace(COORDINATION_V1_LEASES, "default", "lock", {
        **lease, "spec": {**lease["spec"], "holderIdentity": "intruder"}})
    await advance(clock, fake_apiserver, 2.2)  # A's next renewal: 409, then it reads the Lease
    await until(lambda: not work.running.is_set())
    assert work.intervals[0][1] < work.intervals[0][0] + 10  # before its deadline
    assert not a.is_leader and a.holder == "intruder"
    run.cancel()
    await asyncio.wait({run})


# ------------------------------------------------------------------ races and releases


async def test_two_candidates_taking_one_lease_at_once_one_wins_the_other_gets_409(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    fake_apiserver.put_object(COORDINATION_V1_LEASES, {
        "metadata": {"name": "lock", "namespace": "default"},
        "spec": {"holderIdentity": "dead", "leaseDurationSeconds": 15, "leaseTransitions": 0}})
    candidates = [election(clients(), name, clock) for name in ("b", "c", "d")]
    for candidate in candidates:  # each sees the Lease once, at the same fake time
        assert await candidate._try() == "other"
    clock.advance(15)
    outcomes = await asyncio.gather(*(candidate._try() for candidate in candidates))
    assert sorted(outcomes) == ["held", "other", "other"]
    assert lease_of(fake_apiserver)["spec"]["leaseTransitions"] == 1
    winner = candidates[outcomes.index("held")]
    assert lease_of(fake_apiserver)["spec"]["holderIdentity"] == winner.identity
    conflicts = [p for m, p in fake_apiserver.requests if m == "PUT"]
    assert len(conflicts) == 3  # three writes with one resourceVersion: two got 409


async def test_release_on_exit_lets_the_next_candidate_take_over_at_once(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    a, b = election(clients(), "a", clock), election(clients(), "b", clock)
    a_work, b_work = Work(clock, result=1), Work(clock)
    a_run = asyncio.ensure_future(a.run(a_work))
    await asyncio.wait_for(a_work.running.wait(), 10)
    b_run = asyncio.ensure_future(b.run(b_work))
    await until(lambda: b.holder == "a")
    at = clock.now()
    a_work.finish.set()
    assert await asyncio.wait_for(a_run, 10) == 1
    # B saw the release on its watch: it took the Lease without the clock moving.
    await asyncio.wait_for(b_work.running.wait(), 10)
    assert clock.now() == at
    assert a_work.intervals[0][1] <= b_work.intervals[0][0]
    assert lease_of(fake_apiserver)["spec"]["leaseTransitions"] == 1
    b_run.cancel()
    await asyncio.wait({b_run})
    assert "holderIdentity" not in lease_of(fake_apiserver)["spec"]  # cancelled: released


async def test_work_that_raises_releases_and_the_error_reaches_the_caller(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    a = election(clients(), "a", clock)

    async def fails() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await asyncio.wait_for(a.run(fails), 10)
    assert "holderIdentity" not in lease_of(fake_apiserver)["spec"]
    with pytest.raises(RuntimeError, match="already running"):
        runner = asyncio.ensure_future(a.run(Work(clock)))
        await until(lambda: a.is_leader)
        await a.run(Work(clock))
    runner.cancel()
    await asyncio.wait({runner})


async def test_without_release_the_next_candidate_waits_for_expiry(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    a = election(clients(), "a", clock, release_on_exit=False)
    b = election(clients(), "b", clock)
    a_work, b_work = Work(clock), Work(clock)
    a_run = asyncio.ensure_future(a.run(a_work))
    await asyncio.wait_for(a_work.running.wait(), 10)
    b_run = asyncio.ensure_future(b.run(b_work))
    await until(lambda: b.holder == "a")
    a_run.cancel()
    await asyncio.wait({a_run})
    assert lease_of(fake_apiserver)["spec"]["holderIdentity"] == "a"
    await advance(clock, fake_apiserver, 14)
    assert not b_work.intervals
    await advance(clock, fake_apiserver, 4)
    await asyncio.wait_for(b_work.running.wait(), 10)
    b_run.cancel()
    await asyncio.wait({b_run})


async def test_polls_when_the_lease_cannot_be_watched(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    # Every watch of Leases fails: the candidates still elect, by GETs as client-go does.
    fake_apiserver.faults.fail_next(10_000, status=403, method="GET", path=r"/leases$")
    a, b = election(clients(), "a", clock), election(clients(), "b", clock)
    a_work, b_work = Work(clock, result="a"), Work(clock)
    a_run = asyncio.ensure_future(a.run(a_work))
    await asyncio.wait_for(a_work.running.wait(), 10)
    b_run = asyncio.ensure_future(b.run(b_work))
    await until(lambda: b.holder == "a")
    a_work.finish.set()
    await asyncio.wait_for(a_run, 10)
    await advance(clock, fake_apiserver, 5)  # B's next try (at most 2.2 retry periods away)
    await asyncio.wait_for(b_work.running.wait(), 10)
    b_run.cancel()
    await asyncio.wait({b_run})


def test_lease_model_round_trip() -> None:
    # The Lease the election writes decodes back with its fields (a guard on the model).
    import msgspec

    data = b'{"metadata":{"name":"l"},"spec":{"holderIdentity":"a","leaseTransitions":2}}'
    lease = msgspec.json.decode(data, type=Lease)
    assert lease.spec is not None and lease.spec.lease_transitions == 2


async def test_a_deleted_lease_is_taken_over_only_when_its_holders_term_is_over(
    fake_apiserver: FakeApiServer, clients: Callable[[], kubeasync.Client], clock: FakeClock
) -> None:
    # client-go creates a missing Lease at once; here a candidate that saw a holder waits
    # out that holder's lease first (it may still be working), then creates it.
    fake_apiserver.put_object(COORDINATION_V1_LEASES, {
        "metadata": {"name": "lock", "namespace": "default"},
        "spec": {"holderIdentity": "busy", "leaseDurationSeconds": 15}})
    b = election(clients(), "b", clock)
    work = Work(clock)
    run = asyncio.ensure_future(b.run(work))
    await until(lambda: b.holder == "busy")
    seen_at = clock.now()
    fake_apiserver.delete_object(COORDINATION_V1_LEASES, "lock")
    await advance(clock, fake_apiserver, 14)
    assert not work.intervals and fake_apiserver.get_object(COORDINATION_V1_LEASES, "lock") is None
    await advance(clock, fake_apiserver, 5)
    await asyncio.wait_for(work.running.wait(), 10)
    assert work.intervals[0][0] >= seen_at + 15
    assert lease_of(fake_apiserver)["spec"]["holderIdentity"] == "b"
    run.cancel()
    await asyncio.wait({run})
