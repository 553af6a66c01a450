"""Create, read, replace and the error bodies of the embedded API server, on the wire
(raw aiohttp) and through kubeasync.Client."""

from __future__ import annotations

import gzip
from typing import Any

import aiohttp
import pytest

import kubeasync
from kubeasync.models import ConfigMap, ObjectMeta
from kubeasync.testing import FakeApiServer

PODS = "/api/v1/namespaces/default/pods"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


async def test_create_fills_in_server_fields(api):
    status, body = await api("POST", PODS, pod("web-0"))
    assert status == 201
    meta = body["metadata"]
    assert body["kind"] == "Pod" and body["apiVersion"] == "v1"
    assert meta["namespace"] == "default"
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert isinstance(meta["resourceVersion"], str)
    assert body["status"]["phase"] == "Pending"
    # a second object gets a later resourceVersion from the same global counter
    _, cm = await api("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}})
    assert int(cm["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    status, got = await api("GET", f"{PODS}/web-0")
    assert status == 200 and got == body


async def test_generate_name(api):
    status, body = await api("POST", PODS, {**pod(""), "metadata": {"generateName": "worker-"}})
    assert status == 201
    name = body["metadata"]["name"]
    assert name.startswith("worker-") and len(name) == len("worker-") + 5
    assert body["metadata"]["generateName"] == "worker-"


async def test_unknown_fields_survive(api):
    body = pod("odd")
    body["spec"]["futureField"] = {"nested": [1, 2]}
    body["extraTopLevel"] = "kept"
    await api("POST", PODS, body)
    _, got = await api("GET", f"{PODS}/odd")
    assert got["spec"]["futureField"] == {"nested": [1, 2]}
    assert got["extraTopLevel"] == "kept"


async def test_not_found_status_bodies(api):
    status, body = await api("GET", f"{PODS}/missing")
    assert status == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pods "missing" not found', "reason": "NotFound",
                    "details": {"name": "missing", "kind": "pods"}, "code": 404}
    status, body = await api("GET", f"{JOBS}/missing")
    assert body["message"] == 'jobs.batch "missing" not found'
    assert body["details"] == {"name": "missing", "group": "batch", "kind": "jobs"}


async def test_missing_namespace_and_namespace_mismatch(api):
    status, body = await api("POST", "/api/v1/namespaces/nope/pods", pod("p"))
    assert (status, body["reason"], body["message"]) == (404, "NotFound",
                                                         'namespaces "nope" not found')
    mismatched = pod("p")
    mismatched["metadata"]["namespace"] = "other"
    status, body = await api("POST", PODS, mismatched)
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ("the namespace of the provided object does not match the"
                               " namespace sent on the request")


async def test_already_exists(api):
    await api("POST", PODS, pod("twice"))
    status, body = await api("POST", PODS, pod("twice"))
    assert status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "twice" already exists'
    assert body["details"] == {"name": "twice", "kind": "pods"}


INVALID = [
    ("/api/v1/namespaces/default/pods", {"metadata": {"name": "p"}, "spec": {}},
     'Pod "p" is invalid: spec.containers: Required value', ["spec.containers"]),
    ("/api/v1/namespaces/default/pods",
     {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "a", "image": "i"}]}},
     'Pod "p" is invalid: [spec.containers[0].image: Required value,'
     ' spec.containers[1].name: Duplicate value: "a"]',
     ["spec.containers[0].image", "spec.containers[1].name"]),
    ("/apis/batch/v1/namespaces/default/jobs", {"metadata": {"name": "j"}, "spec": {}},
     'Job.batch "j" is invalid: [spec.template.spec.containers: Required value,'
     ' spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"]',
     ["spec.template.spec.containers", "spec.template.spec.restartPolicy"]),
    ("/api/v1/namespaces/default/services",
     {"metadata": {"name": "s"}, "spec": {"ports": [{"name": "a"}]}},
     'Service "s" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and'
     ' 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and'
     ' 65535, inclusive]',
     ["spec.ports[0].port", "spec.ports[0].targetPort"]),
    ("/api/v1/namespaces/default/persistentvolumeclaims", {"metadata": {"name": "c"}, "spec": {}},
     'PersistentVolumeClaim "c" is invalid: [spec.accessModes: Required value: at least 1'
     ' access mode is required, spec.resources[storage]: Required value]',
     ["spec.accessModes", "spec.resources[storage]"]),
    ("/api/v1/namespaces/default/configmaps", {"metadata": {}},
     'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required',
     ["metadata.name"]),
]


@pytest.mark.parametrize(("path", "body", "message", "fields"), INVALID)
async def test_invalid_objects(api, path, body, message, fields):
    status, answer = await api("POST", path, body)
    assert status == 422
    assert answer["reason"] == "Invalid"
    assert answer["message"] == message
    assert [c["field"] for c in answer["details"]["causes"]] == fields


