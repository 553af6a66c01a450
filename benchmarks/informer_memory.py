"""Memory of an informer holding 100,000 pods, with and without a transform.

    python benchmarks/informer_memory.py                 # 100,000 pods, several minutes
    python benchmarks/informer_memory.py --pods 20000    # quicker
    python benchmarks/informer_memory.py --metadata-only # also a metadata_only=True informer

Method. A separate *server process* (this script with ``--serve``) holds the pods as
pre-encoded JSON list pages, as kube-apiserver would send them (uncompressed), and answers
``GET .../pods?limit=500&continue=...`` and the watch that follows (kept open, silent).
Each measurement runs in a fresh *measuring process*, so that no run inherits another's
heap: it imports kubeasync, collects garbage, reads its baseline, starts
``kube.pods.informer(...)`` over loopback HTTP, waits for ``wait_synced()``, collects
garbage again and reads:

- RSS (``VmRSS`` in ``/proc/self/status``) after the sync, minus the baseline: what the
  process holds, including memory freed by Python but not returned to the OS;
- peak RSS (``VmHWM``): the high-water mark during the list (pages in flight, decoding);
- in a second process per case, with ``tracemalloc`` on from the start: the Python
  allocations still alive after the sync (objects, strings, the received buffers that
  ``msgspec.Raw`` values keep alive), without allocator slack. tracemalloc slows the
  decoding down, so the sync times come from the first process.

After the sync, the first process also times reads (``get()`` of random keys: p50 and p99;
``list(label_selector=...)`` selecting 1% of the pods, and all of them) and the
event-to-store latency: the server sends MODIFIED events (one every 5 ms) stamped with
their send time, and the client takes, for each, the time from the stamp to the moment the
change is in the store (a ``changes()`` consumer sees it).

The pods are shaped like a Deployment's running pods (labels, an owner reference, one
container with env, probes, resources and mounts, four conditions, a container status, and
two managedFields entries: the controller-manager's and the kubelet's). The informer and
its watcher share one copy of every object; what a transform drops is dropped from both.

Why ``drop_managed_fields`` saves more than the managedFields' own size: a decoded
``fieldsV1`` is a ``msgspec.Raw``, a view that keeps the whole received list page alive
(500 pods of JSON). Without the transform, every page of the initial list stays in memory
as long as one of its pods is in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import msgspec

PAGE = 500
NAMESPACE = "bench"
LIST_VERSION = "424242"
_encode = msgspec.json.Encoder().encode


# --------------------------------------------------------------------------- the pods


def _fields(*names: str, **nested: Any) -> dict[str, Any]:
    out: dict[str, Any] = {".": {}} if nested or names else {}
    out.update({f"f:{name}": {} for name in names})
    out.update({f"f:{name}": value for name, value in nested.items()})
    return out


def _managed_fields(start: str) -> list[dict[str, Any]]:
    container = {
        ".": {},
        "f:env": {".": {}, **{f'k:{{"name":"{n}"}}': _fields("name", "value")
                              for n in ("LOG_LEVEL", "REGION", "PORT", "WORKERS")},
                  'k:{"name":"POD_NAME"}': _fields("name", valueFrom=_fields(
                      fieldRef=_fields("apiVersion", "fieldPath")))},
        "f:image": {}, "f:imagePullPolicy": {},
        "f:livenessProbe": _fields("failureThreshold", "periodSeconds", "successThreshold",
                                   "timeoutSeconds", httpGet=_fields("path", "port", "scheme")),
        "f:readinessProbe": _fields("failureThreshold", "periodSeconds", "successThreshold",
                                    "timeoutSeconds", httpGet=_fields("path", "port", "scheme")),
        "f:name": {},
        "f:ports": {".": {}, 'k:{"containerPort":8080,"protocol":"TCP"}': _fields(
            "containerPort", "name", "protocol")},
        "f:resources": _fields(limits=_fields("cpu", "memory"),
                               requests=_fields("cpu", "memory")),
        "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {},
    }
    controller = {
        "f:metadata": {
            "f:generateName": {},
            "f:labels": _fields("app", "pod-template-hash", "tier"),
            "f:ownerReferences": {".": {}, 'k:{"uid":"9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9"}': {}},
        },
        "f:spec": {
            "f:containers": {'k:{"name":"app"}': container},
            "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
            "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {},
        },
    }
    condition = _fields("lastProbeTime", "lastTransitionTime", "status", "type")
    kubelet = {
        "f:status": {
            "f:conditions": {f'k:{{"type":"{t}"}}': condition
                             for t in ("ContainersReady", "Initialized", "PodScheduled", "Ready")},
            "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {},
            "f:podIPs": {".": {}, 'k:{"ip":"10.0.0.1"}': _fields("ip")}, "f:startTime": {},
        },
    }
    return [
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
         "time": start, "fieldsType": "FieldsV1", "fieldsV1": controller},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": start,
         "fieldsType": "FieldsV1", "fieldsV1": kubelet, "subresource": "status"},
    ]


def make_pod(i: int) -> dict[str, Any]:
    start = "2024-05-01T10:00:00Z"
    name = f"web-7d9f8b6c5d-{i:06d}"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    probe = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
             "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
             "failureThreshold": 3}
    condition_types = ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name, "generateName": "web-7d9f8b6c5d-", "namespace": NAMESPACE,
            "uid": str(uuid.UUID(int=i + 1)), "resourceVersion": str(1000 + i),
            "creationTimestamp": start,
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d", "tier": "front",
                       "shard": f"{i % 100:02d}"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d9f8b6c5d",
                                 "uid": "9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9",
                                 "controller": True, "blockOwnerDeletion": True}],
            "managedFields": _managed_fields(start),
        },
        "spec": {
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ], "defaultMode": 420}}],
            "containers": [{
                "name": "app", "image": "registry.example.com/shop/web:1.24.3",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": n, "value": v} for n, v in (
                    ("LOG_LEVEL", "info"), ("REGION", "eu-west-1"), ("PORT", "8080"),
                    ("WORKERS", "4"))] + [{"name": "POD_NAME", "valueFrom": {"fieldRef": {
                        "apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                              "requests": {"cpu": "100m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "livenessProbe": probe, "readinessProbe": probe,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "nodeName": f"node-{i % 50:02d}",
            "securityContext": {}, "schedulerName": "default-scheduler",
            "tolerations": [{"key": f"node.kubernetes.io/{t}", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}
                            for t in ("not-ready", "unreachable")],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": start} for t in condition_types],
            "hostIP": f"192.168.1.{i % 50}", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": start,
            "containerStatuses": [{
                "name": "app", "state": {"running": {"startedAt": start}},
                "lastState": {}, "ready": True, "restartCount": 0,
                "image": "registry.example.com/shop/web:1.24.3",
                "imageID": "registry.example.com/shop/web@sha256:" + "ab" * 32,
                "containerID": f"containerd://{uuid.UUID(int=i + 7).hex}{uuid.UUID(int=i).hex}",
                "started": True,
            }],
            "qosClass": "Burstable",
        },
    }


# --------------------------------------------------------------------------- the server process


def _partial_item(item: bytes) -> bytes:
    metadata = msgspec.json.decode(item)["metadata"]
    return _encode({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata})


def _pages(items: list[bytes], kind: str, api_version: str) -> dict[str, bytes]:
    pages: dict[str, bytes] = {}
    count = len(items)
    for start in range(0, count, PAGE):
        metadata: dict[str, str] = {"resourceVersion": LIST_VERSION}
        if start + PAGE < count:
            metadata["continue"] = str(start + PAGE)
        pages[str(start)] = (
            b'{"kind":"' + kind.encode() + b'","apiVersion":"' + api_version.encode()
            + b'","metadata":' + _encode(metadata)
            + b',"items":[' + b",".join(items[start:start + PAGE]) + b"]}"
        )
    return pages


async def serve(count: int) -> None:
    from aiohttp import web

    items = [_encode(make_pod(i)) for i in range(count)]
    full_pages = _pages(items, "PodList", "v1")
    partial_pages = _pages([_partial_item(item) for item in items],
                           "PartialObjectMetadataList", "meta.k8s.io/v1")
    del items
    watches: set[tuple[web.StreamResponse, bool]] = set()

    def partial(request: web.Request) -> bool:
        return "as=PartialObjectMetadata" in request.headers.get("Accept", "")

    async def pods(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            entry = (response, partial(request))
            watches.add(entry)
            try:
                await asyncio.Event().wait()  # until the client leaves (handler cancelled)
            finally:
                watches.discard(entry)
        body = (partial_pages if partial(request) else full_pages)[
            request.query.get("continue", "0")]
        return web.Response(body=body, content_type="application/json")

    async def emit(request: web.Request) -> web.Response:
        """Send ``n`` MODIFIED events of pod ``i`` to every watch, 5 ms apart, each stamped
        with its send time (``bench/sent`` annotation, time.time())."""
        n = int(request.query.get("n", "100"))
        for k in range(n):
            pod = make_pod(k % count)
            pod["metadata"]["resourceVersion"] = str(10_000_000 + k)
            pod["metadata"]["annotations"] = {"bench/sent": repr(time.time())}
            for response, wants_partial in list(watches):
                obj = ({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": pod["metadata"]} if wants_partial else pod)
                await response.write(_encode({"type": "MODIFIED", "object": obj}) + b"\n")
            await asyncio.sleep(0.005)
        return web.Response(text="sent")

    app = web.Application()
    app.router.add_get(f"/api/v1/namespaces/{NAMESPACE}/pods", pods)
    app.router.add_post("/bench/emit", emit)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- a measuring process


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _reads(informer: Any, count: int) -> dict[str, float]:
    """Read timings over the synced store (seconds)."""
    import random

    rng = random.Random(7)
    names = [f"web-7d9f8b6c5d-{rng.randrange(count):06d}" for _ in range(2000)]
    clock = time.perf_counter
    gets = []
    for name in names:
        started = clock()
        found = informer.get(name)
        gets.append(clock() - started)
        if found is None:
            raise RuntimeError(f"{name} is not in the store")
    lists: dict[str, list[float]] = {"one_percent": [], "all": []}
    for selector, label in (("shard=07", "one_percent"), ("app=web", "all")):
        for _ in range(3 if label == "all" else 10):
            started = clock()
            informer.list(label_selector=selector)
            lists[label].append(clock() - started)
    return {
        "get_p50": _percentile(gets, 0.5), "get_p99": _percentile(gets, 0.99),
        "list_one_percent": _percentile(lists["one_percent"], 0.5),
        "list_all": _percentile(lists["all"], 0.5),
    }


async def _latency(url: str, informer: Any, events: int = 200) -> dict[str, float]:
    """Event-to-store latency: from the server's stamp to the change being in the store."""
    import aiohttp

    delays: list[float] = []
    changes = informer.changes(replay=False)

    async def consume() -> None:
        async for change in changes:
            sent = float(change.object.metadata.annotations["bench/sent"])
            delays.append(time.time() - sent)
            if len(delays) == events:
                return

    consumer = asyncio.ensure_future(consume())
    async with aiohttp.ClientSession() as http, http.post(
        f"{url}/bench/emit?n={events}"
    ) as response:
        await response.read()
    await asyncio.wait_for(consumer, 60)
    return {"latency_p50": _percentile(delays, 0.5), "latency_p99": _percentile(delays, 0.99)}


