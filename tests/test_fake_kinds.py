"""Kind behaviour of the embedded server's default table (every catalogue row): what
kube-apiserver's per-kind strategies and the controllers users meet in tests do."""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any

import pytest

import kubeasync
from kubeasync import Invalid, NotFound
from kubeasync.runtime import conditions
from kubeasync.testing import FakeApiServer
from tests.helpers.waiting import eventually

DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "web"},
    "spec": {"selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 80}]}]}}},
}


def deployment(**spec: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(DEPLOYMENT))
    body["spec"].update(spec)
    return body


async def test_secret_string_data_is_merged_into_data_and_dropped(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    created = await kube.secrets.create({"metadata": {"name": "s"}, "data": {
        "kept": base64.b64encode(b"1").decode(), "user": base64.b64encode(b"old").decode()},
        "stringData": {"user": "admin", "password": "s3cret"}})
    assert created.type == "Opaque"
    assert {k: base64.b64decode(v) for k, v in (created.data or {}).items()} == {
        "kept": b"1", "user": b"admin", "password": b"s3cret"}
    assert created.string_data is None
    stored = fake_apiserver.get_object("secrets", "s")
    assert stored is not None
    assert "stringData" not in stored and "status" not in stored
    with pytest.raises(Invalid, match=r"data\[bad\]"):
        await kube.secrets.create({"metadata": {"name": "t"}, "data": {"bad": "not base64!"}})


async def test_a_service_account_gets_its_token_secret(kube: kubeasync.Client) -> None:
    await kube.service_accounts.create({"metadata": {"name": "robot"}})
    account = await kube.service_accounts.get("robot")
    [ref] = account.secrets or []
    assert ref.name is not None and ref.name.startswith("robot-token-")
    secret = await kube.secrets.get(ref.name)
    assert secret.type == "kubernetes.io/service-account-token"
    assert secret.metadata.annotations == {
        "kubernetes.io/service-account.name": "robot",
        "kubernetes.io/service-account.uid": account.metadata.uid}
    assert base64.b64decode((secret.data or {})["namespace"]) == b"default"
    assert (secret.data or {})["token"]


async def test_token_request(api: Any, kube: kubeasync.Client) -> None:
    await kube.service_accounts.create({"metadata": {"name": "robot"}})
    status, answer = await api("POST", "/api/v1/namespaces/default/serviceaccounts/robot/token",
                               {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"audiences": ["api"], "expirationSeconds": 3600}})
    assert status == 201 and answer["kind"] == "TokenRequest"
    token = answer["status"]["token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "system:serviceaccount:default:robot" and claims["aud"] == ["api"]
    assert answer["status"]["expirationTimestamp"]
    status, short = await api("POST", "/api/v1/namespaces/default/serviceaccounts/robot/token",
                              {"spec": {"expirationSeconds": 60}})
    assert status == 422 and "10 minutes" in short["message"]
    status, _ = await api("POST", "/api/v1/namespaces/default/serviceaccounts/nobody/token", {})
    assert status == 404
    # what `kubectl create token` sends: protobuf, which this server does not speak
    status, refused = await api("POST", "/api/v1/namespaces/default/serviceaccounts/robot/token",
                                b"k8s\x00\n", content_type="application/vnd.kubernetes.protobuf")
    assert status == 415 and refused["reason"] == "UnsupportedMediaType"


async def test_services_get_unique_cluster_ips_and_port_defaults(kube: kubeasync.Client) -> None:
    ips = set()
    for i in range(3):
        svc = await kube.services.create({"metadata": {"name": f"s{i}"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80}]}})
        assert svc.spec is not None and svc.spec.cluster_ip is not None
        assert ipaddress.ip_address(svc.spec.cluster_ip) in ipaddress.ip_network("10.96.0.0/12")
        ips.add(svc.spec.cluster_ip)
        [port] = svc.spec.ports or []
        assert (port.protocol, port.target_port) == ("TCP", 80)
    assert len(ips) == 3
    headless = await kube.services.create({"metadata": {"name": "h"}, "spec": {
        "clusterIP": "None", "selector": {"app": "web"}}})
    assert headless.spec is not None and headless.spec.cluster_ip == "None"


