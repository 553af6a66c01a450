"""Sharding on a real API server: three replica processes split 1,000 ConfigMaps over 12
shard Leases; one is killed and its shards are taken over; one joins and the shards are
rebalanced; every object is reconciled and no key is ever reconciled by two at once."""

from __future__ import annotations

from pathlib import Path

import yaml

import kubeasync
from tests.helpers.sharding_scenario import run_sharding_scenario


async def test_real_three_replicas_one_thousand_objects_kill_and_join(
    real_kubeconfig: str, real_kube: kubeasync.Client, namespace: str, tmp_path: Path
) -> None:
    template = yaml.safe_load(Path(real_kubeconfig).read_text())  # noqa: ASYNC240
    outcome = await run_sharding_scenario(real_kube, template, tmp_path, namespace=namespace,
                                          objects=1000, shards=12)
    print(f"shares {outcome.shares_at_start} -> after the kill {outcome.shares_after_kill}"
          f" (in {outcome.takeover_seconds:.1f} s) -> after the join"
          f" {outcome.shares_after_join} (in {outcome.rebalance_seconds:.1f} s);"
          f" {outcome.reconciles} reconciles")
    assert outcome.reconciled >= outcome.keys
    assert outcome.overlaps == []
    assert sorted(outcome.shares_at_start.values()) == [4, 4, 4]
    assert sorted(outcome.shares_after_kill.values()) == [6, 6]
    assert sorted(outcome.shares_after_join.values()) == [4, 4, 4]
