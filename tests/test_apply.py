"""``kube.apply``: server-side apply of manifests, over real HTTP against the embedded server
(which serves any descriptor it is given, custom resources too; CRDs that come alive when
created are the real server's: tests/integration/test_real_kinds.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import kubeasync
import kubeasync.kinds as kinds
from kubeasync import ApplyConflict, ApplyError, Conflict, NoMatchError, NotFound
from kubeasync.api.apply import apply_order
from kubeasync.models import (
    ConfigMap,
    Container,
    KubeModel,
    LabelSelector,
    Namespace,
    ObjectMeta,
    PodSpec,
    PodTemplateSpec,
)
from kubeasync.models.apps_v1 import Deployment, DeploymentSpec
from kubeasync.models.coordination_v1 import Lease
from kubeasync.testing import FakeApiServer

WIDGETS = kubeasync.custom_resource(group="example.com", version="v1", kind="Widget",
                                    plural="widgets")
SERVED = (
    *kinds.SEED_RESOURCES, kinds.APPS_V1_DEPLOYMENTS, kinds.APPS_V1_STATEFUL_SETS,
    kinds.CORE_V1_SECRETS, kinds.COORDINATION_V1_LEASES, kinds.NETWORKING_V1_INGRESSES,
    kinds.BATCH_V1_CRON_JOBS, kinds.APIEXTENSIONS_V1_CUSTOM_RESOURCE_DEFINITIONS, WIDGETS,
)
pytestmark = pytest.mark.fake_apiserver(resources=SERVED)

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx:1.27"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: production}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials, namespace: shop}
stringData: {password: s3cret}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: job, image: busybox}]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader, namespace: shop}
spec: {holderIdentity: web-0}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: gear, namespace: shop}
spec: {size: 3}
"""


def rv(obj: Any) -> str:
    return obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else (
        obj.metadata.resource_version)


def patches(server: FakeApiServer) -> list[str]:
    return [path.split("?")[0] for method, path in server.requests if method == "PATCH"]


# --------------------------------------------------------------------------------------------
# the order (sans-IO)