@pytest.mark.parametrize(("path", "name", "rule"), [
    ("/api/v1/namespaces/default/pods", "Web_0", "a lowercase RFC 1123 subdomain"),
    ("/api/v1/namespaces/default/services", "svc.v1", "a DNS-1035 label"),
    ("/api/v1/namespaces", "team.a", "a lowercase RFC 1123 label"),
])
async def test_name_rules(api, path, name, rule):
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "a", "image": "i"}],
                                                 "ports": [{"port": 80}]}}
    status, answer = await api("POST", path, body)
    assert status == 422
    cause = answer["details"]["causes"][0]
    assert cause["field"] == "metadata.name" and cause["reason"] == "FieldValueInvalid"
    assert cause["message"].startswith(f'Invalid value: "{name}": {rule} must consist of')


async def test_replace_conflict_and_unconditional(api):
    _, created = await api("POST", PODS, pod("web"))
    stale = dict(created)
    changed = {**created, "metadata": {**created["metadata"], "labels": {"v": "2"}}}
    status, updated = await api("PUT", f"{PODS}/web", changed)
    assert status == 200 and updated["metadata"]["labels"] == {"v": "2"}
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    status, body = await api("PUT", f"{PODS}/web", stale)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on pods "web": the object has been'
                               " modified; please apply your changes to the latest version and"
                               " try again")
    # without a resourceVersion a PUT is unconditional
    blind = {**stale, "metadata": {"name": "web", "labels": {"v": "3"}}}
    status, body = await api("PUT", f"{PODS}/web", blind)
    assert status == 200 and body["metadata"]["labels"] == {"v": "3"}
    assert body["metadata"]["uid"] == created["metadata"]["uid"]
    assert body["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


async def test_replace_errors(api):
    status, body = await api("PUT", f"{PODS}/ghost", pod("ghost"))
    assert status == 404 and body["message"] == 'pods "ghost" not found'
    await api("POST", PODS, pod("named"))
    status, body = await api("PUT", f"{PODS}/named", pod("other"))
    assert status == 400
    assert body["message"] == "the name of the object (other) does not match the name on the URL (named)"


async def test_status_only_through_the_status_subresource(api):
    await api("POST", PODS, pod("st"))
    _, current = await api("GET", f"{PODS}/st")
    attempt = {**current, "status": {"phase": "Running"},
               "metadata": {**current["metadata"], "labels": {"touched": "yes"}}}
    _, after = await api("PUT", f"{PODS}/st", attempt)
    assert after["status"]["phase"] == "Pending"  # the main resource ignores .status
    assert after["metadata"]["labels"] == {"touched": "yes"}
    attempt = {**after, "status": {"phase": "Running"},
               "metadata": {**after["metadata"], "labels": {"touched": "again"}},
               "spec": {**after["spec"], "nodeName": "elsewhere"}}
    status, after_status = await api("PUT", f"{PODS}/st/status", attempt)
    assert status == 200
    assert after_status["status"]["phase"] == "Running"
    # kube-apiserver's /status of a built-in kind resets the spec, but writes labels and
    # annotations (measured on 1.20: tests/integration/test_real_endpoints.py)
    assert after_status["metadata"]["labels"] == {"touched": "again"}
    assert "nodeName" not in after_status["spec"]
    status, via_status = await api("GET", f"{PODS}/st/status")
    assert status == 200 and via_status == after_status


async def test_noop_update_keeps_resource_version(api):
    _, created = await api("POST", PODS, pod("same"))
    _, again = await api("PUT", f"{PODS}/same", created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generation_follows_spec_changes(api):
    _, created = await api("POST", JOBS, {
        "metadata": {"name": "gen"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "a", "image": "i"}]}}}})
    assert created["metadata"]["generation"] == 1
    relabeled = {**created, "metadata": {**created["metadata"], "labels": {"x": "y"}}}
    _, after = await api("PUT", f"{JOBS}/gen", relabeled)
    assert after["metadata"]["generation"] == 1
    after["spec"]["backoffLimit"] = 2
    _, after = await api("PUT", f"{JOBS}/gen", after)
    assert after["metadata"]["generation"] == 2


async def test_job_defaults_mark_its_pods(api):
    _, job = await api("POST", JOBS, {
        "metadata": {"name": "mark"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "a", "image": "i"}]}}}})
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {"controller-uid": uid,
                                                             "job-name": "mark"}
    assert (job["spec"]["completions"], job["spec"]["parallelism"],
            job["spec"]["backoffLimit"]) == (1, 1, 6)
    assert job["status"] == {}


