"""examples/website_controller.py on a real API server: it installs its CRD, makes a
Deployment and a Service owned by each Website, writes the status back, runs its
finalizer on deletion and records Events (events.k8s.io/v1 on 1.20)."""

from __future__ import annotations

import asyncio
import contextlib

import kubeasync
from examples.website_controller import CRD, FINALIZER, WEBSITES, WebsiteController, install_crd
from kubeasync.kinds import (
    APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS,
    APPS_V1_DEPLOYMENTS,
    EVENTS_V1_EVENTS,
)
from tests.helpers.waiting import eventually


async def test_real_website_controller(real_kube: kubeasync.Client, namespace: str) -> None:
    kube = real_kube
    await install_crd(kube)  # created, or already there from an earlier run: Established
    crd = await kube.resource(APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS).get(
        CRD["metadata"]["name"])
    assert kubeasync.conditions.crd_established(crd)
    websites = kube.resource(WEBSITES)
    deployments = kube.resource(APPS_V1_DEPLOYMENTS)
    controller = WebsiteController(kube, namespace=namespace, workers=2)
    running = asyncio.ensure_future(controller.run())
    try:
        await websites.create({"metadata": {"name": "blog"},
                               "spec": {"image": "nginx:1.25", "replicas": 2}},
                              namespace=namespace)

        async def reconciled() -> bool:
            site = await websites.get("blog", namespace=namespace)
            return site.status is not None and \
                site.status.observed_generation == site.metadata.generation

        await eventually(reconciled, "the Website reconciled", timeout=60)
        site = await websites.get("blog", namespace=namespace)
        assert site.spec is not None and site.spec.port == 80  # the CRD's default
        assert site.metadata.finalizers == [FINALIZER]
        deployment = await deployments.get("blog", namespace=namespace)
        service = await kube.services.get("blog", namespace=namespace)
        for child in (deployment, service):
            [reference] = child.metadata.owner_references or []
            assert reference.uid == site.metadata.uid and reference.controller
        assert deployment.spec is not None and deployment.spec.replicas == 2
        assert site.status is not None and site.status.conditions[0].type == "Available"

        # a new generation reaches the Deployment, and the status follows it
        await websites.patch("blog", {"spec": {"replicas": 1}}, namespace=namespace)

        async def scaled() -> bool:
            d = await deployments.get("blog", namespace=namespace)
            return d.spec is not None and d.spec.replicas == 1 and await reconciled()

        await eventually(scaled, "the new generation applied", timeout=60)

        await websites.delete("blog", namespace=namespace)

        async def gone() -> bool:
            try:
                await websites.get("blog", namespace=namespace)
            except kubeasync.NotFound:
                return True
            return False

        await eventually(gone, "the Website deleted", timeout=60)
        for api in (deployments, kube.services):
            try:
                child = await api.get("blog", namespace=namespace)
            except kubeasync.NotFound:
                continue
            assert child.metadata.deletion_timestamp  # on its way out
        await controller.events.flush()
        events = await kube.resource(EVENTS_V1_EVENTS).list(namespace=namespace)
        reasons = {e.reason for e in events.items
                   if e.reporting_controller == "demo.kubeasync.io/website-controller"}
        assert {"Created", "Deleting"} <= reasons
    finally:
        running.cancel()
        await asyncio.wait({running})
        # A Website left with the finalizer and no controller would keep the CRD (and
        # the namespace) terminating forever: let go of what a failure left behind.
        for left in (await websites.list(namespace=namespace)).items:
            with contextlib.suppress(kubeasync.NotFound):
                await websites.patch(left.metadata.name or "", {
                    "metadata": {"finalizers": None}}, namespace=namespace)
        with contextlib.suppress(kubeasync.NotFound):
            await kube.resource(APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS).delete(
                CRD["metadata"]["name"])
