"""The informer against the embedded API server, over real HTTP.

Most tests end by comparing the informer's store with the server's own objects (key ->
resourceVersion), so "the cache converges" is checked on what the server holds, not on
what the test expects it to hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

import kubeasync
from kubeasync import Backoff, Change, ChangesLagged, Informer
from kubeasync.core.descriptor import custom_resource
from kubeasync.kinds import PODS, SEED_RESOURCES
from kubeasync.selectors import DoesNotExist, Exists, In, NotEqual, NotIn
from kubeasync.testing import FakeApiServer
from kubeasync.transport.policy import NO_RETRY

FAST = Backoff(initial=0.001, maximum=0.004)
POD_PATH = r"/pods$"

Key = tuple[str, str]


@pytest_asyncio.fixture
async def kube(fake_apiserver: FakeApiServer) -> AsyncIterator[kubeasync.Client]:
    """A client without session retries: the watcher's own (fast) backoff is under test."""
    async with kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY) as client:
        yield client


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }


def informer(kube: kubeasync.Client, **options: Any) -> Informer[Any]:
    options.setdefault("backoff", FAST)
    return kube.pods.informer(**options)


def meta_of(obj: Any) -> tuple[str, str, str, str]:
    if isinstance(obj, dict):
        m = obj["metadata"]
        return m.get("namespace") or "", m["name"], m["resourceVersion"], m["uid"]
    m = obj.metadata
    return m.namespace or "", m.name, m.resource_version, m.uid


def server_state(
    server: FakeApiServer, resource: str = "pods", namespace: str | None = "default"
) -> dict[Key, tuple[str, str]]:
    """What the server holds: key -> (resourceVersion, uid)."""
    out = {}
    for obj in server.list_objects(resource, namespace):
        ns, name, rv, uid = meta_of(obj)
        out[(ns, name)] = (rv, uid)
    return out


def store_state(inf: Informer[Any]) -> dict[Key, tuple[str, str]]:
    out = {}
    for obj in inf.list():
        ns, name, rv, uid = meta_of(obj)
        out[(ns, name)] = (rv, uid)
    return out


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait (up to a generous bound, for loaded machines) until ``check()`` holds."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def converged(inf: Informer[Any], server: FakeApiServer, **where: Any) -> None:
    await eventually(lambda: store_state(inf) == server_state(server, **where),
                     "the store equals the server's objects")


class Consumer:
    """Reads an informer's changes in a task, applying them to its own strict view."""

    def __init__(self, inf: Informer[Any], **options: Any) -> None:
        self.changes: list[tuple[str, str]] = []
        self.view: dict[Key, str] = {}
        self.deleted: dict[Key, Any] = {}
        self.error: BaseException | None = None
        self.ended = False
        self._stream = inf.changes(**options)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for change in self._stream:
                self.apply(change)
        except Exception as exc:
            self.error = exc
        self.ended = True

    def apply(self, change: Change[Any]) -> None:
        _, name, rv, _ = meta_of(change.object)
        self.changes.append((change.type, name))
        if change.type == "added":
            assert change.key not in self.view, f"added {change.key} twice"
            assert change.old is None
            self.view[change.key] = rv
        elif change.type == "updated":
            assert change.key in self.view, f"updated unknown {change.key}"
            assert meta_of(change.old)[2] == self.view[change.key], "old is not what we had"
            self.view[change.key] = rv
        else:
            assert change.key in self.view, f"deleted unknown {change.key}"
            del self.view[change.key]
            self.deleted[change.key] = change.object

    async def until(self, count: int) -> list[tuple[str, str]]:
        await eventually(lambda: len(self.changes) >= count or self.ended,
                         f"{count} changes reach the consumer")
        return self.changes

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def watch_requests(server: FakeApiServer, path: str = "/pods?") -> list[str]:
    return [target for method, target in server.requests
            if method == "GET" and path in target and "watch=true" in target]


