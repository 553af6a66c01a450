"""Pod eviction on the embedded API server: a capability added as one module.

The Eviction goes in the newest policy version the server serves; a PodDisruptionBudget with
no disruption left answers 429, which surfaces as ``TooManyRequests``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import kubeasync
from kubeasync.kinds import POLICY_V1_POD_DISRUPTION_BUDGETS, SEED_RESOURCES
from kubeasync.testing import FakeApiServer, Timings

FAST = Timings(schedule=0.01, start=0.01, run=0.05, terminate=0.01)
simulated = pytest.mark.fake_apiserver(
    simulate=True, timings=FAST, resources=(*SEED_RESOURCES, POLICY_V1_POD_DISRUPTION_BUDGETS))


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}}


def budget(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


async def ready(kube: kubeasync.Client, name: str) -> None:
    async def check() -> None:
        while True:
            current = await kube.pods.get(name)
            conditions = (current.status.conditions if current.status else None) or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(check(), 10)


async def gone(kube: kubeasync.Client, name: str) -> None:
    async def check() -> None:
        while True:
            try:
                await kube.pods.get(name)
            except kubeasync.NotFound:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(check(), 10)


@simulated
async def test_a_pod_without_a_budget_is_evicted(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod("lonely", app="other"))
    await ready(kube, "lonely")
    status = await kube.pods.evict("lonely")
    assert status.status == "Success"
    await gone(kube, "lonely")


@simulated
async def test_a_budget_with_no_disruption_left_answers_too_many_requests(
    kube: kubeasync.Client,
) -> None:
    await kube.pods.create(pod("web-0", app="web"))
    await ready(kube, "web-0")
    await kube.pod_disruption_budgets.create(budget("web", minAvailable=1))
    with pytest.raises(kubeasync.TooManyRequests) as info:
        await kube.pods.evict("web-0")
    assert info.value.code == 429
    assert info.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    causes = info.value.status.details.causes if info.value.status.details else None
    assert causes and causes[0].reason == "DisruptionBudget"
    assert causes[0].message == "The disruption budget web needs 1 healthy pods and has 1 currently"
    assert (await kube.pods.get("web-0")).metadata is not None, "the pod is still there"


@simulated
async def test_a_budget_with_room_lets_one_pod_go(kube: kubeasync.Client) -> None:
    for name in ("web-0", "web-1"):
        await kube.pods.create(pod(name, app="web"))
    for name in ("web-0", "web-1"):
        await ready(kube, name)
    await kube.pod_disruption_budgets.create(budget("web", minAvailable=1))
    await kube.pods.evict("web-0", grace_period_seconds=0)
    await gone(kube, "web-0")
    with pytest.raises(kubeasync.TooManyRequests):
        await kube.pods.evict("web-1")


@simulated
async def test_a_pending_pod_ignores_its_budget(kube: kubeasync.Client,
                                                fake_apiserver: FakeApiServer) -> None:
    # As kube-apiserver: a pod that is not running cannot be disrupted.
    fake_apiserver.control_plane.simulate = False
    await kube.pods.create(pod("waiting", app="web"))
    await kube.pod_disruption_budgets.create(budget("web", minAvailable=1))
    await kube.pods.evict("waiting")
    await gone(kube, "waiting")


async def test_evicting_a_missing_pod_is_not_found(kube: kubeasync.Client) -> None:
    with pytest.raises(kubeasync.NotFound, match='pods "nobody" not found'):
        await kube.pods.evict("nobody")


async def test_bad_arguments_raise_before_anything_is_sent(kube: kubeasync.Client) -> None:
    with pytest.raises(ValueError, match="grace_period_seconds"):
        await kube.pods.evict("p", grace_period_seconds=-1)
    with pytest.raises(ValueError, match="name"):
        await kube.pods.evict("a/b")


async def test_only_pods_can_be_evicted(kube: kubeasync.Client) -> None:
    assert hasattr(kube.pods, "evict")
    assert not hasattr(kube.jobs, "evict")
    assert not hasattr(kube.config_maps, "evict")


@pytest.mark.parametrize(
    ("served", "sent"),
    [(["v1", "v1beta1"], "policy/v1"), (["v1beta1"], "policy/v1beta1")],
)
async def test_the_eviction_goes_in_the_newest_version_the_server_serves(
    served: list[str], sent: str
) -> None:
    bodies: list[dict[str, Any]] = []

    async def group(request: web.Request) -> web.Response:
        versions = [{"groupVersion": f"policy/{v}", "version": v} for v in served]
        return web.json_response({"kind": "APIGroup", "name": "policy", "versions": versions,
                                  "preferredVersion": versions[0]})

    async def eviction(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "code": 201}, status=201)

    app = web.Application()
    app.router.add_get("/apis/policy", group)
    app.router.add_post("/api/v1/namespaces/ns/pods/{name}/eviction", eviction)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        config = kubeasync.ClusterConfig(server=f"http://127.0.0.1:{server.port}",
                                         namespace="ns")
        async with kubeasync.Client(config) as kube:
            await kube.pods.evict("a")
            await kube.pods.evict("b")
    finally:
        await server.close()
    assert [b["apiVersion"] for b in bodies] == [sent, sent]
    assert bodies[0]["metadata"] == {"name": "a", "namespace": "ns"}
