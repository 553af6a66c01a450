"""The event recorder against the embedded API server: which API, and aggregation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import kubeasync
from kubeasync import EventRecorder, object_reference
from kubeasync.kinds import CORE_V1_EVENTS, EVENTS_V1_EVENTS, SEED_RESOURCES
from kubeasync.runtime.clock import FakeClock
from kubeasync.testing import FakeApiServer

BOTH = (*SEED_RESOURCES, EVENTS_V1_EVENTS, CORE_V1_EVENTS)
CORE_ONLY = (*SEED_RESOURCES, CORE_V1_EVENTS)


def events(server: FakeApiServer, descriptor: Any) -> list[dict[str, Any]]:
    return server.list_objects(descriptor)


async def a_pod(kube: kubeasync.Client, name: str = "web") -> Any:
    await kube.pods.create({"metadata": {"name": name},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    # what an informer holds: a list item, without kind and apiVersion
    return (await kube.pods.list()).items[0]


@pytest.mark.fake_apiserver(resources=BOTH)
async def test_events_k8s_io_v1_with_a_series_for_repeats(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    pod = await a_pod(kube)
    assert pod.kind is None
    async with EventRecorder(kube, "example.com/websites", instance="i-1") as recorder:
        recorder.normal(pod, "Created", "created the thing", action="Create")
        await recorder.flush()
        assert recorder.api == "events.k8s.io/v1"
        [first] = events(fake_apiserver, EVENTS_V1_EVENTS)
        assert first["regarding"]["kind"] == "Pod" and first["regarding"]["name"] == "web"
        assert first["regarding"]["uid"] == pod.metadata.uid
        assert first["reportingController"] == "example.com/websites"
        assert first["reportingInstance"] == "i-1"
        assert first["type"] == "Normal" and first["action"] == "Create"
        assert first["note"] == "created the thing" and "series" not in first
        assert first["metadata"]["name"].startswith("web.")
        recorder.normal(pod, "Created", "created it again", action="Create")
        await recorder.flush()
        [second] = events(fake_apiserver, EVENTS_V1_EVENTS)
        assert second["series"]["count"] == 2  # the series starts: written at once
        for _ in range(8):
            recorder.normal(pod, "Created", "and again", action="Create")
        written = recorder.written
        await recorder.flush()  # later repeats are counted, written on flush/heartbeat
        assert recorder.written == written + 1
        [third] = events(fake_apiserver, EVENTS_V1_EVENTS)
        assert third["series"]["count"] == 10 and third["note"] == "created the thing"
        recorder.warning(pod, "Failed", "it broke")  # another reason: another Event
    assert sorted(e["reason"] for e in events(fake_apiserver, EVENTS_V1_EVENTS)) == \
        ["Created", "Failed"]  # aclose() wrote what was pending
    assert [e["action"] for e in events(fake_apiserver, EVENTS_V1_EVENTS)
            if e["reason"] == "Failed"] == ["Failed"]  # the reason, when no action is given


@pytest.mark.fake_apiserver(resources=CORE_ONLY)
async def test_core_v1_where_events_k8s_io_is_not_served(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    pod = await a_pod(kube)
    async with EventRecorder(kube, "websites") as recorder:
        for _ in range(3):
            recorder.warning(pod, "BackOff", "restarting")
        await recorder.flush()
        assert recorder.api == "v1"
    [event] = events(fake_apiserver, CORE_V1_EVENTS)
    assert event["involvedObject"]["name"] == "web" and event["involvedObject"]["kind"] == "Pod"
    assert event["count"] == 3 and event["type"] == "Warning"
    assert event["source"]["component"] == "websites" and event["message"] == "restarting"
    assert event["firstTimestamp"] <= event["lastTimestamp"]


@pytest.mark.fake_apiserver(resources=BOTH)
async def test_a_series_ends_after_finish_after_and_a_repeat_starts_a_new_event(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    clock = FakeClock()
    pod = await a_pod(kube)
    recorder = EventRecorder(kube, "c", clock=clock, finish_after=360, heartbeat=60)
    recorder.normal(pod, "Synced")
    recorder.normal(pod, "Synced")
    recorder.normal(pod, "Synced")
    await recorder.flush()
    clock.advance(61)  # the heartbeat writes the count
    await clock.wait_for_sleepers(1)
    [event] = events(fake_apiserver, EVENTS_V1_EVENTS)
    assert event["series"]["count"] == 3
    clock.advance(400)  # the series ends, and is forgotten
    for _ in range(500):
        if not recorder._series:
            break
        await asyncio.sleep(0.01)
    assert not recorder._series
    recorder.normal(pod, "Synced")
    await recorder.flush()
    assert len(events(fake_apiserver, EVENTS_V1_EVENTS)) == 2
    await recorder.aclose()


@pytest.mark.fake_apiserver(resources=BOTH)
async def test_refused_events_are_dropped_and_unreachable_servers_retried(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    pod = await a_pod(kube)
    recorder = EventRecorder(kube, "c")
    recorder._backoff = kubeasync.Backoff(initial=0.01, maximum=0.02)
    await recorder._events_api()
    fake_apiserver.faults.fail_next(1, status=422, method="POST", path="/events$")
    recorder.normal(pod, "Refused")
    await recorder.flush()
    assert recorder.dropped == 1 and events(fake_apiserver, EVENTS_V1_EVENTS) == []
    fake_apiserver.faults.fail_next(3, status=503, method="POST", path="/events$")
    recorder.normal(pod, "Retried")
    await recorder.flush()
    assert [e["reason"] for e in events(fake_apiserver, EVENTS_V1_EVENTS)] == ["Retried"]
    await recorder.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        recorder.normal(pod, "Late")


async def test_bad_arguments_and_references(kube: kubeasync.Client) -> None:
    recorder = EventRecorder(kube, "c")
    pod = {"metadata": {"name": "p", "namespace": "default"}, "kind": "Pod", "apiVersion": "v1"}
    with pytest.raises(ValueError, match="type must be"):
        recorder.event(pod, "Info", "Reason")
    with pytest.raises(ValueError, match="reason"):
        recorder.normal(pod, "")
    with pytest.raises(ValueError, match="kind and apiVersion"):
        recorder.normal({"metadata": {"name": "x"}}, "Reason")
    assert object_reference(pod) == {"kind": "Pod", "apiVersion": "v1", "name": "p",
                                     "namespace": "default"}
    assert object_reference({"metadata": {"name": "w"}}, kind="Widget",
                            api_version="example.com/v1")["kind"] == "Widget"
    with pytest.raises(ValueError, match="controller"):
        EventRecorder(kube, "")