def test_namespaces_then_crds_then_the_rest_in_their_order() -> None:
    pairs = [
        ("apps/v1", "Deployment"), ("example.com/v1", "Widget"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"), ("v1", "ConfigMap"),
        ("v1", "Namespace"), ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
        ("v1", "Namespace"), ("example.com/v1", "Namespace"),
    ]
    assert apply_order(pairs) == [4, 6, 2, 5, 0, 1, 3, 7]
    assert apply_order([]) == []


# --------------------------------------------------------------------------------------------
# over HTTP


async def test_a_manifest_applies_in_order_and_answers_typed_objects(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    objs = kubeasync.load_all_yaml(MANIFEST)
    applied = await kube.apply(objs, field_manager="deployer")
    assert [type(o).__name__ for o in applied] == [
        "Deployment", "Namespace", "ConfigMap", "Secret", "CronJob", "Lease", "dict"]
    assert patches(fake_apiserver)[0] == "/api/v1/namespaces/shop"  # before what is in it
    deployment = applied[0]
    assert isinstance(deployment, Deployment)
    assert deployment.metadata.namespace == "shop" and deployment.spec is not None
    assert deployment.spec.replicas == 2
    managers = {m.manager: m.operation for m in deployment.metadata.managed_fields or ()}
    assert managers == {"deployer": "Apply"}
    assert fake_apiserver.get_object(WIDGETS, "gear", "shop")["spec"] == {"size": 3}

    # unchanged: nothing is written again
    again = await kube.apply(objs, field_manager="deployer")
    assert [rv(o) for o in again] == [rv(o) for o in applied]

    # a change is applied, and only the changed object moves
    changed = kubeasync.load_all_yaml(MANIFEST.replace("{mode: production}", "{mode: debug}"))
    third = await kube.apply(changed, field_manager="deployer")
    config = third[2]
    assert isinstance(config, ConfigMap) and config.data == {"mode": "debug"}
    assert [rv(a) != rv(b) for a, b in zip(third, again, strict=True)] == [
        False, False, True, False, False, False, False]


async def test_a_field_of_another_manager_is_a_conflict_unless_forced(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    objs = kubeasync.load_all_yaml(MANIFEST)
    await kube.apply(objs, field_manager="deployer")
    await kube.deployments.patch("web", {"spec": {"replicas": 5}}, namespace="shop",
                                 field_manager="autoscaler")
    await kube.leases.patch("leader", {"spec": {"holderIdentity": "web-1"}}, namespace="shop",
                            field_manager="elector")
    lease_before = fake_apiserver.get_object("leases", "leader", "shop")
    with pytest.raises(ApplyConflict) as info:
        await kube.apply(objs, field_manager="deployer")
    error = info.value
    assert isinstance(error, Conflict) and isinstance(error, ApplyError)
    assert error.code == 409 and error.reason == "Conflict"
    assert [(c.manager, c.field) for c in error.conflicts] == [("autoscaler", ".spec.replicas")]
    assert (error.index, error.document, error.line) == (0, 1, 1)
    assert (error.api_version, error.kind, error.namespace, error.name) == (
        "apps/v1", "Deployment", "shop", "web")
    assert [type(o).__name__ for o in error.applied] == ["Namespace"]  # the one before it
    assert str(error) == (
        'apply of apps/v1 Deployment shop/web (object 0, document 1 line 1) failed: conflicts:'
        ' field manager "autoscaler" owns .spec.replicas (force=True takes them over)'
        ' (1 object before it applied)')
    # nothing after it was applied
    assert fake_apiserver.get_object("leases", "leader", "shop") == lease_before

    forced = await kube.apply(objs, field_manager="deployer", force=True)
    deployment, lease = forced[0], forced[5]
    assert isinstance(deployment, Deployment) and deployment.spec is not None
    assert deployment.spec.replicas == 2
    assert isinstance(lease, Lease) and lease.spec is not None
    assert lease.spec.holder_identity == "web-0"


async def test_a_failure_names_the_object_and_keeps_what_was_applied(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    text = MANIFEST.replace("kind: Namespace\nmetadata: {name: shop}",
                            "kind: Namespace\nmetadata: {name: store}")
    with pytest.raises(ApplyError) as info:
        await kube.apply(kubeasync.load_all_yaml(text), field_manager="deployer")
    error = info.value
    assert isinstance(error.error, NotFound)  # namespace "shop" does not exist
    assert (error.index, error.document, error.kind, error.name) == (0, 1, "Deployment", "web")
    assert [o.metadata.name for o in error.applied if isinstance(o, Namespace)] == ["store"]
    assert "apps/v1 Deployment shop/web (object 0, document 1 line 1) failed: 404" in str(error)
    assert fake_apiserver.get_object("namespaces", "store") is not None

    with pytest.raises(ApplyError) as missing:
        await kube.apply({"apiVersion": "example.com/v1", "kind": "Gadget",
                          "metadata": {"name": "g"}}, field_manager="deployer")
    assert isinstance(missing.value.error, NoMatchError)
    assert "no matches for kind \"Gadget\"" in str(missing.value)


async def test_objects_are_checked_before_anything_is_sent(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}}
    fake_apiserver.requests.clear()
    with pytest.raises(ApplyError, match=r"no metadata\.name") as info:
        await kube.apply([good, {"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"generateName": "x-"}}], field_manager="me")
    assert info.value.index == 1 and isinstance(info.value.error, ValueError)
    with pytest.raises(ApplyError, match="no apiVersion and kind"):
        await kube.apply([{"metadata": {"name": "x"}}], field_manager="me")
    with pytest.raises(ApplyError, match=r"objs\[1\] must be a Kubernetes object"):
        await kube.apply([good, "kind: ConfigMap"], field_manager="me")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="field_manager"):
        await kube.apply(good, field_manager="")
    with pytest.raises(ValueError, match="load_all_yaml"):
        await kube.apply("apiVersion: v1\nkind: ConfigMap\n", field_manager="me")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="establish_timeout"):
        await kube.apply(good, field_manager="me", establish_timeout=0)
    assert fake_apiserver.requests == []


async def test_one_object_gives_one_object_in_its_own_type(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    # a model built in code: no apiVersion or kind, namespace from the client's default
    deployment = Deployment(metadata=ObjectMeta(name="api"), spec=DeploymentSpec(
        replicas=1, selector=LabelSelector(match_labels={"app": "api"}),
        template=PodTemplateSpec(metadata=ObjectMeta(labels={"app": "api"}), spec=PodSpec(
            containers=[Container(name="api", image="api:1")]))))
    applied = await kube.apply(deployment, field_manager="me")
    assert isinstance(applied, Deployment) and applied.metadata.namespace == "default"
    # a dict of a built-in kind answers its model
    config = await kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "c"}, "data": {"a": "1"}},
                              field_manager="me")
    assert isinstance(config, ConfigMap) and config.data == {"a": "1"}

    # an instance of a model of one's own, for a kind not registered: its own class
    class Widget(KubeModel, kw_only=True):
        api_version: str | None = msgspec.field(default=None, name="apiVersion")
        kind: str | None = None
        metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
        spec: dict[str, Any] | None = None

    widget = await kube.apply(Widget(api_version="example.com/v1", kind="Widget",
                                     metadata=ObjectMeta(name="w"), spec={"size": 1}),
                              field_manager="me")
    assert isinstance(widget, Widget) and widget.spec == {"size": 1}
    assert widget.metadata.uid


async def test_dry_run_changes_nothing(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    answer = await kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "dry"}, "data": {"a": "1"}},
                              field_manager="me", dry_run=True)
    assert isinstance(answer, ConfigMap) and answer.data == {"a": "1"}
    assert fake_apiserver.get_object("configmaps", "dry", "default") is None
    assert any("dryRun=All" in path for method, path in fake_apiserver.requests
               if method == "PATCH")


