"""Status bodies and the exception that carries them through the fake server.

Messages, reasons and ``details`` follow what kube-apiserver 1.20 sends (checked against a
real server), because clients (ours included) branch on reason and show the message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.descriptor import ResourceDescriptor


@dataclass(frozen=True)
class Cause:
    """One field error of a 422 Invalid answer."""

    field: str
    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def invalid(field: str, value: object, detail: str) -> Cause:
    return Cause(field, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")


def not_supported(field: str, value: object, supported: Sequence[str]) -> Cause:
    choices = ", ".join(f'"{s}"' for s in supported)
    return Cause(
        field,
        "FieldValueNotSupported",
        f"Unsupported value: {go_value(value)}: supported values: {choices}",
    )


def duplicate(field: str, value: object) -> Cause:
    return Cause(field, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, "FieldValueForbidden", f"Forbidden: {detail}")


def go_value(value: object) -> str:
    """A value as Go's field errors print it: strings quoted, numbers bare."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class StatusError(Exception):
    """A non-2xx answer; ``body()`` is the Status object the server sends."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details) if details is not None else None
        self.headers = dict(headers or {})
        self.metadata: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def qualified(d: ResourceDescriptor[Any, Any]) -> str:
    """``pods``, ``jobs.batch``: how messages name a resource."""
    return f"{d.plural}.{d.group}" if d.group else d.plural


def qualified_kind(d: ResourceDescriptor[Any, Any]) -> str:
    """``Pod``, ``Job.batch``: how Invalid messages name a kind."""
    return f"{d.kind}.{d.group}" if d.group else d.kind


def _details(d: ResourceDescriptor[Any, Any], name: str | None, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if d.group:
        details["group"] = d.group
    details["kind"] = kind
    return details


def not_found(d: ResourceDescriptor[Any, Any], name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{qualified(d)} "{name}" not found', _details(d, name, d.plural)
    )


def already_exists(d: ResourceDescriptor[Any, Any], name: str) -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{qualified(d)} "{name}" already exists', _details(d, name, d.plural)
    )


def conflict(d: ResourceDescriptor[Any, Any], name: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(d)} "{name}": the object has been'
        " modified; please apply your changes to the latest version and try again",
        _details(d, name, d.plural),
    )


def precondition_failed(d: ResourceDescriptor[Any, Any], name: str, what: str) -> StatusError:
    # Delete preconditions name the Kind, not the resource, in message and details.
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified_kind(d)} "{name}": {what}',
        _details(d, name, d.kind),
    )


def invalid_object(d: ResourceDescriptor[Any, Any], name: str, causes: Sequence[Cause]) -> StatusError:
    rendered = [f"{c.field}: {c.message}" for c in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details = _details(d, name, d.kind)
    details["causes"] = [c.as_dict() for c in causes]
    return StatusError(422, "Invalid", f'{qualified_kind(d)} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed() -> StatusError:
    return StatusError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def unsupported_media_type() -> StatusError:
    return StatusError(415, "UnsupportedMediaType", "415: Unsupported Media Type", {})


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def namespace_not_found(namespace: str) -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'namespaces "{namespace}" not found',
        {"name": namespace, "kind": "namespaces"},
    )


def namespace_terminating(d: ResourceDescriptor[Any, Any], name: str, namespace: str) -> StatusError:
    return StatusError(
        403,
        "Forbidden",
        f'{qualified(d)} "{name}" is forbidden: unable to create new content in namespace'
        f" {namespace} because it is being terminated",
        _details(d, name, d.plural),
    )


def success(d: ResourceDescriptor[Any, Any], name: str, uid: str) -> dict[str, Any]:
    """The Status a delete answers when the object is gone and the kind does not return it."""
    details = _details(d, name, d.plural)
    details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def with_metadata(error: StatusError, metadata: Mapping[str, Any]) -> StatusError:
    """Attach list metadata (an expired continue token's successor) to a Status."""
    error.metadata = dict(metadata)
    return error
