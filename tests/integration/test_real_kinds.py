"""Every kind on a real kube-apiserver (1.20 here): the issue's manifest applied with
server-side apply, discovery and a CRD created a moment ago, scale, CRD models, and the
apply_manifest example."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import kubeasync
from kubeasync import ApplyConflict, Conflict, NotFound
from kubeasync.crd_models import generate_models
from kubeasync.models import ConfigMap, Service, to_dict
from kubeasync.models.apps_v1 import Deployment, StatefulSet
from kubeasync.models.coordination_v1 import Lease
from kubeasync.models.core_v1 import Namespace, Secret
from kubeasync.models.networking_v1 import Ingress

CHECKOUT = Path(__file__).resolve().parent.parent.parent
MANIFEST = CHECKOUT / "tests" / "data" / "manifests" / "every-kind.yaml"
DEADLINE = 90.0


def manifest(namespace: str) -> tuple[kubeasync.Manifest, str]:
    group = f"{namespace}.example.com"
    text = MANIFEST.read_text().replace("NAMESPACE", namespace).replace("GROUP", group)
    return kubeasync.load_all_yaml(text), group


@contextlib.asynccontextmanager
async def crd_removed(kube: kubeasync.Client, name: str) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(NotFound):
            await kube.custom_resource_definitions.delete(name)


def rv(obj: Any) -> str:
    return obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else (
        obj.metadata.resource_version)


async def eventually(probe: Any, what: str, timeout: float = DEADLINE) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def test_the_manifest_applies_reapplies_changes_and_conflicts(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    kube = real_kube
    objs, group = manifest(namespace)
    async with crd_removed(kube, f"widgets.{group}"):
        applied = await kube.apply(objs, field_manager="kinds-test")
        assert [type(o).__name__ for o in applied] == [
            "Namespace", "Deployment", "StatefulSet", "Service", "ConfigMap", "Secret",
            "dict",  # batch/v1beta1 CronJob: no model (1.37 has batch/v1 only)
            "Ingress", "Lease", "dict", "CustomResourceDefinition",
        ]
        namespace_, deployment, statefulset, service, config, secret, cronjob, ingress, lease, \
            widget, crd = applied
        assert isinstance(namespace_, Namespace) and isinstance(statefulset, StatefulSet)
        assert isinstance(service, Service) and service.spec is not None
        assert service.spec.cluster_ip  # the server's defaulting
        assert isinstance(secret, Secret) and secret.data is not None
        assert base64.b64decode(secret.data["password"]) == b"s3cret"
        assert isinstance(config, ConfigMap) and config.data == {
            "mode": "production", "motd": "hello\nworld\n"}
        assert isinstance(ingress, Ingress) and isinstance(lease, Lease)
        assert isinstance(cronjob, dict) and cronjob["apiVersion"] == "batch/v1beta1"
        assert widget["spec"] == {"size": 3, "color": "red"}
        # the custom resource was applied after the CRD was Established (the answer of
        # the CRD's own apply is older than that)
        live = await kube.custom_resource_definitions.get(f"widgets.{group}")
        assert live.status is not None and any(
            c.type == "Established" and c.status == "True" for c in live.status.conditions or ())
        assert type(crd).__name__ == "CustomResourceDefinition"
        assert isinstance(deployment, Deployment)
        managers = {(m.manager, m.operation) for m in deployment.metadata.managed_fields or ()}
        assert ("kinds-test", "Apply") in managers

        # re-applied unchanged: objects no controller writes keep their resourceVersion,
        # and the Deployment its generation (its status moves on by itself)
        again = await kube.apply(objs, field_manager="kinds-test")
        for index in (3, 4, 7, 8, 9):
            assert rv(again[index]) == rv(applied[index]), type(applied[index])
        assert again[1].metadata.generation == deployment.metadata.generation  # type: ignore[union-attr]

        # a change
        changed = kubeasync.load_all_yaml(kubeasync.dump_all_yaml(objs).replace(
            "mode: production", "mode: debug").replace("replicas: 2", "replicas: 3"))
        third = await kube.apply(changed, field_manager="kinds-test")
        assert isinstance(third[4], ConfigMap) and third[4].data is not None
        assert third[4].data["mode"] == "debug"
        assert isinstance(third[1], Deployment) and third[1].spec is not None
        assert third[1].spec.replicas == 3

        # another manager's field: a Conflict naming it, unless forced
        await kube.config_maps.patch("settings", {"data": {"mode": "maintenance"}},
                                     namespace=namespace, field_manager="operator")
        with pytest.raises(ApplyConflict) as info:
            await kube.apply(changed, field_manager="kinds-test")
        assert isinstance(info.value, Conflict)
        assert [(c.manager, c.field) for c in info.value.conflicts] == [
            ("operator", ".data.mode")]
        assert (info.value.kind, info.value.name, info.value.namespace) == (
            "ConfigMap", "settings", namespace)
        assert info.value.document == 5 and info.value.line is not None
        assert [type(o).__name__ for o in info.value.applied] == [
            "Namespace", "CustomResourceDefinition", "Deployment", "StatefulSet", "Service"]
        forced = await kube.apply(changed, field_manager="kinds-test", force=True)
        assert isinstance(forced[4], ConfigMap) and forced[4].data is not None
        assert forced[4].data["mode"] == "debug"

        # the real controller-manager runs the Deployment: a ReplicaSet, then its Pods
        async def replica_set() -> Any:
            listed = await kube.replica_sets.list(namespace=namespace, label_selector="app=web")
            owned = [rs for rs in listed.items
                     if any(o.name == "web" and o.kind == "Deployment"
                            for o in rs.metadata.owner_references or ())]
            return owned[0] if owned else None

        rs = await eventually(replica_set, "a ReplicaSet of the Deployment")

        async def pods() -> Any:
            listed = await kube.pods.list(namespace=namespace, label_selector="app=web")
            owned = [p for p in listed.items
                     if any(o.uid == rs.metadata.uid for o in p.metadata.owner_references or ())]
            return owned if len(owned) == 3 else None

        assert len(await eventually(pods, "three Pods of the ReplicaSet")) == 3

        # the custom resource by its short name, through discovery (qualified with its
        # group: the shared server may hold other tests' Widgets, and "wdg" alone would be
        # ambiguous between custom groups)
        widgets = await kube.resource_for(f"wdg.{group}")
        assert widgets.descriptor.group == group and widgets.descriptor.model is dict
        assert [w["metadata"]["name"] for w in (await widgets.list(namespace=namespace))["items"]] \
            == ["gear"]


async def test_scale(real_kube: kubeasync.Client, namespace: str) -> None:
    kube = real_kube
    objs, _ = manifest(namespace)
    deployment = next(o for o in objs if isinstance(o, Deployment))
    await kube.apply(deployment, field_manager="kinds-test")
    scale = await kube.deployments.get_scale("web", namespace=namespace)
    assert scale.kind == "Scale" and scale.spec is not None and scale.spec.replicas == 2
    patched = await kube.deployments.patch_scale("web", {"spec": {"replicas": 1}},
                                                 namespace=namespace)
    assert patched.spec is not None and patched.spec.replicas == 1
    assert (await kube.deployments.get("web", namespace=namespace)).spec.replicas == 1  # type: ignore[union-attr]
    # read-modify-write: the controller writes the Deployment's status meanwhile, and the
    # Scale carries the Deployment's resourceVersion, so a write may meet a 409: read again
    stale = await kube.deployments.get_scale("web", namespace=namespace)
    for _ in range(20):
        scale = await kube.deployments.get_scale("web", namespace=namespace)
        assert scale.spec is not None
        scale.spec.replicas = 3  # (0 would come back as no field: Go omits empty values)
        try:
            replaced = await kube.deployments.replace_scale("web", scale, namespace=namespace)
            break
        except Conflict:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("replace_scale kept meeting conflicts")
    assert replaced.spec is not None and replaced.spec.replicas == 3
    # the resourceVersion of a Scale read before that write is a failed precondition
    with pytest.raises(Conflict):
        await kube.deployments.replace_scale("web", stale, namespace=namespace)
    statefulset = next(o for o in objs if isinstance(o, StatefulSet))
    await kube.apply(statefulset, field_manager="kinds-test")
    assert (await kube.stateful_sets.get_scale("db", namespace=namespace)).spec.replicas == 1  # type: ignore[union-attr]


async def test_discovery_of_1_20_and_kubectl_names(real_kube: kubeasync.Client) -> None:
    snapshot = await real_kube.discovery.resources()
    if snapshot.aggregated:  # a newer cluster than the tier's 1.20
        pytest.skip("this cluster serves aggregated discovery")
    assert "v1beta1" in snapshot.versions("batch")
    assert (await real_kube.resource_for("deploy")) is real_kube.deployments
    ingresses = await real_kube.resource_for("ing")
    assert ingresses.descriptor.api_version == "networking.k8s.io/v1"
    assert ingresses.descriptor.model is real_kube.ingresses.descriptor.model
    events = await real_kube.resource_for("events")
    assert events.descriptor.group == ""
    cronjobs = await real_kube.resource_for("cj")
    assert cronjobs.descriptor.api_version == "batch/v1beta1" and cronjobs.descriptor.model is dict
    # 1.20's Services have no collection delete: the row the client uses says they do,
    # and the server's own facts say otherwise
    services = await real_kube.resource_for("svc")
    assert not services.descriptor.supports("deletecollection")


def load_module(text: str, directory: Path, name: str) -> ModuleType:
    path = directory / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def test_a_crd_created_a_moment_ago_resolves_typed(
    real_kube: kubeasync.Client, namespace: str, tmp_path: Path
) -> None:
    kube = real_kube
    objs, group = manifest(namespace)
    crd = next(o for o in objs if type(o).__name__ == "CustomResourceDefinition")
    await kube.resource_for("deploy")  # the snapshot is taken before the CRD exists
    async with crd_removed(kube, f"widgets.{group}"):
        await kube.custom_resource_definitions.create(crd)

        async def established() -> bool:
            got = await kube.custom_resource_definitions.get(f"widgets.{group}")
            return any(c.type == "Established" and c.status == "True"
                       for c in (got.status.conditions if got.status else None) or ())

        await eventually(established, "the CRD Established")
        widgets = await kube.resource_for(f"{group}/v1", "Widget")  # a miss: one refresh
        assert widgets.descriptor.plural == "widgets" and widgets.descriptor.namespaced
        assert widgets.descriptor.subresources == {"status"}
        assert await kube.resource_for(f"widgets.{group}") is widgets

        # the models written from the CRD make its objects typed
        models = load_module(generate_models([to_dict(crd)]), tmp_path,
                             f"widgets_{namespace.replace('-', '_')}")
        typed = models.widgets_api(kube)
        created = await typed.create(models.Widget(
            metadata=kubeasync.models.ObjectMeta(name="gear"), spec=models.WidgetSpec(size=4)),
            namespace=namespace)
        assert isinstance(created, models.Widget) and created.spec.size == 4
        found = await kube.resource_for(f"wdg.{group}")
        listed = await found.list(namespace=namespace)
        assert isinstance(listed, models.WidgetList) and listed.items[0].spec.size == 4
        status = await typed.patch_status("gear", {"status": {}}, namespace=namespace)
        assert isinstance(status, models.Widget)


async def test_the_apply_manifest_example(
    real_kube: kubeasync.Client, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/apply_manifest.py on the real controllers. The tier has no kubelet, so the
    test plays one: each pod the ReplicaSet makes is reported Running and Ready."""
    sys.path.insert(0, str(CHECKOUT))
    from examples.apply_manifest import apply_and_wait

    kube = real_kube

    async def kubelet() -> None:
        async with kube.pods.watch(namespace=namespace) as events:
            async for event in events:
                pod = event.object
                if event.type == "DELETED" or (pod.status and pod.status.phase == "Running"):
                    continue
                now = "2026-01-01T00:00:00Z"
                ready = [{"type": t, "status": "True", "lastTransitionTime": now}
                         for t in ("Ready", "ContainersReady")]
                await kube.pods.patch_status(pod.metadata.name or "", {
                    "status": {"phase": "Running", "conditions": ready}}, namespace=namespace)

    text = (CHECKOUT / "examples" / "manifests" / "web.yaml").read_text()
    objs = kubeasync.load_all_yaml(text.replace("web-demo", namespace))
    node = asyncio.create_task(kubelet())
    try:
        (deployment,) = await apply_and_wait(kube, objs, field_manager="example", timeout=DEADLINE)
    finally:
        node.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await node
    assert deployment.status is not None and deployment.status.available_replicas == 2
    out = capsys.readouterr().out
    assert "applied 4 objects" in out and f"deployment {namespace}/web: available (2/2)" in out
