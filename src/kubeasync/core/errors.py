"""The exception tree.

Every non-2xx answer from the API server becomes an :class:`ApiError` subclass that
carries the decoded ``Status`` object, so callers branch on types (``except NotFound``)
instead of parsing messages. Errors that never reached the server (a refused connection,
a TLS failure, a timeout) are :class:`TransportError`; bad kubeconfigs are
:class:`ConfigError`; a body that does not match its model is :class:`DecodeError`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import msgspec

from ..models import Status

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "ConnectError",
    "DecodeError",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "MethodNotAllowed",
    "NotFound",
    "RequestTimeout",
    "ServerError",
    "StreamError",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "api_error_from_response",
    "decode_status",
    "error_from_status",
]

_SNIPPET_LENGTH = 200


class KubeError(Exception):
    """Base class of every error kubeasync raises on purpose."""


class ConfigError(KubeError):
    """A kubeconfig, in-cluster setting or credential plugin could not be used."""


class TransportError(KubeError):
    """The request did not get a (complete) HTTP answer: the connection was reset or cut,
    TLS failed, the body was damaged.

    The request may have reached the server, so only idempotent requests are retried.
    ``retryable`` is False for failures that a retry cannot fix (TLS verification, no
    local file descriptors left, a body over the size limit).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ConnectError(TransportError):
    """No connection could be made (refused, no route, DNS, a proxy refusing the tunnel):
    nothing reached the server, so any request may be retried."""


class RequestTimeout(TransportError, TimeoutError):
    """No complete answer arrived within the request timeout."""


class DecodeError(KubeError):
    """The server's answer could not be decoded into the expected type."""


class StreamError(KubeError):
    """A stream broke its protocol: a watch or log line over the size limit, a watch that
    ignored ``sendInitialEvents``, a WebSocket frame on an unknown channel."""


class ApiError(KubeError):
    """The API server answered with a non-2xx status.

    Attributes:
        status: the decoded ``Status`` object (synthesized from the HTTP status when the
            body was not a Status, e.g. an HTML page from a proxy).
        code: the HTTP status code.
        reason: the Status reason (``"NotFound"``, ``"Conflict"``, ...), or ``""``.
        message: the Status message, or a short snippet of a non-JSON body.
        retry_after: seconds the server asked us to wait (``Retry-After`` header or
            ``details.retryAfterSeconds``), or ``None``.
    """

    default_code: ClassVar[int] = 0

    def __init__(
        self,
        status: Status,
        *,
        code: int | None = None,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.code = code if code is not None else (status.code or self.default_code)
        self.reason = status.reason or ""
        self.message = status.message or ""
        self.retry_after = retry_after
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        reason = f" {self.reason}" if self.reason else ""
        message = f": {self.message}" if self.message else ""
        return f"{self.code}{reason}{message}{where}"


class BadRequest(ApiError):
    """400: the request was malformed (an unsupported field selector, a namespace mismatch)."""

    default_code = 400


class Unauthorized(ApiError):
    """401: the credentials were missing, wrong or expired (after one refresh)."""

    default_code = 401


class Forbidden(ApiError):
    """403: authenticated, but not allowed to do this."""

    default_code = 403


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""

    default_code = 404


class MethodNotAllowed(ApiError):
    """405: the resource does not support this verb (e.g. delete collection of Services)."""

    default_code = 405


class Conflict(ApiError):
    """409: the object changed since it was read (stale resourceVersion) or a precondition failed."""

    default_code = 409


class AlreadyExists(ApiError):
    """409 AlreadyExists: an object with that name already exists."""

    default_code = 409


class Gone(ApiError):
    """410: the resourceVersion or continue token is too old (reason ``Expired`` or ``Gone``)."""

    default_code = 410


class UnsupportedMediaType(ApiError):
    """415: the server does not accept this content type (e.g. a patch type it lacks)."""

    default_code = 415


class Invalid(ApiError):
    """422: the object failed validation; ``status.details.causes`` says which fields."""

    default_code = 422


class TooManyRequests(ApiError):
    """429: the server is throttling us; ``retry_after`` says for how long."""

    default_code = 429


class ServerError(ApiError):
    """5xx: the server (or a proxy in front of it) failed."""

    default_code = 500


_BY_REASON: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest,
    "Unauthorized": Unauthorized,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
    "MethodNotAllowed": MethodNotAllowed,
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Gone": Gone,
    "Expired": Gone,
    "UnsupportedMediaType": UnsupportedMediaType,
    "Invalid": Invalid,
    "TooManyRequests": TooManyRequests,
    "InternalError": ServerError,
    "ServiceUnavailable": ServerError,
    "Timeout": ServerError,
    "ServerTimeout": ServerError,
}