async def test_workload_defaults(kube: kubeasync.Client) -> None:
    d = await kube.deployments.create(deployment())
    assert d.spec is not None and d.spec.strategy is not None
    assert (d.spec.replicas, d.spec.revision_history_limit, d.spec.progress_deadline_seconds) == (
        1, 10, 600)
    assert d.spec.strategy.type == "RollingUpdate" and d.spec.strategy.rolling_update is not None
    assert (d.spec.strategy.rolling_update.max_surge,
            d.spec.strategy.rolling_update.max_unavailable) == ("25%", "25%")
    pod = d.spec.template.spec
    assert pod is not None
    assert (pod.restart_policy, pod.dns_policy, pod.scheduler_name) == (
        "Always", "ClusterFirst", "default-scheduler")
    assert pod.containers[0].image_pull_policy == "IfNotPresent"
    assert (pod.containers[0].ports or [])[0].protocol == "TCP"

    s = await kube.stateful_sets.create({**deployment(serviceName="web"),
                                         "metadata": {"name": "db"}})
    assert s.spec is not None and s.spec.update_strategy is not None
    assert (s.spec.replicas, s.spec.pod_management_policy, s.spec.revision_history_limit) == (
        1, "OrderedReady", 10)
    assert s.spec.update_strategy.type == "RollingUpdate"
    assert s.status is not None and s.status.replicas == 0

    ds = await kube.daemon_sets.create({**deployment(), "metadata": {"name": "agent"}})
    assert ds.spec is not None and ds.spec.update_strategy is not None
    assert ds.spec.update_strategy.rolling_update is not None
    assert ds.spec.update_strategy.rolling_update.max_unavailable == 1

    cron = await kube.cron_jobs.create({"metadata": {"name": "nightly"}, "spec": {
        "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}]}}}}}})
    assert cron.spec is not None
    assert (cron.spec.concurrency_policy, cron.spec.suspend, cron.spec.successful_jobs_history_limit,
            cron.spec.failed_jobs_history_limit) == ("Allow", False, 3, 1)

    with pytest.raises(Invalid, match="selector` does not match template `labels`"):
        await kube.deployments.create({**deployment(selector={"matchLabels": {"app": "x"}}),
                                       "metadata": {"name": "bad"}})
    with pytest.raises(Invalid, match=r"spec\.schedule"):
        await kube.cron_jobs.create({"metadata": {"name": "bad"}, "spec": {"jobTemplate": {
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "j", "image": "busybox"}]}}}}}})


