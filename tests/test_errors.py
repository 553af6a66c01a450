"""Every non-2xx answer becomes a typed error carrying the decoded Status."""

from __future__ import annotations

import json

import pytest

import kubeasync
from kubeasync.core.errors import api_error_from_response


def status_body(code: int, reason: str, message: str = "m", **details: object) -> bytes:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "code,reason,cls",
    [
        (400, "BadRequest", kubeasync.BadRequest),
        (401, "Unauthorized", kubeasync.Unauthorized),
        (403, "Forbidden", kubeasync.Forbidden),
        (404, "NotFound", kubeasync.NotFound),
        (405, "MethodNotAllowed", kubeasync.MethodNotAllowed),
        (409, "AlreadyExists", kubeasync.AlreadyExists),
        (409, "Conflict", kubeasync.Conflict),
        (410, "Expired", kubeasync.Gone),
        (410, "Gone", kubeasync.Gone),
        (415, "UnsupportedMediaType", kubeasync.UnsupportedMediaType),
        (422, "Invalid", kubeasync.Invalid),
        (429, "TooManyRequests", kubeasync.TooManyRequests),
        (500, "InternalError", kubeasync.ServerError),
        (503, "ServiceUnavailable", kubeasync.ServerError),
        (504, "Timeout", kubeasync.ServerError),
    ],
)
def test_each_status_reason_maps_to_its_class(
    code: int, reason: str, cls: type[kubeasync.ApiError]
) -> None:
    error = api_error_from_response(code, status_body(code, reason, "boom"), method="GET",
                                    path="/api/v1/namespaces/ns/pods/x")
    assert type(error) is cls
    assert isinstance(error, kubeasync.ApiError)
    assert (error.code, error.reason, error.message) == (code, reason, "boom")
    assert error.status.kind == "Status" and error.status.code == code
    assert f"{code} {reason}: boom" in str(error)
    assert "/api/v1/namespaces/ns/pods/x" in str(error)


def test_unknown_reason_falls_back_to_the_code() -> None:
    assert type(api_error_from_response(404, status_body(404, "Whatever"))) is kubeasync.NotFound
    assert type(api_error_from_response(599, status_body(599, ""))) is kubeasync.ServerError
    assert type(api_error_from_response(418, status_body(418, ""))) is kubeasync.ApiError


def test_a_reason_from_another_class_of_code_does_not_win() -> None:
    # a proxy answering 502 with a body claiming NotFound is still a server error
    assert type(api_error_from_response(502, status_body(502, "NotFound"))) is kubeasync.ServerError


def test_invalid_keeps_its_causes() -> None:
    causes = [{"reason": "FieldValueRequired", "message": "Required value",
               "field": "spec.containers[0].image"}]
    error = api_error_from_response(
        422, status_body(422, "Invalid", "Pod is invalid", name="x", kind="pods", causes=causes)
    )
    assert isinstance(error, kubeasync.Invalid)
    assert error.status.details is not None
    assert error.status.details.causes is not None
    assert error.status.details.causes[0].field == "spec.containers[0].image"


def test_html_page_from_a_proxy_gives_a_clear_error() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    error = api_error_from_response(502, page, content_type="text/html; charset=utf-8",
                                    http_reason="Bad Gateway")
    assert isinstance(error, kubeasync.ServerError)
    assert error.code == 502
    assert "Bad Gateway (text/html)" in error.message
    assert "<title>502 Bad Gateway</title>" in error.message


def test_long_bodies_are_cut_to_a_snippet() -> None:
    error = api_error_from_response(500, b"x" * 10_000, content_type="text/plain")
    assert len(error.message) < 300 and error.message.endswith("...")


def test_empty_body() -> None:
    error = api_error_from_response(503, b"", http_reason="Service Unavailable")
    assert isinstance(error, kubeasync.ServerError)
    assert error.message == "Service Unavailable (no content type)"


def test_json_that_is_not_a_status() -> None:
    error = api_error_from_response(404, b'{"error": "nope"}', content_type="application/json")
    assert isinstance(error, kubeasync.NotFound)
    assert '{"error": "nope"}' in error.message


def test_retry_after_from_header_then_status() -> None:
    body = status_body(429, "TooManyRequests", retryAfterSeconds=7)
    assert api_error_from_response(429, body, retry_after_header="3").retry_after == 3.0
    assert api_error_from_response(429, body).retry_after == 7.0
    assert api_error_from_response(429, status_body(429, "TooManyRequests")).retry_after is None
