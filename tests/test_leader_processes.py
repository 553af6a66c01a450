"""Three processes campaigning for one Lease on the embedded API server (the same scenario
runs on the real server: tests/integration/test_real_leader.py)."""

from __future__ import annotations

from pathlib import Path

from kubeasync.kinds import COORDINATION_V1_LEASES, SEED_RESOURCES
from kubeasync.testing import FakeApiServer
from tests.helpers.election_scenario import run_scenario

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 3.0, 2.0, 1.0


async def test_sigkill_failover_a_cut_off_leader_stops_first_and_no_terms_overlap(
    tmp_path: Path,
) -> None:
    async with FakeApiServer(resources=(*SEED_RESOURCES, COORDINATION_V1_LEASES)) as server:
        outcome = await run_scenario(
            server.kubeconfig(), server.url, tmp_path, namespace="default",
            lease_duration=LEASE_DURATION, renew_deadline=RENEW_DEADLINE,
            retry_period=RETRY_PERIOD)
        lease = server.get_object(COORDINATION_V1_LEASES, "lock")
    print(f"failover after SIGKILL: {outcome.failover_after_kill:.2f} s;"
          f" after cutting the leader off: {outcome.failover_after_cut:.2f} s")
    # The bound: a new leader within lease_duration + retry_period of the kill.
    assert outcome.failover_after_kill <= LEASE_DURATION + RETRY_PERIOD
    # The leader that could not renew stopped before the next one started...
    assert outcome.cut_leader_stopped < outcome.next_leader_started
    # ...and over the whole run no two leaders' terms overlapped.
    assert outcome.overlaps() == []
    assert len(outcome.intervals) >= 3
    assert lease is not None and lease["spec"]["leaseTransitions"] >= 2