def list_requests(server: FakeApiServer, path: str = "/pods?") -> list[str]:
    return [target for method, target in server.requests
            if method == "GET" and path in target and "watch=true" not in target]


async def restart_while(server: FakeApiServer,
                        changes: Callable[[kubeasync.Client], Awaitable[None]],
                        *, compact: bool = True) -> None:
    """Restart the server and make ``changes`` while every watcher is kept out (503), then
    (by default) compact the history, so that the watchers come back to a 410."""
    block = server.faults.fail_next(10_000, status=503, method="GET", path=POD_PATH)
    await server.stop()
    await server.start()
    async with kubeasync.Client(server.config(), retry=NO_RETRY) as other:
        await changes(other)
    if compact:
        server.compact()
    server.faults.rules.remove(block)


async def changes_while_away(kube: kubeasync.Client) -> None:
    await kube.pods.patch("web-0", {"metadata": {"labels": {"tier": "changed"}}})
    await kube.pods.delete("web-1", grace_period_seconds=0)
    await kube.pods.delete("web-2", grace_period_seconds=0)
    await kube.pods.create(pod("web-2"))  # same name, new uid
    await kube.pods.create(pod("web-9"))


# ------------------------------------------------------------------ the store


@pytest.mark.parametrize("initial", ["watch-list", "paginated-list"])
async def test_the_store_syncs_then_follows_the_server(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer, initial: str
) -> None:
    for i in range(5):
        await kube.pods.create(pod(f"web-{i}", app="web"))
    options: dict[str, Any] = (
        {"send_initial_events": False, "page_size": 2} if initial == "paginated-list" else {}
    )
    async with informer(kube, **options) as pods:
        assert not pods.synced
        await asyncio.wait_for(pods.wait_synced(), 5)
        assert pods.synced
        assert store_state(pods) == server_state(fake_apiserver)
        assert pods.get("web-3").metadata.name == "web-3"
        assert pods.get("web-3", namespace="default") is pods.get("web-3")
        assert pods.get("nope") is None
        assert len(pods) == 5

        await kube.pods.patch("web-1", {"metadata": {"labels": {"tier": "x"}}})
        await kube.pods.delete("web-2", grace_period_seconds=0)
        await kube.pods.create(pod("web-5"))
        await converged(pods, fake_apiserver)
        assert pods.get("web-1").metadata.labels == {"app": "web", "tier": "x"}
    if initial == "paginated-list":
        assert len(list_requests(fake_apiserver)) == 3
    else:
        assert list_requests(fake_apiserver) == []
        assert "sendInitialEvents=true" in watch_requests(fake_apiserver)[0]


