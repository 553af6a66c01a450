"""The issue's manifest (tests/data/manifests/every-kind.yaml) on the embedded server's default
table, through the public API: what tests/integration/test_real_kinds.py does on a real
kube-apiserver 1.20. The CronJob is batch/v1 here: the embedded server serves the catalogue
(of 1.37), the real 1.20 server batch/v1beta1 only."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

import kubeasync
from kubeasync import ApplyConflict, Conflict
from kubeasync.models import ConfigMap, Service
from kubeasync.models.apps_v1 import Deployment, StatefulSet
from kubeasync.models.batch_v1 import CronJob
from kubeasync.models.coordination_v1 import Lease
from kubeasync.models.core_v1 import Namespace, Secret
from kubeasync.models.networking_v1 import Ingress
from kubeasync.runtime import conditions
from kubeasync.testing import FakeApiServer

MANIFEST = Path(__file__).resolve().parent / "data" / "manifests" / "every-kind.yaml"


def manifest(namespace: str = "demo", group: str = "example.com") -> kubeasync.Manifest:
    text = MANIFEST.read_text().replace("NAMESPACE", namespace).replace("GROUP", group)
    return kubeasync.load_all_yaml(text.replace("apiVersion: batch/v1beta1",
                                                "apiVersion: batch/v1"))


def rv(obj: Any) -> str:
    return obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else (
        obj.metadata.resource_version)


async def test_the_manifest_applies_reapplies_changes_and_conflicts(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    objs = manifest()
    applied = await kube.apply(objs, field_manager="kinds-test")
    namespace_, deployment, statefulset, service, config, secret, cronjob, ingress, lease, \
        widget, crd = applied
    assert isinstance(namespace_, Namespace) and isinstance(statefulset, StatefulSet)
    assert isinstance(deployment, Deployment) and deployment.spec is not None
    assert deployment.spec.revision_history_limit == 10  # the server's defaults
    assert isinstance(service, Service) and service.spec is not None
    assert service.spec.cluster_ip
    assert isinstance(secret, Secret) and secret.data is not None
    assert base64.b64decode(secret.data["password"]) == b"s3cret" and secret.type == "Opaque"
    assert isinstance(config, ConfigMap) and config.data == {
        "mode": "production", "motd": "hello\nworld\n"}
    assert isinstance(cronjob, CronJob) and cronjob.spec is not None
    assert cronjob.spec.concurrency_policy == "Allow"
    assert isinstance(ingress, Ingress) and isinstance(lease, Lease)
    assert isinstance(widget, dict) and widget["spec"] == {"size": 3, "color": "red"}
    assert type(crd).__name__ == "CustomResourceDefinition"
    # the custom resource was applied once its CRD was Established
    live = await kube.custom_resource_definitions.wait_for(
        "widgets.example.com", conditions.crd_established, timeout=5)
    assert live.status is not None and live.status.stored_versions == ["v1"]
    managers = {(m.manager, m.operation) for m in deployment.metadata.managed_fields or ()}
    assert managers == {("kinds-test", "Apply")}

    # re-applied unchanged: the apply writes nothing. The Deployment's and StatefulSet's
    # controllers write their status meanwhile, so for those two what must not move is
    # what an apply would change: the applier's managedFields entry and the generation.
    controlled = {1, 2}
    again = await kube.apply(objs, field_manager="kinds-test")
    assert [rv(o) for i, o in enumerate(again) if i not in controlled] == [
        rv(o) for i, o in enumerate(applied) if i not in controlled]
    for before, after in ((applied[i], again[i]) for i in controlled):
        assert after.metadata.generation == before.metadata.generation == 1
        assert [m for m in after.metadata.managed_fields or () if m.manager == "kinds-test"] \
            == [m for m in before.metadata.managed_fields or () if m.manager == "kinds-test"]

    # a change: only the changed objects move
    changed = kubeasync.load_all_yaml(kubeasync.dump_all_yaml(objs).replace(
        "mode: production", "mode: debug").replace("replicas: 2", "replicas: 3"))
    third = await kube.apply(changed, field_manager="kinds-test")
    assert isinstance(third[4], ConfigMap) and third[4].data is not None
    assert third[4].data["mode"] == "debug"
    assert isinstance(third[1], Deployment) and third[1].spec is not None
    assert third[1].spec.replicas == 3 and third[1].metadata.generation == 2
    moved = [i for i, (a, b) in enumerate(zip(third, again, strict=True))
             if i not in controlled and rv(a) != rv(b)]
    assert moved == [4]
    assert isinstance(third[2], StatefulSet) and third[2].metadata.generation == 1

    # another manager's field: a Conflict naming the field and the manager, unless forced
    await kube.config_maps.patch("settings", {"data": {"mode": "maintenance"}},
                                 namespace="demo", field_manager="operator")
    with pytest.raises(ApplyConflict) as info:
        await kube.apply(changed, field_manager="kinds-test")
    assert isinstance(info.value, Conflict) and info.value.code == 409
    assert [(c.manager, c.field) for c in info.value.conflicts] == [("operator", ".data.mode")]
    assert (info.value.kind, info.value.name, info.value.namespace) == (
        "ConfigMap", "settings", "demo")
    assert [type(o).__name__ for o in info.value.applied] == [
        "Namespace", "CustomResourceDefinition", "Deployment", "StatefulSet", "Service"]
    forced = await kube.apply(changed, field_manager="kinds-test", force=True)
    assert isinstance(forced[4], ConfigMap) and forced[4].data is not None
    assert forced[4].data["mode"] == "debug"

    # the Widget's kind resolves through discovery, and its CRD's status subresource works
    widgets = await kube.resource_for("example.com/v1", "Widget")
    await widgets.patch_status("gear", {"status": {"ready": True}}, namespace="demo")
    assert fake_apiserver.get_object(widgets.descriptor, "gear", "demo") is not None
    assert (await kube.resource_for("wdg")).descriptor.plural == "widgets"


async def test_discovery_resolves_a_crd_created_a_moment_before(kube: kubeasync.Client) -> None:
    # the client's discovery is cached before the CRD exists; a miss refreshes it once
    assert (await kube.resource_for("apps/v1", "Deployment")).descriptor.plural == "deployments"
    crd = next(o for o in manifest() if getattr(o, "kind", None) == "CustomResourceDefinition")
    await kube.custom_resource_definitions.create(crd)
    await kube.custom_resource_definitions.wait_for("widgets.example.com",
                                                    conditions.crd_established, timeout=5)
    widgets = await kube.resource_for("example.com/v1", "Widget")
    created = await widgets.create({"metadata": {"name": "w"}, "spec": {"size": 1}},
                                   namespace="default")
    assert created["apiVersion"] == "example.com/v1"