async def test_dry_run_writes_nothing(api, fake_apiserver):
    before = fake_apiserver.resource_version
    status, body = await api("POST", f"{PODS}?dryRun=All", pod("dry"))
    assert status == 201 and body["metadata"]["name"] == "dry"
    assert "resourceVersion" not in body["metadata"]
    assert (await api("GET", f"{PODS}/dry"))[0] == 404
    status, body = await api("POST", f"{PODS}?dryRun=All", {"metadata": {"name": "x"}, "spec": {}})
    assert status == 422  # still validated
    await api("POST", PODS, pod("wet"))
    rv = fake_apiserver.resource_version
    _, current = await api("GET", f"{PODS}/wet")
    changed = {**current, "metadata": {**current["metadata"], "labels": {"a": "b"}}}
    status, body = await api("PUT", f"{PODS}/wet?dryRun=All", changed)
    assert status == 200 and body["metadata"]["labels"] == {"a": "b"}
    status, body = await api("PATCH", f"{PODS}/wet?dryRun=All", {"metadata": {"labels": {"c": "d"}}},
                             content_type="application/merge-patch+json")
    assert status == 200 and body["metadata"]["labels"] == {"c": "d"}
    status, body = await api("DELETE", f"{PODS}/wet?dryRun=All")
    assert status == 200
    status, body = await api("DELETE", f"{PODS}/wet", {"dryRun": ["All"]})
    assert status == 200
    _, still = await api("GET", f"{PODS}/wet")
    assert still == current
    assert fake_apiserver.resource_version == rv != before


async def test_responses_are_json_and_large_ones_gzipped(api, fake_apiserver):
    payload = "x" * 1024
    for i in range(150):  # ~150 KiB of configmaps
        await api("POST", "/api/v1/namespaces/default/configmaps",
                  {"metadata": {"name": f"cm-{i:03d}"}, "data": {"blob": payload}})
    response = await api.raw("GET", "/api/v1/namespaces/default/configmaps",
                             headers={"Accept-Encoding": "gzip"})
    async with response:
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers.get("Content-Encoding") == "gzip"
        body = await response.json()
    assert len(body["items"]) == 150
    # without Accept-Encoding: gzip the same answer is plain
    async with aiohttp.ClientSession(auto_decompress=False) as plain:
        async with plain.get(fake_apiserver.url + "/api/v1/namespaces/default/configmaps",
                             headers={"Accept-Encoding": "identity"}) as r:
            assert "Content-Encoding" not in r.headers
            assert len(await r.read()) > 128 * 1024
        async with plain.get(fake_apiserver.url + "/api/v1/namespaces/default/configmaps",
                             headers={"Accept-Encoding": "gzip"}) as r:
            raw = await r.read()
            assert len(gzip.decompress(raw)) > len(raw)
        # small answers are never compressed
        async with plain.get(fake_apiserver.url + "/api/v1/namespaces/default/configmaps/cm-000",
                             headers={"Accept-Encoding": "gzip"}) as r:
            assert "Content-Encoding" not in r.headers


async def test_token_is_checked():
    async with FakeApiServer(token="s3cret") as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/api/v1/namespaces") as r:
                assert r.status == 401
                assert (await r.json())["reason"] == "Unauthorized"
            async with http.get(server.url + "/healthz") as r:
                assert r.status == 200 and await r.text() == "ok"
        async with kubeasync.Client(server.config()) as kube:
            namespaces = await kube.namespaces.list()
            assert "default" in [n.metadata.name for n in namespaces.items]
        wrong = kubeasync.ClusterConfig(server=server.url, auth=kubeasync.BearerToken("nope"))
        async with kubeasync.Client(wrong) as kube:
            with pytest.raises(kubeasync.Unauthorized):
                await kube.namespaces.list()


