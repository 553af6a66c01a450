"""Three candidate processes campaigning for one Lease: the scenario both tiers run.

Each candidate is a process (``tests/helpers/campaigner.py``) reaching the API server
through its own TCP forwarder (``tests/helpers/partition.py``), so the test can cut one
off. The scenario: the first leader is killed with SIGKILL (failover is measured from its
death to the next leader's start); the second leader is cut off from the server (it must
stop before the next one starts); at the end every candidate is stopped, and the leading
intervals of all of them must never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.helpers.partition import Partition, partition_proxy

CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass
class Candidate:
    identity: str
    process: asyncio.subprocess.Process
    log: Path
    net: Partition
    killed_at: float | None = None
    _events: list[tuple[str, float, list[str]]] = field(default_factory=list)
    _read: int = 0

    def events(self) -> list[tuple[str, float, list[str]]]:
        """The lines of its log so far (read incrementally: the test's event loop also
        runs the forwarders, and must not stall them parsing the same lines again)."""
        if self.log.exists():
            with open(self.log, "rb") as handle:
                handle.seek(self._read)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._read += len(complete)
            for line in complete.decode().splitlines():
                event, at, *rest = line.split()
                self._events.append((event, float(at), rest))
        return self._events

    def starts(self) -> list[float]:
        return [at for event, at, _ in self.events() if event == "start"]

    def stops(self) -> list[float]:
        return [at for event, at, _ in self.events() if event == "stop"]

    def leading(self) -> bool:
        return len(self.starts()) > len(self.stops()) and self.killed_at is None

    def intervals(self) -> list[tuple[float, float, str]]:
        """Its leading terms; one still open ends when the process was killed."""
        out: list[tuple[float, float, str]] = []
        start: float | None = None
        for event, at, _ in self.events():
            if event == "start":
                start = at
            elif event == "stop" and start is not None:
                out.append((start, at, self.identity))
                start = None
        if start is not None:
            end = self.killed_at if self.killed_at is not None else float("inf")
            out.append((start, end, self.identity))
        return out


@dataclass
class Outcome:
    failover_after_kill: float
    failover_after_cut: float
    cut_leader_stopped: float
    next_leader_started: float
    intervals: list[tuple[float, float, str]] = field(default_factory=list)

    def overlaps(self) -> list[str]:
        ordered = sorted(self.intervals)
        return [f"{a[2]} [{a[0]:.3f}, {a[1]:.3f}] and {b[2]} [{b[0]:.3f}, {b[1]:.3f}]"
                for a, b in itertools.pairwise(ordered) if b[0] < a[1]]


def kubeconfig_via(template: dict[str, Any], url: str, path: Path) -> Path:
    """A copy of a kubeconfig whose (current) cluster is reached at ``url``."""
    config = copy.deepcopy(template)
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = url
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


async def wait_until(predicate: Any, timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def candidates(
    template: dict[str, Any], server_url: str, tmp: Path, identities: list[str],
    arguments: list[str],
) -> AsyncIterator[list[Candidate]]:
    """Start one campaigner process per identity, each behind its own forwarder."""
    server = urlsplit(server_url)
    started: list[Candidate] = []
    async with contextlib.AsyncExitStack() as stack:
        for identity in identities:
            started.append(await start_candidate(stack, template, server, tmp, identity,
                                                 arguments))
        try:
            yield started
        finally:
            for candidate in started:
                if candidate.process.returncode is None:
                    candidate.process.send_signal(signal.SIGTERM)
            for candidate in started:
                try:
                    await asyncio.wait_for(candidate.process.wait(), 30)
                except asyncio.TimeoutError:
                    candidate.process.kill()
                    await candidate.process.wait()


async def start_candidate(
    stack: contextlib.AsyncExitStack, template: dict[str, Any], server: Any, tmp: Path,
    identity: str, arguments: list[str],
) -> Candidate:
    net = await stack.enter_async_context(
        partition_proxy(server.hostname or "127.0.0.1", server.port or 443))
    url = net.url.replace("https:", f"{server.scheme}:")
    kubeconfig = kubeconfig_via(template, url, tmp / f"kubeconfig-{identity}")
    log = tmp / f"{identity}.log"
    output = open(tmp / f"{identity}.out", "wb")  # noqa: SIM115, ASYNC230 - closed by the stack
    stack.callback(output.close)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.helpers.campaigner", str(kubeconfig), str(log),
        "--identity", identity, *arguments,
        cwd=CHECKOUT, stdout=output, stderr=output, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": f"{CHECKOUT / 'src'}:{CHECKOUT}"},
    )
    return Candidate(identity, process, log, net)


async def run_scenario(
    template: dict[str, Any], server_url: str, tmp: Path, *, namespace: str,
    lease_duration: float, renew_deadline: float, retry_period: float,
) -> Outcome:
    arguments = ["--namespace", namespace, "--lease-duration", str(lease_duration),
                 "--renew-deadline", str(renew_deadline), "--retry-period", str(retry_period)]
    patience = 60 + 4 * lease_duration
    async with candidates(template, server_url, tmp, ["a", "b", "c"], arguments) as running:
        await wait_until(lambda: all(c.events() for c in running), patience, "the processes")
        await wait_until(lambda: sum(c.leading() for c in running) == 1, patience,
                         "a first leader")
        first = next(c for c in running if c.leading())
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
        first.killed_at = time.monotonic()

        def next_start(after: float) -> float | None:
            found = [at for c in running for at in c.starts() if at > after]
            return min(found) if found else None

        await wait_until(lambda: next_start(first.killed_at) is not None, patience,
                         "a leader after the kill")
        second_started = next_start(first.killed_at)
        assert second_started is not None
        second = next(c for c in running if second_started in c.starts())

        cut_at = time.monotonic()
        second.net.partition()  # its renewals fail from now on
        await wait_until(lambda: next_start(cut_at) is not None and second.stops()
                         and second.stops()[-1] > cut_at, patience,
                         "the cut-off leader to stop and another to start")
        third_started = next_start(cut_at)
        assert third_started is not None
        stopped = second.stops()[-1]
        second.net.heal()
        await asyncio.sleep(retry_period * 3)  # the healed one campaigns again, as a candidate
    return Outcome(
        failover_after_kill=second_started - first.killed_at,
        failover_after_cut=third_started - cut_at,
        cut_leader_stopped=stopped,
        next_leader_started=third_started,
        intervals=[interval for c in running for interval in c.intervals()],
    )
