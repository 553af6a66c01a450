"""Discovery and the RESTMapper: what the server serves, kubectl's name matching, and
``kube.resource_for`` / ``kube.register`` over real HTTP against the embedded server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

import kubeasync
import kubeasync.kinds as kinds
from kubeasync import AmbiguousResourceError, NoMatchError, RetryPolicy
from kubeasync.api.discovery import (
    AGGREGATED_ACCEPT,
    Discovery,
    ServedResource,
    ServerResources,
    _decode_root,
    _legacy_groups,
    descriptor_for,
    parse_aggregated,
    parse_legacy,
)
from kubeasync.core.request import Request
from kubeasync.kinds import SEED_RESOURCES
from kubeasync.models import KubeModel, ListMeta, ObjectMeta
from kubeasync.testing import FakeApiServer
from kubeasync.transport.base import ByteStream, Credentials, HttpResponse, Transport, WebSocket
from kubeasync.transport.policy import Session

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "discovery"
BUILTIN = {(d.group, d.version) for d in kinds.BUILTIN_RESOURCES}

WIDGETS = kubeasync.custom_resource(group="example.com", version="v1", kind="Widget",
                                    plural="widgets", short_names=("wd",))
SERVED = (*SEED_RESOURCES, kinds.APPS_V1_DEPLOYMENTS, kinds.COORDINATION_V1_LEASES, WIDGETS)


def real_1_20() -> ServerResources:
    """The snapshot of a real kube-apiserver 1.20's discovery (recorded, committed)."""
    recorded = json.loads((REPO / "tools/catalogue/discovery-v1.20.2.json").read_text())
    groups = _legacy_groups(_decode_root(json.dumps(recorded["/api"]).encode()),
                            _decode_root(json.dumps(recorded["/apis"]).encode()))
    lists = [json.dumps(doc).encode() for path, doc in recorded.items()
             if path not in ("/api", "/apis")]
    return parse_legacy(groups, lists)


def served(group: str, version: str, kind: str, plural: str, *, short: tuple[str, ...] = (),
           singular: str = "") -> ServedResource:
    return ServedResource(group, version, kind, plural, singular or kind.lower(), True,
                          frozenset({"get", "list"}), frozenset(), short)


# --------------------------------------------------------------------------------------------
# sans-IO: legacy and aggregated documents


def test_a_legacy_snapshot_of_1_20() -> None:
    snapshot = real_1_20()
    assert not snapshot.aggregated
    assert snapshot.groups[0] == ("", ("v1",))
    assert snapshot.versions("autoscaling") == ("v1", "v2beta1", "v2beta2")
    assert snapshot.versions("batch") == ("v1", "v1beta1")
    assert snapshot.versions("nope") == ()
    deployments = snapshot.for_kind("apps", "v1", "Deployment")
    assert deployments is not None
    assert deployments.plural == "deployments" and deployments.singular == "deployment"
    assert deployments.subresources == {"scale", "status"}
    assert deployments.short_names == ("deploy",) and deployments.namespaced
    pods = snapshot.for_kind("", "v1", "Pod")
    assert pods is not None and {"log", "eviction", "exec", "status"} <= pods.subresources
    services = snapshot.for_kind("", "v1", "Service")
    assert services is not None and "deletecollection" not in services.verbs
    assert snapshot.for_kind("apps", "v1", "deployment") is None  # kinds are exact
    # no subresource is a resource of its own
    assert all("/" not in r.plural for r in snapshot.resources)
    # the server's order: the core group first, a group's preferred version first
    order = [(r.group, r.version) for r in snapshot.resources]
    assert order.index(("batch", "v1")) < order.index(("batch", "v1beta1"))
    assert order[0] == ("", "v1")


