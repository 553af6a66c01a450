"""kubeasync, lightkube and client-go (JSON and protobuf) on a real kube-apiserver 1.20.

    python -m benchmarks.real_apiserver                 # ~4-5 minutes on 2 cores
    python -m benchmarks.real_apiserver --keep          # leave server and pods for the next run
    python -m benchmarks.real_apiserver --kubeconfig K  # a server of your own (see below)

It starts kube-apiserver 1.20 and etcd (:func:`benchmarks.cluster.real_apiserver`), creates
``--pods`` apiserver-shaped pods through the server's create path
(:func:`benchmarks.cluster.seed_pods`: ~50 s for 10,000 on 2 cores, reported), then runs
two cells, every client in a fresh worker process (:mod:`benchmarks.worker`; client-go is
the Go program of ``benchmarks/clientgo``, pinned to one core with ``GOMAXPROCS=1``):

- ``list``: LIST every pod of the namespace (no resourceVersion: a quorum read from etcd,
  each client's default), into typed objects; checked: the item count.
- ``watch``: a burst of ``--events`` changes (a merge patch of one annotation on as many
  pods, made once, before the cell) read back by a watch from the resourceVersion just
  before the burst, which the server replays as fast as the client reads (from etcd: the
  server is started with ``APISERVER_ARGS``); checked: the number of events and the last
  one's resourceVersion (the burst's last patch).

Each sample records the wall time and the worker process's own CPU time (user+sys from
``getrusage``, every thread), so that the server's share of the wall time (etcd, the
apiserver's encoding: on 2 shared cores they compete with the client) is out of the CPU
figures. The report gives client CPU per LIST and per watch event, their ratios to
client-go JSON and client-go protobuf, and the targets of issue 17.

``--kubeconfig`` must name a cluster without a controller-manager or nodes (the pods name
nodes that do not exist; pod GC would delete them, a kubelet would try to run them): the
server of ``../shared/tools/real-apiserver`` started with ``KUBE_REAL_CONTROLLERS=0``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import cluster
from .clients import missing, plain_connection
from .cluster import log
from .run import machine, run_worker, versions

CLIENTS = ["aiohttp-raw", "msgspec-plain", "kubeasync", "lightkube", "client-go",
           "client-go-protobuf"]
CELLS = ["list", "watch"]
NAMESPACE = "kubeasync-bench"
BURST_ANNOTATION = "bench.kubeasync.dev/burst"
BURST_MANAGER = "bench-burst"
# Pods' watches from etcd, and no compaction: the burst stays there for every client to
# replay. (1.20's watch cache sizes itself to keep ~75 s of events, whatever
# --watch-cache-sizes says: on a slow machine a 5,000-change burst takes longer than that,
# and its start is gone before the clients read it.)
APISERVER_ARGS = "--watch-cache-sizes=pods#0 --etcd-compaction-interval=0"
KUBEASYNC = "kubeasync"
GO_JSON = "client-go"
GO_PROTOBUF = "client-go-protobuf"


async def prepare(kubeconfig: str, pods: int, events: int,
                  concurrency: int) -> dict[str, Any]:
    """Seed the pods, then make the burst; returns what the watch cell needs."""
    async with cluster.client_for(kubeconfig, concurrency) as kube:
        info = await kube.version()
        seeded = await cluster.seed_pods(kube, NAMESPACE, pods, concurrency=concurrency)
        log(seeded.describe())
        listed = await kube.pods.list(namespace=NAMESPACE, limit=1)
        before = listed.metadata.resource_version
        token = f"{time.time_ns()}"
        names = [cluster.pod_name(i) for i in range(events)]
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def change(name: str) -> Any:
            async with gate:
                return await kube.pods.patch(
                    name, {"metadata": {"annotations": {BURST_ANNOTATION: f"{token}-{name}"}}},
                    namespace=NAMESPACE, field_manager=BURST_MANAGER)

        await asyncio.gather(*(change(name) for name in names[:-1]))
        last = await change(names[-1])  # alone, after the others: the burst's last event
        burst_s = time.perf_counter() - started
        log(f"burst: {events} patches in {burst_s:.1f} s, from resourceVersion {before} to "
            f"{last.metadata.resource_version}")
        return {
            "server_version": info.git_version,
            "seeded": vars(seeded),
            "burst_s": burst_s,
            "watch_from": before,
            "last_rv": last.metadata.resource_version,
        }


def cell_args(cell: str, args: argparse.Namespace, setup: dict[str, Any],
              kubeconfig: str) -> list[str]:
    common = ["--server", plain_connection(kubeconfig)[0], "--kubeconfig", kubeconfig, "--namespace", NAMESPACE,
              "--reps", str(args.reps), "--budget", str(args.budget)]
    if cell == "list":
        return [*common, "--scenario", "list", "--size", str(args.pods)]
    return [*common, "--scenario", "watch", "--size", str(args.events),
            "--warmup-events", str(min(200, args.events)),
            "--resource-version", setup["watch_from"], "--expect-last-rv", setup["last_rv"]]


def log_skipped(skipped: dict[str, str]) -> None:
    """One line per reason: client-go's two rows (JSON, protobuf) share theirs."""
    for why_not in dict.fromkeys(skipped.values()):
        log(why_not)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    clients = args.clients.split(",") if args.clients else CLIENTS
    started = time.perf_counter()
    run: dict[str, Any] = {"pods": args.pods, "events": args.events, "clients": clients,
                           "results": {}, "skipped": {}}
    for client in clients:
        why_not = missing(client)
        if why_not:
            run["skipped"][client] = why_not
    log_skipped(run["skipped"])
    runnable = [c for c in clients if c not in run["skipped"]]
    profile_dir = Path(args.profile_dir) if args.profile_dir else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    with cluster.real_apiserver(args.kubeconfig, keep=args.keep,
                                apiserver_args=APISERVER_ARGS) as kubeconfig:
        setup_started = time.perf_counter()
        setup = asyncio.run(prepare(kubeconfig, args.pods, args.events, args.concurrency))
        setup["setup_s"] = time.perf_counter() - setup_started
        run["setup"] = setup
        for cell in CELLS:
            for client in runnable:
                profile = profile_dir / f"{client}-real-{cell}.prof" if profile_dir else None
                result = run_worker(client, cell_args(cell, args, setup, kubeconfig),
                                    args.timeout, profile)
                run["results"].setdefault(client, {})[cell] = result
                log(f"{cell:<6} {client:>20} {summary(result, cell, args)}  "
                    f"[{result['wall_s']:.1f} s]")
    run["meta"] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.real_apiserver" + (
            " " + " ".join(args.argv) if args.argv else ""),
        "duration_s": time.perf_counter() - started,
        "machine": machine(),
        "versions": versions(),
    }
    return run


