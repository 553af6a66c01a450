"""Discovery, version, health and OpenAPI documents, and routing errors."""

from __future__ import annotations

import pytest

import kubeasync
from kubeasync.core.descriptor import custom_resource
from kubeasync.kinds import BUILTIN_RESOURCES, PREFERRED_VERSIONS, SEED_RESOURCES
from kubeasync.testing import FakeApiServer


async def test_version_and_health(api):
    status, version = await api("GET", "/version")
    assert status == 200 and version["major"] == "1" and version["gitVersion"] == "v1.20.2"
    for path in ("/healthz", "/readyz", "/livez"):
        assert await api("GET", path) == (200, "ok")


async def test_core_and_group_discovery(api, fake_apiserver):
    _, versions = await api("GET", "/api")
    assert versions["kind"] == "APIVersions" and versions["versions"] == ["v1"]
    assert versions["serverAddressByClientCIDRs"][0]["serverAddress"].endswith(
        f":{fake_apiserver.port}")
    _, groups = await api("GET", "/apis")
    assert groups["kind"] == "APIGroupList"
    # every group of the catalogue, each with its versions, the preferred one first
    by_name = {g["name"]: g for g in groups["groups"]}
    assert set(by_name) == {d.group for d in BUILTIN_RESOURCES if d.group}
    assert by_name["batch"] == {
        "name": "batch",
        "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}
    for name, group_doc in by_name.items():
        preferred = PREFERRED_VERSIONS[name]
        assert group_doc["preferredVersion"] == {"groupVersion": f"{name}/{preferred}",
                                                 "version": preferred}
        assert group_doc["versions"][0] == group_doc["preferredVersion"]
    _, group = await api("GET", "/apis/batch")
    assert group["kind"] == "APIGroup" and group["name"] == "batch"


async def test_resource_lists_come_from_the_table(api):
    _, core = await api("GET", "/api/v1")
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    assert "apiVersion" not in core  # as the real /api/v1 answer
    by_name = {r["name"]: r for r in core["resources"]}
    pods = by_name["pods"]
    assert (pods["kind"], pods["namespaced"], pods["shortNames"]) == ("Pod", True, ["po"])
    assert pods["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch",
                             "update", "watch"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/log"] == {"name": "pods/log", "singularName": "", "namespaced": True,
                                   "kind": "Pod", "verbs": ["get"]}
    assert "deletecollection" not in by_name["services"]["verbs"]
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    # The values a real 1.20 server reports (SHA-256 of "group/version/kind", 8 bytes).
    assert pods["storageVersionHash"] == "xPOwRZ+Yhw8="
    assert by_name["configmaps"]["storageVersionHash"] == "qFsyl6wFWjQ="
    assert "storageVersionHash" not in by_name["pods/status"]
    _, batch = await api("GET", "/apis/batch/v1")
    assert batch["groupVersion"] == "batch/v1" and batch["apiVersion"] == "v1"
    assert {r["name"] for r in batch["resources"]} == {"jobs", "jobs/status", "cronjobs",
                                                       "cronjobs/status"}
    served = {r["name"] for r in core["resources"] if "/" not in r["name"]}
    assert served == {d.plural for d in BUILTIN_RESOURCES if d.group == ""}
    # subresources the server does not implement are not advertised
    assert "services/proxy" not in by_name and "pods/resize" not in by_name
    assert by_name["serviceaccounts/token"]["verbs"] == ["create"]
    # what the server does for pods beyond the client's methods: the scheduler's binding,
    # and the streams it proxies to the pod's kubelet
    assert by_name["pods/binding"]["verbs"] == ["create"]
    for stream in ("exec", "attach", "portforward"):
        assert by_name[f"pods/{stream}"]["verbs"] == ["create", "get"]


async def test_openapi_v3(api):
    _, index = await api("GET", "/openapi/v3")
    assert set(index["paths"]) == {
        f"apis/{d.group}/{d.version}" if d.group else "api/v1" for d in BUILTIN_RESOURCES}
    status, doc = await api("GET", index["paths"]["apis/batch/v1"]["serverRelativeURL"])
    assert status == 200 and doc["openapi"].startswith("3.")
    patch = doc["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "batch", "version": "v1",
                                                        "kind": "Job"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


@pytest.mark.parametrize("path", [
    "/api/v2/pods", "/api/v1/foos", "/apis/apps/v2", "/apis/nope", "/nothing",
    "/api/v1/pods/x",  # a namespaced object needs its namespace
    "/api/v1/namespaces/default/configmaps/c/status",  # configmaps have no status
    "/api/v1/namespaces/default/pods/p/status/extra",
])
async def test_unknown_paths(api, path):
    status, body = await api("GET", path)
    assert status == 404
    assert body["kind"] == "Status" and body["reason"] == "NotFound"


async def test_unsupported_verbs(api):
    status, body = await api("POST", "/api/v1/namespaces/default/pods/p", {})
    assert status == 405 and body["reason"] == "MethodNotAllowed"
    assert (await api("DELETE", "/api/v1/namespaces/default/pods/p/status"))[0] == 405


async def test_custom_resources_are_served_from_their_descriptor():
    widgets = custom_resource(group="example.com", version="v1", kind="Widget", plural="widgets")
    async with FakeApiServer(resources=(*SEED_RESOURCES, widgets)) as server, \
            kubeasync.Client(server.config()) as kube:
        api = kube.resource(widgets)
        created = await api.create({"metadata": {"name": "w1"}, "spec": {"size": 3}},
                                   namespace="default")
        assert created["metadata"]["uid"] and created["spec"] == {"size": 3}
        page = await api.list(namespace="default")
        assert [w["metadata"]["name"] for w in page["items"]] == ["w1"]
        patched = await api.patch("w1", {"spec": {"size": 4}}, namespace="default")
        assert patched["spec"]["size"] == 4
        with pytest.raises(kubeasync.UnsupportedMediaType):
            await api.patch("w1", {"spec": {}}, namespace="default",
                            patch_type=kubeasync.PatchType.STRATEGIC)
        import aiohttp

        async with aiohttp.ClientSession() as http, \
                http.get(server.url + "/apis/example.com/v1") as r:
            doc = await r.json()
        assert doc["resources"][0]["kind"] == "Widget"


def test_the_openapi_definitions_are_generated_from_the_committed_definitions():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(repo / "tools" / "gen_openapi.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_openapi_schemas_for_kubectl(api):
    status, v2 = await api("GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert status == 200 and v2["swagger"] == "2.0"
    deployment = v2["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert deployment["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    assert deployment["properties"]["apiVersion"] == {
        "description": deployment["properties"]["apiVersion"]["description"], "type": "string"}
    assert v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string", "format": "int-or-string"}
    containers = v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) \
        == ("name", "merge")
    # client-go asks for the protobuf form only, which is not served
    status, _ = await api("GET", "/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert status == 406
    _, index = await api("GET", "/openapi/v3")
    _, apps = await api("GET", index["paths"]["apis/apps/v1"]["serverRelativeURL"])
    schema = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert schema["properties"]["spec"]["$ref"] == (
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec")
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert set(scale) == {"get", "put", "patch"}