def test_an_aggregated_snapshot() -> None:
    snapshot = parse_aggregated(
        [(DATA / "aggregated-api.json").read_bytes(), (DATA / "aggregated-apis.json").read_bytes()])
    assert snapshot.aggregated
    assert snapshot.groups == (
        ("", ("v1",)), ("apps", ("v1",)), ("events.k8s.io", ("v1",)),
        ("example.com", ("v2", "v1")), ("metrics.k8s.io", ("v1beta1",)),
    )
    pods = snapshot.for_kind("", "v1", "Pod")
    assert pods is not None and pods.subresources == {"status", "log", "eviction"}
    assert pods.short_names == ("po",) and pods.categories == ("all",)
    namespaces = snapshot.for_kind("", "v1", "Namespace")
    assert namespaces is not None and not namespaces.namespaced
    deployments = snapshot.for_kind("apps", "v1", "Deployment")
    assert deployments is not None and deployments.subresources == {"scale", "status"}
    # the preferred version comes first, as the server lists it
    assert str(snapshot.find("wd")) == "widgets.v2.example.com (example.com/v2 Widget)"
    assert snapshot.find("widgets.v1.example.com").version == "v1"
    assert snapshot.find("events").group == ""


def test_the_accept_header_offers_aggregated_discovery_then_plain_json() -> None:
    offered = [part.strip() for part in AGGREGATED_ACCEPT.split(",")]
    assert offered == [
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        "application/json",
    ]


# --------------------------------------------------------------------------------------------
# sans-IO: kubectl's matching


@pytest.mark.parametrize("name,expected", [
    ("deploy", "deployments.v1.apps"),
    ("deployments", "deployments.v1.apps"),
    ("deployment", "deployments.v1.apps"),
    ("Deployment", "deployments.v1.apps"),
    ("DEPLOY", "deployments.v1.apps"),
    ("deployments.apps", "deployments.v1.apps"),
    ("deployments.v1.apps", "deployments.v1.apps"),
    ("deploy.apps", "deployments.v1.apps"),
    ("StatefulSet", "statefulsets.v1.apps"),
    ("sts", "statefulsets.v1.apps"),
    ("po", "pods.v1"),
    ("svc", "services.v1"),
    ("ns", "namespaces.v1"),
    ("cm", "configmaps.v1"),
    ("endpoints", "endpoints.v1"),
    # the core group wins over events.k8s.io, as in kubectl
    ("events", "events.v1"),
    ("ev", "events.v1"),
    ("events.events.k8s.io", "events.v1.events.k8s.io"),
    # a group's preferred version
    ("hpa", "horizontalpodautoscalers.v1.autoscaling"),
    ("horizontalpodautoscalers.v2beta2.autoscaling", "horizontalpodautoscalers.v2beta2.autoscaling"),
    ("cronjobs", "cronjobs.v1beta1.batch"),
    # served by extensions/v1beta1 and networking.k8s.io/v1: the built-in current one
    ("ingress", "ingresses.v1.networking.k8s.io"),
    ("ing", "ingresses.v1.networking.k8s.io"),
    ("ingresses.extensions", "ingresses.v1beta1.extensions"),
    ("crd", "customresourcedefinitions.v1.apiextensions.k8s.io"),
    ("CustomResourceDefinition", "customresourcedefinitions.v1.apiextensions.k8s.io"),
    ("leases", "leases.v1.coordination.k8s.io"),
    ("pdb", "poddisruptionbudgets.v1beta1.policy"),
])
def test_names_resolve_as_kubectl_resolves_them(name: str, expected: str) -> None:
    found = real_1_20().find(name, builtin_groups=BUILTIN)
    assert f"{found.plural}.{found.version}" + (f".{found.group}" if found.group else "") == expected


def test_a_name_that_matches_nothing() -> None:
    with pytest.raises(NoMatchError, match="doesn't have a resource type 'widgets'"):
        real_1_20().find("widgets")
    with pytest.raises(NoMatchError):
        real_1_20().find("deployments.v2.apps")
    with pytest.raises(ValueError, match="resource name"):
        real_1_20().find("  ")


