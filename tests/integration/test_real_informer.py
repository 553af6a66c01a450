"""The informer against a real cluster: the integration tier.

Runs when ``KUBEASYNC_TEST_KUBECONFIG`` names a kubeconfig (for instance the real
kube-apiserver of ``../shared/tools/real-apiserver``); skipped otherwise. It works in a
namespace of its own, created and deleted here, and uses ConfigMaps, which need no
service account, node or controller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kubeasync
from kubeasync import Backoff, Informer

FAST = Backoff(initial=0.05, maximum=0.5)


async def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


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
