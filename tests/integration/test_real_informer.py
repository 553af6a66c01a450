"""The informer against a real cluster: the integration tier.

Runs when ``KUBEASYNC_TEST_KUBECONFIG`` names a kubeconfig (for instance the real
kube-apiserver of ``../shared/tools/real-apiserver``); skipped otherwise. It works in a
namespace of its own, created and deleted here, and mostly uses ConfigMaps, which need no
node or controller. The tests that compact etcd or restart the server also need
``KUBEASYNC_REAL_APISERVER_TOOLS`` (see ``conftest.py``); their informer reaches the server
through a forwarder that can cut it off (:mod:`tests.helpers.partition`), so that it
misses the changes made meanwhile through the test's own client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import kubeasync
from kubeasync import Change, Informer
from tests.helpers.partition import partitioned_client
from tests.helpers.waiting import FAST, eventually

if TYPE_CHECKING:
    from tests.integration.conftest import RealApiServer


def state(objects: list[Any]) -> dict[str, str]:
    # Only ours: a real cluster adds objects of its own (kube-root-ca.crt) to a namespace.
    return {o.metadata.name: o.metadata.resource_version for o in objects
            if (o.metadata.labels or {}).get("suite") == "informer"}


async def server_state(kube: kubeasync.Client, namespace: str) -> dict[str, str]:
    return state((await kube.config_maps.list(namespace=namespace)).items)


async def test_an_informer_follows_a_real_cluster(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    labels = [{"app": "web", "n": "3"}, {"app": "web", "tier": "back", "n": "10"},
              {"app": "db"}, {}]
    for i, cm_labels in enumerate(labels):
        await real_kube.config_maps.create(
            {"metadata": {"name": f"cm-{i}", "labels": {"suite": "informer", **cm_labels}}},
            namespace=namespace,
        )
    maps: Informer[Any] = real_kube.config_maps.informer(
        namespace=namespace, label_selector={"suite": "informer"}, page_size=2, backoff=FAST,
        transform=kubeasync.drop_managed_fields,
    )
    async with maps:
        await asyncio.wait_for(maps.wait_synced(), 30)
        assert state(maps.list()) == await server_state(real_kube, namespace)
        assert all(cm.metadata.managed_fields is None for cm in maps.list())

        for selector in ["app=web", "app!=web", "tier", "!tier", "app in (web,db),n>3",
                         "app notin (db)", {"app": "web"}]:
            local = sorted(state(maps.list(label_selector=selector)))
            page = await real_kube.config_maps.list(namespace=namespace,
                                                    label_selector=selector)
            assert local == sorted(state(page.items)), selector

        seen: list[tuple[str, str]] = []

        async def consume() -> None:
            async for change in maps.changes(replay=False):
                seen.append((change.type, change.name))

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await real_kube.config_maps.patch("cm-0", {"data": {"a": "b"}}, namespace=namespace)
        await real_kube.config_maps.delete("cm-1", namespace=namespace)
        await real_kube.config_maps.create(
            {"metadata": {"name": "cm-9", "labels": {"suite": "informer"}}}, namespace=namespace
        )
        await real_kube.config_maps.create({"metadata": {"name": "other"}}, namespace=namespace)
        await eventually(lambda: len(seen) >= 3, "three changes")
        assert seen == [("updated", "cm-0"), ("deleted", "cm-1"), ("added", "cm-9")]
        assert state(maps.list()) == await server_state(real_kube, namespace)
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


SUITE = {"suite": "informer"}


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": SUITE},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/none"}]}}


async def converged(informer: Informer[Any], api: Any, namespace: str) -> dict[str, str]:
    """Wait (30 s at most) until the store equals the server's list."""
    for _ in range(300):
        assert informer.error is None, informer.error
        server = state((await api.list(namespace=namespace, label_selector=SUITE)).items)
        if state(informer.list()) == server:
            return server
        await asyncio.sleep(0.1)
    raise AssertionError(f"the store {state(informer.list())} never converged to {server}")


