"""Answers that are not what was asked for (issue 18, defects 2 and 9): a 200 whose body is
a gateway's JSON, an empty object, another kind, an HTML page, an array or nothing is a
:class:`kubeasync.DecodeError` on every verb, never a model built from nothing and never
a raw msgspec error. Also: names of custom resources are validated before they go into a
URL. Over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

import kubeasync
from kubeasync.core.descriptor import custom_resource
from kubeasync.testing import FakeApiServer
from tests.helpers.misbehaving import (
    GATEWAY_JSON,
    POD,
    SECRET,
    client,
    http_server,
    json_answer,
)

POD_PATH = "/api/v1/namespaces/ns/pods/web-0"
PODS_PATH = "/api/v1/namespaces/ns/pods"
POD_LIST = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"},
            "items": [POD]}

NOT_A_POD = {
    "a Secret": SECRET,
    "an empty object": {},
    "a gateway's JSON": GATEWAY_JSON,
    "a Pod of another apiVersion": {**POD, "apiVersion": "v2"},
}
NOT_A_POD_LIST = {
    "a gateway's JSON": GATEWAY_JSON,
    "an empty object": {},
    "a SecretList": {"kind": "SecretList", "apiVersion": "v1", "metadata": {},
                     "items": [SECRET]},
    "a Pod": POD,
}


@pytest.mark.parametrize("answer", list(NOT_A_POD.values()), ids=list(NOT_A_POD))
async def test_get_answered_by_something_that_is_not_the_pod_is_a_decode_error(
    answer: Any,
) -> None:
    async with http_server({("GET", POD_PATH): json_answer(answer)}) as (url, _), \
            client(url) as kube:
        with pytest.raises(kubeasync.DecodeError) as info:
            await kube.pods.get("web-0")
    # 0.1 returned a Pod here (every field optional: anything decodes).
    message = str(info.value)
    assert "not a v1 Pod" in message and POD_PATH in message
    assert info.value.retryable
    assert "aHVudGVyMg==" not in message, "a wrong answer's data is never quoted"


@pytest.mark.parametrize("answer", list(NOT_A_POD_LIST.values()), ids=list(NOT_A_POD_LIST))
async def test_list_and_iterate_answered_by_something_else_are_decode_errors(
    answer: Any,
) -> None:
    async with http_server({("GET", PODS_PATH): json_answer(answer)}) as (url, _), \
            client(url) as kube:
        with pytest.raises(kubeasync.DecodeError, match="not a v1 PodList"):
            await kube.pods.list()
        with pytest.raises(kubeasync.DecodeError, match="not a v1 PodList"):
            async for _ in kube.pods.iterate():
                pass


async def test_the_right_kind_that_does_not_fit_the_model_is_not_retryable() -> None:
    broken = {**POD, "metadata": {"name": 42}}
    async with http_server({("GET", POD_PATH): json_answer(broken)}) as (url, _), \
            client(url) as kube:
        with pytest.raises(kubeasync.DecodeError, match="does not fit the model Pod") as info:
            await kube.pods.get("web-0")
    assert not info.value.retryable


async def test_answers_of_the_right_kind_still_decode() -> None:
    async with http_server({
        ("GET", POD_PATH): json_answer(POD),
        ("GET", PODS_PATH): json_answer(POD_LIST),
    }) as (url, _), client(url) as kube:
        assert (await kube.pods.get("web-0")).metadata.name == "web-0"
        assert [p.metadata.name for p in (await kube.pods.list()).items] == ["web-0"]


async def test_custom_resources_check_their_kind_too() -> None:
    widgets = custom_resource(group="example.com", version="v1", kind="Widget",
                              plural="widgets")
    path = "/apis/example.com/v1/namespaces/ns/widgets"
    widget = {"kind": "Widget", "apiVersion": "example.com/v1", "metadata": {"name": "w"}}
    async with http_server({
        ("GET", path + "/w"): json_answer(widget),
        ("GET", path + "/other"): json_answer({"kind": "Gadget", "metadata": {"name": "x"}}),
        ("GET", path): json_answer(GATEWAY_JSON),
    }) as (url, _), client(url) as kube:
        api = kube.resource(widgets)
        assert (await api.get("w"))["metadata"]["name"] == "w"
        with pytest.raises(kubeasync.DecodeError, match=r"is a 'Gadget', not a example\.com/v1 Widget"):
            await api.get("other")
        with pytest.raises(kubeasync.DecodeError, match="names no kind"):
            await api.list()


# ------------------------------------------------------------------ defect 9: delete answers


DELETE_BODIES: dict[str, bytes] = {
    "an empty body": b"",
    "an HTML page": b"<html><body>Welcome to nginx!</body></html>",
    "a JSON array": b"[1, 2, 3]",
    "a gateway's JSON": json.dumps(GATEWAY_JSON).encode(),
    "a Secret": json.dumps(SECRET).encode(),
}


@pytest.mark.parametrize("body", list(DELETE_BODIES.values()), ids=list(DELETE_BODIES))
async def test_delete_and_delete_collection_on_a_200_that_is_not_an_answer_are_decode_errors(
    body: bytes,
) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async with http_server({("DELETE", POD_PATH): answer, ("DELETE", PODS_PATH): answer}) \
            as (url, _), client(url) as kube:
        for call in (kube.pods.delete("web-0"), kube.pods.delete_collection()):
            # 0.1 let msgspec's own errors escape from delete() and delete_collection().
            with pytest.raises(kubeasync.DecodeError) as info:
                await call
            assert str(info.value).startswith(f"DELETE {PODS_PATH}")


async def test_delete_still_returns_the_object_or_the_status() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Success",
              "details": {"name": "web-0", "kind": "pods"}}
    async with http_server({
        ("DELETE", POD_PATH): json_answer(POD),
        ("DELETE", PODS_PATH): json_answer(status),
    }) as (url, _), client(url) as kube:
        deleted = await kube.pods.delete("web-0")
        assert isinstance(deleted, kubeasync.models.Pod)
        answer = await kube.pods.delete_collection()
        assert isinstance(answer, kubeasync.models.Status) and answer.status == "Success"


async def test_the_embedded_server_answers_pass_the_checks() -> None:
    # Every verb on the embedded server (which answers as kube-apiserver does) still works.
    async with FakeApiServer() as server, kubeasync.Client(server.config()) as kube:
        pod = {"metadata": {"name": "p", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}
        created = await kube.pods.create(pod)
        assert (await kube.pods.get("p")).metadata.uid == created.metadata.uid
        assert [p.metadata.name for p in (await kube.pods.list()).items] == ["p"]
        assert [p.metadata.name async for p in kube.pods.iterate(page_size=1)] == ["p"]
        await kube.pods.patch("p", {"metadata": {"labels": {"a": "b"}}})
        await kube.pods.delete("p", grace_period_seconds=0)
        await kube.jobs.delete_collection()


# ------------------------------------------------------------------ names in URLs


@pytest.mark.parametrize("field, value", [
    ("group", "evil.com/../../api/v1/namespaces/kube-system/secrets#"),
    ("group", "Example.COM"),
    ("version", "v1/../.."),
    ("plural", "widgets/../../secrets"),
    ("plural", "widgets?x=1"),
])
def test_custom_resource_refuses_names_that_are_not_dns_names(field: str, value: str) -> None:
    arguments = {"group": "example.com", "version": "v1", "kind": "Widget",
                 "plural": "widgets", field: value}
    with pytest.raises(ValueError, match=field):
        custom_resource(**arguments)
