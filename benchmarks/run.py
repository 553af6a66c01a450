"""The benchmark harness: one command, every client, one table of ratios.

    python -m benchmarks.run                # the full run (~12-15 minutes on 2 cores)
    python -m benchmarks.run --quick        # tiny sizes, a few seconds per client
    python -m benchmarks.run --write-docs   # also rewrite docs/performance.md and its plot

It starts the local apiserver-shaped server (:mod:`benchmarks.server`) in its own process,
writes a kubeconfig pointing at it, then runs every (client, scenario) cell in a fresh
worker process (:mod:`benchmarks.worker`), one at a time, and prints one table in which
each figure carries its ratio to the plain msgspec baseline of the same run.

Peers (lightkube, kubernetes_asyncio, kr8s, kubernetes) come from the optional ``bench``
extra; a peer that is not installed gets a "not installed" row. client-go is the Go
program of ``benchmarks/clientgo``, run when it is built (``/opt/kube-real/bin/clientgo``)
and skipped with one line saying how to build it otherwise. Workers import the kubeasync
of this checkout (the harness puts it first on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import report
from .clients import ADAPTERS, missing
from .worker import control

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ORDER = [
    "aiohttp-raw",
    "msgspec-plain",
    "kubeasync",
    "kubeasync-watcher",
    "lightkube",
    "kubernetes_asyncio",
    "kr8s",
    "kubernetes",
    "client-go",
]
ALL_CELLS = ["list_small", "list_large", "dicts_small", "dicts_large", "rss", "watch", "get",
             "idle"]
WATCH_ONLY = ["watch", "idle"]
VERSION_PACKAGES = ["kubeasync", "msgspec", "aiohttp", "lightkube", "httpx2", "httpx",
                    "kubernetes_asyncio", "kr8s", "python-box", "kubernetes", "urllib3"]


@dataclass(frozen=True)
class Sizes:
    list_small: int
    list_large: int
    watch: int
    get: int
    concurrency: int
    idle: int
    idle_seconds: float
    settle: float
    fires: int
    reps: int
    budget: float  # seconds of samples per (client, scenario), past the first
    warmup_events: int
    timeout: float  # kill a worker after this many seconds


PROFILES = {
    "full": Sizes(list_small=1000, list_large=10000, watch=20000, get=5000, concurrency=50,
                  idle=500, idle_seconds=5.0, settle=1.0, fires=50, reps=5, budget=30.0,
                  warmup_events=200, timeout=300.0),
    "quick": Sizes(list_small=20, list_large=100, watch=300, get=200, concurrency=10,
                   idle=20, idle_seconds=0.3, settle=0.1, fires=5, reps=2, budget=3.0,
                   warmup_events=20, timeout=120.0),
}


def cell_args(cell: str, sizes: Sizes) -> list[str]:
    scenario, size, dicts = {
        "list_small": ("list", sizes.list_small, False),
        "list_large": ("list", sizes.list_large, False),
        "dicts_small": ("list", sizes.list_small, True),
        "dicts_large": ("list", sizes.list_large, True),
        "rss": ("rss", sizes.list_large, False),
        "watch": ("watch", sizes.watch, False),
        "get": ("get", sizes.get, False),
        "idle": ("idle", sizes.idle, False),
    }[cell]
    args = ["--scenario", scenario, "--size", str(size), "--reps", str(sizes.reps),
            "--budget", str(sizes.budget), "--concurrency", str(sizes.concurrency),
            "--warmup-events", str(sizes.warmup_events),
            "--idle-seconds", str(sizes.idle_seconds), "--settle", str(sizes.settle),
            "--fires", str(sizes.fires)]
    return [*args, "--dicts"] if dicts else args


def installed(client: str) -> bool:
    return missing(client) is None


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("PYTHONSTARTUP", None)
    return env


@contextlib.contextmanager
def server_process(sizes: Sizes) -> Iterator[str]:
    """Start the benchmark server; yield its URL; stop it on every path."""
    lists = sorted({10, sizes.list_small, sizes.list_large})
    events = sorted({sizes.warmup_events, sizes.watch})
    cmd = [sys.executable, "-m", "benchmarks.server",
           "--lists", ",".join(map(str, lists)), "--events", ",".join(map(str, events))]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark server did not start: {shlex.join(cmd)}")
        port = json.loads(line)["port"]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def write_kubeconfig(directory: Path, server: str) -> Path:
    path = directory / "kubeconfig"
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: bench\n  cluster:\n    server: {server}\n"
        "contexts:\n"
        "- name: bench\n  context:\n    cluster: bench\n    user: bench\n    namespace: bench\n"
        "current-context: bench\n"
        "users:\n"
        "- name: bench\n  user:\n    token: bench-token\n"
    )
    return path


def run_worker(client: str, worker_args: list[str], timeout: float,
               profile: Path | None = None, module: str = "benchmarks.worker") -> dict[str, Any]:
    """Run one worker process (``python -m benchmarks.worker --client ... <worker_args>``)
    and return its result line, or what went wrong; ``wall_s`` is the whole process's."""
    cmd = [sys.executable, "-m", module, "--client", client, *worker_args]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=worker_env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        result: dict[str, Any] = {"ok": False, "error": f"timeout after {timeout:.0f} s"}
    else:
        lines = proc.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"ok": False, "error": f"worker exit {proc.returncode}",
                      "stderr": proc.stderr[-2000:]}
    result["wall_s"] = time.perf_counter() - started
    return result


