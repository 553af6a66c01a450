"""Metadata-only reads against a real kube-apiserver: what it answers to the
PartialObjectMetadata Accept headers, and kubeasync's list/watch/informer over it.

Runs when ``KUBEASYNC_TEST_KUBECONFIG`` names a kubeconfig; skipped otherwise. ConfigMaps:
they need no node or controller.
"""

from __future__ import annotations

import asyncio

import kubeasync
from kubeasync.models import ConfigMap, PartialObjectMetadata, PartialObjectMetadataList
from tests.helpers.waiting import FAST


def config_map(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": {"suite": "meta", **labels}},
            "data": {"payload": "x" * 2000}}


async def test_list_and_get_metadata_only_on_a_real_server(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    for i in range(3):
        await real_kube.config_maps.create(config_map(f"cm-{i}", n=str(i)),
                                           namespace=namespace)
    listing = await real_kube.config_maps.list(namespace=namespace, metadata_only=True,
                                               label_selector="suite=meta", limit=2)
    assert type(listing) is PartialObjectMetadataList
    assert (listing.kind, listing.api_version) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    assert listing.metadata.continue_  # pages work as for full lists
    assert [(i.kind, i.api_version) for i in listing.items] == [
        ("PartialObjectMetadata", "meta.k8s.io/v1")] * 2
    names = [m.metadata.name async for m in real_kube.config_maps.iterate(
        namespace=namespace, metadata_only=True, label_selector="suite=meta", page_size=2)]
    assert sorted(n or "" for n in names) == ["cm-0", "cm-1", "cm-2"]
    one = await real_kube.config_maps.get("cm-1", namespace=namespace, metadata_only=True)
    assert type(one) is PartialObjectMetadata and one.kind == "PartialObjectMetadata"
    full = await real_kube.config_maps.get("cm-1", namespace=namespace)
    assert isinstance(full, ConfigMap)
    assert one.metadata.uid == full.metadata.uid
    assert one.metadata.resource_version == full.metadata.resource_version
    assert one.metadata.labels == {"suite": "meta", "n": "1"}
    assert one.metadata.managed_fields  # metadata is whole, managedFields included


async def test_watch_and_informer_metadata_only_on_a_real_server(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    await real_kube.config_maps.create(config_map("w-0"), namespace=namespace)
    watcher = real_kube.config_maps.watch(namespace=namespace, metadata_only=True,
                                          label_selector="suite=meta", backoff=FAST,
                                          timeout_seconds=30)
    informer = real_kube.config_maps.informer(namespace=namespace, metadata_only=True,
                                              label_selector="suite=meta", backoff=FAST)
    async with watcher, informer:
        first = await asyncio.wait_for(watcher.__anext__(), 30)
        assert first.type == "ADDED" and type(first.object) is PartialObjectMetadata
        assert first.object.metadata.name == "w-0"
        await asyncio.wait_for(informer.wait_synced(), 30)
        assert informer.get("w-0") is not None
        await real_kube.config_maps.patch("w-0", {"metadata": {"labels": {"x": "1"}}},
                                          namespace=namespace)
        second = await asyncio.wait_for(watcher.__anext__(), 30)
        assert second.type == "MODIFIED"
        assert (second.object.kind, second.object.api_version) == (
            "PartialObjectMetadata", "meta.k8s.io/v1")
        assert (second.object.metadata.labels or {}).get("x") == "1"
        await real_kube.config_maps.delete("w-0", namespace=namespace)
        third = await asyncio.wait_for(watcher.__anext__(), 30)
        assert third.type == "DELETED" and third.object.metadata.name == "w-0"
        for _ in range(300):
            if informer.get("w-0") is None:
                break
            await asyncio.sleep(0.05)
        assert informer.get("w-0") is None