async def test_terminating_namespace_refuses_new_objects(api, fake_apiserver):
    await api("POST", "/api/v1/namespaces", {"metadata": {"name": "going"}})
    # a finalizer of ours keeps the namespace Terminating while we look
    await api("POST", "/api/v1/namespaces/going/configmaps",
              {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    status, ns = await api("DELETE", "/api/v1/namespaces/going")
    assert status == 200 and ns["status"]["phase"] == "Terminating"
    status, body = await api("POST", "/api/v1/namespaces/going/pods", pod("late"))
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('pods "late" is forbidden: unable to create new content in'
                               " namespace going because it is being terminated")


async def test_client_round_trip(kube):
    created = await kube.config_maps.create(
        ConfigMap(metadata=ObjectMeta(name="settings"), data={"a": "1"}), namespace="default")
    assert created.metadata.uid and created.data == {"a": "1"}
    got = await kube.config_maps.get("settings", namespace="default")
    assert got.metadata.resource_version == created.metadata.resource_version
    got.data = {"a": "2"}
    replaced = await kube.config_maps.replace("settings", got, namespace="default")
    assert replaced.data == {"a": "2"}
    with pytest.raises(kubeasync.Conflict):
        await kube.config_maps.replace("settings", got, namespace="default")
    with pytest.raises(kubeasync.NotFound) as info:
        await kube.pods.get("nope", namespace="default")
    assert info.value.status.details.kind == "pods"
    with pytest.raises(kubeasync.Invalid) as invalid:
        await kube.pods.create({"metadata": {"name": "bad"}, "spec": {}}, namespace="default")
    assert invalid.value.status.details.causes[0].field == "spec.containers"
    with pytest.raises(kubeasync.AlreadyExists):
        await kube.config_maps.create({"metadata": {"name": "settings"}}, namespace="default")
    pod_obj = await kube.pods.create(pod("typed"), namespace="default")
    pod_obj.status.phase = "Running"
    status = await kube.pods.replace_status("typed", pod_obj, namespace="default")
    assert status.status.phase == "Running"
    assert (await kube.pods.get_status("typed", namespace="default")).status.phase == "Running"
    info_ = await kube.version()
    assert info_.git_version == "v1.20.2"


async def test_protobuf_and_yaml_bodies(api):
    status, body = await api("POST", "/api/v1/namespaces/default/configmaps", b"k8s\x00\x0a",
                             content_type="application/vnd.kubernetes.protobuf")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    manifest = b"metadata:\n  name: from-yaml\ndata:\n  a: '1'\n"
    status, body = await api("POST", "/api/v1/namespaces/default/configmaps", manifest,
                             content_type="application/yaml")
    assert status == 201 and body["data"] == {"a": "1"}
    status, body = await api("POST", "/api/v1/namespaces/default/configmaps", b"{oops",
                             content_type="application/json")
    assert status == 400 and body["message"].startswith(
        "the object provided is unrecognized (must be of type ConfigMap)")


@pytest.mark.parametrize("token", [None, "s3cret"])
async def test_written_kubeconfig_loads(tmp_path, token):
    async with FakeApiServer(token=token) as server:
        path = server.write_kubeconfig(tmp_path / "sub" / "kubeconfig", namespace="kube-system")
        config = kubeasync.ClusterConfig.from_kubeconfig(path)
        assert config.server == server.url and config.namespace == "kube-system"
        async with kubeasync.Client(config) as kube:
            created = await kube.config_maps.create({"metadata": {"name": "via-kubeconfig"}})
        assert created.metadata.namespace == "kube-system"


async def test_pods_get_what_every_clusters_admission_adds(api):
    status, body = await api("POST", PODS, pod("web-0", tolerations=[
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]))
    assert status == 201, body
    spec = body["spec"]
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    # DefaultTolerationSeconds adds what is missing and leaves the pod's own alone.
    assert [(t["key"], t.get("tolerationSeconds")) for t in spec["tolerations"]] == [
        ("node.kubernetes.io/unreachable", None), ("node.kubernetes.io/not-ready", 300)]
    _, own = await api("POST", PODS, pod("web-1", serviceAccountName="builder"))
    assert own["spec"]["serviceAccount"] == "builder"
    # Job templates are not admitted as pods.
    _, job = await api("POST", JOBS, {"metadata": {"name": "j"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
    template = job["spec"]["template"]["spec"]
    assert "serviceAccountName" not in template and "tolerations" not in template


async def test_empty_optional_maps_are_dropped_as_go_omits_them(api):
    cms = "/api/v1/namespaces/default/configmaps"
    status, body = await api("POST", cms, {"metadata": {"name": "c", "labels": {},
                                                        "annotations": {}}, "data": {}})
    assert status == 201
    assert "data" not in body
    assert "labels" not in body["metadata"] and "annotations" not in body["metadata"]
    # Nothing was set, so no manager owns anything (a real server writes no entry).
    assert "managedFields" not in body["metadata"]
    _, body = await api("PUT", f"{cms}/c", {"metadata": {"name": "c", "labels": {}},
                                            "data": {"a": "1"}, "binaryData": {}})
    assert body["data"] == {"a": "1"} and "binaryData" not in body
    assert "labels" not in body["metadata"]


async def test_only_kinds_with_a_generation_get_one(api):
    _, svc = await api("POST", "/api/v1/namespaces/default/services", {
        "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    _, pvc = await api("POST", "/api/v1/namespaces/default/persistentvolumeclaims", {
        "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": "1Gi"}}}})
    assert "generation" not in svc["metadata"] and "generation" not in pvc["metadata"]
    _, pod_body = await api("POST", PODS, pod("web-0"))
    assert pod_body["metadata"]["generation"] == 1
