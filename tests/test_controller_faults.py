"""The controller under the soak's faults converges.

A controller keeps, for every "parent" ConfigMap, a child ConfigMap it owns holding the
parent's data. Writers create, change and delete parents while the embedded server
injects the soak's faults one at a time (benchmarks/soak.py: watches cut mid-line and
after n events, every watch dropped or ended, a stalled watch, a compaction that expires
every resourceVersion (410), 429s and 503s), fails some of the controller's writes (500, 429), and
is restarted (a parent changing while it is down, its history compacted). Then the writers and the faults stop, and the children must match the
parents exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import kubeasync
from benchmarks.soak import FAULT_KINDS, FaultCounts, inject
from kubeasync import Backoff, Controller, ExponentialBackoff, NotFound, ObjectKey
from kubeasync.kinds import CONFIG_MAPS
from kubeasync.testing import FakeApiServer

NAMESPACES = ("ns-0", "ns-1")
NAMES = [f"p{i}" for i in range(12)]
FAULTS_FOR = 6.0


def expected(server: FakeApiServer) -> dict[tuple[str, str], dict[str, str]]:
    return {(o["metadata"]["namespace"], o["metadata"]["name"] + "-child"): o.get("data") or {}
            for ns in NAMESPACES for o in server.list_objects(CONFIG_MAPS, ns)
            if (o["metadata"].get("labels") or {}).get("role") == "parent"}


def children(server: FakeApiServer) -> dict[tuple[str, str], dict[str, str]]:
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o.get("data") or {}
            for ns in NAMESPACES for o in server.list_objects(CONFIG_MAPS, ns)
            if (o["metadata"].get("labels") or {}).get("role") == "child"}


async def test_the_controller_converges_under_the_soaks_faults_and_restarts() -> None:
    rng = random.Random(16)
    async with (FakeApiServer(namespaces=("default", *NAMESPACES)) as server,
                kubeasync.Client(server.config(), timeout=5) as kube):
        configmaps = kube.config_maps

        async def reconcile(key: ObjectKey) -> None:
            parent = controller.get(key)
            child = f"{key.name}-child"
            if parent is None or parent.metadata.deletion_timestamp:
                with contextlib.suppress(NotFound):
                    await configmaps.delete(child, namespace=key.namespace)
                return
            body = {"metadata": {"name": child, "labels": {"role": "child"},
                                 "ownerReferences": [{
                                     "apiVersion": "v1", "kind": "ConfigMap",
                                     "name": key.name, "uid": parent.metadata.uid,
                                     "controller": True}]},
                    "data": dict(parent.data or {})}
            await configmaps.patch(child, body, namespace=key.namespace,
                                   patch_type=kubeasync.PatchType.APPLY,
                                   field_manager="parent-controller", force=True)

        controller = Controller(
            kube, CONFIG_MAPS, reconcile, label_selector={"role": "parent"}, workers=4,
            rate_limiter=ExponentialBackoff(base=0.01, maximum=0.5),
            informer_options={"backoff": Backoff(initial=0.05, maximum=1.0,
                                                 reset_after=5.0),
                              "timeout_seconds": 5, "idle_timeout": 2.0},
        ).owns(CONFIG_MAPS)
        running = asyncio.ensure_future(controller.run())
        writes = 0

        async def writer(stop_at: float) -> None:
            nonlocal writes
            async with kubeasync.Client(server.config(), timeout=5) as own:
                while time.monotonic() < stop_at:
                    ns, name = rng.choice(NAMESPACES), rng.choice(NAMES)
                    try:
                        if rng.random() < 0.2:
                            await own.config_maps.delete(name, namespace=ns)
                        else:
                            await own.config_maps.patch(
                                name, {"metadata": {"labels": {"role": "parent"}},
                                       "data": {"v": str(rng.randrange(1000))}},
                                namespace=ns, patch_type=kubeasync.PatchType.APPLY,
                                field_manager="writer", force=True)
                        writes += 1
                    except kubeasync.KubeError:
                        pass  # a fault or a restart: the writer just goes on
                    await asyncio.sleep(0.01)

        counts = FaultCounts()
        stop_at = time.monotonic() + FAULTS_FOR
        writers = [asyncio.ensure_future(writer(stop_at)) for _ in range(2)]
        kinds = ["write-500", *FAULT_KINDS, "restart", "write-429"]
        injected: list[str] = []
        while time.monotonic() < stop_at:
            await asyncio.sleep(rng.expovariate(1 / 0.25))
            kind = kinds[len(injected) % len(kinds)]
            injected.append(kind)
            if kind == "restart":
                # Down for a while; a parent changes meanwhile and the history is
                # compacted, so every watcher comes back to a 410 and relists.
                await server.stop()
                await asyncio.sleep(0.3)
                ns, name = rng.choice(NAMESPACES), rng.choice(NAMES)
                if server.get_object(CONFIG_MAPS, name, ns) is None:
                    server.put_object(CONFIG_MAPS, {
                        "metadata": {"name": name, "namespace": ns,
                                     "labels": {"role": "parent"}},
                        "data": {"v": "while-down"}})
                else:
                    server.delete_object(CONFIG_MAPS, name, ns)
                server.compact()
                await server.start()
            elif kind == "write-500":  # not retried by the session: the reconcile fails
                server.faults.fail_next(3, status=500, method="PATCH", path=r"-child$")
            elif kind == "write-429":
                server.faults.fail_next(3, status=429, retry_after=1, method="DELETE")
            else:
                inject(server, kind, rng, counts)
        await asyncio.gather(*writers)
        server.faults.clear()

        deadline = time.monotonic() + 60
        while children(server) != expected(server):
            assert not running.done(), running
            if time.monotonic() > deadline:  # say what differs: cache or children
                stale = {key: (controller.get(ObjectKey(*key)), server.get_object(
                    CONFIG_MAPS, key[1], key[0])) for key in (
                        (ns, child[: -len("-child")]) for ns, child in expected(server))}
                print({key: (cached and cached.metadata.resource_version,
                             stored and stored["metadata"]["resourceVersion"])
                       for key, (cached, stored) in stale.items()})
            assert time.monotonic() < deadline, (
                f"not converged: {len(expected(server))} parents,"
                f" {len(children(server))} children")
            await asyncio.sleep(0.1)
        assert writes > 50 and set(injected) >= set(kinds)
        stats = controller.informer.stats
        assert stats.resyncs >= 2  # the compactions made it relist
        assert sum(stats.failures.values()) > 0
        assert controller.stats.failures > 0  # and failed writes were retried
        running.cancel()
        await asyncio.wait({running})
