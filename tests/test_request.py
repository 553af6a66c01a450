"""Sans-IO tests of request building: every verb of every seed resource, no server."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from kubeasync import JOBS, NAMESPACES, PERSISTENT_VOLUME_CLAIMS, PODS, SERVICES, PatchType
from kubeasync.api.capabilities.eviction import eviction_request
from kubeasync.api.capabilities.log import log_request
from kubeasync.core.descriptor import ResourceDescriptor, custom_resource
from kubeasync.core.params import (
    DeleteParams,
    GetParams,
    ListParams,
    LogParams,
    PatchParams,
    WatchParams,
    WriteParams,
)
from kubeasync.core.request import RequestBuilder, encode_object, encode_patch
from kubeasync.models import Container, ObjectMeta, Pod, PodSpec, Service
from kubeasync.selectors import DoesNotExist, Exists, In, NotEqual, NotIn

SEED = {
    "pods": (PODS, "/api/v1/namespaces/ns/pods"),
    "jobs": (JOBS, "/apis/batch/v1/namespaces/ns/jobs"),
    "services": (SERVICES, "/api/v1/namespaces/ns/services"),
    "pvcs": (PERSISTENT_VOLUME_CLAIMS, "/api/v1/namespaces/ns/persistentvolumeclaims"),
}
seed = pytest.mark.parametrize("descriptor,base", list(SEED.values()), ids=list(SEED))


def body(request: Any) -> Any:
    return json.loads(request.body)


@seed
def test_get(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    request = RequestBuilder(descriptor).get("web-0", "ns")
    assert (request.method, request.path, request.query, request.body) == (
        "GET", f"{base}/web-0", (), None
    )
    assert request.headers["Accept"] == "application/json"
    assert request.idempotent


@seed
def test_get_status(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    request = RequestBuilder(descriptor).get("web-0", "ns", subresource="status")
    assert (request.method, request.path) == ("GET", f"{base}/web-0/status")


@seed
def test_list_with_every_parameter(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    request = RequestBuilder(descriptor).list(
        "ns",
        ListParams(
            label_selector="app=web",
            field_selector="metadata.name=web-0",
            limit=100,
            continue_="tok",
            resource_version="42",
            resource_version_match="NotOlderThan",
            timeout_seconds=5,
        ),
    )
    assert request.method == "GET" and request.path == base
    assert request.query == (
        ("labelSelector", "app=web"),
        ("fieldSelector", "metadata.name=web-0"),
        ("limit", "100"),
        ("continue", "tok"),
        ("resourceVersion", "42"),
        ("resourceVersionMatch", "NotOlderThan"),
        ("timeoutSeconds", "5"),
    )


@seed
def test_list_all_namespaces_uses_cluster_path(
    descriptor: ResourceDescriptor[Any, Any], base: str
) -> None:
    request = RequestBuilder(descriptor).list(None)
    assert request.path == f"{descriptor.api_prefix}/{descriptor.plural}"


@seed
def test_watch(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    request = RequestBuilder(descriptor).watch(
        "ns", WatchParams(label_selector={"app": "web"}, resource_version="7",
                          timeout_seconds=300, bookmarks=True)
    )
    assert request.method == "GET" and request.path == base
    assert dict(request.query) == {
        "watch": "true",
        "labelSelector": "app=web",
        "resourceVersion": "7",
        "timeoutSeconds": "300",
        "allowWatchBookmarks": "true",
    }


def test_watch_with_initial_events() -> None:
    request = RequestBuilder(PODS).watch(
        "ns", WatchParams(send_initial_events=True, resource_version="",
                          resource_version_match="NotOlderThan")
    )
    query = dict(request.query)
    assert query["sendInitialEvents"] == "true"
    assert query["resourceVersionMatch"] == "NotOlderThan"


@seed
def test_create(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    payload = encode_object(descriptor, {"metadata": {"name": "x"}}, namespace="ns")
    request = RequestBuilder(descriptor).create("ns", payload, WriteParams(True, "me"))
    assert (request.method, request.path) == ("POST", base)
    assert request.query == (("dryRun", "All"), ("fieldManager", "me"))
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == {
        "metadata": {"name": "x"},
        "kind": descriptor.kind,
        "apiVersion": descriptor.api_version,
    }
    assert not request.idempotent, "a POST must never be blindly retried"


@seed
def test_replace_and_replace_status(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    payload = encode_object(descriptor, {"metadata": {"resourceVersion": "5"}}, name="x")
    builder = RequestBuilder(descriptor)
    request = builder.replace("x", "ns", payload)
    assert (request.method, request.path) == ("PUT", f"{base}/x")
    assert body(request)["metadata"] == {"resourceVersion": "5", "name": "x"}
    status = builder.replace("x", "ns", payload, subresource="status")
    assert (status.method, status.path) == ("PUT", f"{base}/x/status")


@seed
@pytest.mark.parametrize(
    "patch_type,content_type",
    [
        (PatchType.JSON, "application/json-patch+json"),
        (PatchType.MERGE, "application/merge-patch+json"),
        (PatchType.STRATEGIC, "application/strategic-merge-patch+json"),
        (PatchType.APPLY, "application/apply-patch+yaml"),
    ],
)
def test_patch_content_types(
    descriptor: ResourceDescriptor[Any, Any], base: str, patch_type: PatchType, content_type: str
) -> None:
    patch: Any = (
        [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]
        if patch_type is PatchType.JSON
        else {"metadata": {"labels": {"a": "b"}}}
    )
    payload = encode_patch(descriptor, patch, patch_type, name="x", namespace="ns")
    request = RequestBuilder(descriptor).patch(
        "x",
        "ns",
        payload,
        PatchParams(
            patch_type,
            field_manager="me" if patch_type is PatchType.APPLY else None,
            force=True if patch_type is PatchType.APPLY else None,
        ),
    )
    assert (request.method, request.path) == ("PATCH", f"{base}/x")
    assert request.headers["Content-Type"] == content_type
    if patch_type is PatchType.APPLY:
        assert request.query == (("fieldManager", "me"), ("force", "true"))
        assert body(request)["kind"] == descriptor.kind
        assert body(request)["metadata"]["name"] == "x"
    assert request.idempotent == (patch_type is not PatchType.JSON)


@seed
def test_patch_status(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    request = RequestBuilder(descriptor).patch(
        "x", "ns", b"{}", PatchParams(PatchType.MERGE), subresource="status"
    )
    assert request.path == f"{base}/x/status"


@seed
def test_delete_with_every_option(descriptor: ResourceDescriptor[Any, Any], base: str) -> None:
    request = RequestBuilder(descriptor).delete(
        "x",
        "ns",
        DeleteParams(
            grace_period_seconds=0,
            propagation_policy="Foreground",
            preconditions={"uid": "u-1", "resourceVersion": "9"},
            dry_run=True,
        ),
    )
    assert (request.method, request.path) == ("DELETE", f"{base}/x")
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": "u-1", "resourceVersion": "9"},
        "dryRun": ["All"],
    }


def test_delete_without_options_sends_no_body() -> None:
    request = RequestBuilder(PODS).delete("x", "ns")
    assert request.body is None and "Content-Type" not in request.headers


@pytest.mark.parametrize("descriptor", [PODS, JOBS, PERSISTENT_VOLUME_CLAIMS], ids=str)
def test_delete_collection(descriptor: ResourceDescriptor[Any, Any]) -> None:
    request = RequestBuilder(descriptor).delete_collection(
        "ns", ListParams(label_selector={"tmp": "1"}),
        DeleteParams(propagation_policy="Background"),
    )
    assert request.method == "DELETE"
    assert request.path == descriptor.collection_path("ns")
    assert request.query == (("labelSelector", "tmp=1"),)
    assert body(request)["propagationPolicy"] == "Background"


def test_services_have_no_collection_delete_verb() -> None:
    with pytest.raises(ValueError, match="deletecollection"):
        RequestBuilder(SERVICES).delete_collection("ns", ListParams())


def test_logs_with_every_parameter() -> None:
    request = log_request(
        PODS,
        "web-0",
        "ns",
        LogParams(
            container="app",
            follow=True,
            tail_lines=100,
            since_seconds=60,
            timestamps=True,
            previous=True,
            limit_bytes=1024,
        ),
    )
    assert request.path == "/api/v1/namespaces/ns/pods/web-0/log"
    assert request.query == (
        ("container", "app"),
        ("follow", "true"),
        ("tailLines", "100"),
        ("sinceSeconds", "60"),
        ("timestamps", "true"),
        ("previous", "true"),
        ("limitBytes", "1024"),
    )


def test_only_pods_have_logs() -> None:
    with pytest.raises(ValueError, match="no 'log' subresource"):
        log_request(SERVICES, "x", "ns", LogParams())


def test_namespaces_are_cluster_scoped() -> None:
    builder = RequestBuilder(NAMESPACES)
    assert builder.get("team-a", None).path == "/api/v1/namespaces/team-a"
    assert builder.list(None).path == "/api/v1/namespaces"
    assert builder.get("team-a", None, subresource="status").path == (
        "/api/v1/namespaces/team-a/status"
    )
    with pytest.raises(ValueError, match="cluster-scoped"):
        builder.get("team-a", "ns")


def test_custom_resource_paths() -> None:
    widgets = custom_resource(group="example.com", version="v1alpha1", kind="Widget",
                              plural="widgets")
    builder = RequestBuilder(widgets)
    assert builder.get("w", "ns").path == "/apis/example.com/v1alpha1/namespaces/ns/widgets/w"
    assert widgets.api_version == "example.com/v1alpha1"


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "name,message",
    [
        ("", "must not be empty"),
        (".", "may not be '.'"),
        ("..", "may not be '..'"),
        ("a/b", "may not contain '/'"),
        ("a%2Fb", "may not contain '%'"),
        (None, "must be a str"),
        (7, "must be a str"),
    ],
)
def test_bad_names_raise_before_anything_is_sent(name: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        RequestBuilder(PODS).get(name, "ns")
    assert "name" in str(info.value)


def test_dots_inside_names_are_valid() -> None:
    assert RequestBuilder(PODS).get("web.v1", "ns").path.endswith("/pods/web.v1")
    assert RequestBuilder(PODS).get("...a", "ns").path.endswith("/pods/...a")


@pytest.mark.parametrize("namespace", ["", "Upper", "a/b", "-a", "a-", "a_b", "x" * 64, ".."])
def test_bad_namespaces(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        RequestBuilder(PODS).get("x", namespace)


def test_unknown_patch_type() -> None:
    with pytest.raises(ValueError, match="patch_type must be one of"):
        PatchParams("yaml")  # type: ignore[arg-type]


def test_apply_needs_field_manager_and_force_needs_apply() -> None:
    with pytest.raises(ValueError, match="field_manager is required"):
        PatchParams(PatchType.APPLY)
    with pytest.raises(ValueError, match="force only applies"):
        PatchParams(PatchType.MERGE, force=True)


def test_bad_json_patch() -> None:
    with pytest.raises(ValueError, match=r"patch\[0\]"):
        encode_patch(PODS, [{"op": "frobnicate", "path": "/x"}], PatchType.JSON, name="x",
                     namespace="ns")
    with pytest.raises(ValueError, match="list of operations"):
        encode_patch(PODS, {"op": "add"}, PatchType.JSON, name="x", namespace="ns")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"grace_period_seconds": -1}, "grace_period_seconds must be >= 0"),
        ({"grace_period_seconds": "0"}, "grace_period_seconds must be an int"),
        ({"propagation_policy": "Sometimes"}, "propagation_policy must be one of"),
        ({"preconditions": {"name": "x"}}, "unknown key 'name'"),
        ({"preconditions": {}}, "non-empty mapping"),
    ],
)
def test_bad_delete_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeleteParams(**kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"limit": 0}, "limit must be >= 1"),
        ({"limit": True}, "limit must be an int"),
        ({"continue_": ""}, "continue_ must be a non-empty str"),
        ({"resource_version": 5}, "resource_version must be a str"),
        ({"label_selector": 5}, "label_selector must be a str or a mapping"),
        ({"label_selector": {"app": 5}}, "the value for 'app' must be a str"),
        ({"label_selector": {"app": "a,b"}}, "may not contain ','"),
        ({"field_selector": {"status.phase": In("Running")}}, "field_selector"),
    ],
)
def test_bad_list_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ListParams(**kwargs)


def test_label_selector_helpers() -> None:
    request = RequestBuilder(PODS).list(
        "ns",
        ListParams(
            label_selector={
                "app": "web",
                "env": In("prod", "staging"),
                "tier": NotIn("db"),
                "debug": Exists(),
                "canary": DoesNotExist(),
                "zone": NotEqual("a"),
            },
            field_selector={"status.phase": "Running", "spec.nodeName": NotEqual("n1")},
        ),
    )
    assert dict(request.query) == {
        "labelSelector": "app=web,env in (prod,staging),tier notin (db),debug,!canary,zone!=a",
        "fieldSelector": "status.phase=Running,spec.nodeName!=n1",
    }


# ------------------------------------------------------------------ bodies


def test_encode_model_fills_kind_and_api_version() -> None:
    pod = Pod(metadata=ObjectMeta(name="web"), spec=PodSpec(containers=[Container(name="a",
                                                                                  image="i")]))
    encoded = json.loads(encode_object(PODS, pod, namespace="ns"))
    assert encoded == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "a", "image": "i"}]},
    }
    # the caller's object is not modified
    assert pod.kind is None


@pytest.mark.parametrize(
    "obj,kwargs,message",
    [
        ([1, 2], {}, "must be a Kubernetes object"),
        ("pod", {}, "must be a Kubernetes object"),
        ({"kind": "Service", "metadata": {"name": "x"}}, {}, "has kind 'Service'"),
        ({"apiVersion": "v2", "metadata": {"name": "x"}}, {}, "has apiVersion 'v2'"),
        ({"metadata": "x"}, {}, r"\['metadata'\] must be a mapping"),
        ({"metadata": {}}, {"require_name": True}, "needs metadata.name or metadata.generateName"),
        ({"metadata": {"name": "a"}}, {"name": "b"}, "is named 'a' but name is 'b'"),
        ({"metadata": {"name": "a", "namespace": "x"}}, {"namespace": "y"}, "is in namespace"),
        ({"metadata": {"name": "a/b"}}, {}, "may not contain '/'"),
        (Service(metadata=ObjectMeta(name="a")), {}, "must be a Pod or a dict, not Service"),
    ],
)
def test_bad_bodies(obj: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_object(PODS, obj, **kwargs)


def test_generate_name_is_enough_for_create() -> None:
    encoded = encode_object(PODS, {"metadata": {"generateName": "web-"}}, require_name=True)
    assert msgspec.json.decode(encoded)["metadata"] == {"generateName": "web-"}


# ------------------------------------------------------------------ params, capabilities


def test_params_render_their_query_once_and_compare_by_value() -> None:
    params = ListParams(label_selector={"app": "web"}, limit=5)
    assert params.label_selector == "app=web"  # kept in its rendered form
    assert params.query == (("labelSelector", "app=web"), ("limit", "5"))
    assert params == ListParams(label_selector="app=web", limit=5)
    assert GetParams("0").query == (("resourceVersion", "0"),)
    with pytest.raises(AttributeError):
        params.limit = 6  # type: ignore[misc]


def test_a_watch_without_bookmarks_does_not_ask_for_them() -> None:
    assert "allowWatchBookmarks" not in dict(WatchParams().query)
    assert dict(WatchParams(bookmarks=True).query)["allowWatchBookmarks"] == "true"


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_eviction_request(version: str) -> None:
    request = eviction_request(PODS, "web-0", "ns", DeleteParams(grace_period_seconds=3),
                               policy_version=version)
    assert (request.method, request.path) == ("POST", "/api/v1/namespaces/ns/pods/web-0/eviction")
    assert body(request) == {
        "apiVersion": f"policy/{version}",
        "kind": "Eviction",
        "metadata": {"name": "web-0", "namespace": "ns"},
        "deleteOptions": {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 3},
    }
    assert not request.idempotent, "a repeated eviction could evict a second pod"


def test_only_kinds_with_an_eviction_subresource_are_evicted() -> None:
    with pytest.raises(ValueError, match="no 'eviction' subresource"):
        eviction_request(JOBS, "x", "ns", DeleteParams())