async def test_the_wait_for_a_crd_is_bounded(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    # A CRD whose kind another CRD of the group has taken is not Established (NamesAccepted
    # False, as kube-apiserver's naming controller decides): a custom resource of it waits
    # for establish_timeout, then fails naming the CRD.
    def crd(plural: str) -> dict[str, Any]:
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced",
                         "names": {"kind": "Widget", "plural": plural},
                         "versions": [{"name": "v2", "served": True, "storage": True}]}}

    [first] = await kube.apply([crd("gadgets")], field_manager="other")
    widget = {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ApplyError, match=r"widgets\.example\.com was not Established") as info:
        await kube.apply([widget, crd("widgets")], field_manager="me", establish_timeout=0.3)
    assert info.value.index == 0 and isinstance(info.value.error, TimeoutError)
    assert [type(o).__name__ for o in info.value.applied] == ["CustomResourceDefinition"]
    gets = [p for m, p in fake_apiserver.requests
            if m == "GET" and "/customresourcedefinitions/widgets.example.com" in p]
    assert len(gets) >= 2  # it asked again before giving up
    waiting = fake_apiserver.get_object("customresourcedefinitions", "widgets.example.com",
                                        None)
    assert waiting is not None
    assert [(c["type"], c["status"], c["reason"]) for c in waiting["status"]["conditions"]] == [
        ("NamesAccepted", "False", "MultipleNameConflicts"),
        ("Established", "False", "NotAccepted")]
    # once the other CRD is gone its names are free: this one is Established, and they go on
    await kube.custom_resource_definitions.delete(first.metadata.name)
    applied = await kube.apply([widget, crd("widgets")], field_manager="me", establish_timeout=5)
    assert isinstance(applied[0], dict) and applied[0]["metadata"]["name"] == "w"
    assert applied[0]["apiVersion"] == "example.com/v2"
