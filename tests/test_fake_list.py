"""Lists: label and field selectors, order, pagination with continue tokens, 410s."""

from __future__ import annotations

from typing import Any

import pytest

import kubeasync

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


async def names(api, path: str) -> list[str]:
    status, body = await api("GET", path)
    assert status == 200, body
    return [item["metadata"]["name"] for item in body["items"]]


@pytest.fixture
async def labelled(api):
    for name, labels in [
        ("a", {"app": "web", "tier": "front", "rank": "3"}),
        ("b", {"app": "web", "tier": "back", "rank": "10"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ]:
        status, _ = await api("POST", PODS, pod(name, labels))
        assert status == 201


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c", "d"]),
    ("app in (db, web)", ["a", "b", "c"]),
    ("tier notin (front)", ["b", "c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
    ("app=web,tier=back", ["b"]),
    ("rank>5", ["b"]),
    ("rank<5", ["a"]),
    ("", ["a", "b", "c", "d"]),
])
async def test_label_selectors(api, labelled, selector, expected):
    from urllib.parse import quote

    assert await names(api, f"{PODS}?labelSelector={quote(selector)}") == expected


async def test_bad_label_selector(api):
    status, body = await api("GET", f"{PODS}?labelSelector=a%20in%20b")
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == "unable to parse requirement: found 'b' expected: '('"


async def test_field_selectors(api):
    await api("POST", PODS, pod("on-node", nodeName="n1"))
    await api("POST", PODS, pod("nowhere"))
    _, running = await api("POST", PODS, pod("running"))
    running["status"] = {"phase": "Running"}
    await api("PUT", f"{PODS}/running/status", running)
    assert await names(api, f"{PODS}?fieldSelector=status.phase%3DRunning") == ["running"]
    assert await names(api, f"{PODS}?fieldSelector=status.phase!%3DRunning") == [
        "nowhere", "on-node"]
    assert await names(api, f"{PODS}?fieldSelector=spec.nodeName%3Dn1") == ["on-node"]
    assert await names(api, f"{PODS}?fieldSelector=spec.nodeName%3D") == ["nowhere", "running"]
    assert await names(api, f"{PODS}?fieldSelector=metadata.name%3D%3Drunning") == ["running"]
    assert await names(api, "/api/v1/pods?fieldSelector=metadata.namespace%3Ddefault") == [
        "nowhere", "on-node", "running"]
    assert await names(api, "/api/v1/namespaces?fieldSelector=status.phase%3DActive") == [
        "default", "kube-node-lease", "kube-public", "kube-system"]


@pytest.mark.parametrize(("path", "message"), [
    (f"{PODS}?fieldSelector=spec.foo%3D1", "field label not supported: spec.foo"),
    ("/api/v1/namespaces/default/services?fieldSelector=status.phase%3D1",
     '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("/apis/batch/v1/namespaces/default/jobs?fieldSelector=spec.foo%3D1",
     'field label "spec.foo" not supported for batchv1.Job'),
    (f"{PODS}?fieldSelector=status.phase%20in%20(a)",
     "invalid selector: 'status.phase in (a)'; can't understand 'status.phase in (a)'"),
])
async def test_unsupported_field_selectors(api, path, message):
    status, body = await api("GET", path)
    assert status == 400
    assert body["reason"] == "BadRequest" and body["message"] == message


async def test_order_is_by_namespace_then_name(api):
    await api("POST", "/api/v1/namespaces", {"metadata": {"name": "zeta"}})
    await api("POST", "/api/v1/namespaces", {"metadata": {"name": "alpha"}})
    for ns, name in [("zeta", "a"), ("default", "m"), ("alpha", "z"), ("default", "b")]:
        await api("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": name}})
    status, body = await api("GET", "/api/v1/configmaps")
    assert status == 200
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]]
    assert keys == [("alpha", "z"), ("default", "b"), ("default", "m"), ("zeta", "a")]
    assert all("kind" not in item for item in body["items"])  # as real lists
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"


