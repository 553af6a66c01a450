"""Tests of the generated catalogue of built-in resources (``kubeasync.kinds``) and of
``tools/gen_catalogue.py``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

import kubeasync
import kubeasync.kinds as kinds
from kubeasync.core.descriptor import ALL_VERBS, ResourceDescriptor
from kubeasync.models import KubeModel, ListMeta, ObjectMeta

REPO = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


gen_catalogue = _load("gen_catalogue")
ROWS = kinds.BUILTIN_RESOURCES


def row(group: str, version: str, plural: str) -> ResourceDescriptor[Any, Any]:
    return kinds.BY_GROUP_VERSION_PLURAL[(group, version, plural)]


# --------------------------------------------------------------------------------------------
# the generator


def test_committed_catalogue_is_current() -> None:
    assert gen_catalogue.main(["--check"]) == 0


def test_generation_is_deterministic_and_check_sees_stale_output(tmp_path: Path) -> None:
    out = tmp_path / "_catalogue.py"
    assert gen_catalogue.main(["--out", str(out), "--check"]) == 1  # missing
    assert gen_catalogue.main(["--out", str(out)]) == 0
    assert out.read_bytes() == gen_catalogue.OUT.read_bytes()
    assert gen_catalogue.generate() == gen_catalogue.generate()
    assert gen_catalogue.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace('plural="pods"', 'plural="podz"', 1))
    assert gen_catalogue.main(["--out", str(out), "--check"]) == 1


def test_version_priority() -> None:
    versions = ["v1beta1", "v1", "v2", "v1alpha1", "v2beta2", "v1beta2", "v11alpha2", "v3"]
    assert sorted(versions, key=gen_catalogue.version_priority) == [
        "v3", "v2", "v1", "v2beta2", "v1beta2", "v1beta1", "v11alpha2", "v1alpha1",
    ]
    assert gen_catalogue.is_included("v1beta3") and not gen_catalogue.is_included("v1alpha3")
    with pytest.raises(gen_catalogue.CatalogueError, match="not a Kubernetes API version"):
        gen_catalogue.version_priority("latest")


@pytest.mark.parametrize(
    ("kind", "plural", "attribute"),
    [
        ("Deployment", "deployments", "deployments"),
        ("StatefulSet", "statefulsets", "stateful_sets"),
        ("ConfigMap", "configmaps", "config_maps"),
        ("PersistentVolumeClaim", "persistentvolumeclaims", "persistent_volume_claims"),
        ("NetworkPolicy", "networkpolicies", "network_policies"),
        ("HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontal_pod_autoscalers"),
        ("Endpoints", "endpoints", "endpoints"),
        ("ComponentStatus", "componentstatuses", "component_statuses"),
        ("IPAddress", "ipaddresses", "ip_addresses"),
        ("APIService", "apiservices", "api_services"),
        ("CSIStorageCapacity", "csistoragecapacities", "csi_storage_capacities"),
        ("ServiceCIDR", "servicecidrs", "service_cidrs"),
        ("Ingress", "ingresses", "ingresses"),
    ],
)
def test_attribute_name(kind: str, plural: str, attribute: str) -> None:
    assert gen_catalogue.attribute_name(kind, plural) == attribute


def test_attribute_name_fails_loudly() -> None:
    with pytest.raises(gen_catalogue.CatalogueError, match="does not start with"):
        gen_catalogue.attribute_name("NetworkPolicy", "netpols")


def _op(method: str, path: str, answer: str = "object", query: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"operation": "x", "method": method, "path": path, "query": list(query),
            "responses": {"200": answer}}


def test_resources_from_paths() -> None:
    found = gen_catalogue.resources_from_operations([
        _op("GET", "/api/v1/namespaces", "V1NamespaceList", ("watch",)),
        _op("GET", "/api/v1/namespaces/{name}", "V1Namespace"),
        _op("PUT", "/api/v1/namespaces/{name}/finalize", "V1Namespace"),
        _op("GET", "/api/v1/pods", "V1PodList", ("watch",)),
        _op("POST", "/api/v1/namespaces/{namespace}/pods", "V1Pod"),
        _op("DELETE", "/api/v1/namespaces/{namespace}/pods", "V1Status"),
        _op("GET", "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}", "str"),
        _op("POST", "/apis/authentication.k8s.io/v1/tokenreviews", "V1TokenReview"),
        _op("GET", "/apis/apps/v1/"),  # discovery documents are not resources
        _op("GET", "/apis/{group}/{version}/{plural}"),  # nor the custom-object paths
        _op("GET", "/version/"),
    ])
    assert set(found) == {("", "v1", "namespaces"), ("", "v1", "pods"),
                          ("authentication.k8s.io", "v1", "tokenreviews")}
    namespaces = found[("", "v1", "namespaces")]
    assert not namespaces.namespaced  # /namespaces/{name} is an object, not a scope
    assert namespaces.verbs == {"list", "watch", "get"} and namespaces.subresources == {"finalize"}
    pods = found[("", "v1", "pods")]
    assert pods.namespaced and pods.verbs == {"list", "watch", "create", "deletecollection"}
    assert pods.subresources == {"proxy"} and pods.create_answers == ["V1Pod"]
    reviews = found[("authentication.k8s.io", "v1", "tokenreviews")]
    assert reviews.verbs == {"create"} and not reviews.namespaced
    with pytest.raises(gen_catalogue.CatalogueError, match="unexpected"):
        gen_catalogue.resources_from_operations([_op("HEAD", "/api/v1/pods")])


def test_kinds_are_read_from_the_answers() -> None:
    kinds_of = {"Event": "d", "EventList": "d", "Deployment": "d"}
    assert gen_catalogue._answer_kind("CoreV1Event", "v1", kinds_of) == "Event"
    assert gen_catalogue._answer_kind("V1Deployment", "v1", kinds_of) == "Deployment"
    assert gen_catalogue._answer_kind("V1beta1Deployment", "v1", kinds_of) is None
    assert gen_catalogue._answer_kind("V1Status", "v1", kinds_of) is None


# --------------------------------------------------------------------------------------------
# what is in the catalogue


def test_every_built_in_group_is_in_it() -> None:
    groups = {d.group for d in ROWS}
    for group in (
        "", "apps", "batch", "networking.k8s.io", "policy", "rbac.authorization.k8s.io",
        "coordination.k8s.io", "events.k8s.io", "autoscaling", "storage.k8s.io",
        "scheduling.k8s.io", "discovery.k8s.io", "node.k8s.io", "certificates.k8s.io",
        "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io", "resource.k8s.io", "authentication.k8s.io",
        "authorization.k8s.io", "storagemigration.k8s.io",
    ):
        assert group in groups, group
    assert set(kinds.PREFERRED_VERSIONS) == groups
    assert len(ROWS) > 80
    # stable and beta versions only
    assert all("alpha" not in d.version for d in ROWS)
    assert any("beta" in d.version for d in ROWS)


def test_rows_have_the_1_37_facts() -> None:
    deployments = row("apps", "v1", "deployments")
    assert deployments is kinds.APPS_V1_DEPLOYMENTS
    assert deployments.kind == "Deployment" and deployments.namespaced
    assert deployments.subresources == {"status", "scale"}
    assert deployments.verbs == ALL_VERBS and deployments.short_names == ("deploy",)
    assert deployments.object_path("web", "ns", "scale") == (
        "/apis/apps/v1/namespaces/ns/deployments/web/scale"
    )
    pods = kinds.CORE_V1_PODS
    assert {"log", "exec", "attach", "portforward", "eviction", "binding", "status",
            "ephemeralcontainers", "resize", "proxy"} == pods.subresources
    nodes = row("", "v1", "nodes")
    assert not nodes.namespaced and nodes.subresources == {"status", "proxy"}
    assert nodes.collection_path(None) == "/api/v1/nodes" and nodes.short_names == ("no",)
    assert row("", "v1", "serviceaccounts").subresources == {"token"}
    assert row("certificates.k8s.io", "v1", "certificatesigningrequests").subresources == {
        "status", "approval",
    }
    assert kinds.CORE_V1_NAMESPACES.subresources == {"status", "finalize"}
    assert "deletecollection" not in kinds.CORE_V1_NAMESPACES.verbs
    assert "deletecollection" in kinds.CORE_V1_SERVICES.verbs  # from 1.23 on
    assert row("", "v1", "replicationcontrollers").subresources == {"status", "scale"}
    assert row("apps", "v1", "statefulsets").subresources == {"status", "scale"}
    # (ResourceDescriptor keeps short names through a frozenset: their order is not kept)
    crds = row("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert set(crds.short_names) == {"crd", "crds"}
    # create-only resources
    reviews = row("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
    assert reviews.verbs == {"create"} and not reviews.namespaced
    assert row("authorization.k8s.io", "v1", "localsubjectaccessreviews").namespaced
    assert reviews.list_model is dict
    assert kinds.CORE_V1_BINDINGS.verbs == {"create"}
    # cluster-scoped kinds of several groups
    for group, version, plural in [
        ("rbac.authorization.k8s.io", "v1", "clusterroles"),
        ("storage.k8s.io", "v1", "storageclasses"),
        ("scheduling.k8s.io", "v1", "priorityclasses"),
        ("", "v1", "persistentvolumes"),
        ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"),
    ]:
        assert not row(group, version, plural).namespaced, plural
    assert row("coordination.k8s.io", "v1", "leases").namespaced


def test_every_rows_models_resolve() -> None:
    for d in ROWS:
        model = d.model
        assert isinstance(model, type) and issubclass(model, KubeModel), d
        assert model.__name__ == d.kind, d
        assert model.__module__.startswith("kubeasync.models."), d
        fields = {f.name: f for f in msgspec.structs.fields(model)}
        assert fields["metadata"].default_factory is ObjectMeta, d
        decoded = msgspec.json.decode(
            json.dumps({"apiVersion": d.api_version, "kind": d.kind,
                        "metadata": {"name": "x"}}).encode(),
            type=model,
        )
        assert decoded.metadata.name == "x" and decoded.kind == d.kind
        if d.supports("list"):
            listed = d.list_model
            assert listed.__name__ == d.kind + "List", d
            list_fields = {f.name: f for f in msgspec.structs.fields(listed)}
            assert list_fields["items"].default_factory is list, d
            assert list_fields["metadata"].default_factory is ListMeta, d
            items = msgspec.json.decode(b'{"items":[{"metadata":{"name":"y"}}]}', type=listed)
            assert isinstance(items.items[0], model)
        else:
            assert d.list_model is dict, d


def test_lookups() -> None:
    assert kinds.BY_GROUP_VERSION_KIND[("apps", "v1", "Deployment")] is kinds.APPS_V1_DEPLOYMENTS
    assert kinds.BY_GROUP_VERSION_KIND[("", "v1", "Pod")] is kinds.CORE_V1_PODS
    assert kinds.BY_GROUP_VERSION_PLURAL[("batch", "v1", "cronjobs")].kind == "CronJob"
    assert len(kinds.BY_GROUP_VERSION_KIND) == len(ROWS) == len(kinds.BY_GROUP_VERSION_PLURAL)
    assert kinds.PREFERRED_VERSIONS[""] == "v1"
    assert kinds.PREFERRED_VERSIONS["autoscaling"] == "v2"
    assert kinds.PREFERRED_VERSIONS["resource.k8s.io"] == "v1"
    assert kinds.BY_ATTRIBUTE["deployments"] is kinds.APPS_V1_DEPLOYMENTS
    assert kinds.BY_ATTRIBUTE["horizontal_pod_autoscalers"].version == "v2"
    # a kind that only a beta version has is still the preferred row of its resource
    assert kinds.BY_ATTRIBUTE["pod_groups"].version == "v1beta1"
    assert kinds.BY_ATTRIBUTE["events"] is kinds.CORE_V1_EVENTS
    assert kinds.BY_ATTRIBUTE["events_events"] is kinds.EVENTS_V1_EVENTS
    assert kinds.EVENTS_V1_EVENTS.group == "events.k8s.io"


def test_attributes() -> None:
    attributes = {d.attribute for d in ROWS if d.attribute}
    for name in (
        "deployments", "stateful_sets", "config_maps", "persistent_volume_claims",
        "network_policies", "horizontal_pod_autoscalers", "secrets", "nodes", "events",
        "leases", "pods", "jobs", "services", "namespaces", "daemon_sets", "replica_sets",
        "cron_jobs", "ingresses", "service_accounts", "roles", "cluster_roles",
        "custom_resource_definitions", "endpoint_slices", "storage_classes",
        "pod_disruption_budgets", "priority_classes", "runtime_classes",
    ):
        assert name in attributes, name
    # one attribute per resource, on its preferred version's row
    by_resource: dict[tuple[str, str], list[ResourceDescriptor[Any, Any]]] = {}
    for d in ROWS:
        by_resource.setdefault((d.group, d.plural), []).append(d)
    for (group, plural), rows in by_resource.items():
        named = [d for d in rows if d.attribute]
        assert len(named) == 1, (group, plural)
        best = min(rows, key=lambda d: gen_catalogue.version_priority(d.version))
        assert named[0] is best, (group, plural)
    assert len(attributes) == len(by_resource)
    assert all(a.isidentifier() and a == a.lower() for a in attributes)
    assert not attributes & gen_catalogue.CLIENT_NAMES


def test_constants_are_named_by_module_and_resource() -> None:
    for d in ROWS:
        module = d.model.__module__.removeprefix("kubeasync.models.")
        name = f"{module}_{gen_catalogue.attribute_name(d.kind, d.plural)}".upper()
        assert getattr(kinds, name) is d
        assert name in kinds.__all__


# --------------------------------------------------------------------------------------------
# the seed the embedded server serves


# The six rows of 0.1's hand-kept table, as the embedded server and the Client use them.
SEED_0_1 = {
    "pods": ("", "Pod", True, ALL_VERBS,
             {"status", "log", "eviction", "exec", "attach", "portforward"}, ("po",)),
    "jobs": ("batch", "Job", True, ALL_VERBS, {"status"}, ()),
    "services": ("", "Service", True, ALL_VERBS - {"deletecollection"}, {"status"}, ("svc",)),
    "persistent_volume_claims": (
        "", "PersistentVolumeClaim", True, ALL_VERBS, {"status"}, ("pvc",),
    ),
    "namespaces": (
        "", "Namespace", False, ALL_VERBS - {"deletecollection"}, {"status", "finalize"}, ("ns",),
    ),
    "config_maps": ("", "ConfigMap", True, ALL_VERBS, set(), ("cm",)),
}


def test_seed_rows_are_the_rows_of_0_1() -> None:
    """SEED_RESOURCES is the embedded server's table: 0.1's six rows, narrowed to what it
    serves. The Client uses the catalogue rows, and 0.1's names are those rows."""
    assert [d.attribute for d in kinds.SEED_RESOURCES] == list(SEED_0_1)
    for d in kinds.SEED_RESOURCES:
        group, kind, namespaced, verbs, subresources, short_names = SEED_0_1[d.attribute]
        assert (d.group, d.version, d.kind, d.namespaced) == (group, "v1", kind, namespaced)
        assert d.verbs == verbs and d.subresources == subresources, d
        assert d.short_names == short_names
        assert d.model is getattr(kubeasync.models, kind)
        assert d.list_model is getattr(kubeasync.models, kind + "List")
        # each is its catalogue row, narrowed
        full = kinds.BY_ATTRIBUTE[d.attribute]
        assert (full.group, full.version, full.plural) == (d.group, d.version, d.plural)
        assert d.verbs <= full.verbs and d.subresources <= full.subresources
        assert all(d is not r for r in ROWS)
        # 0.1's name is the catalogue row itself
        assert getattr(kinds, d.attribute.upper()) is full
    assert kinds.JOBS is kinds.BATCH_V1_JOBS and kinds.CONFIG_MAPS is kinds.CORE_V1_CONFIG_MAPS
    assert kinds.SERVICES is kinds.CORE_V1_SERVICES and kinds.PODS is kinds.CORE_V1_PODS
    assert kinds.SERVICES.supports("deletecollection")  # 1.23+; 1.20's 405 is handled
    assert kubeasync.PODS is kinds.PODS and kubeasync.BUILTIN_RESOURCES is ROWS