def run_cell(client: str, cell: str, sizes: Sizes, server: str, kubeconfig: Path,
             profile_dir: Path | None = None) -> dict[str, Any]:
    control(server, "/_bench/stats?reset=1")
    profile = profile_dir / f"{client}-{cell}.prof" if profile_dir is not None else None
    result = run_worker(client, ["--server", server, "--kubeconfig", str(kubeconfig),
                                 *cell_args(cell, sizes)], sizes.timeout, profile)
    result["server"] = control(server, "/_bench/stats")
    return result


def machine() -> str:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, val = line.partition(":")
            info[key.strip()] = val.strip()
    mem = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lines = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.splitlines()
        mem = lines[1].split()[1] + " GiB RAM"
    cpu = info.get("Model name", platform.processor() or "?")
    cores = info.get("CPU(s)", str(os.cpu_count()))
    hyper = info.get("Hypervisor vendor")
    return (f"{cpu}, {cores} CPUs" + (f" ({hyper} VM)" if hyper else "") + f", {mem}, "
            f"Linux {platform.release()}, Python {platform.python_version()} "
            f"({platform.python_implementation()})")


def versions() -> dict[str, str]:
    out = {}
    for name in VERSION_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    sizes = PROFILES["quick" if args.quick else "full"]
    if args.reps is not None or args.budget is not None:
        sizes = Sizes(**{**asdict(sizes),
                         **({"reps": args.reps} if args.reps is not None else {}),
                         **({"budget": args.budget} if args.budget is not None else {})})
    clients = args.clients.split(",") if args.clients else CLIENT_ORDER
    unknown = [c for c in clients if c not in ADAPTERS]
    if unknown:
        raise SystemExit(f"unknown clients: {', '.join(unknown)}; known: {', '.join(ADAPTERS)}")
    cells_wanted = args.cells.split(",") if args.cells else ALL_CELLS
    started = time.perf_counter()
    run: dict[str, Any] = {
        "sizes": asdict(sizes),
        "clients": {},
        "results": {},
    }
    profile_dir = Path(args.profile_dir) if args.profile_dir else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubeasync-bench-") as tmp, \
            server_process(sizes) as server:
        kubeconfig = write_kubeconfig(Path(tmp), server)
        log(f"server {server}; sizes: {asdict(sizes)}")
        logged: set[str] = set()
        for client in clients:
            cls = ADAPTERS[client]
            cells = [c for c in (WATCH_ONLY if client == "kubeasync-watcher" else ALL_CELLS)
                     if c in cells_wanted]
            run["clients"][client] = {
                "label": cls.label, "installed": installed(client), "cells": cells,
                "baseline": cls.baseline, "watch_api": cls.watch_api,
            }
            why_not = missing(client)
            if why_not is None:
                run["results"][client] = {}
            else:
                run["clients"][client]["missing"] = why_not
                if why_not not in logged:  # client-go's two rows: one line
                    log(why_not)
                    logged.add(why_not)
        # Cell by cell, every client in turn: the figures that are compared with each other
        # are measured close together in time (the machine is shared and its load drifts).
        for cell in ALL_CELLS:
            for client in clients:
                if client not in run["results"] or cell not in run["clients"][client]["cells"]:
                    continue
                result = run_cell(client, cell, sizes, server, kubeconfig, profile_dir)
                run["results"][client][cell] = result
                log(f"{cell:<12} {client:>20} {summary(result)}  [{result['wall_s']:.1f} s]")
    run["meta"] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.run" + (" " + " ".join(args.argv) if args.argv else ""),
        "profile": "quick" if args.quick else "full",
        "duration_s": time.perf_counter() - started,
        "machine": machine(),
        "versions": versions(),
    }
    return run


def summary(result: dict[str, Any]) -> str:
    if not result.get("ok"):
        return str(result.get("na") or result.get("error"))
    m = report.median(result)
    return f"median {m:.4g} {result.get('unit', '')} of {len(result.get('samples', []))}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark kubeasync against the Python Kubernetes clients.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds per client)")
    parser.add_argument("--clients", help="comma-separated subset of: " + ", ".join(CLIENT_ORDER))
    parser.add_argument("--cells", help="comma-separated subset of: " + ", ".join(ALL_CELLS))
    parser.add_argument("--reps", type=int, help="samples per cell (default 5; quick 2)")
    parser.add_argument("--budget", type=float, help="seconds of samples per cell")
    parser.add_argument("--json", metavar="PATH", help="write the raw results to PATH")
    parser.add_argument("--write-docs", action="store_true",
                        help="rewrite the generated part of docs/performance.md and its plot")
    parser.add_argument("--from-json", metavar="PATH",
                        help="measure nothing: re-render the table (and, with --write-docs,"
                             " the page) from a saved run, e.g. docs/benchmarks.json")
    parser.add_argument("--profile-dir", metavar="DIR",
                        help="write a cProfile of each worker to DIR/{client}-{cell}.prof")
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # --from-json re-renders a saved run (its own meta says how it was measured)
    run = json.loads(Path(args.from_json).read_text()) if args.from_json else run_all(args)
    print(report.table(run))
    print()
    print(report.targets_table(run))
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))
    if args.write_docs:
        report.write_docs(run, ROOT / "docs" / "performance.md",
                          ROOT / "docs" / "img" / "benchmarks.png")
        (ROOT / "docs" / "benchmarks.json").write_text(json.dumps(run, indent=1) + "\n")
        log("wrote docs/performance.md, docs/img/benchmarks.png, docs/benchmarks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
