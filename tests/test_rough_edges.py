"""The rough edges a new user hit, each pinned by a test (issue 13)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import kubeasync
from kubeasync.models import ConfigMap, ObjectMeta
from kubeasync.testing import FakeApiServer


async def test_replace_takes_the_namespace_from_the_object(kube: kubeasync.Client) -> None:
    await kube.namespaces.create({"metadata": {"name": "shop"}})
    created = await kube.config_maps.create(
        ConfigMap(metadata=ObjectMeta(name="a", namespace="shop"), data={"v": "1"}))
    assert created.metadata is not None and created.metadata.namespace == "shop"
    changed = ConfigMap(metadata=ObjectMeta(name="a", namespace="shop"), data={"v": "2"})
    replaced = await kube.config_maps.replace("a", changed)  # no namespace= repeated
    assert replaced.data == {"v": "2"}
    assert replaced.metadata is not None and replaced.metadata.namespace == "shop"
    # ... and so does a server-side apply
    applied = await kube.config_maps.patch(
        "a", {"metadata": {"name": "a", "namespace": "shop"}, "data": {"v": "3"}},
        patch_type=kubeasync.PatchType.APPLY, field_manager="me", force=True)
    assert applied.data == {"v": "3"}
    with pytest.raises(ValueError, match="is in namespace 'shop' but namespace is 'default'"):
        await kube.config_maps.replace("a", changed, namespace="default")


def test_watch_and_watch_stream_use_the_same_names_and_defaults() -> None:
    watch = inspect.signature(kubeasync.ResourceApi.watch).parameters
    stream = inspect.signature(kubeasync.ResourceApi.watch_stream).parameters
    shared = set(watch) & set(stream)
    assert {"bookmarks", "timeout_seconds", "send_initial_events", "idle_timeout",
            "label_selector", "field_selector", "resource_version", "max_line_bytes",
            "namespace", "all_namespaces"} <= shared
    assert "allow_bookmarks" not in stream
    for name in ("bookmarks", "timeout_seconds", "idle_timeout", "max_line_bytes"):
        assert watch[name].default == stream[name].default, name


async def test_a_bad_selector_names_the_selector_that_was_sent(kube: kubeasync.Client) -> None:
    with pytest.raises(kubeasync.BadRequest) as info:
        await kube.pods.list(label_selector="app in web")
    message = str(info.value)
    assert "unable to parse requirement" in message
    assert "labelSelector=app+in+web" in message, message


async def test_an_unclosed_client_warns_with_its_own_words() -> None:
    async with FakeApiServer() as server:
        kube = kubeasync.Client(server.config())
        await kube.version()
        with pytest.warns(ResourceWarning, match=r"was never closed: use `async with"):
            kube.__del__()
        assert kube.session.transport.connections()["open"] is False  # type: ignore[attr-defined]


def test_a_client_belongs_to_the_event_loop_it_was_first_used_in() -> None:
    async def start() -> tuple[kubeasync.Client, FakeApiServer]:
        server = FakeApiServer()
        await server.start()
        client = kubeasync.Client(server.config())
        await client.version()
        return client, server

    loop = asyncio.new_event_loop()
    try:
        kube, server = loop.run_until_complete(start())
        with pytest.raises(kubeasync.KubeError, match="belongs to another event loop"):
            asyncio.run(kube.version())
        loop.run_until_complete(kube.close())
        loop.run_until_complete(server.stop())
    finally:
        loop.close()