# ------------------------------------------------------------------------------ figures


def median_of(result: dict[str, Any] | None, key: str) -> float | None:
    if not result or not result.get("ok") or not result.get(key):
        return None
    return float(statistics.median(result[key]))


def cpu_per_op(result: dict[str, Any] | None, ops: int) -> float | None:
    """Median client CPU seconds per operation (per LIST: ops=1; per event: ops=events)."""
    cpu = median_of(result, "cpu_s")
    return None if cpu is None else cpu / ops


def summary(result: dict[str, Any], cell: str, args: argparse.Namespace) -> str:
    if not result.get("ok"):
        return str(result.get("na") or result.get("error"))
    wall = median_of(result, "samples")
    ops = 1 if cell == "list" else args.events
    cpu = cpu_per_op(result, ops)
    unit = "s" if cell == "list" else "events/s"
    per = f"{cpu:.3f} s CPU/LIST" if cell == "list" else f"{(cpu or 0) * 1e6:.0f} us CPU/event"
    return f"median {wall:.4g} {unit}, {per} of {len(result.get('samples', []))}"


def seconds(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f" ({a / b:.2f}x)"


def _answers(result: dict[str, Any] | None) -> str:
    if not result or "content_types" not in result:
        return "JSON"  # the Python clients ask for JSON only (HTTP/1.1)
    names = {"application/json": "JSON", "application/vnd.kubernetes.protobuf": "protobuf"}
    kinds = sorted({names.get(k, k) for k in result["content_types"]})
    return ", ".join([*kinds, *(result.get("protocols") or {})]) or "-"


def table(run: dict[str, Any]) -> str:
    pods, events = run["pods"], run["events"]
    results = run["results"]
    go_json = {cell: cpu_per_op(results.get(GO_JSON, {}).get(cell), 1 if cell == "list" else events)
               for cell in CELLS}
    go_pb = {cell: cpu_per_op(results.get(GO_PROTOBUF, {}).get(cell),
                              1 if cell == "list" else events) for cell in CELLS}
    head = ["client", "answers", f"LIST {pods:,}: wall", "client CPU / LIST",
            "vs client-go JSON", "vs client-go protobuf", f"WATCH {events:,}: events/s",
            "client CPU / event", "vs client-go JSON", "vs client-go protobuf"]
    rows = [head, ["---"] * len(head)]
    for client in run["clients"]:
        if client in run.get("skipped", {}):
            rows.append([client, "skipped", *["-"] * (len(head) - 2)])
            continue
        cells = results.get(client, {})
        row = [client, _answers(cells.get("list"))]
        for cell in CELLS:
            result = cells.get(cell)
            if not result or not result.get("ok"):
                text = (result or {}).get("na") or (result or {}).get("error") or "-"
                row += [f"error: {str(text)[:60]}", "-", "-", "-"]
                continue
            wall = median_of(result, "samples") or 0
            cpu = cpu_per_op(result, 1 if cell == "list" else events)
            if cell == "list":
                row += [seconds(wall), seconds(cpu or 0)]
            else:
                row += [f"{wall:,.0f}", f"{(cpu or 0) * 1e6:.0f} us"]
            row += [_ratio(cpu, go_json[cell]).strip(" ()") or "-",
                    _ratio(cpu, go_pb[cell]).strip(" ()") or "-"]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def targets(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The real-server targets of issue 17: (target, measured, verdict)."""
    results, events = run["results"], run["events"]

    def cpu(client: str, cell: str) -> float | None:
        return cpu_per_op(results.get(client, {}).get(cell), 1 if cell == "list" else events)

    out = []
    for name, a, b, limit in [
        ("kubeasync client CPU per LIST <= 0.5x client-go JSON", cpu(KUBEASYNC, "list"),
         cpu(GO_JSON, "list"), 0.5),
        ("kubeasync client CPU per LIST <= 1.0x client-go protobuf", cpu(KUBEASYNC, "list"),
         cpu(GO_PROTOBUF, "list"), 1.0),
        ("kubeasync watch client CPU per event <= client-go protobuf", cpu(KUBEASYNC, "watch"),
         cpu(GO_PROTOBUF, "watch"), 1.0),
    ]:
        if a is None or not b:
            out.append((name, "n/a", "NOT MEASURED"))
        else:
            out.append((name, f"{a / b:.2f}x", "met" if a / b <= limit else "MISSED"))
    return out


def targets_table(run: dict[str, Any]) -> str:
    lines = ["| target (issue 17) | measured | verdict |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(run)]
    return "\n".join(lines)


def setup_text(run: dict[str, Any]) -> str:
    setup = run.get("setup") or {}
    seeded = setup.get("seeded") or {}
    created = seeded.get("created", 0)
    seeding = (f"{created:,} pods created (+ status) in {seeded.get('seconds', 0):.1f} s"
               if created else f"{seeded.get('pods', 0):,} pods already there")
    return (f"Server {setup.get('server_version')}; setup {setup.get('setup_s', 0):.1f} s: "
            f"{seeding}; burst of {run['events']:,} patches in {setup.get('burst_s', 0):.1f} s.")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_apiserver",
                                     description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kubeconfig", help="use this server instead of starting one")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the data of the last --keep run, and leave the server up")
    parser.add_argument("--pods", type=int, default=10000, help="pods to LIST (default 10000)")
    parser.add_argument("--events", type=int, default=5000,
                        help="changes in the watch burst (default 5000, at most --pods)")
    parser.add_argument("--clients", help="comma-separated subset of: " + ", ".join(CLIENTS))
    parser.add_argument("--reps", type=int, default=5, help="samples per cell (default 5)")
    parser.add_argument("--budget", type=float, default=40.0,
                        help="seconds of samples per cell (default 40)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="concurrent requests while seeding (default 64)")
    parser.add_argument("--timeout", type=float, default=600.0, help="per worker, seconds")
    parser.add_argument("--json", metavar="PATH", help="write the raw results to PATH")
    parser.add_argument("--profile-dir", metavar="DIR",
                        help="a profile of each worker: DIR/{client}-real-{cell}.prof "
                             "(cProfile; pprof for client-go)")
    args = parser.parse_args(argv)
    if not 0 < args.events <= args.pods:
        parser.error("--events must be between 1 and --pods")
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run = run_all(args)
    print(setup_text(run))
    print()
    print(table(run))
    print()
    print(targets_table(run))
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