SAMPLES: dict[str, dict[str, Any]] = {
    "pods": pod("sample"),
    "jobs": {"metadata": {"name": "sample"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "app", "image": "busybox"}]}}}},
    "services": {"metadata": {"name": "sample"}, "spec": {"ports": [{"port": 80}]}},
    "persistent_volume_claims": {"metadata": {"name": "sample"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    "namespaces": {"metadata": {"name": "sample"}},
    "config_maps": {"metadata": {"name": "sample"}, "data": {"a": "b"}},
}
WIDGETS = custom_resource(group="example.com", version="v1", kind="Widget", plural="widgets")


@pytest.mark.fake_apiserver(resources=[*SEED_RESOURCES, WIDGETS])
async def test_every_resource_of_the_table_and_custom_resources(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    assert set(SAMPLES) == {d.attribute for d in SEED_RESOURCES}
    widgets = kube.resource(WIDGETS)
    informers = [getattr(kube, attribute).informer(backoff=FAST) for attribute in SAMPLES]
    informers.append(widgets.informer(backoff=FAST))
    async with contextlib.AsyncExitStack() as stack:
        for inf in informers:
            await stack.enter_async_context(inf)
        for inf in informers:
            await asyncio.wait_for(inf.wait_synced(), 5)
        for attribute, body in SAMPLES.items():
            await getattr(kube, attribute).create(body)
        await widgets.create({"apiVersion": "example.com/v1", "kind": "Widget",
                              "metadata": {"name": "sample"}, "size": 3})
        for inf in informers[:-1]:
            namespace = None if inf.descriptor.namespaced is False else "default"
            await eventually(lambda inf=inf, namespace=namespace:  # type: ignore[misc]
                             inf.get("sample", namespace=namespace) is not None,
                             f"{inf.descriptor.plural} sees its object")
        await eventually(lambda: informers[-1].get("sample") is not None, "the widget")
    widget = informers[-1].get("sample")
    assert widget["size"] == 3  # custom resources are plain dicts
    namespaces = informers[list(SAMPLES).index("namespaces")]
    assert namespaces.get("sample") is not None
    with pytest.raises(ValueError, match="namespace"):
        namespaces.get("sample", namespace="default")


async def test_all_namespaces_and_server_side_selectors(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.namespaces.create({"metadata": {"name": "shop"}})
    await kube.pods.create(pod("web-0", app="web"))
    await kube.pods.create(pod("web-0", "shop", app="web"))
    await kube.pods.create(pod("db-0", "shop", app="db"))
    async with informer(kube, all_namespaces=True, label_selector={"app": "web"}) as web:
        await asyncio.wait_for(web.wait_synced(), 5)
        assert sorted(store_state(web)) == [("default", "web-0"), ("shop", "web-0")]
        assert web.get("web-0", namespace="shop") is not None
        assert [p.metadata.namespace for p in web.list(namespace="shop")] == ["shop"]
        with pytest.raises(ValueError, match="namespace is required"):
            web.get("web-0")
        await kube.pods.create(pod("web-1", "shop", app="web"))
        await kube.pods.create(pod("db-1", "shop", app="db"))
        await eventually(lambda: web.get("web-1", namespace="shop") is not None, "web-1")
        assert web.get("db-1", namespace="shop") is None
    async with informer(kube, namespace="shop", field_selector={"metadata.name": "db-0"}) as db:
        await asyncio.wait_for(db.wait_synced(), 5)
        assert sorted(store_state(db)) == [("shop", "db-0")]
    web_query, db_query = watch_requests(fake_apiserver, "/pods?")
    assert web_query.startswith("/api/v1/pods?") and "labelSelector=app%3Dweb" in web_query
    assert "/namespaces/shop/pods?" in db_query
    assert "fieldSelector=metadata.name%3Ddb-0" in db_query


async def test_list_evaluates_label_selectors_locally_as_the_server_does(
    kube: kubeasync.Client,
) -> None:
    labels = [
        {"app": "web", "tier": "front", "n": "3"},
        {"app": "web", "tier": "back", "n": "10"},
        {"app": "db", "n": "x"},
        {"app": "db", "canary": ""},
        {},
    ]
    for i, pod_labels in enumerate(labels):
        await kube.pods.create(pod(f"p{i}", **pod_labels))
    selectors: list[object] = [
        "", "app=web", "app==web", "app!=web", "app in (web, db)", "app notin (web)",
        "tier", "!tier", "app=web,tier!=back", "n>3", "n<4", "canary=", "canary",
        "app in (db),!canary",
        {"app": "web"}, {"app": In("web", "db"), "tier": DoesNotExist()},
        {"tier": NotIn("front")}, {"tier": Exists(), "app": NotEqual("db")},
    ]
    async with informer(kube) as pods:
        await asyncio.wait_for(pods.wait_synced(), 5)
        for selector in selectors:
            local = sorted(p.metadata.name for p in pods.list(label_selector=selector))
            page = await kube.pods.list(label_selector=selector)
            remote = sorted(p.metadata.name for p in page.items)
            assert local == remote, selector
        with pytest.raises(ValueError, match="label_selector"):
            pods.list(label_selector="app in web")
        with pytest.raises(ValueError, match="label_selector"):
            pods.list(label_selector=["app=web"])


# ------------------------------------------------------------------ indexes


def by_node(pod: Any) -> list[str]:
    return [pod.spec.node_name] if pod.spec and pod.spec.node_name else []


def by_team(pod: Any) -> list[str]:
    return [value for key, value in (pod.metadata.labels or {}).items() if key.startswith("team")]


async def test_named_indexes_follow_every_change(kube: kubeasync.Client) -> None:
    def names(objects: list[Any]) -> list[str]:
        return sorted(o.metadata.name for o in objects)

    for i in range(4):
        body = pod(f"p{i}", team=f"t{i % 2}")
        body["spec"]["nodeName"] = f"node-{i % 2}"
        await kube.pods.create(body)
    pods = informer(kube)
    pods.add_index("by_node", by_node)  # before the start: built as objects arrive
    async with pods:
        await asyncio.wait_for(pods.wait_synced(), 5)
        pods.add_index("by_team", by_team)  # after the sync: built at once
        assert names(pods.by_index("by_node", "node-0")) == ["p0", "p2"]
        assert names(pods.by_index("by_team", "t1")) == ["p1", "p3"]
        assert pods.by_index("by_node", "node-9") == []

        await kube.pods.patch("p0", {"metadata": {"labels": {"team": "t1", "team2": "t9"}}})
        await kube.pods.delete("p3", grace_period_seconds=0)
        await eventually(lambda: names(pods.by_index("by_team", "t1")) == ["p0", "p1"],
                         "p0 moved to t1 and p3 left")
        assert names(pods.by_index("by_team", "t9")) == ["p0"]
        assert names(pods.by_index("by_team", "t0")) == ["p2"]
        assert names(pods.by_index("by_node", "node-1")) == ["p1"]

        pods.add_index("by_node", by_node)  # the same function again: nothing happens
        with pytest.raises(ValueError, match="by_node"):
            pods.add_index("by_node", by_team)
        with pytest.raises(ValueError, match="name"):
            pods.by_index("missing", "x")
        # A bad index function is refused at once when there are objects to index.
        with pytest.raises(TypeError, match="list of str"):
            pods.add_index("bad", lambda p: p.metadata.name)
        with pytest.raises(ValueError, match="name"):
            pods.by_index("bad", "p0")


async def test_an_index_function_failing_in_the_background_reaches_the_user(
    kube: kubeasync.Client, caplog: pytest.LogCaptureFixture
) -> None:
    await kube.pods.create(pod("p0"))
    pods = informer(kube)
    pods.add_index("bad", lambda p: p.metadata.name)  # a str, not a list of str
    async with pods:
        with pytest.raises(TypeError, match="'bad' returned the str 'p0'"):
            await asyncio.wait_for(pods.wait_synced(), 5)
        with pytest.raises(TypeError):
            pods.get("p0")
        assert isinstance(pods.error, TypeError)
        assert "failed" in repr(pods)
    assert any("failed" in record.message and record.levelno == logging.ERROR
               for record in caplog.records)


# ------------------------------------------------------------------ transform


async def test_transform_drops_managed_fields_before_storing(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.pods.create(pod("p0"))
    assert fake_apiserver.get_object("pods", "p0")["metadata"]["managedFields"]
    async with informer(kube, transform=kubeasync.drop_managed_fields) as slim, \
            informer(kube) as full:
        assert slim is not full  # another transform: another informer
        await asyncio.wait_for(asyncio.gather(slim.wait_synced(), full.wait_synced()), 5)
        await kube.pods.create(pod("p1"))
        await eventually(lambda: slim.get("p1") is not None, "p1 arrives")
        assert all(p.metadata.managed_fields is None for p in slim.list())
        assert slim.get("p0").metadata.uid == full.get("p0").metadata.uid
        assert full.get("p0").metadata.managed_fields


def test_drop_managed_fields_handles_models_and_dicts() -> None:
    as_dict = {"metadata": {"name": "a", "managedFields": [{"manager": "x"}]}}
    assert kubeasync.drop_managed_fields(as_dict) == {"metadata": {"name": "a"}}
    assert kubeasync.drop_managed_fields({"kind": "X"}) == {"kind": "X"}
    model = kubeasync.models.Pod(metadata=kubeasync.models.ObjectMeta(
        name="a", managed_fields=[kubeasync.models.ManagedFieldsEntry(manager="x")]))
    assert kubeasync.drop_managed_fields(model).metadata.managed_fields is None
    assert kubeasync.drop_managed_fields(kubeasync.models.Pod()) == kubeasync.models.Pod()


async def test_a_failing_transform_reaches_the_user(kube: kubeasync.Client) -> None:
    def explode(pod: Any) -> Any:
        raise KeyError("no such field")

    await kube.pods.create(pod("p0"))
    async with informer(kube, transform=explode) as pods:
        with pytest.raises(KeyError, match="no such field"):
            await asyncio.wait_for(pods.wait_synced(), 5)


# ------------------------------------------------------------------ sharing


async def test_the_same_arguments_share_one_informer_with_one_watch(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.pods.create(pod("web-0", app="web"))
    web = informer(kube, label_selector="app=web")
    assert informer(kube, label_selector={"app": "web"}) is web
    assert kube.resource(PODS).informer(label_selector="app=web", backoff=FAST) is web
    assert informer(kube, label_selector="app=db") is not web
    assert informer(kube, label_selector="app=web", namespace="kube-system") is not web
    async with kubeasync.Client(fake_apiserver.config()) as other:
        assert other.pods.informer(label_selector="app=web", backoff=FAST) is not web

    async with web, informer(kube, label_selector={"app": "web"}) as again:
        assert again is web
        consumers = [Consumer(web) for _ in range(3)]
        await consumers[0].until(1)
        await kube.pods.create(pod("web-1", app="web"))
        await kube.pods.patch("web-0", {"metadata": {"labels": {"tier": "x"}}})
        await kube.pods.delete("web-1", grace_period_seconds=0)
        await kube.pods.create(pod("db-0", app="db"))
        expected = [("added", "web-0"), ("added", "web-1"), ("updated", "web-0"),
                    ("deleted", "web-1")]
        for consumer in consumers:
            assert await consumer.until(4) == expected
        await web.stop()  # one of the two starts: still running
        assert web.running
        await kube.pods.create(pod("web-2", app="web"))
        for consumer in consumers:
            assert (await consumer.until(5))[4:] == [("added", "web-2")]
            assert consumer.view == {k: v[0] for k, v in server_state(
                fake_apiserver).items() if k[1].startswith("web")}
        await web.start()  # for the `async with` that exits last
    # The last stop ends every consumer's iteration, cleanly.
    for consumer in consumers:
        await eventually(lambda c=consumer: c.ended, "the iteration ended")  # type: ignore[misc]
        assert consumer.error is None
    assert not web.running
    assert len(watch_requests(fake_apiserver)) == 1
    assert list_requests(fake_apiserver) == []


async def test_a_late_consumer_first_gets_the_current_state_unless_replay_is_off(
    kube: kubeasync.Client,
) -> None:
    await kube.pods.create(pod("p0"))
    async with informer(kube) as pods:
        early = Consumer(pods)
        await early.until(1)
        await kube.pods.create(pod("p1"))
        await early.until(2)
        late = Consumer(pods)
        only_new = Consumer(pods, replay=False)
        assert sorted(await late.until(2)) == [("added", "p0"), ("added", "p1")]
        await asyncio.sleep(0)  # only_new subscribes
        await kube.pods.patch("p0", {"metadata": {"labels": {"a": "b"}}})
        await late.until(3)
        await only_new.until(1)
        assert early.changes[2:] == late.changes[2:] == [("updated", "p0")]
        assert only_new.changes == [("updated", "p0")]
        assert early.view == late.view


# ------------------------------------------------------------------ relists and faults


@pytest.mark.parametrize("initial", ["watch-list", "paginated-list"])
async def test_the_store_converges_after_a_restart_and_410_with_the_difference_as_changes(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer, initial: str
) -> None:
    for i in range(5):
        await kube.pods.create(pod(f"web-{i}"))
    options: dict[str, Any] = (
        {"send_initial_events": False, "page_size": 2} if initial == "paginated-list" else {}
    )
    async with informer(kube, **options) as pods:
        # A consumer with room for two batches: a relist is one batch, however large.
        consumer = Consumer(pods, max_queue=2)
        await consumer.until(5)
        old_web_1 = pods.get("web-1")
        await restart_while(fake_apiserver, changes_while_away)
        await converged(pods, fake_apiserver)
        changes = await consumer.until(10)
        assert consumer.error is None
        await kube.pods.create(pod("zz-marker"))
        assert (await consumer.until(11))[-1] == ("added", "zz-marker")
        stats = pods.stats
        assert (stats.resyncs, stats.resync_events, stats.inferred_deletions) == (2, 5, 2)
        assert stats.failures["Gone"] >= 1
    assert pods.stats.resyncs == 0  # stopped: nothing running, nothing counted
    assert sorted(changes[5:10]) == [
        ("added", "web-2"), ("added", "web-9"), ("deleted", "web-1"), ("deleted", "web-2"),
        ("updated", "web-0"),
    ]
    assert consumer.view == {k: v[0] for k, v in server_state(fake_apiserver).items()}
    # The relist went through 410: a second initial state was fetched.
    if initial == "paginated-list":
        assert len(list_requests(fake_apiserver)) == 2 * 3
    else:
        assert sum("sendInitialEvents=true" in q for q in watch_requests(fake_apiserver)) == 2
    # web-1 was deleted while away: its final state is unknown, so the change carries the
    # last state the store had (not the watcher's metadata-only tombstone)
    assert old_web_1.metadata.name == "web-1"
    final = consumer.deleted[("default", "web-1")]
    assert final.spec is not None and final.spec.containers
    assert final.metadata.resource_version == old_web_1.metadata.resource_version


async def test_nobody_sees_half_of_a_relist(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    """A paginated relist whose pages come slowly: readers polling the store, and the
    consumers of changes, see the state before it or after it, never a mix."""
    for i in range(6):
        await kube.pods.create(pod(f"p{i}"))
    async with informer(kube, send_initial_events=False, page_size=2) as pods:
        await asyncio.wait_for(pods.wait_synced(), 5)
        before = store_state(pods)
        seen: list[dict[Key, tuple[str, str]]] = [before]
        stores_during_changes: list[dict[Key, tuple[str, str]]] = []
        polling = True

        def record() -> None:
            state = store_state(pods)
            if state != seen[-1]:
                seen.append(state)

        async def poll() -> None:
            while polling:
                record()
                await asyncio.sleep(0.002)

        async def consume() -> None:
            async for _ in pods.changes(replay=False):
                stores_during_changes.append(store_state(pods))

        poller = asyncio.create_task(poll())
        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)

        async def away(other: kubeasync.Client) -> None:
            await other.pods.patch("p0", {"metadata": {"labels": {"x": "1"}}})  # page 1
            await other.pods.delete("p5", grace_period_seconds=0)  # page 3
            await other.pods.create(pod("p6"))  # page 3

        await restart_while(fake_apiserver, away)
        # Every request of the relist answers late: pages arrive 50 ms apart.
        fake_apiserver.faults.delay_next(4, seconds=0.05, method="GET", path=POD_PATH)
        await converged(pods, fake_apiserver)
        polling = False
        await poller
        record()
        after = store_state(pods)
        assert seen == [before, after]
        await eventually(lambda: len(stores_during_changes) == 3, "the consumer got 3 changes")
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    assert stores_during_changes == [after, after, after]
    lists = list_requests(fake_apiserver)
    assert len(lists) == 6 and "continue=" in lists[-1]


async def test_the_store_converges_through_dropped_and_stalled_watches(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.pods.create(pod("p0"))
    async with informer(kube, idle_timeout=0.3) as pods:
        consumer = Consumer(pods)
        await consumer.until(1)
        fake_apiserver.faults.drop_watch_after(1)  # the next watch: cut after one event
        fake_apiserver.faults.stall_next_watch()   # the one after: silence

        async def away(other: kubeasync.Client) -> None:
            await other.pods.create(pod("p1"))

        await restart_while(fake_apiserver, away, compact=False)
        for i in range(2, 5):
            await kube.pods.create(pod(f"p{i}"))
        await kube.pods.delete("p0", grace_period_seconds=0)
        await converged(pods, fake_apiserver)
        await consumer.until(6)
    assert consumer.changes[1:] == [
        ("added", "p1"), ("added", "p2"), ("added", "p3"), ("added", "p4"), ("deleted", "p0")
    ]
    assert consumer.view == {k: v[0] for k, v in server_state(fake_apiserver).items()}
    # Resumed from resourceVersions every time, never relisted.
    assert sum("sendInitialEvents=true" in q for q in watch_requests(fake_apiserver)) == 1


async def test_a_slow_consumer_lags_alone_and_resyncs_from_the_store(
    kube: kubeasync.Client,
) -> None:
    await kube.pods.create(pod("p0"))
    async with informer(kube) as pods:
        release = asyncio.Event()
        slow_seen: list[tuple[str, str]] = []

        async def slow() -> None:
            async for change in pods.changes(max_queue=3):
                slow_seen.append((change.type, change.name))
                await release.wait()

        slow_task = asyncio.create_task(slow())
        fast = Consumer(pods, max_queue=3)
        await fast.until(1)
        for i in range(1, 8):
            await kube.pods.create(pod(f"p{i}"))
        # The informer and the other consumer are not held up by the slow one.
        assert [name for _, name in await fast.until(8)] == [f"p{i}" for i in range(8)]
        assert len(pods) == 8
        release.set()
        with pytest.raises(ChangesLagged, match="changes\\(\\) again"):
            await asyncio.wait_for(slow_task, 5)
        assert slow_seen == [("added", "p0")]
        # Resyncing from the store: the current state, then the changes.
        resync = Consumer(pods)
        assert sorted(name for _, name in await resync.until(8)) == [f"p{i}" for i in range(8)]
        await kube.pods.delete("p3", grace_period_seconds=0)
        assert (await resync.until(9))[-1] == ("deleted", "p3")
        assert fast.error is None


# ------------------------------------------------------------------ errors


async def test_a_forbidden_watch_fails_wait_synced_changes_and_reads(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake_apiserver.faults.fail_next(1, status=403, method="GET", path=POD_PATH,
                                    message='pods is forbidden: User "x" cannot watch')
    async with informer(kube) as pods:
        waiting = Consumer(pods)  # already iterating when the error comes
        with pytest.raises(kubeasync.Forbidden, match="cannot watch"):
            await asyncio.wait_for(pods.wait_synced(), 5)
        await eventually(lambda: waiting.ended, "the consumer's iteration ended")
        assert isinstance(waiting.error, kubeasync.Forbidden)
        with pytest.raises(kubeasync.Forbidden):
            async for _ in pods.changes():
                pass
        with pytest.raises(kubeasync.Forbidden):
            pods.list()
        assert not pods.synced
    assert not pods.running and pods.error is None
    assert any("Forbidden" in r.message for r in caplog.records if r.levelno == logging.ERROR)


async def test_an_error_after_the_sync_reaches_a_consumer_after_what_was_queued(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    await kube.pods.create(pod("p0"))
    async with informer(kube) as pods:
        consumer = Consumer(pods)
        await consumer.until(1)
        fake_apiserver.faults.fail_next(1, status=403, method="GET", path=POD_PATH)
        await fake_apiserver.stop()
        await fake_apiserver.start()
        await eventually(lambda: consumer.ended, "the consumer's iteration ended")
        assert consumer.changes == [("added", "p0")]
        assert isinstance(consumer.error, kubeasync.Forbidden)
        with pytest.raises(kubeasync.Forbidden):
            await pods.wait_synced()


# ------------------------------------------------------------------ lifecycle


async def test_start_stop_and_restart_from_scratch(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    pods = informer(kube)
    with pytest.raises(RuntimeError, match="not started"):
        await pods.wait_synced()
    with pytest.raises(RuntimeError, match="not started"):
        async for _ in pods.changes():
            pass
    await pods.stop()  # more stops than starts: harmless
    await kube.pods.create(pod("p0"))
    await kube.pods.create(pod("p1"))
    await pods.start()
    await asyncio.wait_for(pods.wait_synced(), 5)
    consumer = Consumer(pods)
    await consumer.until(2)
    await pods.stop()
    await eventually(lambda: consumer.ended, "the consumer's iteration ended")
    assert consumer.error is None
    assert sorted(store_state(pods)) == [("default", "p0"), ("default", "p1")]  # kept
    await kube.pods.delete("p0", grace_period_seconds=0)
    async with pods:
        await asyncio.wait_for(pods.wait_synced(), 5)
        assert store_state(pods) == server_state(fake_apiserver)
    assert len(watch_requests(fake_apiserver)) == 2


async def test_closing_the_client_stops_its_informers(fake_apiserver: FakeApiServer) -> None:
    kube = kubeasync.Client(fake_apiserver.config(), retry=NO_RETRY)
    pods = informer(kube)
    await pods.start()
    await pods.start()
    await asyncio.wait_for(pods.wait_synced(), 5)
    consumer = Consumer(pods)
    await asyncio.sleep(0)
    await kube.close()
    assert not pods.running
    await eventually(lambda: consumer.ended, "the consumer's iteration ended")
    assert consumer.error is None


async def test_bad_arguments_raise_value_error_naming_them(
    kube: kubeasync.Client, fake_apiserver: FakeApiServer
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"page_size": 0}, "page_size"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"namespace": "default", "all_namespaces": True}, "all_namespaces"),
        ({"namespace": "Not_Valid"}, "namespace"),
        ({"label_selector": 5}, "label_selector"),
        ({"field_selector": {"a": 1}}, "field_selector"),
        ({"transform": "drop"}, "transform"),
        ({"backoff": 3}, "backoff"),
        ({"send_initial_events": "yes"}, "send_initial_events"),
    ]
    for options, argument in cases:
        with pytest.raises(ValueError, match=argument):
            kube.pods.informer(**options)
    pods = informer(kube)
    for call, argument in [
        (lambda: pods.changes(max_queue=0), "max_queue"),
        (lambda: pods.changes(replay="yes"), "replay"),
        (lambda: pods.get(""), "name"),
        (lambda: pods.get("a/b"), "name"),
        (lambda: pods.get("a", namespace="Bad"), "namespace"),
        (lambda: pods.list(namespace=""), "namespace"),
        (lambda: pods.add_index("", by_node), "name"),
        (lambda: pods.add_index("x", "by_node"), "fn"),
        (lambda: pods.by_index("missing", "v"), "name"),
    ]:
        with pytest.raises(ValueError, match=argument):
            call()
    pods.add_index("by_node", by_node)
    with pytest.raises(ValueError, match="value"):
        pods.by_index("by_node", 3)  # type: ignore[arg-type]
    assert fake_apiserver.requests == []