class Recorder:
    """Follows ``informer.changes(replay=False)`` in the background."""

    def __init__(self, informer: Informer[Any]) -> None:
        self.changes: list[Change[Any]] = []
        self.task = asyncio.create_task(self._run(informer))

    async def _run(self, informer: Informer[Any]) -> None:
        async for change in informer.changes(replay=False):
            self.changes.append(change)

    def since(self, start: int) -> list[tuple[str, str]]:
        return [(c.type, c.name) for c in self.changes[start:]]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_an_informer_converges_after_a_compaction_forced_410(
    real_kube: kubeasync.Client,
    real_config: kubeasync.ClusterConfig,
    real_apiserver: RealApiServer,
    namespace: str,
) -> None:
    maps = real_kube.config_maps  # no watch cache for configmaps here: watches read etcd
    for i in range(4):
        await maps.create({"metadata": {"name": f"cm-{i}", "labels": SUITE}},
                          namespace=namespace)
    async with partitioned_client(real_config) as (kube, net):
        informer: Informer[Any] = kube.config_maps.informer(
            namespace=namespace, label_selector=SUITE, backoff=FAST)
        async with informer:
            await asyncio.wait_for(informer.wait_synced(), 30)
            recorder = Recorder(informer)
            await maps.patch("cm-0", {"data": {"live": "1"}}, namespace=namespace)
            await converged(informer, maps, namespace)
            await eventually(lambda: len(recorder.changes) == 1, "the live change")
            known = {cm.metadata.name: cm for cm in informer.list()}

            net.partition()  # the informer's watch is cut off: it misses what follows
            await maps.create({"metadata": {"name": "cm-9", "labels": SUITE}},
                              namespace=namespace)
            await maps.patch("cm-1", {"data": {"away": "1"}}, namespace=namespace)
            await maps.delete("cm-2", namespace=namespace)
            await maps.delete("cm-3", namespace=namespace)
            await real_apiserver.compact()  # ... and the versions it would resume from
            net.heal()

            await converged(informer, maps, namespace)
            await eventually(lambda: len(recorder.changes) == 5, "four changes after the live one")
            await recorder.close()
            stats = informer.stats
    assert stats.failures["Gone"] >= 1 and stats.resyncs == 2  # it relisted, once
    assert sorted(recorder.since(1)) == [
        ("added", "cm-9"), ("deleted", "cm-2"), ("deleted", "cm-3"), ("updated", "cm-1")]
    for change in recorder.changes[1:]:
        if change.type == "deleted":
            # Its final state was never seen: the informer reports the last state it held.
            assert change.object is known[change.name]
            assert change.object.metadata.labels == SUITE
        if change.type == "updated":
            assert change.old is known["cm-1"] and change.object.data == {"away": "1"}


async def test_an_informer_converges_after_an_api_server_restart(
    real_kube: kubeasync.Client,
    real_config: kubeasync.ClusterConfig,
    real_apiserver: RealApiServer,
    namespace: str,
) -> None:
    pods = real_kube.pods  # from the watch cache, which the restart rebuilds
    for i in range(4):
        await pods.create(pod(f"p-{i}"), namespace=namespace)
    async with partitioned_client(real_config) as (kube, net):
        informer: Informer[Any] = kube.pods.informer(
            namespace=namespace, label_selector=SUITE, backoff=FAST)
        async with informer:
            await asyncio.wait_for(informer.wait_synced(), 30)
            recorder = Recorder(informer)
            known = {p.metadata.name: p for p in informer.list()}

            await real_apiserver.stop()  # cuts the watch; the informer's watcher retries
            net.partition()  # and stays away until the writes below are done
            await real_apiserver.start()
            await pods.create(pod("p-9"), namespace=namespace)
            await pods.patch("p-1", {"metadata": {"annotations": {"after": "restart"}}},
                             namespace=namespace)
            await pods.delete("p-2", namespace=namespace, grace_period_seconds=0)
            await pods.delete("p-3", namespace=namespace, grace_period_seconds=0)
            net.heal()

            server = await converged(informer, pods, namespace)
            await eventually(
                lambda: sum(c.type == "deleted" for c in recorder.changes) == 2, "two deletions")
            await recorder.close()
    assert sorted(server) == ["p-0", "p-1", "p-9"]
    deleted = {c.name: c for c in recorder.changes if c.type == "deleted"}
    assert sorted(deleted) == ["p-2", "p-3"]
    for name, change in deleted.items():
        assert change.object.metadata.uid == known[name].metadata.uid
    assert ("added", "p-9") in recorder.since(0)
    assert not any(c.type == "added" and c.name != "p-9" for c in recorder.changes)
