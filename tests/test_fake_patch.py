"""PATCH: JSON merge, JSON patch, strategic merge (merge keys from the OpenAPI
definitions) and server-side apply, on the wire and through kubeasync.Client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kubeasync
from kubeasync import PatchType

PODS = "/api/v1/namespaces/default/pods"
CMS = "/api/v1/namespaces/default/configmaps"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
REPO = Path(__file__).resolve().parent.parent


def two_containers() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                     "finalizers": ["a.example.com/x"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "proxy:1"},
            ],
            "tolerations": [{"key": "k1", "operator": "Exists"}],
        },
    }


async def test_merge_patch(api):
    await api("POST", PODS, two_containers())
    status, body = await api("PATCH", f"{PODS}/web",
                             {"metadata": {"labels": {"tier": None, "new": "yes"}},
                              "spec": {"containers": [{"name": "only", "image": "x:1"}]}},
                             content_type=MERGE)
    assert status == 200
    assert body["metadata"]["labels"] == {"app": "web", "new": "yes"}
    # merge patch replaces lists whole
    assert [c["name"] for c in body["spec"]["containers"]] == ["only"]


async def test_json_patch(api):
    await api("POST", PODS, two_containers())
    status, body = await api("PATCH", f"{PODS}/web", [
        {"op": "test", "path": "/metadata/labels/app", "value": "web"},
        {"op": "add", "path": "/metadata/labels/added", "value": "1"},
        {"op": "replace", "path": "/spec/containers/1/image", "value": "proxy:2"},
        {"op": "remove", "path": "/metadata/labels/tier"},
        {"op": "add", "path": "/spec/tolerations/-", "value": {"key": "k2", "operator": "Exists"}},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copied"},
        {"op": "move", "from": "/metadata/labels/copied", "path": "/metadata/labels/moved"},
    ], content_type=JSON_PATCH)
    assert status == 200, body
    assert body["metadata"]["labels"] == {"app": "web", "added": "1", "moved": "web"}
    assert body["spec"]["containers"][1]["image"] == "proxy:2"
    # The DefaultTolerationSeconds admission plugin added two at creation, after k1.
    assert [t["key"] for t in body["spec"]["tolerations"]] == [
        "k1", "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "k2"]
    status, failed = await api("PATCH", f"{PODS}/web",
                               [{"op": "test", "path": "/metadata/labels/app", "value": "db"}],
                               content_type=JSON_PATCH)
    assert status == 422 and failed["reason"] == "Invalid"
    status, failed = await api("PATCH", f"{PODS}/web",
                               [{"op": "remove", "path": "/metadata/labels/absent"}],
                               content_type=JSON_PATCH)
    assert status == 422


async def test_strategic_merge_uses_merge_keys(api):
    await api("POST", PODS, two_containers())
    status, body = await api("PATCH", f"{PODS}/web", {
        "metadata": {"finalizers": ["b.example.com/y"], "labels": {"tier": None}},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
                {"name": "extra", "image": "extra:1"},
            ],
            "tolerations": [{"key": "k9", "operator": "Exists"}],
        },
    }, content_type=STRATEGIC)
    assert status == 200, body
    containers = {c["name"]: c for c in body["spec"]["containers"]}
    assert list(containers) == ["app", "sidecar", "extra"]  # merged on "name"
    assert containers["app"]["image"] == "app:2"
    assert [e["name"] for e in containers["app"]["env"]] == ["A", "B"]  # env merges on name too
    assert containers["sidecar"]["image"] == "proxy:1"
    # finalizers merge as a set; tolerations have no merge key, so they are replaced
    assert body["metadata"]["finalizers"] == ["a.example.com/x", "b.example.com/y"]
    assert [t["key"] for t in body["spec"]["tolerations"]] == ["k9"]
    assert body["metadata"]["labels"] == {"app": "web"}


async def test_strategic_merge_directives(api):
    await api("POST", PODS, two_containers())
    status, body = await api("PATCH", f"{PODS}/web", {
        "metadata": {"labels": {"$patch": "replace", "only": "this"},
                     "$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]},
        "spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]},
    }, content_type=STRATEGIC)
    assert status == 200, body
    assert body["metadata"]["labels"] == {"only": "this"}
    assert "finalizers" not in body["metadata"] or body["metadata"]["finalizers"] == []
    assert [c["name"] for c in body["spec"]["containers"]] == ["app"]
    status, body = await api("PATCH", f"{PODS}/web", {
        "spec": {"containers": [{"name": "new", "image": "n:1"}, {"$patch": "replace"}]},
    }, content_type=STRATEGIC)
    assert [c["name"] for c in body["spec"]["containers"]] == ["new"]
    await api("PATCH", f"{PODS}/web", {"spec": {"containers": [{"name": "z", "image": "z:1"}]}},
              content_type=STRATEGIC)
    status, body = await api("PATCH", f"{PODS}/web", {
        "$setElementOrder/spec": None,
        "spec": {"$setElementOrder/containers": [{"name": "z"}, {"name": "new"}]},
    }, content_type=STRATEGIC)
    assert status == 200, body
    assert [c["name"] for c in body["spec"]["containers"]] == ["z", "new"]


async def test_patch_errors(api):
    status, body = await api("PATCH", f"{PODS}/nope", {}, content_type=MERGE)
    assert status == 404 and body["message"] == 'pods "nope" not found'
    await api("POST", CMS, {"metadata": {"name": "c"}})
    status, body = await api("PATCH", f"{CMS}/c", {}, content_type="text/plain")
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType" and body["message"] == "415: Unsupported Media Type"
    status, body = await api("PATCH", f"{CMS}/c", b"{not json", content_type=MERGE)
    assert status == 400
    status, body = await api("PATCH", f"{CMS}/c", {"metadata": {"resourceVersion": "1"}},
                             content_type=MERGE)
    assert status == 409 and body["reason"] == "Conflict"


async def test_patch_of_status(api):
    await api("POST", PODS, two_containers())
    status, body = await api("PATCH", f"{PODS}/web/status",
                             {"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}},
                             content_type=MERGE)
    assert status == 200
    assert body["status"]["phase"] == "Running"
    assert body["metadata"]["labels"]["x"] == "y"  # as kube-apiserver: /status writes labels
    status, body = await api("PATCH", f"{PODS}/web", {"status": {"phase": "Failed"}},
                             content_type=MERGE)
    assert body["status"]["phase"] == "Running"  # the main resource ignores status


APPLIED = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  labels:
    owner: alice
data:
  k: v
  other: x
"""