async def test_the_client_uses_the_catalogue_and_the_embedded_server_all_of_it() -> None:
    from kubeasync.testing import SERVED_RESOURCES, FakeApiServer

    async with FakeApiServer() as server, kubeasync.Client(server.config()) as kube:
        assert kube.pods.descriptor is kinds.CORE_V1_PODS
        assert kube.services.descriptor is kinds.CORE_V1_SERVICES
        # the seed rows (narrowed for fidelity with 1.20), then every other catalogue row
        assert server.registry.resources == SERVED_RESOURCES
        assert SERVED_RESOURCES[:len(kinds.SEED_RESOURCES)] == kinds.SEED_RESOURCES
        served = {(d.group, d.version, d.plural) for d in server.registry.resources}
        assert served == {(d.group, d.version, d.plural) for d in ROWS}
        assert len(server.registry.resources) == len(ROWS)
        groups = await kube.session.request(
            kubeasync.Request("GET", "/apis"), msgspec.json.Decoder(dict[str, Any])
        )
        assert {g["name"] for g in groups["groups"]} == {d.group for d in ROWS if d.group}


# --------------------------------------------------------------------------------------------
# the two inputs agree


DISCOVERY = json.loads((REPO / "tools" / "catalogue" / "discovery-v1.20.2.json").read_text())

