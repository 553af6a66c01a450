"""The soak: N resilient watchers and M writers against the embedded API server, with
faults injected all along; at the end every watcher's view must equal the server's state.

    python benchmarks/soak.py --duration 300 --watchers 8 --writers 4 [--seed S]
    python benchmarks/soak.py --help

Not a speed benchmark and not run in CI (``tests/test_soak_smoke.py`` runs it for a few
seconds). What it does:

- starts a :class:`~kubeasync.testing.FakeApiServer` **in this process**: the faults are
  injected through its Python testing API (``server.faults``, ``compact()``,
  ``end_watches()``), which acts on its in-memory state and whose "nothing is sent until the
  next await" guarantee only holds on the same event loop. The price is that the server,
  the writers and the watchers share one core; a soak checks correctness, not speed.
- N watchers, each with its own client, over ConfigMaps and Pods, namespaced and across
  all namespaces, some with label selectors, resyncing by paginated LIST (small pages, so
  continue tokens expire under compaction) or by streamed initial events, and informers
  (read through ``changes()``, as a controller would). Each keeps its own view
  (key -> resourceVersion, object) built only from the events it receives, and checks
  every event as it applies it: an ADDED for a key it holds, or an ADDED/MODIFIED whose
  resourceVersion is not newer than the last one it applied for that key, is a
  **duplicate**; a MODIFIED for a key it does not hold is a **gap** (a lost ADDED); a
  DELETED for a key it does not hold, or older than what it holds, is a duplicate.
  (resourceVersions are opaque to kubeasync; the soak compares them as integers because
  it knows its fake.)
- M writers: random creates, replaces, merge patches (labels move objects in and out of
  the selectors) and deletes over a bounded set of names in a few namespaces.
- a fault injector that, at random intervals, injects one fault at a time, going through
  every kind in a shuffled round: a watch cut mid-line, a watch cut after n events, every
  open watch dropped, every open watch ended cleanly, a stalled watch (recovered by the
  watchers' idle timeout), a compaction of the history (re-watches then meet 410 and
  relist), a 429 with Retry-After and a 503 (on the watchers' next GET).
- then the writers stop, the faults stop, the server's state is listed once per watcher
  (with its selector), and the soak waits until every view equals it. What still differs
  at the timeout is a **loss**.

It prints a summary table and exits non-zero on any loss, gap, duplicate, watcher error or
failure to converge. The counts of relists, reconnects, synthesized events and failures
come from each watcher's (and informer's) ``stats``; the views are built from the events
alone.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and str(ROOT) not in sys.path[:1]:
    sys.path.insert(0, str(ROOT))  # this checkout's kubeasync, not an installed one

import kubeasync  # noqa: E402
from kubeasync import Backoff, DeletedEvent  # noqa: E402
from kubeasync.testing import FakeApiServer, FaultRule  # noqa: E402

NAMESPACES = ("ns-0", "ns-1", "ns-2")
TIERS = ("a", "b", "c")
FAULT_KINDS = ("cut_mid_line", "cut_after_n", "drop_all", "end_clean", "stall", "compact",
               "429", "503")
WATCHED_PATHS = r"/(configmaps|pods)$"  # the watchers' lists and watches (writers never GET)


@dataclass
class Options:
    duration: float = 60.0
    watchers: int = 8
    writers: int = 4
    seed: int | None = None
    names: int = 30  # names per namespace and resource
    write_pause: float = 0.01  # seconds each writer waits between writes
    fault_interval: float = 0.5  # mean seconds between faults
    watch_timeout: int = 5  # the watchers' timeout_seconds (each watch lasts T..2T-1 s)
    idle_timeout: float = 3.0  # seconds of silence after which a watcher reconnects
    backoff_max: float = 2.0  # the watchers' backoff cap (initial 0.05 s)
    history: int = 1000  # changes the fake keeps for re-watches; older ones answer 410
    converge_timeout: float = 60.0


@dataclass(frozen=True)
class Spec:
    """What one watcher watches, and how."""

    resource: str  # "config_maps" | "pods"
    namespace: str | None  # None: all namespaces
    selector: str | None = None
    initial_events: bool | None = False  # False: LIST; True: sendInitialEvents; None: auto
    page_size: int = 500
    informer: bool = False

    @property
    def label(self) -> str:
        scope = self.namespace or "all"
        how = {False: "list", True: "initial", None: "auto"}[self.initial_events]
        sel = f" [{self.selector}]" if self.selector else ""
        kind = "informer " if self.informer else ""
        return f"{kind}{self.resource}/{scope}{sel} {how}/{self.page_size}"


SPECS = [
    Spec("config_maps", "ns-0", initial_events=False, page_size=4),
    Spec("config_maps", None, initial_events=True),
    Spec("config_maps", None, "tier=a", initial_events=False, page_size=7),
    Spec("config_maps", None, initial_events=None, page_size=10, informer=True),
    Spec("pods", None, initial_events=False, page_size=5),
    Spec("config_maps", "ns-1", "tier in (a,b)", initial_events=None),
    Spec("pods", "ns-2", "tier!=c", initial_events=True),
    Spec("pods", None, "tier=b", initial_events=False, page_size=3, informer=True),
]


# --------------------------------------------------------------------------- views


def identity(obj: Any) -> tuple[tuple[str, str], int]:
    meta = obj.metadata
    return (meta.namespace or "", meta.name), int(meta.resource_version)


def content(obj: Any) -> Any:
    """What the final comparison looks at besides the resourceVersion."""
    meta = obj.metadata
    return (meta.uid, meta.labels or {}, meta.annotations or {}, getattr(obj, "data", None))


@dataclass
class Counters:
    """A watcher's figures: events from its own view, the rest from its WatcherStats."""

    events: collections.Counter[str] = field(default_factory=collections.Counter)
    tombstones: int = 0
    resyncs: int = 0  # the initial one included
    synthesized: int = 0  # events computed by a resync after the initial one
    watch_opens: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    lagged: int = 0  # informer consumers that fell behind and resubscribed

    def absorb(self, stats: kubeasync.WatcherStats) -> None:
        self.resyncs = stats.resyncs
        self.synthesized = stats.resync_events
        self.watch_opens = stats.watches
        self.failures = collections.Counter(stats.failures)

    @property
    def relists(self) -> int:
        return max(0, self.resyncs - 1)

    @property
    def reconnects(self) -> int:
        return max(0, self.watch_opens - 1)


