"""Load: kubeasync as an async service uses it, against lightkube and a hand-written
aiohttp+msgspec client, on the embedded API server and on a real kube-apiserver 1.20.

    python -m benchmarks.load                      # both servers: ~6-8 minutes on 2 cores
    python -m benchmarks.load --targets fake       # the embedded server only: ~2-3 minutes
    python -m benchmarks.load --quick --targets fake   # tiny sizes, seconds (the smoke test)

For each server (``fake``: ``kubeasync.testing.FakeApiServer`` in a process of its own,
``python -m kubeasync serve --no-simulate``; ``real``: the kube-apiserver of
:func:`benchmarks.cluster.real_apiserver`, or ``--kubeconfig``) it creates ``--pods``
pods labelled in ``--groups`` groups (:func:`benchmarks.cluster.seed_pods`), then runs
two cells, every client in a fresh worker process (:mod:`benchmarks.load_worker`):

- ``mixed``: ``--tasks`` concurrent tasks, ``--requests`` requests per sample, ``--reps``
  samples: GET 70%, LIST with a label selector 10%, PATCH 10%, CREATE/DELETE 10%.
  Requests/s, latency p50/p99, client CPU per request, RSS, open file descriptors.
- ``idle``: ``--watches`` idle watches of an empty namespace on one client: RSS per watch,
  CPU while idle, file descriptors, and the time for one change to reach all of them.

The figures and the targets of issue 17 (client CPU per request <= 0.5x lightkube's, p99
no worse than the hand-written baseline's, 1,000 idle watches under 30 MB and ~0 CPU) are
printed as tables; ``--json`` keeps the raw results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import cluster
from .cluster import log
from .real_apiserver import log_skipped
from .run import ROOT, machine, run_worker, versions, worker_env

MIXED_CLIENTS = ["msgspec-plain", "kubeasync", "lightkube"]
IDLE_CLIENTS = ["msgspec-plain", "kubeasync", "kubeasync-watcher", "lightkube"]
CELLS = ["mixed", "idle"]
BASELINE = "msgspec-plain"
NAMESPACE = "kubeasync-load"
IDLE_NAMESPACE = "kubeasync-load-idle"
IDLE_CPU_LIMIT_MS_PER_S = 1.0
IDLE_TOTAL_LIMIT_MB = 30.0
LABELS = {"msgspec-plain": "aiohttp+msgspec (hand-written baseline)",
          "kubeasync": "kubeasync", "kubeasync-watcher": "kubeasync watch()",
          "lightkube": "lightkube"}


@dataclass(frozen=True)
class Sizes:
    tasks: int
    requests: int
    reps: int
    watches: int
    pods: int
    groups: int
    idle_seconds: float
    settle: float
    timeout: float


PROFILES = {
    "full": Sizes(tasks=200, requests=5000, reps=3, watches=1000, pods=100, groups=10,
                  idle_seconds=5.0, settle=1.0, timeout=600.0),
    "quick": Sizes(tasks=10, requests=150, reps=1, watches=10, pods=20, groups=4,
                   idle_seconds=0.2, settle=0.1, timeout=120.0),
}


@contextlib.contextmanager
def fake_apiserver(directory: Path) -> Iterator[str]:
    """``python -m kubeasync serve`` in a process of its own; yields its kubeconfig."""
    kubeconfig = directory / "fake-kubeconfig"
    cmd = [sys.executable, "-m", "kubeasync", "serve", "--port", "0", "--no-simulate",
           "--kubeconfig", str(kubeconfig)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("kubeconfig written"):
                break
        else:
            raise RuntimeError(f"the embedded server did not start: {' '.join(cmd)}")
        yield str(kubeconfig)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def seed(kubeconfig: str, sizes: Sizes) -> dict[str, Any]:
    async with cluster.client_for(kubeconfig) as kube:
        seeded = await cluster.seed_pods(kube, NAMESPACE, sizes.pods, groups=sizes.groups)
        log("  " + seeded.describe())
        await cluster.ensure_namespace(kube, IDLE_NAMESPACE)
        info = await kube.version()
        return {"seeded": vars(seeded), "server_version": info.git_version}


async def idle_resource_version(kubeconfig: str) -> str:
    async with cluster.client_for(kubeconfig) as kube:
        listed = await kube.pods.list(namespace=IDLE_NAMESPACE, limit=1)
        return str(listed.metadata.resource_version)


def worker_args(cell: str, sizes: Sizes, kubeconfig: str, resource_version: str = "",
                sample: int = 0) -> list[str]:
    common = ["--kubeconfig", kubeconfig, "--settle", str(sizes.settle),
              "--idle-seconds", str(sizes.idle_seconds)]
    if cell == "mixed":  # one sample per process: the harness takes the clients in turn
        return [*common, "--scenario", "mixed", "--namespace", NAMESPACE,
                "--pods", str(sizes.pods), "--groups", str(sizes.groups),
                "--tasks", str(sizes.tasks), "--requests", str(sizes.requests),
                "--reps", "1", "--seed", str(sample + 1)]
    return [*common, "--scenario", "idle", "--namespace", IDLE_NAMESPACE,
            "--watches", str(sizes.watches), "--resource-version", resource_version]


def run_target(target: str, kubeconfig: str, sizes: Sizes, clients: list[str],
               profile_dir: Path | None, cells: list[str] = CELLS) -> dict[str, Any]:
    started = time.perf_counter()
    out: dict[str, Any] = asyncio.run(seed(kubeconfig, sizes))
    out["setup_s"] = time.perf_counter() - started
    out["results"] = {}

    def profile(client: str, cell: str) -> Path | None:
        return profile_dir / f"{client}-load-{target}-{cell}.prof" if profile_dir else None

    # The mixed load is server-bound (the server's speed, on a shared machine, drifts):
    # sample by sample, every client in turn, so that each sample of one client is taken
    # next to one of every other.
    mixed = [c for c in clients if c in MIXED_CLIENTS] if "mixed" in cells else []
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in mixed}
    for sample in range(sizes.reps):
        for client in mixed:
            result = run_worker(client, worker_args("mixed", sizes, kubeconfig, sample=sample),
                                sizes.timeout, profile(client, f"mixed-{sample}"),
                                module="benchmarks.load_worker")
            samples[client].append(result)
            log(f"{target:<5} mixed  {client:>18} {summary(result)}  [{result['wall_s']:.1f} s]")
    for client in mixed:
        out["results"].setdefault(client, {})["mixed"] = merge_samples(samples[client])
        out["results"][client]["mixed_samples"] = samples[client]  # raw, for --json
    for client in [c for c in clients if c in IDLE_CLIENTS and "idle" in cells]:
        rv = asyncio.run(idle_resource_version(kubeconfig))
        result = run_worker(client, worker_args("idle", sizes, kubeconfig, rv), sizes.timeout,
                            profile(client, "idle"), module="benchmarks.load_worker")
        out["results"].setdefault(client, {})["idle"] = result
        log(f"{target:<5} idle   {client:>18} {summary(result)}  [{result['wall_s']:.1f} s]")
    return out


def merge_samples(all_results: list[dict[str, Any]]) -> dict[str, Any]:
    """One client's mixed samples (one process each) as one result: medians of the
    per-sample figures (requests/s, CPU per request, p50, p99), the worst RSS and fds.
    A sample with a failed request or check does not count; its error is kept."""
    failed = [r for r in all_results if not r.get("ok")]
    results = [r for r in all_results if r.get("ok")]
    if not results:
        return failed[0]
    per_rep = [rep for r in results for rep in r["per_rep"]]
    by_op: dict[str, dict[str, float]] = {}
    for kind in {k for r in results for k in r["latency_by_op"]}:
        figures = [r["latency_by_op"][kind] for r in results if kind in r["latency_by_op"]]
        by_op[kind] = {"count": sum(f["count"] for f in figures),
                       "p50_ms": statistics.median(f["p50_ms"] for f in figures),
                       "p99_ms": statistics.median(f["p99_ms"] for f in figures),
                       "max_ms": max(f["max_ms"] for f in figures)}
    return {
        "ok": True, "client": results[0]["client"], "scenario": "mixed",
        "samples": [x for r in results for x in r["samples"]], "unit": "req/s",
        "cpu_s": [x for r in results for x in r["cpu_s"]], "per_rep": per_rep,
        "requests_per_rep": results[0]["requests_per_rep"], "tasks": results[0]["tasks"],
        "cpu_us_per_request": statistics.median(p["cpu_us_per_request"] for p in per_rep),
        "latency": {"p50_ms": statistics.median(p["p50_ms"] for p in per_rep),
                    "p99_ms": statistics.median(p["p99_ms"] for p in per_rep),
                    "max_ms": max(p["max_ms"] for p in per_rep)},
        "latency_by_op": by_op,
        "rss_mb": max(r["rss_mb"] for r in results), "fds": max(r["fds"] for r in results),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "gc_enabled_after": all(r["gc_enabled_after"] for r in results),
        "wall_s": sum(r["wall_s"] for r in all_results),
        "failed_samples": [str(r.get("error"))[:300] for r in failed],
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    sizes = PROFILES["quick" if args.quick else "full"]
    overrides = {k: getattr(args, k) for k in ("tasks", "requests", "reps", "watches")
                 if getattr(args, k) is not None}
    sizes = Sizes(**{**asdict(sizes), **overrides})
    clients = args.clients.split(",") if args.clients else sorted(
        set(MIXED_CLIENTS) | set(IDLE_CLIENTS), key=list(LABELS).index)
    unknown = [c for c in clients if c not in LABELS]
    if unknown:
        raise SystemExit(f"unknown clients: {', '.join(unknown)}; known: {', '.join(LABELS)}")
    from .clients import missing

    skipped = {c: why for c in clients if (why := missing(c))}
    log_skipped(skipped)
    clients = [c for c in clients if c not in skipped]
    targets = args.targets.split(",")
    cells = args.cells.split(",") if args.cells else CELLS
    if set(cells) - set(CELLS):
        raise SystemExit(f"unknown cells: {', '.join(set(cells) - set(CELLS))}; known: mixed, idle")
    profile_dir = Path(args.profile_dir) if args.profile_dir else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run: dict[str, Any] = {"sizes": asdict(sizes), "clients": clients, "skipped": skipped,
                           "targets": {}}
    log(f"sizes: {asdict(sizes)}")
    for target in targets:
        if target == "fake":
            with tempfile.TemporaryDirectory(prefix="kubeasync-load-") as tmp, \
                    fake_apiserver(Path(tmp)) as kubeconfig:
                log("fake: the embedded API server (python -m kubeasync serve), own process")
                run["targets"][target] = run_target(target, kubeconfig, sizes, clients,
                                                    profile_dir, cells)
        elif target == "real":
            with cluster.real_apiserver(args.kubeconfig, keep=args.keep) as kubeconfig:
                run["targets"][target] = run_target(target, kubeconfig, sizes, clients,
                                                    profile_dir, cells)
        else:
            raise SystemExit(f"unknown target {target!r}: fake, real")
    run["meta"] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.load" + (" " + " ".join(args.argv) if args.argv else ""),
        "profile": "quick" if args.quick else "full",
        "duration_s": time.perf_counter() - started,
        "machine": machine(),
        "versions": versions(),
    }
    return run


# ------------------------------------------------------------------------------ report


def summary(result: dict[str, Any]) -> str:
    if not result.get("ok"):
        return str(result.get("na") or result.get("error"))
    if result.get("scenario") == "mixed":
        lat = result["latency"]
        return (f"{statistics.median(result['samples']):,.0f} req/s, p50 {lat['p50_ms']:.1f} ms, "
                f"p99 {lat['p99_ms']:.1f} ms, {result['cpu_us_per_request']:.0f} us CPU/request")
    return (f"{result['samples'][0]:.1f} KB/watch ({result['total_mb']:.1f} MB), "
            f"{result['idle_cpu_ms_per_s']:.2f} ms/s idle, {result['fds']} fds, "
            f"burst {result['burst_ms']:.0f} ms")


def _ok(result: dict[str, Any] | None) -> dict[str, Any] | None:
    return result if result and result.get("ok") else None


def _ratio(a: float, b: float | None) -> str:
    return f" ({a / b:.2f}x)" if b else ""


def mixed_table(target: dict[str, Any]) -> str:
    results = target["results"]
    base = _ok(results.get(BASELINE, {}).get("mixed"))
    light = _ok(results.get("lightkube", {}).get("mixed"))
    head = ["client", "requests/s", "p50", "p99", "client CPU / request", "vs lightkube",
            "RSS", "fds"]
    rows = [head, ["---"] * len(head)]
    for client, cells in results.items():
        result = cells.get("mixed")
        if result is None:
            continue
        if not result.get("ok"):
            rows.append([LABELS[client], f"error: {str(result.get('error'))[:80]}",
                         *["-"] * (len(head) - 2)])
            continue
        rps = statistics.median(result["samples"])
        lat, cpu = result["latency"], result["cpu_us_per_request"]
        base_p99 = base["latency"]["p99_ms"] if base else None
        failed = len(result.get("failed_samples") or [])
        note = f" [{failed} of {failed + len(result['samples'])} samples failed]" if failed else ""
        rows.append([
            LABELS[client] + note,
            f"{rps:,.0f}" + _ratio(rps, statistics.median(base["samples"]) if base else None),
            f"{lat['p50_ms']:.1f} ms", f"{lat['p99_ms']:.1f} ms" + _ratio(lat["p99_ms"], base_p99),
            f"{cpu:.0f} us" + _ratio(cpu, base["cpu_us_per_request"] if base else None),
            f"{cpu / light['cpu_us_per_request']:.2f}x" if light else "-",
            f"{result['rss_mb']:.0f} MB", str(result["fds"]),
        ])
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def idle_table(target: dict[str, Any], watches: int) -> str:
    head = ["client", f"memory / watch ({watches:,})", "total", "CPU while idle", "fds",
            "one change to all"]
    rows = [head, ["---"] * len(head)]
    for client, cells in target["results"].items():
        result = cells.get("idle")
        if result is None:
            continue
        if not result.get("ok"):
            rows.append([LABELS[client], f"error: {str(result.get('error'))[:80]}",
                         *["-"] * (len(head) - 2)])
            continue
        rows.append([LABELS[client], f"{result['samples'][0]:.1f} KB",
                     f"{result['total_mb']:.1f} MB", f"{result['idle_cpu_ms_per_s']:.2f} ms/s",
                     str(result["fds"]), f"{result['burst_ms']:.0f} ms"])
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def targets(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    watches = run["sizes"]["watches"]
    for name, target in run["targets"].items():
        results = target["results"]
        kube, light, base = (_ok(results.get(client, {}).get("mixed"))
                             for client in ("kubeasync", "lightkube", BASELINE))
        if kube and light:
            r = kube["cpu_us_per_request"] / light["cpu_us_per_request"]
            out.append((f"{name}: client CPU per request <= 0.5x lightkube's", f"{r:.2f}x",
                        "met" if r <= 0.5 else "MISSED"))
        else:
            out.append((f"{name}: client CPU per request <= 0.5x lightkube's", "n/a",
                        "NOT MEASURED"))
        if kube and base:
            r = kube["latency"]["p99_ms"] / base["latency"]["p99_ms"]
            out.append((f"{name}: p99 no worse than the hand-written baseline's",
                        f"{kube['latency']['p99_ms']:.1f} ms vs "
                        f"{base['latency']['p99_ms']:.1f} ms ({r:.2f}x)",
                        "met" if r <= 1.0 else "MISSED"))
        else:
            out.append((f"{name}: p99 no worse than the hand-written baseline's", "n/a",
                        "NOT MEASURED"))
        idle = _ok(results.get("kubeasync", {}).get("idle"))
        label = f"{name}: {watches:,} idle watches under {IDLE_TOTAL_LIMIT_MB:g} MB and ~0 CPU"
        if idle:
            ok = (idle["total_mb"] < IDLE_TOTAL_LIMIT_MB * watches / 1000
                  and idle["idle_cpu_ms_per_s"] < IDLE_CPU_LIMIT_MS_PER_S)
            out.append((label, f"{idle['total_mb']:.1f} MB, {idle['idle_cpu_ms_per_s']:.2f} ms/s",
                        "met" if ok else "MISSED"))
        else:
            out.append((label, "n/a", "NOT MEASURED"))
    return out


def report(run: dict[str, Any]) -> str:
    parts = []
    sizes = run["sizes"]
    for name, target in run["targets"].items():
        seeded = target.get("seeded") or {}
        parts += [
            f"### {name}: {target.get('server_version')} ({seeded.get('pods')} pods in "
            f"{sizes['groups']} label groups; setup {target.get('setup_s', 0):.1f} s)", "",
            f"Mixed load: {sizes['tasks']} tasks, {sizes['requests']:,} requests x "
            f"{sizes['reps']} samples, the clients in turn (medians of the samples' figures; "
            "ratios to the hand-written baseline in parentheses).", "",
            mixed_table(target), "", f"{sizes['watches']:,} idle watches on one client:", "",
            idle_table(target, sizes["watches"]), ""]
    parts += ["| target (issue 17) | measured | verdict |", "|---|---|---|"]
    parts += [f"| {a} | {b} | {c} |" for a, b, c in targets(run)]
    return "\n".join(parts)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load",
                                     description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", default="fake,real",
                        help="comma-separated: fake (embedded server), real (kube-apiserver)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--clients", help="comma-separated subset of: " + ", ".join(LABELS))
    parser.add_argument("--cells", help="comma-separated subset of: " + ", ".join(CELLS))
    parser.add_argument("--tasks", type=int, help="concurrent tasks (default 200)")
    parser.add_argument("--requests", type=int, help="requests per sample (default 5000)")
    parser.add_argument("--reps", type=int, help="samples (default 3)")
    parser.add_argument("--watches", type=int, help="idle watches (default 1000)")
    parser.add_argument("--kubeconfig", help="real: use this server instead of starting one")
    parser.add_argument("--keep", action="store_true",
                        help="real: reuse the last --keep run's server and pods, leave it up")
    parser.add_argument("--json", metavar="PATH", help="write the raw results to PATH")
    parser.add_argument("--profile-dir", metavar="DIR",
                        help="a cProfile of each worker: "
                             "DIR/{client}-load-{target}-{mixed-N,idle}.prof")
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run = run_all(args)
    print(report(run))
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