# What changed between 1.20 and 1.37 for the resources both serve (each checked against the
# Kubernetes changelogs): services gained a collection delete (1.23), pods the
# ephemeralcontainers (GA in 1.25) and resize (1.33) subresources, CSINodes a status
# subresource. ComponentStatus's 1.37 list takes the generic watch parameter although the
# resource was never watchable: the paths overstate it, discovery does not.
KNOWN_CHANGES = {
    ("", "v1", "services"): ({"deletecollection"}, set()),
    ("", "v1", "pods"): (set(), {"ephemeralcontainers", "resize"}),
    ("storage.k8s.io", "v1", "csinodes"): (set(), {"status"}),
    ("", "v1", "componentstatuses"): ({"watch"}, set()),
}


def test_the_paths_agree_with_a_real_servers_discovery() -> None:
    compared = 0
    for document in DISCOVERY.values():
        if "resources" not in document:
            continue
        group, _, version = document["groupVersion"].rpartition("/")
        entries = document["resources"]
        for entry in entries:
            if "/" in entry["name"] or (group, version, entry["name"]) not in (
                kinds.BY_GROUP_VERSION_PLURAL
            ):
                continue
            d = kinds.BY_GROUP_VERSION_PLURAL[(group, version, entry["name"])]
            subresources = {
                e["name"].split("/", 1)[1] for e in entries
                if e["name"].startswith(entry["name"] + "/")
            }
            new_verbs, new_subresources = KNOWN_CHANGES.get(d_key := (group, version, d.plural),
                                                            (set(), set()))
            assert d.kind == entry["kind"], d_key
            assert d.namespaced == entry["namespaced"], d_key
            assert set(d.verbs) == set(entry["verbs"]) | new_verbs, d_key
            assert set(d.subresources) == subresources | new_subresources, d_key
            compared += 1
    assert compared > 45