class View:
    """A watcher's view of its collection, built from the events it receives."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.objects: dict[tuple[str, str], tuple[int, Any]] = {}
        self.newest: dict[tuple[str, str], int] = {}  # last rv applied, deletions included
        self.duplicates: list[str] = []
        self.gaps: list[str] = []
        self.counters = Counters()

    def reset(self) -> None:
        self.objects.clear()
        self.newest.clear()

    def apply(self, kind: str, obj: Any, *, tombstone: bool = False) -> None:
        key, rv = identity(obj)
        self.counters.events[kind] += 1
        held = self.objects.get(key)
        newest = self.newest.get(key, 0)
        if kind == "ADDED":
            if held is not None:
                self.duplicates.append(f"ADDED {key} rv={rv} while holding rv={held[0]}")
            elif rv <= newest:
                self.duplicates.append(f"ADDED {key} rv={rv} not newer than rv={newest}")
            self.objects[key] = (rv, obj)
        elif kind == "MODIFIED":
            if held is None:
                self.gaps.append(f"MODIFIED {key} rv={rv}, which the view does not hold")
            elif rv <= held[0]:
                self.duplicates.append(f"MODIFIED {key} rv={rv} not newer than rv={held[0]}")
            self.objects[key] = (rv, obj)
        else:
            if tombstone:
                self.counters.tombstones += 1
            if held is None:
                self.duplicates.append(f"DELETED {key} rv={rv}, which the view does not hold")
            elif rv < held[0]:
                self.duplicates.append(f"DELETED {key} rv={rv} older than rv={held[0]}")
            self.objects.pop(key, None)
        self.newest[key] = max(newest, rv)

    def differences(self, expected: dict[tuple[str, str], tuple[int, Any]]) -> list[str]:
        out = []
        for key, (rv, want) in expected.items():
            held = self.objects.get(key)
            if held is None:
                out.append(f"missing {key} rv={rv}")
            elif held[0] != rv:
                out.append(f"{key} at rv={held[0]}, the server has rv={rv}")
            elif content(held[1]) != content(want):
                out.append(f"{key} rv={rv}: content differs")
        out.extend(f"stale {key} rv={held[0]} (deleted on the server)"
                   for key, held in self.objects.items() if key not in expected)
        return out


# --------------------------------------------------------------------------- the parts


class WatcherRun:
    """One watcher (or informer) with its own client, feeding its own view."""

    def __init__(self, index: int, spec: Spec, server: FakeApiServer, options: Options) -> None:
        self.spec = spec
        self.view = View(f"w{index} {spec.label}")
        self.server = server
        self.options = options
        self.client: kubeasync.Client | None = None
        self.informer: kubeasync.Informer[Any] | None = None
        self.watcher: kubeasync.Watcher[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self.converged_after: float | None = None
        self.expected: dict[tuple[str, str], tuple[int, Any]] = {}

    def _watch_options(self) -> dict[str, Any]:
        spec, options = self.spec, self.options
        return {
            "namespace": spec.namespace,
            "all_namespaces": spec.namespace is None,
            "label_selector": spec.selector,
            "send_initial_events": spec.initial_events,
            "page_size": spec.page_size,
            "timeout_seconds": options.watch_timeout,
            "idle_timeout": options.idle_timeout,
            "backoff": Backoff(initial=0.05, maximum=options.backoff_max, reset_after=10.0),
        }

    async def start(self) -> None:
        self.client = kubeasync.Client(self.server.config())
        api = getattr(self.client, self.spec.resource)
        if self.spec.informer:
            self.informer = api.informer(**self._watch_options())
            await self.informer.start()
            self.task = asyncio.create_task(self._follow_informer())
        else:
            self.watcher = api.watch(**self._watch_options())
            self.task = asyncio.create_task(self._follow_watcher())

    async def _follow_watcher(self) -> None:
        assert self.watcher is not None
        try:
            async for event in self.watcher:
                self.view.apply(event.type, event.object,
                                tombstone=isinstance(event, DeletedEvent)
                                and event.final_state_unknown)
        except Exception as exc:
            self.error = exc

    async def _follow_informer(self) -> None:
        assert self.informer is not None
        kinds = {"added": "ADDED", "updated": "MODIFIED", "deleted": "DELETED"}
        try:
            while True:
                try:
                    async for change in self.informer.changes():
                        self.view.apply(kinds[change.type], change.object)
                    return
                except kubeasync.ChangesLagged:
                    # the consumer was too slow: the replay of the store starts a new view
                    self.view.counters.lagged += 1
                    self.view.reset()
        except Exception as exc:
            self.error = exc

    def store_differences(self) -> list[str]:
        """For an informer, its store (informer.list()) compared with the server too."""
        if self.informer is None:
            return []
        store = {identity(obj)[0]: (identity(obj)[1], obj) for obj in self.informer.list()}
        view = View("store")
        view.objects = store
        return [f"store: {d}" for d in view.differences(self.expected)]

    async def stop(self) -> None:
        if self.watcher is not None:
            self.view.counters.absorb(self.watcher.stats)
            await self.watcher.aclose()
        if self.informer is not None:
            self.view.counters.absorb(self.informer.stats)
            await self.informer.stop()
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})
        if self.client is not None:
            await self.client.close()


@dataclass
class WriteCounts:
    ok: collections.Counter[str] = field(default_factory=collections.Counter)
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)


def pod_body(name: str, rng: random.Random) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"tier": rng.choice(TIERS)},
                     "annotations": {"n": str(rng.randrange(10**6))}},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


def config_map_body(name: str, rng: random.Random) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"tier": rng.choice(TIERS)}},
        "data": {"n": str(rng.randrange(10**6))},
    }


async def writer(kube: kubeasync.Client, rng: random.Random, deadline: float,
                 options: Options, counts: WriteCounts, exists: set[tuple[str, ...]]) -> None:
    """Random writes; ``exists`` (shared by the writers) is what they believe exists, so
    that most writes are accepted (another writer may have changed it meanwhile)."""
    ops = ["replace", "patch", "delete"]
    while time.monotonic() < deadline:
        resource = "pods" if rng.random() < 0.3 else "config_maps"
        api = getattr(kube, resource)
        body_of = pod_body if resource == "pods" else config_map_body
        namespace = rng.choice(NAMESPACES)
        name = f"{resource.replace('_', '')[:3]}-{rng.randrange(options.names)}"
        key = (resource, namespace, name)
        op = rng.choices(ops, weights=[2, 3, 2])[0] if key in exists else "create"
        try:
            if op == "create":
                await api.create(body_of(name, rng), namespace=namespace)
            elif op == "replace":
                await api.replace(name, body_of(name, rng), namespace=namespace)
            elif op == "patch":
                patch: dict[str, Any] = {"metadata": {"labels": {"tier": rng.choice(TIERS)}}}
                if resource == "config_maps":
                    patch["data"] = {"p": str(rng.randrange(10**6))}
                await api.patch(name, patch, namespace=namespace,
                                patch_type=kubeasync.PatchType.MERGE)
            else:
                await api.delete(name, namespace=namespace, grace_period_seconds=0)
            counts.ok[op] += 1
            if op == "delete":
                exists.discard(key)
            else:
                exists.add(key)
        except kubeasync.NotFound as exc:
            exists.discard(key)
            counts.rejected[f"{op}: {type(exc).__name__}"] += 1
        except (kubeasync.AlreadyExists, kubeasync.Conflict) as exc:
            exists.add(key)
            counts.rejected[f"{op}: {type(exc).__name__}"] += 1
        except Exception as exc:  # a writer's failure is reported, the soak goes on
            counts.errors.append(f"{op} {namespace}/{name}: {exc!r}")
        if options.write_pause:
            await asyncio.sleep(options.write_pause)
        else:
            await asyncio.sleep(0)


@dataclass
class FaultCounts:
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    rules: list[tuple[str, FaultRule]] = field(default_factory=list)
    server_wide: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def triggered(self) -> collections.Counter[str]:
        """Faults that reached a client: rules that matched a request, compactions, and
        drops and ends of the open watches when there were some."""
        out = collections.Counter(self.server_wide)
        for kind, rule in self.rules:
            out[kind] += rule.hits
        return out


def inject(server: FakeApiServer, kind: str, rng: random.Random, counts: FaultCounts) -> None:
    faults = server.faults
    rule: FaultRule | None = None
    if kind == "cut_mid_line":
        rule = faults.drop_watch_after(rng.randrange(4), mid_line=True, path=WATCHED_PATHS)
    elif kind == "cut_after_n":
        rule = faults.drop_watch_after(rng.randrange(6), path=WATCHED_PATHS)
    elif kind == "drop_all":
        counts.server_wide[kind] += server.end_watches(abort=True) > 0
    elif kind == "end_clean":
        counts.server_wide[kind] += server.end_watches(abort=False) > 0
    elif kind == "stall":
        rule = faults.stall_next_watch(path=WATCHED_PATHS)
    elif kind == "compact":
        server.compact()
        counts.server_wide[kind] += 1
    elif kind == "429":
        rule = faults.fail_next(status=429, retry_after=1, method="GET", path=WATCHED_PATHS)
    elif kind == "503":
        rule = faults.fail_next(status=503, method="GET", path=WATCHED_PATHS)
    else:
        raise ValueError(kind)
    counts.injected[kind] += 1
    if rule is not None:
        counts.rules.append((kind, rule))


async def injector(server: FakeApiServer, rng: random.Random, deadline: float,
                   options: Options, counts: FaultCounts) -> None:
    """One fault at a time, at random intervals, every kind in each shuffled round."""
    round_: list[str] = []
    while True:
        await asyncio.sleep(rng.expovariate(1.0 / options.fault_interval))
        if time.monotonic() >= deadline:
            return
        if not round_:
            round_ = list(FAULT_KINDS)
            rng.shuffle(round_)
        inject(server, round_.pop(), rng, counts)


# --------------------------------------------------------------------------- the soak


@dataclass
class Result:
    options: dict[str, Any]
    seconds: float
    writes: dict[str, int]
    rejected_writes: dict[str, int]
    writer_errors: list[str]
    faults_injected: dict[str, int]
    faults_triggered: dict[str, int]
    watchers: list[dict[str, Any]]
    events: dict[str, int]
    synthesized: int
    tombstones: int
    relists: int
    reconnects: int
    failures: dict[str, int]
    duplicates: int
    gaps: int
    losses: int
    watcher_errors: list[str]
    converged: bool
    convergence_seconds: float | None
    server_objects: dict[str, int]
    server_changes: dict[str, int]

    @property
    def ok(self) -> bool:
        return (self.converged and self.losses == 0 and self.duplicates == 0
                and self.gaps == 0 and not self.watcher_errors and not self.writer_errors)


async def expected_state(kube: kubeasync.Client, spec: Spec
                         ) -> dict[tuple[str, str], tuple[int, Any]]:
    api = getattr(kube, spec.resource)
    page = await api.list(namespace=spec.namespace, all_namespaces=spec.namespace is None,
                          label_selector=spec.selector)
    out = {}
    for obj in page.items or []:
        key, rv = identity(obj)
        out[key] = (rv, obj)
    return out


async def soak(options: Options, progress: Callable[[str], None] | None = None) -> Result:
    say = progress or (lambda _message: None)
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    options.seed = seed
    rng = random.Random(seed)
    random.seed(seed)  # the watchers' jitter and server timeouts too
    server = FakeApiServer(
        namespaces=("default", *NAMESPACES),
        watch_history=options.history,
        bookmark_interval=max(0.2, options.idle_timeout / 3),
    )
    runs: list[WatcherRun] = []
    writes = WriteCounts()
    faults = FaultCounts()
    changes: collections.Counter[str] = collections.Counter()
    server.store.subscribe(lambda event: changes.update((event.resource,)))
    async with server:
        for i in range(options.watchers):
            run = WatcherRun(i, SPECS[i % len(SPECS)], server, options)
            await run.start()
            runs.append(run)
        say(f"seed {seed}: {options.watchers} watchers, {options.writers} writers,"
            f" {options.duration:g} s")
        started = time.monotonic()
        deadline = started + options.duration
        async with kubeasync.Client(server.config()) as kube:
            exists: set[tuple[str, ...]] = set()
            tasks = [asyncio.create_task(writer(kube, random.Random(rng.random()), deadline,
                                                options, writes, exists))
                     for _ in range(options.writers)]
            tasks.append(asyncio.create_task(
                injector(server, random.Random(rng.random()), deadline, options, faults)))
            while not all(t.done() for t in tasks):
                await asyncio.wait(tasks, timeout=min(30.0, max(1.0, options.duration / 10)))
                elapsed = time.monotonic() - started
                if elapsed < options.duration:
                    say(f"{elapsed:5.0f} s: {sum(writes.ok.values())} writes,"
                        f" {sum(faults.injected.values())} faults,"
                        f" {sum(sum(r.view.counters.events.values()) for r in runs)} events")
            for t in tasks:
                t.result()
            seconds = time.monotonic() - started
            # Writers and faults have stopped: the server's state no longer changes.
            server.faults.clear()
            stopped = time.monotonic()
            for run in runs:
                run.expected = await expected_state(kube, run.spec)
            say(f"writers and faults stopped after {seconds:.1f} s; waiting for convergence")
            while True:
                now = time.monotonic()
                for run in runs:
                    if run.converged_after is None and not run.view.differences(run.expected) \
                            and not run.store_differences():
                        run.converged_after = now - stopped
                if all(run.converged_after is not None or run.error is not None
                       for run in runs):
                    break
                if now - stopped > options.converge_timeout:
                    break
                await asyncio.sleep(0.05)
            converge_seconds = time.monotonic() - stopped
            server_objects = {
                resource: len((await getattr(kube, resource).list(all_namespaces=True)).items
                              or [])
                for resource in ("config_maps", "pods")
            }
        for run in runs:
            await run.stop()

    watchers = []
    events: collections.Counter[str] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()
    losses = 0
    for run in runs:
        c = run.view.counters
        diffs = run.view.differences(run.expected) + run.store_differences()
        losses += len(diffs)
        events.update(c.events)
        failures.update(c.failures)
        watchers.append({
            "watcher": run.view.label,
            "events": dict(c.events),
            "synthesized": c.synthesized,
            "tombstones": c.tombstones,
            "relists": c.relists,
            "reconnects": c.reconnects,
            "failures": dict(c.failures),
            "lagged": c.lagged,
            "duplicates": run.view.duplicates[:20],
            "gaps": run.view.gaps[:20],
            "losses": diffs[:20],
            "n_duplicates": len(run.view.duplicates),
            "n_gaps": len(run.view.gaps),
            "n_losses": len(diffs),
            "objects": len(run.expected),
            "converged_after": run.converged_after,
            "error": repr(run.error) if run.error is not None else None,
        })
    converged = all(run.converged_after is not None for run in runs)
    return Result(
        options=asdict(options),
        seconds=seconds,
        writes=dict(writes.ok),
        rejected_writes=dict(writes.rejected),
        writer_errors=writes.errors[:20],
        faults_injected={k: faults.injected[k] for k in FAULT_KINDS},
        faults_triggered={k: faults.triggered[k] for k in FAULT_KINDS},
        watchers=watchers,
        events=dict(events),
        synthesized=sum(r.view.counters.synthesized for r in runs),
        tombstones=sum(r.view.counters.tombstones for r in runs),
        relists=sum(r.view.counters.relists for r in runs),
        reconnects=sum(r.view.counters.reconnects for r in runs),
        failures=dict(failures),
        duplicates=sum(len(r.view.duplicates) for r in runs),
        gaps=sum(len(r.view.gaps) for r in runs),
        losses=losses,
        watcher_errors=[f"{r.view.label}: {r.error!r}" for r in runs if r.error is not None],
        converged=converged,
        convergence_seconds=(max(r.converged_after or 0.0 for r in runs)
                             if converged else converge_seconds),
        server_objects=server_objects,
        server_changes=dict(changes),
    )


# --------------------------------------------------------------------------- report


def _events(counter: dict[str, int]) -> str:
    return "/".join(str(counter.get(k, 0)) for k in ("ADDED", "MODIFIED", "DELETED"))


def summary(result: Result) -> str:
    o = result.options
    lines = [
        f"soak: {result.seconds:.0f} s, {o['watchers']} watchers, {o['writers']} writers,"
        f" seed {o['seed']}",
        "",
        "| watcher | objects | events A/M/D | synthesized | tombstones | relists |"
        " reconnects | duplicates | gaps | losses | converged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in result.watchers:
        conv = f"{w['converged_after']:.2f} s" if w["converged_after"] is not None else "NO"
        lines.append(
            f"| {w['watcher']} | {w['objects']} | {_events(w['events'])} | {w['synthesized']}"
            f" | {w['tombstones']} | {w['relists']} | {w['reconnects']} | {w['n_duplicates']}"
            f" | {w['n_gaps']} | {w['n_losses']} | {conv} |")
    total_events = sum(result.events.values())
    conv = (f"{result.convergence_seconds:.2f} s" if result.converged
            else f"NOT converged after {result.convergence_seconds:.1f} s")
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| duration | {result.seconds:.1f} s |",
        f"| writes | {sum(result.writes.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(result.writes.items()))});"
        f" {sum(result.rejected_writes.values())} rejected (NotFound/AlreadyExists) |",
        f"| changes committed by the server | {result.server_changes} |",
        f"| server objects at the end | {result.server_objects} |",
        f"| events delivered | {total_events} (ADDED/MODIFIED/DELETED"
        f" {_events(result.events)}) |",
        f"| synthesized by relists | {result.synthesized} (of which {result.tombstones}"
        " tombstones) |",
        "| faults injected (reached a client) | "
        + ", ".join(f"{k} {result.faults_injected[k]} ({result.faults_triggered[k]})"
                    for k in FAULT_KINDS) + " |",
        f"| relists | {result.relists} |",
        f"| reconnects (watch requests after the first) | {result.reconnects} |",
        "| failures survived | "
        + (", ".join(f"{k} {v}" for k, v in sorted(result.failures.items())) or "none")
        + " |",
        f"| duplicates | {result.duplicates} |",
        f"| gaps (MODIFIED without ADDED) | {result.gaps} |",
        f"| losses | {result.losses} |",
        f"| watcher errors | {len(result.watcher_errors)} |",
        f"| writer errors | {len(result.writer_errors)} |",
        f"| convergence | {conv} |",
        "",
        "PASS" if result.ok else "FAIL",
    ]
    for w in result.watchers:
        for what in ("duplicates", "gaps", "losses"):
            for item in w[what]:
                lines.append(f"  {w['watcher']}: {what[:-1]}: {item}")
        if w["error"]:
            lines.append(f"  {w['watcher']}: error: {w['error']}")
    lines += [f"  writer error: {e}" for e in result.writer_errors]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> tuple[Options, argparse.Namespace]:
    d = Options()
    p = argparse.ArgumentParser(
        prog="python benchmarks/soak.py",
        description="Soak kubeasync's resilient watch: N watchers and M writers against the"
                    " embedded API server with faults injected; every watcher's view must"
                    " end equal to the server's state. Exits 1 on any loss, duplicate or"
                    " failure to converge.")
    p.add_argument("--duration", type=float, default=d.duration,
                   help=f"seconds of writes and faults (default {d.duration:g})")
    p.add_argument("--watchers", type=int, default=d.watchers,
                   help=f"watchers and informers (default {d.watchers}; the {len(SPECS)}"
                        " kinds in turn)")
    p.add_argument("--writers", type=int, default=d.writers,
                   help=f"concurrent writers (default {d.writers})")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--names", type=int, default=d.names,
                   help=f"names per namespace and resource (default {d.names})")
    p.add_argument("--write-pause", type=float, default=d.write_pause,
                   help=f"seconds between a writer's writes (default {d.write_pause:g})")
    p.add_argument("--fault-interval", type=float, default=d.fault_interval,
                   help=f"mean seconds between faults (default {d.fault_interval:g})")
    p.add_argument("--watch-timeout", type=int, default=d.watch_timeout,
                   help=f"the watchers' timeout_seconds (default {d.watch_timeout})")
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout,
                   help=f"the watchers' idle timeout, which ends stalls"
                        f" (default {d.idle_timeout:g})")
    p.add_argument("--backoff-max", type=float, default=d.backoff_max,
                   help=f"the watchers' backoff cap in seconds (default {d.backoff_max:g})")
    p.add_argument("--history", type=int, default=d.history,
                   help=f"changes the server keeps for re-watches (default {d.history})")
    p.add_argument("--converge-timeout", type=float, default=d.converge_timeout,
                   help=f"seconds to wait for convergence (default {d.converge_timeout:g})")
    p.add_argument("--json", metavar="PATH", help="also write the full result as JSON")
    args = p.parse_args(argv)
    if args.watchers < 1 or args.writers < 1 or args.duration <= 0:
        p.error("--watchers and --writers must be >= 1, --duration > 0")
    options = Options(
        duration=args.duration, watchers=args.watchers, writers=args.writers, seed=args.seed,
        names=args.names, write_pause=args.write_pause, fault_interval=args.fault_interval,
        watch_timeout=args.watch_timeout, idle_timeout=args.idle_timeout,
        backoff_max=args.backoff_max, history=args.history,
        converge_timeout=args.converge_timeout,
    )
    return options, args


def main(argv: list[str] | None = None) -> int:
    options, args = parse_args(sys.argv[1:] if argv is None else argv)

    def say(message: str) -> None:
        print(f"[soak] {message}", file=sys.stderr, flush=True)

    result = asyncio.run(soak(options, say))
    print(summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=1, default=str) + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
