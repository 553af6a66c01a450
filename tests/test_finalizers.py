"""The finalizer helper against the embedded API server."""

from __future__ import annotations

from typing import Any

import pytest

import kubeasync
from kubeasync import Conflict, Finalizer
from kubeasync.core.descriptor import custom_resource
from kubeasync.kinds import SEED_RESOURCES
from kubeasync.testing import FakeApiServer

WIDGETS = custom_resource(group="example.com", version="v1", kind="Widget", plural="widgets")
NAME = "example.com/cleanup"


@pytest.fixture
def fake_apiserver_options() -> dict[str, Any]:
    return {"resources": (*SEED_RESOURCES, WIDGETS)}


def widget(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"size": 1}}


async def test_handle_adds_then_applies_and_on_deletion_cleans_up_then_removes(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    widgets = kube.resource(WIDGETS)
    finalizer = Finalizer(widgets, NAME)
    calls: list[tuple[str, list[str]]] = []

    async def apply(obj: dict[str, Any]) -> str:
        calls.append(("apply", list(obj["metadata"].get("finalizers") or [])))
        return "applied"

    async def cleanup(obj: dict[str, Any]) -> None:
        calls.append(("cleanup", list(obj["metadata"].get("finalizers") or [])))

    created = await widgets.create(widget("w"))
    assert await finalizer.handle(created, apply=apply, cleanup=cleanup) == "applied"
    stored = fake_apiserver.get_object(WIDGETS, "w")
    assert stored is not None and stored["metadata"]["finalizers"] == [NAME]
    assert calls == [("apply", [NAME])]  # applied to the object that has it
    current = await widgets.get("w")
    assert await finalizer.handle(current, apply=apply, cleanup=cleanup) == "applied"

    deleting = await widgets.delete("w")  # held by the finalizer
    assert isinstance(deleting, dict) and deleting["metadata"].get("deletionTimestamp")
    assert fake_apiserver.get_object(WIDGETS, "w") is not None
    assert await finalizer.handle(deleting, apply=apply, cleanup=cleanup) is None
    assert calls[-1] == ("cleanup", [NAME])
    assert fake_apiserver.get_object(WIDGETS, "w") is None  # the last finalizer went: deleted
    # a deleted object without the finalizer: nothing to do
    assert await finalizer.handle(deleting | {"metadata": {**deleting["metadata"],
                                                           "finalizers": []}},
                                  apply=apply, cleanup=cleanup) is None
    assert [c for c, _ in calls].count("cleanup") == 1


async def test_a_stale_object_is_read_again_on_conflict_and_no_finalizer_is_lost(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    widgets = kube.resource(WIDGETS)
    stale = await widgets.create(widget("w"))
    # Another controller adds its own finalizer after we read the object.
    await widgets.patch("w", {"metadata": {"finalizers": ["other.io/keep"]}})
    added = await Finalizer(widgets, NAME).add(stale)
    assert added is not None and added["metadata"]["finalizers"] == ["other.io/keep", NAME]
    # ... and removing ours from a copy made stale by another write keeps theirs.
    await widgets.patch("w", {"metadata": {"labels": {"touched": "yes"}}})
    removed = await Finalizer(widgets, NAME).remove(added)
    assert removed is not None and removed["metadata"]["finalizers"] == ["other.io/keep"]
    assert removed["metadata"]["labels"] == {"touched": "yes"}
    patches = [p for m, p in fake_apiserver.requests if m == "PATCH" and "/widgets/w" in p]
    assert len(patches) == 6  # theirs, ours twice (409, then again), the label, removal twice


async def test_no_finalizer_is_added_to_an_object_being_deleted(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    widgets = kube.resource(WIDGETS)
    await widgets.create({"metadata": {"name": "w", "finalizers": ["other.io/keep"]}})
    deleting = await widgets.delete("w")
    assert await Finalizer(widgets, NAME).add(deleting) == deleting  # type: ignore[arg-type]
    stored = fake_apiserver.get_object(WIDGETS, "w")
    assert stored is not None and stored["metadata"]["finalizers"] == ["other.io/keep"]
    applied: list[object] = []

    async def apply(obj: dict[str, Any]) -> None:
        applied.append(obj)

    async def cleanup(obj: dict[str, Any]) -> None:
        applied.append(obj)

    await Finalizer(widgets, NAME).handle(deleting, apply=apply,  # type: ignore[arg-type]
                                          cleanup=cleanup)
    assert applied == []  # not ours to clean up


async def test_removing_from_a_gone_object_and_giving_up_after_conflicts(
    fake_apiserver: FakeApiServer, kube: kubeasync.Client
) -> None:
    widgets = kube.resource(WIDGETS)
    obj = await widgets.create({"metadata": {"name": "w", "finalizers": [NAME]}})
    await widgets.patch("w", {"metadata": {"finalizers": []}})  # someone else cleared it
    await widgets.delete("w")  # and it is gone
    assert await Finalizer(widgets, NAME).remove(obj) is None
    obj = await widgets.create(widget("v"))
    fake_apiserver.faults.fail_next(100, status=409, method="PATCH", path=r"/widgets/v$")
    with pytest.raises(Conflict, match="kept changing: 3 writes met a 409"):
        await Finalizer(widgets, NAME, attempts=3).add(obj)


def test_names_are_checked() -> None:
    api: Any = object()
    for bad in ("", "has space", "UPPER.example.com/x", "a/b/c", "x" * 400):
        with pytest.raises(ValueError, match="qualified name"):
            Finalizer(api, bad)
    assert Finalizer(api, "example.com/cleanup").name == "example.com/cleanup"
    assert Finalizer(api, "foregroundDeletion").name == "foregroundDeletion"