def test_several_custom_groups_are_ambiguous_and_a_group_settles_it() -> None:
    snapshot = ServerResources(
        groups=(("", ("v1",)), ("cert-manager.io", ("v1",)), ("certs.example.com", ("v1",))),
        resources=(
            served("", "v1", "Pod", "pods", short=("po",)),
            served("cert-manager.io", "v1", "Certificate", "certificates", short=("cert",)),
            served("certs.example.com", "v1", "Certificate", "certificates"),
            # a CRD cannot take a built-in name away
            served("certs.example.com", "v1", "Pod", "pods"),
        ),
    )
    with pytest.raises(AmbiguousResourceError) as info:
        snapshot.find("certificates", builtin_groups=BUILTIN)
    assert {c.group for c in info.value.candidates} == {"cert-manager.io", "certs.example.com"}
    assert "certificates.v1.cert-manager.io" in str(info.value)
    assert "certificates.v1.certs.example.com" in str(info.value)
    assert snapshot.find("certificates.certs.example.com").group == "certs.example.com"
    # the short name is only cert-manager's
    assert snapshot.find("cert").group == "cert-manager.io"
    assert snapshot.find("pods", builtin_groups=BUILTIN).group == ""


def test_a_plural_is_matched_before_a_short_name_and_a_short_name_before_a_kind() -> None:
    snapshot = ServerResources(
        groups=(("", ("v1",)), ("example.com", ("v1",))),
        resources=(
            served("", "v1", "Service", "services", short=("svc",)),
            served("example.com", "v1", "Gadget", "svc"),
            served("example.com", "v1", "Thing", "things", short=("gadget",)),
        ),
    )
    assert snapshot.find("svc").kind == "Gadget"  # the plural "svc", not the short name
    assert snapshot.find("services").kind == "Service"
    assert snapshot.find("gadget").kind == "Gadget"  # singular before short name
    assert snapshot.find("thing").kind == "Thing"


def test_descriptors_for_served_resources() -> None:
    snapshot = real_1_20()
    deployments = snapshot.for_kind("apps", "v1", "Deployment")
    assert deployments is not None
    # served as the catalogue says: the row itself
    assert descriptor_for(deployments, kinds.APPS_V1_DEPLOYMENTS) is kinds.APPS_V1_DEPLOYMENTS
    # served otherwise: the row's models with the server's verbs and subresources
    services = snapshot.for_kind("", "v1", "Service")
    assert services is not None
    d = descriptor_for(services, kinds.CORE_V1_SERVICES)
    assert d is not kinds.CORE_V1_SERVICES and not d.supports("deletecollection")
    assert d.model is kinds.CORE_V1_SERVICES.model
    # a kind nothing knows: dicts
    cronjobs = snapshot.for_kind("batch", "v1beta1", "CronJob")
    assert cronjobs is not None
    plain = descriptor_for(cronjobs)
    assert plain.model is dict and plain.plural == "cronjobs" and plain.namespaced


# --------------------------------------------------------------------------------------------
# over HTTP: the embedded server (legacy discovery)


