"""The informer's lean store: objects kept encoded, decoded on access.

The store is a plain data structure (no I/O): these tests feed it watch events directly and
check what users of an informer rely on: updates, deletes, tombstones, selectors,
namespaces, indexes, the replay, and equality/identity of what reads return. The informer
over real HTTP is tested in ``test_informer.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from kubeasync.core.objects import DICTS, STRUCTS
from kubeasync.core.selectors import parse_label_selector
from kubeasync.models import Container, ManagedFieldsEntry, ObjectMeta, Pod, PodSpec
from kubeasync.runtime.store import Store
from kubeasync.streams.events import AddedEvent, DeletedEvent, ModifiedEvent


def make(name: str, namespace: str = "ns", rv: str = "1", **labels: str) -> Pod:
    return Pod(
        metadata=ObjectMeta(
            name=name, namespace=namespace, resource_version=rv, uid=f"uid-{name}",
            labels=dict(labels) or None,
            managed_fields=[ManagedFieldsEntry(
                manager="kubelet", operation="Update",
                fields_v1=msgspec.Raw(b'{"f:status":{"f:phase":{}}}'))],
        ),
        spec=PodSpec(containers=[Container(name="app", image=f"img:{rv}")]),
    )



def store(cache_size: int = 1024) -> Store[Pod]:
    return Store(STRUCTS, Pod, cache_size=cache_size)


@pytest.mark.parametrize("cache_size", [0, 2, 1024])
def test_reads_return_what_was_stored(cache_size: int) -> None:
    s = store(cache_size)
    pods = [make(f"p{i}", rv=str(i), app="web", n=str(i % 3)) for i in range(10)]
    changes = s.apply([AddedEvent(p) for p in pods])
    assert [c.type for c in changes] == ["added"] * 10
    assert len(s) == 10
    for pod in pods:
        got = s.get(("ns", pod.metadata.name or ""))
        assert got == pod  # equal, managedFields (a msgspec.Raw) included
        assert got is not None and got.metadata.managed_fields == pod.metadata.managed_fields
    assert s.get(("ns", "missing")) is None
    assert sorted(p.metadata.name or "" for p in s.objects()) == sorted(
        p.metadata.name or "" for p in pods)


def test_the_cache_keeps_identity_of_recent_objects_and_copies_are_independent() -> None:
    s = store(cache_size=2)
    a, b, c = make("a"), make("b"), make("c")
    s.apply([AddedEvent(a), AddedEvent(b)])
    assert s.get(("ns", "a")) is a  # what the change carried is what get() returns
    s.apply([AddedEvent(c)])  # pushes out the least recently used (b)
    again = s.get(("ns", "b"))
    assert again == b and again is not b
    # Mutating a returned object does not change the store.
    assert again is not None and again.metadata.labels is None
    again.metadata.labels = {"mutated": "yes"}
    s._cache.clear()
    fresh = s.get(("ns", "b"))
    assert fresh is not None and fresh.metadata.labels is None


def test_updates_give_the_old_state_and_deletes_the_last() -> None:
    s = store(cache_size=0)  # every read decodes: the encoded state is what is checked
    s.apply([AddedEvent(make("a", rv="1", app="web"))])
    new = make("a", rv="2", app="db")
    (change,) = s.apply([ModifiedEvent(new)])
    assert change.type == "updated" and change.object is new
    assert change.old == make("a", rv="1", app="web")
    assert s.get(("ns", "a")) == new
    assert s.select(parse_label_selector("app=web")) == []
    assert s.select(parse_label_selector("app=db")) == [("ns", "a")]
    (gone,) = s.apply([DeletedEvent(make("a", rv="3"))])
    assert gone.type == "deleted" and gone.object.metadata.resource_version == "3"
    assert len(s) == 0 and s.get(("ns", "a")) is None
    assert s.apply([DeletedEvent(make("a"))]) == []  # unknown: nothing changes
    assert s._groups == {} and s._label_sets == {}  # nothing left behind


def test_a_tombstone_deletion_gives_the_last_stored_state() -> None:
    s = store(cache_size=0)
    s.apply([AddedEvent(make("a", rv="7", app="web"))])
    tombstone = Pod(metadata=ObjectMeta(name="a", namespace="ns", uid="uid-a"))
    (change,) = s.apply([DeletedEvent(tombstone, final_state_unknown=True)])
    assert change.object == make("a", rv="7", app="web")


def test_selectors_and_namespaces_match_what_a_full_scan_would() -> None:
    s = store()
    pods = [make(f"p{i}", namespace=f"ns{i % 2}", app="web" if i % 3 else "db",
                 tier=str(i % 4)) for i in range(40)]
    s.apply([AddedEvent(p) for p in pods])
    for text in ["app=web", "app!=web", "tier in (1,2)", "!tier", "tier", "app=web,tier=3",
                 "app notin (db)", ""]:
        selector = parse_label_selector(text)
        for namespace in (None, "ns0", "ns1"):
            expected = sorted(
                (p.metadata.namespace or "", p.metadata.name or "") for p in pods
                if selector.matches(p.metadata.labels)
                and namespace in (None, p.metadata.namespace))
            assert sorted(s.select(selector, namespace)) == expected, (text, namespace)
    # In the order the objects were stored, as a scan of the store would give them.
    web = parse_label_selector("app=web")
    assert s.select(web) == [(p.metadata.namespace or "", p.metadata.name or "")
                             for p in pods if web.matches(p.metadata.labels)]
    # Objects that share a label set share one dict.
    first, second = s.labels_of(("ns0", "p2")), s.labels_of(("ns0", "p14"))
    assert first == second == {"app": "web", "tier": "2"} and first is second


def test_indexes_follow_updates_without_the_old_object() -> None:
    s = store(cache_size=0)
    s.apply([AddedEvent(make(f"p{i}", app="web" if i % 2 else "db")) for i in range(6)])

    def by_app(pod: Pod) -> list[str]:
        return [(pod.metadata.labels or {}).get("app", "")]

    assert s.add_index("app", by_app)
    assert sorted(p.metadata.name or "" for p in s.by_index("app", "web")) == ["p1", "p3", "p5"]
    s.apply([ModifiedEvent(make("p1", rv="2", app="db")), DeletedEvent(make("p3"))])
    assert [p.metadata.name for p in s.by_index("app", "web")] == ["p5"]
    assert sorted(p.metadata.name or "" for p in s.by_index("app", "db")) == [
        "p0", "p1", "p2", "p4"]


def test_the_replay_is_the_state_at_subscription() -> None:
    s = store(cache_size=1)
    s.apply([AddedEvent(make(f"p{i}")) for i in range(5)])
    replay = s.snapshot()
    s.apply([ModifiedEvent(make("p0", rv="9")), DeletedEvent(make("p1"))])
    got = {c.name: c.object.metadata.resource_version for c in replay}
    assert got == {f"p{i}": "1" for i in range(5)}
    assert all(c.type == "added" and c.old is None for c in replay)
    assert len(replay) == 5 and replay[-1].name == list(got)[-1]


def test_clear_empties_everything() -> None:
    s = store()
    s.apply([AddedEvent(make("a", app="web"))])
    s.clear()
    assert len(s) == 0 and s.get(("ns", "a")) is None and s.objects() == []
    s.apply([AddedEvent(make("b", app="web"))])
    assert s.get(("ns", "b")) == make("b", app="web")


def test_dict_objects_are_stored_too() -> None:
    s: Store[dict[str, Any]] = Store(DICTS, dict, cache_size=0)
    obj = {"kind": "Widget", "metadata": {"name": "w", "namespace": "ns",
                                          "labels": {"a": "b"}}, "spec": {"size": 3}}
    s.apply([AddedEvent(obj)])
    assert s.get(("ns", "w")) == obj
    assert s.select(parse_label_selector("a=b")) == [("ns", "w")]