async def measure(url: str, transform: str, trace: bool, count: int,
                  metadata_only: bool = False) -> dict[str, Any]:
    import kubeasync

    if trace:
        tracemalloc.start()
    gc.collect()
    rss_before = _status_kib("VmRSS")
    traced_before = tracemalloc.get_traced_memory()[0] if trace else 0
    started = time.perf_counter()
    config = kubeasync.ClusterConfig(server=url, namespace=NAMESPACE)
    async with kubeasync.Client(config) as kube:
        options: dict[str, Any] = {"metadata_only": True} if metadata_only else {}
        informer = kube.pods.informer(
            send_initial_events=False,
            page_size=PAGE,
            transform=kubeasync.drop_managed_fields if transform == "drop_managed_fields" else None,
            **options,
        )
        async with informer:
            await informer.wait_synced()
            synced = time.perf_counter() - started
            if len(informer) != count:
                raise RuntimeError(f"the store holds {len(informer)} pods, not {count}")
            gc.collect()
            result = {
                "sync_seconds": synced,
                "baseline_rss_kib": rss_before,
                "rss_kib": _status_kib("VmRSS") - rss_before,
                "peak_rss_kib": _status_kib("VmHWM"),
                "traced_bytes": tracemalloc.get_traced_memory()[0] - traced_before if trace else 0,
            }
            if not trace:
                result.update(await _reads(informer, count))
                result.update(await _latency(url, informer))
            return result


