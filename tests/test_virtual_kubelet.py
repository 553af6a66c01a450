"""The virtual kubelet on the embedded API server: its Node and Lease, the pods it runs
(phases, restarts, graceful termination), the scheduler and pods/binding, container logs
through the API server, and its kubelet API over TLS."""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

import kubeasync
from kubeasync.api.capabilities import StatusApi
from kubeasync.testing import FakeApiServer, Timings, VirtualKubelet
from kubeasync.testing.kubelet import LEASES, NODES, self_signed_certificate
from tests.helpers.pods import pod_body, running_pod
from tests.helpers.waiting import eventually

FAST = Timings(schedule=0.01, start=0.01, run=0.05, terminate=0.01, restart=0.05)


def nodes(kube: kubeasync.Client) -> StatusApi[dict[str, Any], dict[str, Any]]:
    api = kube.resource(NODES)
    assert isinstance(api, StatusApi)
    return api


async def pod(kube: kubeasync.Client, name: str) -> dict[str, Any]:
    found = await kube.pods.get(name)
    return kubeasync.models.to_dict(found)


# ------------------------------------------------------------------ the node


async def test_it_registers_a_ready_node_and_keeps_its_lease(kube: kubeasync.Client) -> None:
    async with VirtualKubelet(kube, name="vk-1", timings=FAST, heartbeat_interval=0.05,
                              labels={"pool": "virtual"}) as node:
        registered = await nodes(kube).get("vk-1")
        status = registered["status"]
        assert status["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}]
        assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": node.port}}
        assert node.url == f"https://127.0.0.1:{node.port}"
        assert status["capacity"] == status["allocatable"]
        assert {"cpu", "memory", "pods"} <= set(status["capacity"])
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
        assert registered["metadata"]["labels"]["pool"] == "virtual"
        assert registered["metadata"]["labels"]["kubernetes.io/hostname"] == "vk-1"
        leases = kube.resource(LEASES)
        lease = await leases.get("vk-1", namespace="kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "vk-1"
        assert lease["spec"]["leaseDurationSeconds"] == 40
        assert lease["metadata"]["ownerReferences"][0]["uid"] == registered["metadata"]["uid"]
        first = lease["spec"]["renewTime"]

        async def renewed() -> bool:
            again = await leases.get("vk-1", namespace="kube-node-lease")
            return bool(again["spec"]["renewTime"] != first)

        await eventually(renewed, "the lease renewed", 10)
    # gone with the block (delete_node_on_exit)
    with pytest.raises(kubeasync.NotFound):
        await nodes(kube).get("vk-1")
    with pytest.raises(kubeasync.NotFound):
        await kube.resource(LEASES).get("vk-1", namespace="kube-node-lease")


async def test_bad_arguments(kube: kubeasync.Client) -> None:
    with pytest.raises(ValueError, match=r"kube must be a kubeasync\.Client"):
        VirtualKubelet("http://localhost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        VirtualKubelet(kube, name="Not A Name")
    with pytest.raises(ValueError, match="heartbeat_interval"):
        VirtualKubelet(kube, heartbeat_interval=0)


# ------------------------------------------------------------------ scheduling and pods


async def test_pods_are_scheduled_to_it_and_run(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod_body("early"))
    await asyncio.sleep(0.1)
    assert (await kube.pods.get("early")).spec.node_name is None  # type: ignore[union-attr]
    async with VirtualKubelet(kube, name="vk-1", timings=FAST):
        # pods that waited for a node, and new ones
        await running_pod(kube, "late")
        await eventually(lambda: _running(kube, "early"), "early Running", 10)
        running = await pod(kube, "late")
        assert running["spec"]["nodeName"] == "vk-1"
        status = running["status"]
        assert status["hostIP"] == "127.0.0.1" and status["podIP"].startswith("10.244.")
        assert status["podIPs"] == [{"ip": status["podIP"]}] and status["startTime"]
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions == {"Initialized": "True", "Ready": "True", "ContainersReady": "True",
                              "PodScheduled": "True"}
        container = status["containerStatuses"][0]
        assert container["ready"] and container["started"] and "running" in container["state"]
        assert container["containerID"].startswith("containerd://")


async def _running(kube: kubeasync.Client, name: str) -> bool:
    found = await kube.pods.get(name)
    return found.status is not None and found.status.phase == "Running"


async def test_the_scheduler_honours_selectors_and_spreads(kube: kubeasync.Client) -> None:
    async with VirtualKubelet(kube, name="vk-a", timings=FAST, labels={"zone": "a"}), \
            VirtualKubelet(kube, name="vk-b", timings=FAST, labels={"zone": "b"}):
        await running_pod(kube, "in-b", pod_spec={"nodeSelector": {"zone": "b"}})
        assert (await pod(kube, "in-b"))["spec"]["nodeName"] == "vk-b"
        for index in range(4):
            await running_pod(kube, f"any-{index}")
        placed = [(await pod(kube, f"any-{i}"))["spec"]["nodeName"] for i in range(4)]
        assert sorted(placed).count("vk-a") >= 2  # the least busy node first
        await kube.pods.create(pod_body("nowhere", pod_spec={"nodeSelector": {"zone": "c"}}))
        await asyncio.sleep(0.2)
        assert "nodeName" not in (await pod(kube, "nowhere"))["spec"]


async def test_the_binding_subresource(kube: kubeasync.Client,
                                       fake_apiserver: FakeApiServer) -> None:
    await kube.pods.create(pod_body("manual", pod_spec={"schedulerName": "my-scheduler"}))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "manual"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-x"}}
    async with aiohttp.ClientSession() as http:
        url = f"{fake_apiserver.url}/api/v1/namespaces/default/pods/manual/binding"
        async with http.post(url, json=binding) as answer:
            assert answer.status == 201
            assert (await answer.json())["status"] == "Success"
        bound = await pod(kube, "manual")
        assert bound["spec"]["nodeName"] == "node-x"
        scheduled = next(c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled")
        assert scheduled["status"] == "True"
        assert bound["metadata"]["generation"] == 1  # a binding is not a spec change
        async with http.post(url, json=binding) as again:
            assert again.status == 409
            assert (await again.json())["message"] == (
                'Operation cannot be fulfilled on pods/binding "manual": pod manual is already'
                ' assigned to node "node-x"')


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_restarts_by_restart_policy(kube: kubeasync.Client) -> None:
    failing = {"kubeasync.testing/run-seconds": "0.2", "kubeasync.testing/exit-code": "2"}
    await kube.pods.create(pod_body("always", annotations=failing))
    await kube.pods.create(pod_body("on-failure-ok", restart="OnFailure",
                                    annotations={"kubeasync.testing/run-seconds": "0.1"}))
    await kube.pods.create(pod_body("never-fails", restart="Never", annotations=failing))

    async def restarted_twice() -> dict[str, Any] | None:
        current = await pod(kube, "always")
        statuses = current["status"].get("containerStatuses") or []
        return current if statuses and statuses[0]["restartCount"] >= 2 else None

    again = await eventually(restarted_twice, "two restarts", 20)
    container = again["status"]["containerStatuses"][0]
    assert container["lastState"]["terminated"]["exitCode"] == 2
    assert container["lastState"]["terminated"]["reason"] == "Error"
    assert again["status"]["phase"] == "Running"
    # the log of the instance before the last restart
    previous = await kube.pods.logs("always", previous=True)
    assert previous.splitlines()[-1] == "Container app exited with code 2"

    async def phase_of(name: str) -> str | None:
        return (await pod(kube, name))["status"].get("phase")

    await eventually(lambda: _is(phase_of("on-failure-ok"), "Succeeded"), "Succeeded", 10)
    await eventually(lambda: _is(phase_of("never-fails"), "Failed"), "Failed", 10)
    done = await pod(kube, "never-fails")
    assert done["status"]["containerStatuses"][0]["restartCount"] == 0


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_graceful_deletion(kube: kubeasync.Client) -> None:
    await running_pod(kube, "slow", annotations={
        "kubeasync.testing/termination-seconds": "0.3"})
    stream = kube.pods.watch_stream(namespace="default", field_selector="metadata.name=slow")
    async with stream:
        assert (await anext(stream)).type == "ADDED"
        deleting = await kube.pods.delete("slow", grace_period_seconds=30)
        assert deleting.metadata.deletion_grace_period_seconds == 30  # type: ignore[union-attr]
        modified = await asyncio.wait_for(anext(stream), 10)
        assert modified.type == "MODIFIED"
        assert modified.object.metadata.deletion_timestamp  # type: ignore[union-attr]
        deleted = await asyncio.wait_for(anext(stream), 10)  # after 0.3 s, not 30
        assert deleted.type == "DELETED"


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_the_grace_period_caps_a_slow_stop(kube: kubeasync.Client) -> None:
    await running_pod(kube, "stubborn", annotations={
        "kubeasync.testing/termination-seconds": "3600"})
    await kube.pods.delete("stubborn", grace_period_seconds=1)

    async def gone() -> bool:
        try:
            await kube.pods.get("stubborn")
        except kubeasync.NotFound:
            return True
        return False

    await eventually(gone, "the pod deleted after its grace period", 15)


# ------------------------------------------------------------------ logs through the API server


@pytest.mark.fake_apiserver(simulate=True, timings=Timings(schedule=0.01, start=30))
async def test_logs_of_a_container_still_starting(kube: kubeasync.Client) -> None:
    await kube.pods.create(pod_body("starting"))

    async def creating() -> bool:
        found = await pod(kube, "starting")
        statuses = found["status"].get("containerStatuses") or []
        return bool(statuses) and "waiting" in statuses[0]["state"]

    await eventually(creating, "ContainerCreating", 10)
    with pytest.raises(kubeasync.BadRequest) as error:
        await kube.pods.logs("starting")
    assert error.value.message == ('container "app" in pod "starting" is waiting to start:'
                                   " ContainerCreating")


@pytest.mark.fake_apiserver(simulate=True, timings=FAST)
async def test_followed_logs_end_with_the_container(kube: kubeasync.Client,
                                                    fake_apiserver: FakeApiServer) -> None:
    await running_pod(kube, "job", restart="Never", annotations={
        "kubeasync.testing/run-seconds": "0.5", "kubeasync.testing/log": "working"})
    lines = [line async for line in kube.pods.stream_logs("job", follow=True, timestamps=True)]
    assert [line.split(" ", 1)[1] for line in lines] == [
        "Started container app (image busybox:1.36)", "working",
        "Container app exited with code 0"]
    stamp = lines[0].split(" ", 1)[0]
    assert datetime.fromisoformat(stamp[:26]).replace(tzinfo=timezone.utc) <= datetime.now(
        timezone.utc)
    assert await kube.pods.logs("job", tail_lines=1) == "Container app exited with code 0\n"
    assert await kube.pods.logs("job", limit_bytes=7) == "Started"


# ------------------------------------------------------------------ the kubelet API itself


async def test_the_kubelet_api_over_tls(kube: kubeasync.Client) -> None:
    async with VirtualKubelet(kube, name="vk-1", timings=FAST) as node:
        await running_pod(kube, "web")
        certificate = await asyncio.to_thread(ssl.get_server_certificate,
                                              ("127.0.0.1", node.port))
        parsed = x509.load_pem_x509_certificate(certificate.encode())
        names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            async def get(path: str, **headers: str) -> tuple[int, str]:
                async with http.get(node.url + path, headers=headers) as answer:
                    return answer.status, await answer.text()

            assert await get("/healthz") == (200, "ok")
            status, body = await get("/pods")
            assert status == 200 and '"name":"web"' in body.replace(" ", "")
            assert await get("/containerLogs/default/nope/app") == (
                404, 'pod "nope" does not exist')
            assert await get("/containerLogs/default/web/other") == (
                404, 'container "other" not found in pod "web"')
            upgrade = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
            status, body = await get("/exec/default/web/app?command=true&output=1", **upgrade)
            assert status == 400 and "SPDY is not implemented" in body
            assert await get("/exec/default/web/app?command=true") == (
                400, "you must specify at least 1 of stdin, stdout, stderr")
            assert await get("/portForward/default/web") == (
                400, 'query parameter "port" is required')
            assert await get("/portForward/default/web?port=http") == (
                400, 'unable to parse "http" as a port')
            # a WebSocket offering only protocols this kubelet does not speak: refused
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(node.url + "/exec/default/web/app?command=true&output=1",
                                      protocols=("v9.channel.k8s.io",))
            assert refused.value.status == 403


def test_certificates_are_made_at_run_time() -> None:
    one, two = self_signed_certificate(), self_signed_certificate()
    assert one.private_key_pem != two.private_key_pem  # a fresh key each time
    parsed = x509.load_pem_x509_certificate(one.certificate_pem.encode())
    public = parsed.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    # self-signed: its own key verifies its signature
    assert parsed.signature_hash_algorithm is not None
    public.verify(parsed.signature, parsed.tbs_certificate_bytes,
                  ec.ECDSA(parsed.signature_hash_algorithm))
    assert parsed.not_valid_after_utc > datetime.now(timezone.utc)
    basic = parsed.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
