"""Replica processes of one sharded controller: the scenario of the sharding tests.

Three replicas (``tests/helpers/campaigner.py --shards``) reconcile the ConfigMaps of a
namespace; one is killed with SIGKILL and the others must take its shards over; a fourth
joins and the shards must be rebalanced. Every replica logs the beginning and end of every
reconcile, so the test checks that every object was reconciled and that no key was ever
reconciled by two replicas at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubeasync
from kubeasync.runtime.sharding import shard_of
from tests.helpers.election_scenario import Candidate, start_candidate, wait_until


def reconciles(candidate: Candidate) -> list[tuple[str, float, float]]:
    """``(key, begin, end)`` of every reconcile; one cut by a SIGKILL ends at the kill."""
    open_: dict[str, float] = {}
    out = []
    for event, at, rest in candidate.events():
        if event == "begin":
            open_[rest[0]] = at
        elif event == "end" and rest[0] in open_:
            out.append((rest[0], open_.pop(rest[0]), at))
    end = candidate.killed_at if candidate.killed_at is not None else float("inf")
    out.extend((key, began, end) for key, began in open_.items())
    return out


def held(candidate: Candidate) -> frozenset[int]:
    shards = [rest[0] for event, _, rest in candidate.events() if event == "shards"]
    if not shards or shards[-1] == "-":
        return frozenset()
    return frozenset(int(s) for s in shards[-1].split(","))


def reconciled_after(candidates: list[Candidate], after: float) -> set[str]:
    return {key for c in candidates for key, began, _ in reconciles(c) if began > after}


@dataclass
class ShardingOutcome:
    keys: set[str]
    reconciled: set[str]
    overlaps: list[str]
    shares_at_start: dict[str, int]
    shares_after_kill: dict[str, int]
    shares_after_join: dict[str, int]
    takeover_seconds: float
    rebalance_seconds: float
    reconciles: int = 0


def overlaps(candidates: list[Candidate]) -> list[str]:
    by_key: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
    for c in candidates:
        for key, began, ended in reconciles(c):
            by_key[key].append((began, ended, c.identity))
    found = []
    for key, intervals in by_key.items():
        intervals.sort()
        for (b1, e1, who1), (b2, e2, who2) in itertools.pairwise(intervals):
            if b2 < e1:
                found.append(f"{key}: {who1} [{b1:.3f}, {e1:.3f}] and {who2} [{b2:.3f}, {e2:.3f}]")
    return found


async def create_objects(kube: kubeasync.Client, namespace: str, name: str, count: int) -> set[str]:
    semaphore = asyncio.Semaphore(16)

    async def create(index: int) -> None:
        async with semaphore:
            await kube.config_maps.create(
                {"metadata": {"name": f"cm-{index:04d}", "labels": {"sharded": name}},
                 "data": {"i": str(index)}}, namespace=namespace)

    await asyncio.gather(*(create(i) for i in range(count)))
    return {f"{namespace}/cm-{i:04d}" for i in range(count)}


async def run_sharding_scenario(
    kube: kubeasync.Client, template: dict[str, Any], tmp: Path, *, namespace: str,
    objects: int, shards: int = 12, lease_duration: float = 4.0, renew_deadline: float = 3.0,
    retry_period: float = 0.5,
) -> ShardingOutcome:
    name = "cms"
    keys = await create_objects(kube, namespace, name, objects)
    arguments = ["--namespace", namespace, "--name", name, "--shards", str(shards),
                 "--lease-duration", str(lease_duration), "--renew-deadline",
                 str(renew_deadline), "--retry-period", str(retry_period),
                 "--reconcile-seconds", "0.002"]
    server = urlsplit(kube.config.server)
    patience = 120 + 6 * lease_duration
    running: list[Candidate] = []

    def shares(among: list[Candidate]) -> dict[str, int]:
        return {c.identity: len(held(c)) for c in among}

    def balanced(among: list[Candidate]) -> bool:
        counts = [len(held(c)) for c in among]
        union = set().union(*(held(c) for c in among))
        return (union == set(range(shards)) and sum(counts) == shards
                and max(counts) - min(counts) <= 1)

    async with contextlib.AsyncExitStack() as stack:
        try:
            for identity in ("r1", "r2", "r3"):
                running.append(await start_candidate(stack, template, server, tmp, identity,
                                                     arguments))
            await wait_until(lambda: balanced(running), patience, "a balanced start", 0.1)
            await wait_until(lambda: reconciled_after(running, 0) >= keys, patience,
                             "every object reconciled", 0.1)
            at_start = shares(running)

            victim = running[2]
            victim_shards = held(victim)
            victim.process.send_signal(signal.SIGKILL)
            await victim.process.wait()
            victim.killed_at = time.monotonic()
            survivors = running[:2]
            await wait_until(lambda: balanced(survivors), patience, "the takeover", 0.1)
            takeover = time.monotonic() - victim.killed_at
            victim_keys = {key for key in keys if shard_of(
                *key.split("/"), shards) in victim_shards}
            await wait_until(lambda: reconciled_after(survivors, victim.killed_at)
                             >= victim_keys, patience, "the victim's keys reconciled", 0.1)
            after_kill = shares(survivors)

            joined_at = time.monotonic()
            newcomer = await start_candidate(stack, template, server, tmp, "r4", arguments)
            running.append(newcomer)
            members = [*survivors, newcomer]
            await wait_until(lambda: balanced(members) and len(held(newcomer)) > 0, patience,
                             "the rebalance", 0.1)
            ready = [at for event, at, _ in newcomer.events() if event == "ready"]
            rebalance = time.monotonic() - (ready[0] if ready else joined_at)

            newcomer_shards = held(newcomer)
            moved = {key for key in keys if shard_of(*key.split("/"), shards)
                     in newcomer_shards}
            await wait_until(lambda: {k for k, b, _ in reconciles(newcomer)} >= moved,
                             patience, "the moved keys reconciled by the newcomer", 0.1)
            after_join = shares(members)

        finally:
            for candidate in running:
                if candidate.process.returncode is None:
                    candidate.process.send_signal(signal.SIGTERM)
            for candidate in running:
                try:
                    await asyncio.wait_for(candidate.process.wait(), 30)
                except asyncio.TimeoutError:
                    candidate.process.kill()
                    await candidate.process.wait()
    return ShardingOutcome(
        keys=keys,
        reconciled=reconciled_after(running, 0),
        overlaps=overlaps(running),
        shares_at_start=at_start,
        shares_after_kill=after_kill,
        shares_after_join=after_join,
        takeover_seconds=takeover,
        rebalance_seconds=rebalance,
        reconciles=sum(len(reconciles(c)) for c in running),
    )