async def test_server_side_apply(api):
    status, body = await api("PATCH", f"{CMS}/ssa?fieldManager=alice", APPLIED.encode(),
                             content_type=APPLY)
    assert status == 201, body  # apply creates
    assert body["data"] == {"k": "v", "other": "x"}
    entry = body["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("alice", "Apply")
    assert entry["fieldsV1"] == {"f:data": {"f:k": {}, "f:other": {}},
                                 "f:metadata": {"f:labels": {"f:owner": {}}}}
    # bob takes data.k with an ordinary update
    status, body = await api("PATCH", f"{CMS}/ssa?fieldManager=bob", {"data": {"k": "bob"}},
                             content_type=MERGE)
    managers = {(e["manager"], e["operation"]) for e in body["metadata"]["managedFields"]}
    assert managers == {("alice", "Apply"), ("bob", "Update")}
    # alice re-applying a different value conflicts...
    status, body = await api("PATCH", f"{CMS}/ssa?fieldManager=alice",
                             APPLIED.replace("k: v", "k: v2").encode(), content_type=APPLY)
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "bob" using v1: .data.k'
    assert body["details"]["causes"] == [{"reason": "FieldManagerConflict",
                                          "message": 'conflict with "bob" using v1',
                                          "field": ".data.k"}]
    # ...unless forced, which takes ownership
    status, body = await api("PATCH", f"{CMS}/ssa?fieldManager=alice&force=true",
                             APPLIED.replace("k: v", "k: v2").encode(), content_type=APPLY)
    assert status == 200 and body["data"]["k"] == "v2"
    assert {e["manager"] for e in body["metadata"]["managedFields"]} == {"alice"}
    # fields alice stops applying are removed
    status, body = await api("PATCH", f"{CMS}/ssa?fieldManager=alice",
                             APPLIED.replace("  other: x\n", "").encode(), content_type=APPLY)
    assert body["data"] == {"k": "v"}
    status, body = await api("PATCH", f"{CMS}/ssa", APPLIED.encode(), content_type=APPLY)
    assert status == 422 and body["message"].endswith("is required for apply patch")


async def test_apply_merges_lists_by_key(api):
    await api("POST", PODS, two_containers())
    applied = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"containers": [{"name": "logger", "image": "log:1"}]}}
    status, body = await api("PATCH", f"{PODS}/web?fieldManager=ops", applied,
                             content_type=APPLY)
    assert status == 200, body
    images = {c["name"]: c["image"] for c in body["spec"]["containers"]}
    assert images == {"app": "app:1", "sidecar": "proxy:1", "logger": "log:1"}
    # the creator owns the sidecar's image: changing it is a conflict on that list item
    applied["spec"]["containers"] = [{"name": "sidecar", "image": "proxy:9"}]
    status, body = await api("PATCH", f"{PODS}/web?fieldManager=ops", applied,
                             content_type=APPLY)
    assert status == 409
    assert body["details"]["causes"][0]["field"] == '.spec.containers[name="sidecar"].image'
    status, body = await api("PATCH", f"{PODS}/web?fieldManager=ops&force=true", applied,
                             content_type=APPLY)
    assert status == 200, body
    images = {c["name"]: c["image"] for c in body["spec"]["containers"]}
    # forced; "logger" is no longer applied by ops and nobody else owns it, so it goes
    assert images == {"app": "app:1", "sidecar": "proxy:9"}


