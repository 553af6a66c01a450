"""Pod logs against a REAL kube-apiserver that has no kubelet (issue 6, item 2).

Pods never run on the test server (no scheduler, no kubelet), so these tests pin down
what the API server itself answers for ``pods/{name}/log`` and how kubeasync surfaces it;
the content of logs is tested against the embedded server (``tests/test_logs.py``).
What kube-apiserver 1.20 answers:

- unscheduled pod (no ``spec.nodeName``): ``204 No Content``, no body;
- pod bound to a Node that has no address: ``500`` Status, no reason, message
  ``no preferred addresses found; known addresses: []``;
- pod bound to a Node with an address where nothing listens: ``500`` Status, no reason,
  message ``Get "https://127.0.0.1:PORT/containerLogs/NS/POD/app?follow=true": dial tcp
  127.0.0.1:PORT: connect: connection refused``;
- a container the pod does not have, or none named on a pod with several: ``400``
  BadRequest, checked before the node is looked at (so also for unscheduled pods).
"""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import custom_resource
from kubeasync.core.request import Request

NODES = custom_resource(group="", version="v1", kind="Node", plural="nodes", namespaced=False)


def pod(name: str, *, node: str | None = None, containers: tuple[str, ...] = ("app",)) -> Any:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node is not None:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest_asyncio.fixture
async def node_factory(real_kube: kubeasync.Client) -> AsyncIterator[Any]:
    """Creates Nodes (cluster-scoped) for one test and deletes them afterwards."""
    nodes = real_kube.resource(NODES)
    created: list[str] = []

    async def make(*, address: str | None = None, kubelet_port: int | None = None) -> str:
        name = f"ka-logs-node-{uuid.uuid4().hex[:8]}"
        body: dict[str, Any] = {"metadata": {"name": name}}
        await nodes.create(body)
        created.append(name)
        if address is not None:
            # Node status is written through /status (create keeps only what the server sets)
            status: dict[str, Any] = {"addresses": [{"type": "InternalIP", "address": address}]}
            if kubelet_port is not None:
                status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": kubelet_port}}
            await nodes.patch_status(name, {"status": status})
        return name

    try:
        yield make
    finally:
        for name in created:
            with contextlib.suppress(kubeasync.NotFound):
                await nodes.delete(name)


def assert_clean(error: BaseException, namespace: str) -> None:
    """A kubeasync error that reads well: no aiohttp chain, the request named once."""
    assert isinstance(error, kubeasync.KubeError)
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    text = str(error)
    assert "Traceback" not in text and "aiohttp" not in text
    assert f"/api/v1/namespaces/{namespace}/pods/" in text


async def bind(kube: kubeasync.Client, namespace: str, pod_name: str, node: str) -> None:
    """POST the pods/binding subresource, as a scheduler does."""
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod_name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }
    await kube.session.send(
        Request(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods/{pod_name}/binding",
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            body=json.dumps(body).encode(),
            idempotent=False,
        )
    )


async def test_an_unscheduled_pod_has_no_log(real_kube: kubeasync.Client, namespace: str) -> None:
    await real_kube.pods.create(pod("waiting"), namespace=namespace)

    # the wire: 204 No Content, nothing in the body
    raw = await real_kube.session.send(
        Request("GET", f"/api/v1/namespaces/{namespace}/pods/waiting/log")
    )
    assert raw.status == 204 and raw.body == b""

    assert await real_kube.pods.logs("waiting", namespace=namespace) == ""
    assert await real_kube.pods.logs("waiting", namespace=namespace, container="app",
                                     tail_lines=10, timestamps=True) == ""
    async with real_kube.pods.stream_logs("waiting", namespace=namespace, follow=True) as stream:
        assert [line async for line in stream] == []
    assert stream.closed


async def test_logs_of_a_missing_pod_or_container(
    real_kube: kubeasync.Client, namespace: str
) -> None:
    with pytest.raises(kubeasync.NotFound) as missing:
        await real_kube.pods.logs("nope", namespace=namespace)
    assert missing.value.code == 404 and 'pods "nope" not found' in missing.value.message
    with pytest.raises(kubeasync.NotFound):
        async for _ in real_kube.pods.stream_logs("nope", namespace=namespace, follow=True):
            pass

    await real_kube.pods.create(pod("two", containers=("a", "b")), namespace=namespace)
    with pytest.raises(kubeasync.BadRequest) as unnamed:
        await real_kube.pods.logs("two", namespace=namespace)
    assert unnamed.value.code == 400
    assert "a container name must be specified for pod two, choose one of: [a b]" in (
        unnamed.value.message
    )
    with pytest.raises(kubeasync.BadRequest) as wrong:
        async for _ in real_kube.pods.stream_logs("two", namespace=namespace, container="c",
                                                  follow=True):
            pass
    assert "container c is not valid for pod two" in wrong.value.message
    assert_clean(wrong.value, namespace)
    # a named container of an unscheduled pod: no log yet
    assert await real_kube.pods.logs("two", namespace=namespace, container="b") == ""


async def test_a_pod_on_a_node_without_addresses(
    real_kube: kubeasync.Client, namespace: str, node_factory: Any
) -> None:
    node = await node_factory()
    await real_kube.pods.create(pod("placed", node=node), namespace=namespace)

    with pytest.raises(kubeasync.ServerError) as info:
        await real_kube.pods.logs("placed", namespace=namespace)
    error = info.value
    assert type(error) is kubeasync.ServerError
    assert error.code == 500 and error.reason == ""
    assert error.message == "no preferred addresses found; known addresses: []"
    assert str(error) == (
        "500: no preferred addresses found; known addresses: [] "
        f"(GET /api/v1/namespaces/{namespace}/pods/placed/log)"
    )
    assert_clean(error, namespace)

    with pytest.raises(kubeasync.ServerError) as streamed:
        async for _ in real_kube.pods.stream_logs("placed", namespace=namespace, follow=True):
            pass
    assert streamed.value.message == error.message
    assert_clean(streamed.value, namespace)


async def test_a_bound_pod_whose_kubelet_refuses_connections(
    real_kube: kubeasync.Client, namespace: str, node_factory: Any
) -> None:
    port = closed_port()
    node = await node_factory(address="127.0.0.1", kubelet_port=port)
    await real_kube.pods.create(pod("bound"), namespace=namespace)
    assert await real_kube.pods.logs("bound", namespace=namespace) == ""  # not bound yet

    await bind(real_kube, namespace, "bound", node)
    assert (await real_kube.pods.get("bound", namespace=namespace)).spec.node_name == node

    with pytest.raises(kubeasync.ServerError) as info:
        await real_kube.pods.logs("bound", namespace=namespace, container="app")
    error = info.value
    assert error.code == 500
    assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in error.message
    assert f"/containerLogs/{namespace}/bound/app" in error.message
    assert_clean(error, namespace)

    stream = real_kube.pods.stream_logs("bound", namespace=namespace, follow=True)
    with pytest.raises(kubeasync.ServerError) as streamed:
        async for _ in stream:
            pass
    assert streamed.value.code == 500
    assert "connection refused" in streamed.value.message
    assert "follow=true" in streamed.value.message  # the server's own request to the kubelet
    assert_clean(streamed.value, namespace)
    assert stream.closed
