"""Pod eviction on a real kube-apiserver: 1.20 serves only policy/v1beta1, so the client
sends that; a PodDisruptionBudget the disruption controller has processed, with no
disruption left, answers 429 and the client raises ``TooManyRequests``."""

from __future__ import annotations

from typing import Any

import pytest

import kubeasync
from tests.helpers.waiting import eventually

PDB_V1BETA1 = kubeasync.custom_resource(
    group="policy", version="v1beta1", kind="PodDisruptionBudget",
    plural="poddisruptionbudgets",
)


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}}


async def running(kube: kubeasync.Client, name: str, namespace: str) -> None:
    """No kubelet runs pods in the tier: write the status a kubelet would (Running, Ready),
    which is what the disruption controller and the eviction judge."""
    current = await kube.pods.get(name, namespace=namespace)
    status = {"phase": "Running",
              "conditions": [{"type": "Ready", "status": "True"}]}
    body = {"metadata": {"name": name, "resourceVersion": current.metadata.resource_version},
            "status": status}
    await kube.pods.patch_status(name, body, namespace=namespace)


async def test_eviction_honours_a_disruption_budget(real_kube: kubeasync.Client,
                                                    namespace: str) -> None:
    assert await real_kube.discovery.versions("policy") == ("v1beta1",)
    await real_kube.pods.create(pod("web-0", app="web"), namespace=namespace)
    await running(real_kube, "web-0", namespace)
    budgets = real_kube.resource(PDB_V1BETA1)
    await budgets.create({"metadata": {"name": "web"},
                          "spec": {"minAvailable": 1,
                                   "selector": {"matchLabels": {"app": "web"}}}},
                         namespace=namespace)

    async def processed() -> bool:
        pdb = await budgets.get("web", namespace=namespace)
        status = pdb.get("status") or {}
        return bool(status.get("observedGeneration") == pdb["metadata"]["generation"]
                    and status.get("currentHealthy") == 1)

    await eventually(processed, "the disruption controller processed the budget")

    with pytest.raises(kubeasync.TooManyRequests) as info:
        await real_kube.pods.evict("web-0", namespace=namespace)
    assert info.value.code == 429
    assert info.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    details = info.value.status.details
    assert details is not None and details.causes
    assert details.causes[0].reason == "DisruptionBudget"
    assert details.causes[0].message == (
        "The disruption budget web needs 1 healthy pods and has 1 currently"
    )
    assert (await real_kube.pods.get("web-0", namespace=namespace)).metadata.name == "web-0"


async def test_a_pod_without_a_budget_is_evicted(real_kube: kubeasync.Client,
                                                 namespace: str) -> None:
    await real_kube.pods.create(pod("lonely", app="other"), namespace=namespace)
    await running(real_kube, "lonely", namespace)
    status = await real_kube.pods.evict("lonely", namespace=namespace)
    assert status.status == "Success"

    async def deleted() -> bool:
        try:
            current = await real_kube.pods.get("lonely", namespace=namespace)
        except kubeasync.NotFound:
            return True
        return current.metadata.deletion_timestamp is not None

    await eventually(deleted, "the evicted pod is being deleted")


async def test_evicting_a_missing_pod_is_not_found(real_kube: kubeasync.Client,
                                                  namespace: str) -> None:
    with pytest.raises(kubeasync.NotFound, match='pods "nobody" not found'):
        await real_kube.pods.evict("nobody", namespace=namespace)
