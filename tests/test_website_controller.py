"""examples/website_controller.py on the embedded API server.

The server here is given a narrow table: the Website descriptor directly (the example sees
the resource served and skips installing the CRD) and Deployments without ReplicaSets, so
that no Deployment controller runs and the test writes the Deployment's status itself, step
by step. tests/test_examples.py runs the example as a script on the default table (it
installs its CRD, the server's controllers make the Deployment available), and
tests/integration/test_real_website_controller.py on a real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import kubeasync
from examples.website_controller import FINALIZER, WEBSITES, WebsiteController, install_crd
from kubeasync.kinds import (
    APPS_V1_DEPLOYMENTS,
    COORDINATION_V1_LEASES,
    EVENTS_V1_EVENTS,
    SEED_RESOURCES,
)
from kubeasync.testing import FakeApiServer

RESOURCES = (*SEED_RESOURCES, WEBSITES, APPS_V1_DEPLOYMENTS, EVENTS_V1_EVENTS,
             COORDINATION_V1_LEASES)


@pytest.fixture
def fake_apiserver_options() -> dict[str, Any]:
    return {"resources": RESOURCES}


async def until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def test_a_website_gets_its_deployment_service_status_finalizer_and_events(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    assert await install_crd(kube) is False  # served already: nothing to install
    controller = WebsiteController(kube, workers=2)
    running = asyncio.ensure_future(controller.run())
    server = fake_apiserver
    await kube.resource(WEBSITES).create(
        {"metadata": {"name": "blog"}, "spec": {"image": "nginx:1.25", "replicas": 2}})

    def site() -> dict[str, Any]:
        found = server.get_object(WEBSITES, "blog")
        assert found is not None
        return found

    await until(lambda: server.get_object(APPS_V1_DEPLOYMENTS, "blog")
                and server.get_object("services", "blog") and site().get("status"))
    deployment = server.get_object(APPS_V1_DEPLOYMENTS, "blog")
    service = server.get_object("services", "blog")
    assert deployment is not None and service is not None
    uid = site()["metadata"]["uid"]
    for child in (deployment, service):
        [reference] = child["metadata"]["ownerReferences"]
        assert reference["uid"] == uid and reference["controller"] is True
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert service["spec"]["ports"][0]["port"] == 80
    assert site()["metadata"]["finalizers"] == [FINALIZER]
    status = site()["status"]
    assert status["observedGeneration"] == site()["metadata"]["generation"]
    assert status["availableReplicas"] == 0 and status["conditions"][0]["status"] == "False"
    assert status["url"] == "http://blog.default.svc:80"

    # The Deployment becomes available (a deployment controller would write this): the
    # owned object's change brings the Website back, and its status follows.
    server.registry.mutate(APPS_V1_DEPLOYMENTS, "default", "blog",
                           lambda d: d.__setitem__("status", {"availableReplicas": 2,
                                                              "replicas": 2}),
                           subresource="status")
    await until(lambda: site()["status"]["availableReplicas"] == 2)
    assert site()["status"]["conditions"][0]["status"] == "True"

    # A spec change: a new generation, applied to the Deployment.
    await kube.resource(WEBSITES).patch("blog", {"spec": {"replicas": 3}})
    await until(lambda: (server.get_object(APPS_V1_DEPLOYMENTS, "blog") or {})
                .get("spec", {}).get("replicas") == 3
                and site()["status"]["observedGeneration"] == site()["metadata"]["generation"])
    assert site()["status"]["conditions"][0]["status"] == "False"  # 2 of 3

    # Someone deletes the Service: the owner is reconciled and it is back.
    await kube.services.delete("blog")
    await until(lambda: server.get_object("services", "blog") is not None)

    # Deleting the Website: the finalizer's cleanup deletes the children first.
    await kube.resource(WEBSITES).delete("blog")
    await until(lambda: server.get_object(WEBSITES, "blog") is None)
    assert server.get_object(APPS_V1_DEPLOYMENTS, "blog") is None
    assert server.get_object("services", "blog") is None

    running.cancel()
    await asyncio.wait({running})
    reasons = [e["reason"] for e in server.list_objects(EVENTS_V1_EVENTS)]
    assert {"Created", "Available", "Deleting"} <= set(reasons)
    assert all(e["reportingController"] == "demo.kubeasync.io/website-controller"
               for e in server.list_objects(EVENTS_V1_EVENTS))
