"""Leader election on a real API server: three processes campaigning for one Lease, the
leader killed with SIGKILL, a leader cut off from the server, and no two terms overlapping
(the scenario of tests/test_leader_processes.py, here against coordination.k8s.io/v1)."""

from __future__ import annotations

from pathlib import Path

import yaml

import kubeasync
from kubeasync.kinds import COORDINATION_V1_LEASES
from tests.helpers.election_scenario import run_scenario

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4.0, 3.0, 1.0


async def test_real_sigkill_failover_cut_off_leader_and_no_overlap(
    real_kubeconfig: str, real_kube: kubeasync.Client, namespace: str, tmp_path: Path
) -> None:
    template = yaml.safe_load(Path(real_kubeconfig).read_text())  # noqa: ASYNC240
    outcome = await run_scenario(
        template, real_kube.config.server, tmp_path, namespace=namespace,
        lease_duration=LEASE_DURATION, renew_deadline=RENEW_DEADLINE,
        retry_period=RETRY_PERIOD)
    print(f"real server: failover after SIGKILL {outcome.failover_after_kill:.2f} s;"
          f" after cutting the leader off {outcome.failover_after_cut:.2f} s")
    assert outcome.failover_after_kill <= LEASE_DURATION + RETRY_PERIOD
    assert outcome.cut_leader_stopped < outcome.next_leader_started
    assert outcome.overlaps() == []
    lease = await real_kube.resource(COORDINATION_V1_LEASES).get("lock", namespace=namespace)
    assert lease.spec is not None and (lease.spec.lease_transitions or 0) >= 2
    # every candidate released the Lease on the way out (SIGTERM): nobody holds it
    assert not lease.spec.holder_identity
