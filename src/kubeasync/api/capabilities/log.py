"""The ``log`` subresource: a container's log, whole or streamed."""

from __future__ import annotations

from typing import Any, TypeVar

from ...core.descriptor import Capability, ResourceDescriptor, Wire
from ...core.params import DEFAULT_MAX_LINE_BYTES, LogParams
from ...core.request import Request, RequestBuilder
from ...streams.log_stream import LogStream
from ..resource import ResourceApi
from ._registry import capability

__all__ = ["LOG", "LogApi", "log_request"]

T = TypeVar("T")
L = TypeVar("L")

LOG = Capability(
    "log", Wire.TEXT_STREAM, request="", response="text lines",
    methods=("logs", "stream_logs"),
)


def log_request(
    descriptor: ResourceDescriptor[Any, Any], name: str, namespace: str | None, params: LogParams
) -> Request:
    """``GET .../{name}/log`` (sans-IO)."""
    path = RequestBuilder(descriptor).object_path(name, namespace, "log")
    return Request("GET", path, params.query, {"Accept": "*/*"})


@capability(LOG)
class LogApi(ResourceApi[T, L]):
    """The API of a resource with a ``log`` subresource (pods)."""

    def _log_request(self, name: str, namespace: str | None, params: LogParams) -> Request:
        return log_request(self.descriptor, name, self._namespace(namespace), params)

    async def logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
        previous: bool = False,
        limit_bytes: int | None = None,
        timeout: float | None = None,
    ) -> str:
        """``GET .../pods/{name}/log``: the container's log so far, as text.

        Invalid UTF-8 is replaced, not raised. A pod that has not been scheduled yet has no
        log: the server answers 204 and this returns ``""``.
        """
        params = LogParams(container, False, tail_lines, since_seconds, since_time,
                           timestamps, previous, limit_bytes)
        response = await self._send(self._log_request(name, namespace, params), timeout)
        return response.body.decode("utf-8", errors="replace")

    def stream_logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
        previous: bool = False,
        limit_bytes: int | None = None,
        idle_timeout: float | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> LogStream:
        """Log lines (``str``, without the newline) as they arrive.

        ``follow=True`` keeps the stream open until the container stops. Invalid UTF-8 is
        replaced, not raised; a last line without a newline is yielded too. A pod with
        several containers needs ``container=`` (the server answers 400
        :class:`~kubeasync.BadRequest` otherwise). The wait for the answer is bounded by
        the client's timeout; ``idle_timeout`` bounds each silence in the body (default:
        none when following, the client's timeout otherwise). Use ``async with`` or
        ``aclose()`` to stop early.
        """
        params = LogParams(container, follow, tail_lines, since_seconds, since_time,
                           timestamps, previous, limit_bytes)
        if idle_timeout is None and not follow:
            idle_timeout = self._session.timeout
        return LogStream(self._session, self._log_request(name, namespace, params),
                         idle_timeout=idle_timeout, max_line_bytes=max_line_bytes)
