"""Where decoding time goes, without HTTP: the experiments behind docs/performance.md.

    python -m benchmarks.decode_costs            # 10,000 pods (~68 MB), ~1 minute
    python -m benchmarks.decode_costs --pods 1000

1. One LIST body decoded into: the baseline's plain Structs, kubeasync's models, plain
   dicts; each with the garbage collector on and off, and through kubeasync's ``decode()``
   (GC paused for the decode, re-enabled after: its first collection is included).
   Also: how many GC-tracked objects one decode allocates (what a collection must scan).
2. A watch-like loop: decode one pod per event and keep the last object of K keys (as a
   resilient watcher or an informer does), to show what freeing the replaced objects costs.

Everything runs in this one process, sequentially; each figure is the best or median of a
few repetitions, as printed.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

from kubeasync.core.codec import decode, decoder_for
from kubeasync.models import Pod, PodList

from . import data
from . import plain_models as plain


def timed(fn: Callable[[], Any], reps: int) -> float:
    samples = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
        del result
    return statistics.median(samples)


def gc_off(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        was = gc.isenabled()
        gc.disable()
        try:
            return fn()
        finally:
            if was:
                gc.enable()

    return run


def tracked_by(fn: Callable[[], Any]) -> int:
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        before = len(gc.get_objects(0))
        result = fn()
        count = len(gc.get_objects(0)) - before
        del result
    finally:
        if was:
            gc.enable()
    return count


def list_costs(pods: int, reps: int) -> None:
    body = data.list_body([data.pod_bytes(i) for i in range(pods)])
    plain_decoder = msgspec.json.Decoder(plain.PodList)
    kube_decoder = decoder_for(PodList)
    print(f"LIST body: {pods} pods, {len(body) / 1e6:.1f} MB; median of {reps}")
    rows = [
        ("plain Structs (baseline models), GC on", lambda: plain_decoder.decode(body)),
        ("plain Structs, GC off", gc_off(lambda: plain_decoder.decode(body))),
        ("kubeasync models (gc=False, Raw fieldsV1), GC on", lambda: kube_decoder.decode(body)),
        ("kubeasync models, GC off", gc_off(lambda: kube_decoder.decode(body))),
        ("kubeasync decode(): GC paused, then its first collection",
         lambda: decode(kube_decoder, body)),
        ("plain dicts, GC on", lambda: msgspec.json.decode(body)),
        ("plain dicts, GC off", gc_off(lambda: msgspec.json.decode(body))),
    ]
    for label, fn in rows:
        print(f"  {timed(fn, reps) * 1000:8.0f} ms  {label}")
    print("  GC-tracked objects allocated by one decode:")
    print(f"  {tracked_by(lambda: plain_decoder.decode(body)):10,}  plain Structs")
    print(f"  {tracked_by(lambda: kube_decoder.decode(body)):10,}  kubeasync models")
    print(f"  {tracked_by(lambda: msgspec.json.decode(body)):10,}  plain dicts")


def retention_costs(events: int, reps: int) -> None:
    decoder = msgspec.json.Decoder(Pod)
    lines = [data.pod_bytes(i % 1000, resource_version=200000 + i) for i in range(events)]

    def loop(keep: int) -> float:
        seen: dict[int, Any] = {}
        start = time.perf_counter()
        for i, line in enumerate(lines):
            obj = decoder.decode(line)
            if keep:
                seen[i % keep] = obj  # frees the object this key held
        return (time.perf_counter() - start) / len(lines) * 1e6

    print(f"\nWatch-like loop: {events} pods decoded one by one; best of {reps}")
    for keep in (0, 100, 1000, 5000):
        what = "each object dropped at once" if not keep else f"last object of {keep} keys kept"
        print(f"  {min(loop(keep) for _ in range(reps)):6.1f} us/event  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    list_costs(args.pods, args.reps)
    retention_costs(args.events, 3)


if __name__ == "__main__":
    main()