async def test_client_patch_types(kube):
    await kube.pods.create(two_containers(), namespace="default")
    merged = await kube.pods.patch("web", {"metadata": {"labels": {"m": "1"}}}, namespace="default")
    assert merged.metadata.labels["m"] == "1"
    strategic = await kube.pods.patch(
        "web", {"spec": {"containers": [{"name": "app", "image": "app:3"}]}},
        namespace="default", patch_type=PatchType.STRATEGIC)
    assert [c.image for c in strategic.spec.containers] == ["app:3", "proxy:1"]
    patched = await kube.pods.patch(
        "web", [{"op": "replace", "path": "/metadata/labels/m", "value": "2"}],
        namespace="default", patch_type=PatchType.JSON)
    assert patched.metadata.labels["m"] == "2"
    applied = await kube.config_maps.patch(
        "via-apply", {"metadata": {"name": "via-apply"}, "data": {"x": "1"}},
        namespace="default", patch_type=PatchType.APPLY, field_manager="me")
    assert applied.data == {"x": "1"}
    status = await kube.pods.patch_status("web", {"status": {"phase": "Running"}},
                                          namespace="default")
    assert status.status.phase == "Running"
    with pytest.raises(kubeasync.Conflict):
        await kube.config_maps.patch(
            "via-apply", {"metadata": {"name": "via-apply"}, "data": {"x": "2"}},
            namespace="default", patch_type=PatchType.APPLY, field_manager="other")
    dry = await kube.config_maps.patch("via-apply", {"data": {"x": "dry"}},
                                       namespace="default", dry_run=True)
    assert dry.data == {"x": "dry"}
    assert (await kube.config_maps.get("via-apply", namespace="default")).data == {"x": "1"}


def test_patch_schema_is_generated_from_the_definitions():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "gen_patch_schema.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