async def test_pagination(api):
    for i in range(7):
        await api("POST", PODS, pod(f"p{i}"))
    _, first = await api("GET", f"{PODS}?limit=3")
    assert [i["metadata"]["name"] for i in first["items"]] == ["p0", "p1", "p2"]
    assert first["metadata"]["remainingItemCount"] == 4
    token = first["metadata"]["continue"]
    # changes after the first page do not show up in later pages: one consistent snapshot
    await api("DELETE", f"{PODS}/p4")
    await api("POST", PODS, pod("p5a"))
    _, second = await api("GET", f"{PODS}?limit=3&continue={token}")
    assert [i["metadata"]["name"] for i in second["items"]] == ["p3", "p4", "p5"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    _, third = await api("GET", f"{PODS}?limit=3&continue={second['metadata']['continue']}")
    assert [i["metadata"]["name"] for i in third["items"]] == ["p6"]
    assert "continue" not in third["metadata"]
    # with a selector, no remainingItemCount (the real server cannot count cheaply)
    _, selected = await api("GET", f"{PODS}?limit=1&labelSelector=")
    assert "remainingItemCount" in selected["metadata"]
    _, selected = await api("GET", f"{PODS}?limit=1&fieldSelector=metadata.name!%3Dx")
    assert "remainingItemCount" not in selected["metadata"] and selected["metadata"]["continue"]


async def test_expired_and_invalid_continue_tokens(api, fake_apiserver):
    for i in range(3):
        await api("POST", PODS, pod(f"p{i}"))
    _, first = await api("GET", f"{PODS}?limit=1")
    fake_apiserver.compact()
    status, body = await api("GET", f"{PODS}?limit=1&continue={first['metadata']['continue']}")
    assert status == 410
    assert body["reason"] == "Expired" and body["code"] == 410
    assert body["message"].startswith("The provided continue parameter is too old")
    assert body["metadata"]["continue"]  # an inconsistent continuation, as the real server offers
    status, body = await api("GET", f"{PODS}?limit=1&continue=garbage")
    assert status == 400 and body["message"].startswith("invalid continue token")


async def test_history_bound_expires_tokens():
    from kubeasync.testing import FakeApiServer

    async with FakeApiServer(watch_history=5) as server, kubeasync.Client(server.config()) as kube:
        for i in range(3):
            await kube.config_maps.create({"metadata": {"name": f"c{i}"}}, namespace="default")
        page = await kube.config_maps.list(namespace="default", limit=1)
        for i in range(5):  # five changes after the page: all still in the history
            await kube.config_maps.create({"metadata": {"name": f"more{i}"}}, namespace="default")
        await kube.config_maps.list(namespace="default", limit=1,
                                    continue_=page.metadata.continue_)
        await kube.config_maps.create({"metadata": {"name": "sixth"}}, namespace="default")
        with pytest.raises(kubeasync.Gone):
            await kube.config_maps.list(namespace="default", limit=1,
                                        continue_=page.metadata.continue_)


async def test_resource_version_match_exact(api):
    _, a = await api("POST", PODS, pod("a"))
    rv = a["metadata"]["resourceVersion"]
    await api("POST", PODS, pod("b"))
    await api("DELETE", f"{PODS}/a")
    _, then = await api("GET", f"{PODS}?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert [i["metadata"]["name"] for i in then["items"]] == ["a"]
    assert then["metadata"]["resourceVersion"] == rv
    _, now = await api("GET", f"{PODS}?resourceVersion=0")
    assert [i["metadata"]["name"] for i in now["items"]] == ["b"]


async def test_client_list_and_iterate(kube):
    for i in range(5):
        await kube.pods.create(pod(f"w{i}", {"app": "web" if i % 2 else "db"}), namespace="default")
    page = await kube.pods.list(namespace="default", label_selector={"app": "web"})
    assert [p.metadata.name for p in page.items] == ["w1", "w3"]
    assert page.metadata.resource_version
    seen = [p.metadata.name async for p in kube.pods.iterate(namespace="default", page_size=2)]
    assert seen == [f"w{i}" for i in range(5)]
    everywhere = await kube.pods.list(all_namespaces=True, field_selector="metadata.name=w0")
    assert [p.metadata.namespace for p in everywhere.items] == ["default"]
    with pytest.raises(kubeasync.BadRequest):
        await kube.pods.list(namespace="default", field_selector="spec.image=x")