_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def error_class(code: int, reason: str | None) -> type[ApiError]:
    """The exception class for an HTTP code and a Status reason (reason wins when known)."""
    if reason and reason in _BY_REASON:
        cls = _BY_REASON[reason]
        # A reason only refines the code's class; a 5xx reason on a 4xx code keeps the code.
        if cls.default_code // 100 == code // 100 or code == 0:
            return cls
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code >= 500:
        return ServerError
    return ApiError


_STATUS_DECODER = msgspec.json.Decoder(Status)


def decode_status(body: bytes) -> Status | None:
    """Decode ``body`` as a Status object, or return None when it is not one."""
    try:
        status = _STATUS_DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if status.kind != "Status":
        return None
    return status


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET_LENGTH].decode("utf-8", "replace")
    text = " ".join(text.split())
    if len(body) > _SNIPPET_LENGTH:
        text += "..."
    return text


def api_error_from_response(
    code: int,
    body: bytes,
    *,
    content_type: str = "",
    http_reason: str = "",
    retry_after_header: str | None = None,
    method: str = "",
    path: str = "",
) -> ApiError:
    """Turn a non-2xx HTTP answer into the matching typed :class:`ApiError`.

    A JSON ``Status`` body is decoded as is; anything else (an HTML page from a proxy,
    plain text from a load balancer) is wrapped in a synthesized Status whose message
    holds the HTTP reason and a short snippet of the body.
    """
    status = decode_status(body) if body.lstrip()[:1] == b"{" else None
    if status is None:
        described = content_type.split(";")[0].strip() or "no content type"
        snippet = _snippet(body)
        text = http_reason or "HTTP error"
        message = f"{text} ({described})" + (f": {snippet}" if snippet else "")
        status = Status(
            kind="Status", api_version="v1", status="Failure", code=code, message=message
        )
    return error_from_status(
        status, code=code, retry_after=_retry_after(retry_after_header, status),
        method=method, path=path,
    )


def error_from_status(
    status: Status,
    *,
    code: int | None = None,
    retry_after: float | None = None,
    method: str = "",
    path: str = "",
) -> ApiError:
    """The typed :class:`ApiError` for a ``Status`` (from an answer, or from a watch's
    ERROR event): the class from the code and reason, ``retry_after`` from the Status's
    ``retryAfterSeconds`` unless given."""
    code = code if code is not None else (status.code or 500)
    if retry_after is None:
        retry_after = _retry_after(None, status)
    cls = error_class(code, status.reason)
    return cls(status, code=code, retry_after=retry_after, method=method, path=path)


def _retry_after(header: str | None, status: Status) -> float | None:
    """Seconds the server asked us to wait, if it asked sensibly: a negative, infinite or
    unparsable value is ignored (the caller's backoff applies, which also caps it)."""
    if header:
        try:
            value = float(header.strip())
        except ValueError:
            value = -1.0  # an HTTP date: rare from API servers; fall back to the Status
        if math.isfinite(value) and value >= 0:
            return value
    details = status.details
    if details is not None and details.retry_after_seconds is not None:
        seconds = details.retry_after_seconds
        if seconds >= 0:
            return float(seconds)
    return None