@pytest.mark.fake_apiserver(resources=SERVED)
async def test_resource_for_a_kind_and_a_name(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    deployments = await kube.resource_for("apps/v1", "Deployment")
    assert deployments is kube.deployments
    assert await kube.resource_for("deploy") is kube.deployments
    assert await kube.resource_for("Lease") is kube.leases
    widgets = await kube.resource_for("example.com/v1", "Widget")
    assert widgets.descriptor.model is dict and widgets.descriptor.plural == "widgets"
    assert await kube.resource_for("wd") is widgets
    created = await widgets.create({"metadata": {"name": "w"}, "spec": {"size": 1}})
    assert created["spec"] == {"size": 1}
    # the embedded server serves pods with fewer subresources than 1.37: its own facts
    pods = await kube.resource_for("po")
    assert pods.descriptor.subresources == {"status", "log", "eviction", "exec", "attach",
                                            "portforward", "binding"}
    assert pods.descriptor.model is kinds.CORE_V1_PODS.model
    snapshot = await kube.discovery.resources()
    assert not snapshot.aggregated


@pytest.mark.fake_apiserver(resources=SERVED)
async def test_discovery_is_cached_and_a_miss_refreshes_it_once(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.resource_for("deploy")
    first = len(fake_apiserver.requests)
    assert set(fake_apiserver.requests[:2]) == {("GET", "/api"), ("GET", "/apis")}
    assert first == 2 + 5  # /api/v1, /apis/batch/v1, /apis/apps/v1, coordination, example.com
    await kube.resource_for("example.com/v1", "Widget")
    await kube.resource_for("svc")
    assert len(fake_apiserver.requests) == first  # answered from the cache
    with pytest.raises(NoMatchError, match=r'no matches for kind "Gadget" in version "example\.com/v1"'):
        await kube.resource_for("example.com/v1", "Gadget")
    assert len(fake_apiserver.requests) == 2 * first  # one refresh, then the error
    with pytest.raises(NoMatchError, match="doesn't have a resource type 'gadgets'"):
        await kube.resource_for("gadgets")
    assert len(fake_apiserver.requests) == 3 * first
    # eviction's question is answered from the snapshot too
    assert await kube.discovery.versions("batch") == ("v1",)
    assert await kube.discovery.preferred("apps", ["v2", "v1"]) == "v1"
    assert len(fake_apiserver.requests) == 3 * first


@pytest.mark.fake_apiserver(resources=SERVED)
async def test_concurrent_lookups_share_one_fetch(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    apis = await asyncio.gather(*(kube.resource_for(n) for n in ("deploy", "po", "svc", "wd")))
    assert apis[0] is kube.deployments
    assert [r for r in fake_apiserver.requests if r == ("GET", "/api")] == [("GET", "/api")]


@pytest.mark.fake_apiserver(resources=SERVED)
async def test_the_snapshot_expires_after_its_ttl(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    kube.discovery = Discovery(kube.session, ttl=0.0)
    await kube.resource_for("deploy")
    await kube.resource_for("deploy")
    assert fake_apiserver.requests.count(("GET", "/apis")) == 2
    kube.discovery = Discovery(kube.session)
    await kube.discovery.resources()
    await kube.discovery.resources(refresh=True)
    assert fake_apiserver.requests.count(("GET", "/apis")) == 4
    kube.discovery.forget()
    await kube.discovery.resources()
    assert fake_apiserver.requests.count(("GET", "/apis")) == 5


@pytest.mark.fake_apiserver(resources=SERVED)
async def test_a_group_version_that_is_down_is_left_out(fake_apiserver: FakeApiServer) -> None:
    # An aggregated API server that is down answers 503 for its group-version: kubectl
    # warns and goes on; so does the client.
    fake_apiserver.faults.fail_next(1, status=503, method="GET", path="/apis/apps/v1")
    async with kubeasync.Client(fake_apiserver.config(),
                                retry=RetryPolicy(max_retries=0)) as kube:
        snapshot = await kube.discovery.resources()
        assert snapshot.for_kind("apps", "v1", "Deployment") is None
        assert snapshot.for_kind("", "v1", "Pod") is not None
        # the miss refreshes, and the group is back
        assert await kube.resource_for("deploy") is kube.deployments


class Widget(KubeModel, kw_only=True):
    api_version: str | None = msgspec.field(default=None, name="apiVersion")
    kind: str | None = None
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: WidgetSpec | None = None


class WidgetSpec(KubeModel, kw_only=True):
    size: int | None = None


class WidgetList(KubeModel, kw_only=True):
    items: list[Widget] = msgspec.field(default_factory=list)
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)


TYPED_WIDGETS: kubeasync.ResourceDescriptor[Widget, WidgetList] = kubeasync.ResourceDescriptor(
    group="example.com", version="v1", kind="Widget", plural="widgets",
    short_names=("wd",), subresources=("status",), model=Widget, list_model=WidgetList)


@pytest.mark.fake_apiserver(resources=SERVED)
async def test_a_registered_model_is_used_for_its_kind(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    with pytest.raises(ValueError, match="register"):
        kube.resource(Widget)
    api = kube.register(TYPED_WIDGETS)
    assert kube.resource(Widget) is api is kube.resource(TYPED_WIDGETS)
    created = await api.create(Widget(metadata=ObjectMeta(name="w"), spec=WidgetSpec(size=2)))
    assert isinstance(created, Widget) and created.spec is not None and created.spec.size == 2
    found = await kube.resource_for("example.com/v1", "Widget")
    assert found is api  # the server serves it as the descriptor says
    listed = await (await kube.resource_for("wd")).list()
    assert isinstance(listed, WidgetList) and [w.metadata.name for w in listed.items] == ["w"]
    # a built-in kind can be given a model of one's own too
    with pytest.raises(ValueError, match="ResourceDescriptor"):
        kube.register(Widget)  # type: ignore[arg-type]


async def test_a_registration_is_per_client(fake_apiserver: FakeApiServer) -> None:
    async with kubeasync.Client(fake_apiserver.config()) as one, \
            kubeasync.Client(fake_apiserver.config()) as other:
        one.register(TYPED_WIDGETS)
        assert one.resource(Widget).descriptor is TYPED_WIDGETS
        with pytest.raises(ValueError):
            other.resource(Widget)


# --------------------------------------------------------------------------------------------
# aggregated discovery through the transport seam (no server at hand speaks it: 1.20 and
# the embedded server answer the legacy documents, tested above)


class NegotiatingTransport(Transport):
    """Answers ``/api`` and ``/apis`` as a 1.30 server does: an APIGroupDiscoveryList when
    the Accept header asks for one, the legacy documents otherwise."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    async def send(self, request: Request, credentials: Credentials, *, timeout: float | None,
                   max_body_bytes: int | None = None) -> HttpResponse:
        self.sent.append(request)
        accept = request.headers.get("Accept", "")
        aggregated = "as=APIGroupDiscoveryList" in accept
        fixture = {"/api": "aggregated-api.json", "/apis": "aggregated-apis.json"}
        if aggregated and request.path in fixture:
            body = (DATA / fixture[request.path]).read_bytes()
            return HttpResponse(200, "OK", {"Content-Type": "application/json;g=apidiscovery.k8s.io;"
                                "v=v2;as=APIGroupDiscoveryList"}, body)
        legacy = {"/api": {"kind": "APIVersions", "versions": ["v1"]},
                  "/apis": {"kind": "APIGroupList", "groups": []},
                  "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                      {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["get"]}]}}
        if request.path in legacy:
            return HttpResponse(200, "OK", {"Content-Type": "application/json"},
                                json.dumps(legacy[request.path]).encode())
        return HttpResponse(404, "Not Found", {"Content-Type": "application/json"},
                            b'{"kind":"Status","code":404,"reason":"NotFound"}')

    async def open_stream(self, request: Request, credentials: Credentials, *,
                          timeout: float | None, read_timeout: float | None) -> ByteStream:
        raise NotImplementedError

    async def connect_websocket(self, request: Request, credentials: Credentials, *,
                                protocols: Sequence[str], timeout: float | None) -> WebSocket:
        raise NotImplementedError

    async def close(self) -> None:
        pass


async def test_aggregated_discovery_is_two_requests() -> None:
    transport = NegotiatingTransport()
    session = Session(kubeasync.ClusterConfig(server="https://10.0.0.1"), transport=transport,
                      retry=RetryPolicy(max_retries=0))
    discovery = Discovery(session)
    snapshot = await discovery.resources()
    assert snapshot.aggregated
    assert sorted(r.path for r in transport.sent) == ["/api", "/apis"]
    assert all(r.headers["Accept"] == AGGREGATED_ACCEPT for r in transport.sent)
    assert (await discovery.find("deploy")).subresources == {"scale", "status"}
    assert (await discovery.find_kind("example.com/v2", "Widget")).short_names == ("wd",)
    assert len(transport.sent) == 2


async def test_a_server_without_aggregated_discovery_wastes_no_request() -> None:
    transport = NegotiatingTransport()

    class Legacy(NegotiatingTransport):
        async def send(self, request: Request, credentials: Credentials, *,
                       timeout: float | None, max_body_bytes: int | None = None) -> HttpResponse:
            plain = Request(request.method, request.path, request.query,
                            {"Accept": "application/json"}, request.body)
            self.sent.append(request)
            return await transport.send(plain, credentials, timeout=timeout)

    legacy = Legacy()
    session = Session(kubeasync.ClusterConfig(server="https://10.0.0.1"), transport=legacy,
                      retry=RetryPolicy(max_retries=0))
    snapshot = await Discovery(session).resources()
    assert not snapshot.aggregated
    assert sorted(r.path for r in legacy.sent) == ["/api", "/api/v1", "/apis"]
    assert snapshot.for_kind("", "v1", "Pod") is not None