# --------------------------------------------------------------------------- the driver


CHECKOUT = Path(__file__).resolve().parent.parent


def run_case(url: str, transform: str, trace: bool, count: int,
             metadata_only: bool = False) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", url, "--transform", transform,
               "--pods", str(count)] + (["--trace"] if trace else []) + (
                   ["--metadata-only"] if metadata_only else [])
    # Measure this checkout's kubeasync, not whichever one is installed.
    path = os.pathsep.join(p for p in (str(CHECKOUT / "src"), str(CHECKOUT),
                                       os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": path})
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--transform", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--metadata-only", action="store_true",
                        help="also measure a metadata_only=True informer")
    args = parser.parse_args()
    if args.pods < 1:
        parser.error(f"--pods must be >= 1, got {args.pods}")
    if args.serve:
        asyncio.run(serve(args.pods))
        return
    if args.measure:
        result = asyncio.run(measure(args.measure, args.transform, args.trace, args.pods,
                                     args.metadata_only))
        print(json.dumps(result))
        return

    sample = make_pod(0)
    pod_bytes = len(_encode(sample))
    managed_bytes = len(_encode(sample["metadata"]["managedFields"]))
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--pods", str(args.pods)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"
        rows = []
        cases = [("none", False), ("drop_managed_fields", False)]
        if args.metadata_only:
            cases.append(("none", True))
        for transform, metadata_only in cases:
            plain = run_case(url, transform, False, args.pods, metadata_only)
            traced = run_case(url, transform, True, args.pods, metadata_only)
            label = "metadata_only" if metadata_only else transform
            rows.append((label, plain, traced))
    finally:
        server.terminate()
        server.wait()

    print(f"{args.pods:,} pods of {pod_bytes:,} bytes of JSON each ({managed_bytes:,} of them"
          f" managedFields), {args.pods * pod_bytes / 2**20:,.0f} MiB in all; listed in pages"
          f" of {PAGE} over loopback HTTP from a separate process; Python"
          f" {sys.version.split()[0]}, msgspec {msgspec.__version__}, pid-fresh process per row")
    header = ("transform", "sync s", "RSS MiB", "peak RSS MiB", "traced MiB", "traced/pod")
    print()
    print(f"{header[0]:<21}{header[1]:>8}{header[2]:>10}{header[3]:>14}{header[4]:>12}{header[5]:>12}")
    for transform, plain, traced in rows:
        print(
            f"{transform:<21}{plain['sync_seconds']:>8.1f}{plain['rss_kib'] / 1024:>10.0f}"
            f"{plain['peak_rss_kib'] / 1024:>14.0f}{traced['traced_bytes'] / 2**20:>12.0f}"
            f"{traced['traced_bytes'] / args.pods:>10,.0f} B"
        )
    print()
    header2 = ("informer", "get p50", "get p99", "list 1%", "list all", "event p50",
               "event p99")
    print(f"{header2[0]:<21}" + "".join(f"{h:>11}" for h in header2[1:]))
    for label, plain, _ in rows:
        print(f"{label:<21}{plain['get_p50'] * 1e6:>8.0f} us{plain['get_p99'] * 1e6:>8.0f} us"
              f"{plain['list_one_percent'] * 1e3:>8.1f} ms{plain['list_all'] * 1e3:>8.0f} ms"
              f"{plain['latency_p50'] * 1e3:>8.2f} ms{plain['latency_p99'] * 1e3:>8.2f} ms")
    print()
    print("RSS: growth of the measuring process from before the informer to after the sync"
          " (garbage collected); peak RSS: its high-water mark; traced: Python allocations"
          " alive after the sync, by tracemalloc in a second process. get: informer.get() of"
          " 2,000 random pods; list 1%: list(label_selector='shard=07'); list all:"
          " list(label_selector='app=web'), every pod; event: server stamp to store, 200"
          " MODIFIED events 5 ms apart.")


if __name__ == "__main__":
    main()