async def test_status_and_spec_are_written_through_their_own_paths(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    created = await kube.deployments.create({**deployment(), "status": {"replicas": 7}})
    assert created.status is not None and created.status.replicas is None  # ignored
    assert created.metadata.generation == 1
    changed = deployment(replicas=3)
    # No resourceVersion: a Deployment may be replaced unconditionally, and its controller
    # writes the status in the meantime.
    changed["status"] = {"replicas": 9}
    replaced = await kube.deployments.replace("web", changed)
    assert replaced.spec is not None and replaced.spec.replicas == 3
    assert replaced.status is not None and replaced.status.replicas != 9  # ignored
    assert replaced.metadata.generation == 2
    status = await kube.deployments.patch_status("web", {"spec": {"replicas": 1},
                                                         "status": {"replicas": 2}})
    assert status.spec is not None and status.spec.replicas == 3  # spec ignored
    assert status.status is not None and status.status.replicas == 2
    config = await kube.config_maps.create({"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert "status" not in (fake_apiserver.get_object("configmaps", "c") or {"status": 1})
    assert config.data == {"a": "1"}


async def test_scale_subresources(kube: kubeasync.Client) -> None:
    await kube.deployments.create(deployment(replicas=2))
    scale = await kube.deployments.get_scale("web")
    assert (scale.kind, scale.api_version) == ("Scale", "autoscaling/v1")
    assert scale.spec is not None and scale.spec.replicas == 2
    assert scale.status is not None and scale.status.selector == "app=web"
    patched = await kube.deployments.patch_scale("web", {"spec": {"replicas": 5}})
    assert patched.spec is not None and patched.spec.replicas == 5
    current = await kube.deployments.get("web")
    assert current.spec is not None and current.spec.replicas == 5
    assert current.metadata.generation == 2
    replaced = await kube.deployments.replace_scale("web", {
        "metadata": {"name": "web"}, "spec": {"replicas": 0}})
    assert replaced.spec is not None and replaced.spec.replicas == 0
    with pytest.raises(Invalid, match="greater than or equal to 0"):
        await kube.deployments.patch_scale("web", {"spec": {"replicas": -1}})
    with pytest.raises(kubeasync.Conflict):
        await kube.deployments.replace_scale("web", {
            "metadata": {"name": "web", "resourceVersion": "1"}, "spec": {"replicas": 1}})
    await kube.stateful_sets.create({**deployment(serviceName="db"), "metadata": {"name": "db"}})
    assert (await kube.stateful_sets.patch_scale("db", {"spec": {"replicas": 4}})).spec == \
        kubeasync.models.autoscaling_v1.ScaleSpec(replicas=4)
    await kube.replica_sets.create({**deployment(), "metadata": {"name": "rs"}})
    rs_scale = await kube.replica_sets.get_scale("rs")
    assert rs_scale.spec is not None and rs_scale.spec.replicas == 1
    with pytest.raises(NotFound):
        await kube.deployments.get_scale("nope")


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com", "scope": "Namespaced",
        "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
        "versions": [
            {"name": "v1", "served": True, "storage": True,
             "schema": {"openAPIV3Schema": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}},
             "subresources": {"status": {}, "scale": {
                 "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                 "labelSelectorPath": ".status.labelSelector"}}},
            {"name": "v1beta1", "served": True, "storage": False,
             "schema": {"openAPIV3Schema": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}}},
        ],
    },
}


async def test_a_crd_is_served_once_created_and_gone_once_deleted(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer, api: Any,
) -> None:
    await kube.custom_resource_definitions.create(CRD)
    crd = await kube.custom_resource_definitions.wait_for(
        "crontabs.stable.example.com", conditions.crd_established, timeout=5)
    assert crd.status is not None and crd.status.accepted_names is not None
    assert (crd.status.accepted_names.kind, crd.status.accepted_names.list_kind,
            crd.status.accepted_names.singular) == ("CronTab", "CronTabList", "crontab")
    assert crd.status.stored_versions == ["v1"]
    assert [(c.type, c.status) for c in crd.status.conditions or []] == [
        ("NamesAccepted", "True"), ("Established", "True")]

    status, group = await api("GET", "/apis/stable.example.com")
    assert status == 200 and group["preferredVersion"]["version"] == "v1"
    _, listing = await api("GET", "/apis/stable.example.com/v1")
    assert {r["name"]: r.get("shortNames") for r in listing["resources"]} == {
        "crontabs": ["ct"], "crontabs/status": None, "crontabs/scale": None}

    crontabs = await kube.resource_for("stable.example.com/v1", "CronTab")
    assert await kube.resource_for("ct") is not None
    created = await crontabs.create({"metadata": {"name": "c1"}, "spec": {"replicas": 1},
                                     "status": {"replicas": 9}})
    assert "status" not in created  # status only through /status
    await crontabs.patch_status("c1", {"status": {"replicas": 1, "labelSelector": "app=c"}})
    _, scale = await api("GET", "/apis/stable.example.com/v1/namespaces/default/crontabs/c1/scale")
    assert (scale["spec"]["replicas"], scale["status"]) == (1, {"replicas": 1,
                                                                "selector": "app=c"})
    status, _ = await api("PATCH",
                          "/apis/stable.example.com/v1/namespaces/default/crontabs/c1/scale",
                          {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert status == 200
    assert (await crontabs.get("c1"))["spec"]["replicas"] == 3
    # the other served version reads the same object, in its own version
    _, beta = await api("GET", "/apis/stable.example.com/v1beta1/namespaces/default/crontabs/c1")
    assert beta["apiVersion"] == "stable.example.com/v1beta1" and beta["spec"]["replicas"] == 3
    response = await api.raw("GET", "/apis/stable.example.com/v1beta1/namespaces/default/"
                             "crontabs?watch=true&timeoutSeconds=1")
    async with response:
        [event] = [json.loads(line) for line in (await response.read()).splitlines()]
    assert event["type"] == "ADDED"
    assert event["object"]["apiVersion"] == "stable.example.com/v1beta1"

    # as on 1.20: the CRD answers Terminating, held by its cleanup finalizer until its
    # custom resources are gone; it stops being served at once
    status, deleting = await api(
        "DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        "crontabs.stable.example.com")
    assert status == 200 and deleting["kind"] == "CustomResourceDefinition"
    assert deleting["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert deleting["metadata"]["deletionTimestamp"]
    assert ("Terminating", "True", "InstanceDeletionInProgress") in [
        (c["type"], c["status"], c["reason"]) for c in deleting["status"]["conditions"]]
    status, _ = await api("GET", "/apis/stable.example.com/v1/namespaces/default/crontabs")
    assert status == 404
    status, _ = await api("GET", "/apis/stable.example.com")
    assert status == 404
    await kube.custom_resource_definitions.wait_for("crontabs.stable.example.com",
                                                    conditions.deleted, timeout=5)
    assert fake_apiserver.store.objects("stable.example.com/crontabs") == {}


async def test_a_cluster_scoped_crd_and_a_bad_one(kube: kubeasync.Client, api: Any) -> None:
    body = json.loads(json.dumps(CRD))
    body["metadata"]["name"] = "gizmos.example.org"
    body["spec"].update(group="example.org", scope="Cluster",
                        names={"plural": "gizmos", "kind": "Gizmo"})
    await kube.custom_resource_definitions.create(body)
    gizmos = await kube.resource_for("example.org/v1", "Gizmo")
    assert not gizmos.descriptor.namespaced
    await gizmos.create({"metadata": {"name": "g"}})
    status, _ = await api("GET", "/apis/example.org/v1/gizmos/g")
    assert status == 200
    body["metadata"]["name"] = "wrong.example.org"
    with pytest.raises(Invalid, match=r"spec\.names\.plural\+\"\.\"\+spec\.group"):
        await kube.custom_resource_definitions.create(body)
    body["metadata"]["name"] = "bad_plural.example.org"
    body["spec"]["names"] = {"plural": "bad_plural", "kind": "Bad"}
    body["spec"]["versions"] = [{"name": "V1", "served": True, "storage": True}]
    with pytest.raises(Invalid) as info:
        await kube.custom_resource_definitions.create(body)
    assert {c.field for c in info.value.status.details.causes or []} >= {
        "spec.names.plural", "spec.versions[0].name"}


TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.mark.parametrize(("path", "body", "columns", "cells"), [
    ("/apis/apps/v1/namespaces/default/deployments", deployment(replicas=2),
     ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
     ["web", "0/2", 2, 0]),  # the controller made two pods, none of them runs
    ("/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "stringData": {"a": "b"}},
     ["Name", "Type", "Data", "Age"], ["s", "Opaque", 1]),
    ("/apis/batch/v1/namespaces/default/cronjobs", {"metadata": {"name": "c"}, "spec": {
        "schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "j", "image": "busybox"}]}}}}}},
     ["Name", "Schedule", "Suspend", "Active", "Last Schedule", "Age"],
     ["c", "*/5 * * * *", "False", 0, "<none>"]),
    ("/apis/coordination.k8s.io/v1/namespaces/default/leases",
     {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}},
     ["Name", "Holder", "Age"], ["l", "me"]),
])
async def test_kubectl_tables_of_the_common_kinds(
    api: Any, path: str, body: dict[str, Any], columns: list[str], cells: list[Any]
) -> None:
    status, _ = await api("POST", path, body)
    assert status == 201

    async def table() -> Any:
        status, answer = await api("GET", path, headers={"Accept": TABLE})
        assert status == 200 and answer["kind"] == "Table"
        assert [c["name"] for c in answer["columnDefinitions"]] == columns
        [row] = answer["rows"]
        return row["cells"][:len(cells)] == cells or row["cells"]

    # A controller's status (the Deployment's) may still be on its way.
    assert await eventually(table, f"the table's cells {cells}", 10) is True


async def test_field_validation_strict_and_warn(api: Any, kube: kubeasync.Client) -> None:
    body = deployment()
    body["spec"]["replicaz"] = 2
    body["spec"]["template"]["spec"]["containers"][0]["imagez"] = "x"
    path = "/apis/apps/v1/namespaces/default/deployments"
    status, answer = await api("POST", path + "?fieldValidation=Strict", body)
    assert status == 400 and answer["reason"] == "BadRequest"
    assert answer["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:'
        ' unknown field "spec.template.spec.containers[0].imagez", unknown field "spec.replicaz"')
    response = await api.raw("POST", path + "?fieldValidation=Warn", body)
    async with response:
        assert response.status == 201
        assert response.headers["Warning"].endswith('299 - "unknown field \\"spec.replicaz\\""')
    # 1.20 knows no fieldValidation: without it nothing is checked
    status, _ = await api("POST", path, {**body, "metadata": {"name": "other"}})
    assert status == 201
    status, _ = await api("PATCH", path + "/web?fieldValidation=Strict",
                          {"spec": {"paused": True, "nope": 1}},
                          content_type="application/merge-patch+json")
    assert status == 400
    status, answer = await api("POST", path + "?fieldValidation=Loud", body)
    assert status == 400 and "Unsupported value" in answer["message"]
    # a custom resource is checked against its CRD's schema, where it has one
    await kube.custom_resource_definitions.create(CRD)
    await kube.custom_resource_definitions.wait_for(
        "crontabs.stable.example.com", conditions.crd_established, timeout=5)
    status, _ = await api("POST", "/apis/stable.example.com/v1/namespaces/default/crontabs"
                          "?fieldValidation=Strict", {"metadata": {"name": "c"}, "any": 1})
    assert status == 201  # x-kubernetes-preserve-unknown-fields


async def test_a_crd_s_printer_columns_make_its_table(api: Any, kube: kubeasync.Client) -> None:
    body = json.loads(json.dumps(CRD))
    body["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.images[0]", "priority": 1},
        {"name": "Ready", "type": "string",
         "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    await kube.custom_resource_definitions.create(body)
    await kube.custom_resource_definitions.wait_for(
        "crontabs.stable.example.com", conditions.crd_established, timeout=5)
    path = "/apis/stable.example.com/v1/namespaces/default/crontabs"
    await api("POST", path, {"metadata": {"name": "c"},
                             "spec": {"replicas": 2, "images": ["busybox"]}})
    _, answer = await api("GET", path, headers={"Accept": TABLE})
    assert [(c["name"], c["type"], c["priority"]) for c in answer["columnDefinitions"]] == [
        ("Name", "string", 0), ("Replicas", "integer", 0), ("Image", "string", 1),
        ("Ready", "string", 0), ("Age", "date", 0)]
    [row] = answer["rows"]
    assert row["cells"][:4] == ["c", 2, "busybox", None]  # filters are not evaluated
    # the v1beta1 version declares no columns: Name and Age
    _, beta = await api("GET", "/apis/stable.example.com/v1beta1/namespaces/default/crontabs",
                        headers={"Accept": TABLE})
    assert [c["name"] for c in beta["columnDefinitions"]] == ["Name", "Age"]


async def test_finalizer_names_are_validated_as_kube_does(kube: kubeasync.Client) -> None:
    def config(name: str, *finalizers: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "finalizers": list(finalizers)}}

    # A core kind's finalizer is a standard one or domain-qualified.
    created = await kube.config_maps.create(config("ok", "example.com/cleanup", "orphan"))
    assert created.metadata.finalizers == ["example.com/cleanup", "orphan"]
    with pytest.raises(Invalid) as info:
        await kube.config_maps.create(config("plain", "cleanup"))
    assert info.value.status.message == (
        'ConfigMap "plain" is invalid: metadata.finalizers[0]: Invalid value: "cleanup":'
        " name is neither a standard finalizer name nor is it fully qualified")
    # ... on updates too.
    with pytest.raises(Invalid, match=r"metadata\.finalizers\[1\]"):
        await kube.config_maps.patch("ok", {"metadata": {"finalizers": [
            "example.com/cleanup", "cleanup"]}})
    # Other groups' kinds need only qualified names.
    rs = await kube.replica_sets.create({**deployment(replicas=0), "metadata": {
        "name": "rs", "finalizers": ["cleanup"]}})
    assert rs.metadata.finalizers == ["cleanup"]
    with pytest.raises(Invalid) as info:
        await kube.replica_sets.create({**deployment(replicas=0), "metadata": {
            "name": "bad", "finalizers": ["not a name"]}})
    assert [c.field for c in info.value.status.details.causes or []] == [
        "metadata.finalizers[0]"]
    assert "name part must consist of alphanumeric characters" in info.value.status.message
