"""Waiting for one object to reach a state: ``await api.wait_for(name, condition, ...)``.

    pod = await kube.pods.wait_for("web-0", conditions.pod_ready, namespace="shop", timeout=60)

One GET, then one watch of that object alone (a ``metadata.name`` field selector) from the
GET's resourceVersion: every change after the state the GET returned is seen, none is
missed between the two, and nothing polls. The condition is checked on the GET's object,
then on every new state. If the watch ends it is resumed from the last resourceVersion; if
that version has expired (410), the object is read again (a new GET, the same checks) and
watched from there; connection failures, 429 and 5xx are retried after a backoff.

The object being deleted ends the wait with :class:`~kubeasync.NotFound` (also when it was
deleted and created again under the same name: the uid tells), unless the condition is
:data:`~kubeasync.runtime.conditions.deleted`, for which that is success. When ``timeout``
passes first, :class:`WaitTimeout` (a ``TimeoutError``) says what the object looked like
last.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.backoff import Backoff, positive_number
from ..core.errors import ApiError, Gone, KubeError, NotFound, TransportError
from ..core.names import validate_name
from ..core.objects import accessor_for
from ..streams.events import BookmarkEvent, DeletedEvent, ErrorEvent
from .conditions import Deleted, describe

if TYPE_CHECKING:
    from ..api.resource import ResourceApi

__all__ = ["WAIT_BACKOFF", "WaitTimeout", "wait_for"]

T = TypeVar("T")

WAIT_BACKOFF = Backoff(initial=0.2, maximum=5.0, reset_after=30.0)
"""How long a wait pauses before watching again after a failure."""

if sys.version_info >= (3, 11):
    _Timeout = TimeoutError  # asyncio.TimeoutError is TimeoutError
else:  # pragma: no cover - asyncio.TimeoutError is its own class before 3.11

    class _Timeout(asyncio.TimeoutError, TimeoutError):
        pass


class WaitTimeout(KubeError, _Timeout):
    """``wait_for`` ran out of time. It is a ``TimeoutError`` and an
    ``asyncio.TimeoutError``.

    Attributes:
        last: the last state of the object seen (``None`` if it was never read).
    """

    def __init__(self, message: str, last: object | None = None) -> None:
        super().__init__(message)
        self.last = last


async def wait_for(
    api: ResourceApi[T, Any],
    name: str,
    condition: Callable[[T], bool] | Deleted,
    *,
    namespace: str | None = None,
    timeout: float | None = None,
) -> T | None:
    """See :meth:`kubeasync.ResourceApi.wait_for`."""
    validate_name(name)
    if not (isinstance(condition, Deleted) or callable(condition)):
        raise ValueError(f"condition must be a predicate on the object or"
                         f" kubeasync.conditions.deleted, got {condition!r}")
    if timeout is not None:
        timeout = positive_number(timeout, "timeout")
    ns = api._namespace(namespace)
    waiting = _Wait(api, name, ns, condition)
    task: asyncio.Future[T | None] = asyncio.ensure_future(waiting.run())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        task.cancel()
        await asyncio.wait({task})
        raise
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        return task.result()  # it finished as the time ran out
    raise WaitTimeout(waiting.timeout_message(timeout), waiting.last)


class _Wait:
    def __init__(self, api: ResourceApi[Any, Any], name: str, namespace: str | None,
                 condition: Callable[[Any], bool] | Deleted) -> None:
        self.api = api
        self.name = name
        self.namespace = namespace
        self.condition = condition
        self.wants_deletion = isinstance(condition, Deleted)
        self.access = accessor_for(api.descriptor.model)
        self.last: Any = None
        self.failures = 0

    @property
    def where(self) -> str:
        what = self.api.descriptor.kind
        return f"{what} {self.namespace}/{self.name}" if self.namespace else f"{what} {self.name}"

    def timeout_message(self, timeout: float | None) -> str:
        wanted = getattr(self.condition, "name", None) or getattr(
            self.condition, "__name__", repr(self.condition))
        seen = describe(self.last) if self.last is not None else "never read"
        return f"timed out after {timeout:g} s waiting for {self.where} to be {wanted}; " \
               f"last seen: {seen}"

    def _satisfied(self, obj: Any) -> bool:
        return not self.wants_deletion and bool(self.condition(obj))  # type: ignore[operator]

    def _gone(self, final: Any) -> Any:
        """The object was deleted: the end of the wait either way."""
        if self.wants_deletion:
            return final
        raise NotFound(_deleted_status(self.where), code=404)

    async def _read(self) -> Any:
        try:
            return await self.api.get(self.name, namespace=self.namespace)
        except NotFound:
            return None

    async def run(self) -> Any:
        obj = await self._retrying(self._read)
        if obj is None:
            if self.wants_deletion:
                return None
            raise NotFound(_missing_status(self.where), code=404)
        self.last = obj
        _, uid, version = self.access.identity(obj)
        if self._satisfied(obj):
            return obj
        while True:
            try:
                async with self.api.watch_stream(
                    namespace=self.namespace, field_selector={"metadata.name": self.name},
                    resource_version=version, bookmarks=True,
                ) as stream:
                    async for event in stream:
                        if isinstance(event, BookmarkEvent):
                            version = self.access.identity(event.object)[2] or version
                            continue
                        if isinstance(event, ErrorEvent):
                            raise event.to_error()
                        obj = event.object
                        _, event_uid, event_version = self.access.identity(obj)
                        if uid is not None and event_uid is not None and event_uid != uid:
                            return self._gone(self.last)  # deleted, and another made
                        self.last = obj
                        version = event_version or version
                        self.failures = 0
                        if isinstance(event, DeletedEvent):
                            return self._gone(obj)
                        if self._satisfied(obj):
                            return obj
                    ended_empty = stream.events == 0
                # The server ended the watch (its timeout): go on from where it was, at
                # once unless it ended with nothing at all (a proxy that cuts every watch).
                if ended_empty:
                    await self._pause(None)
            except Gone:
                # The version expired: read the object again and watch from its state.
                obj = await self._retrying(self._read)
                if obj is None:
                    return self._gone(self.last)
                _, current_uid, version = self.access.identity(obj)
                if uid is not None and current_uid is not None and current_uid != uid:
                    return self._gone(self.last)
                self.last = obj
                if self._satisfied(obj):
                    return obj
            except KubeError as exc:
                if not _retryable(exc):
                    raise
                await self._pause(exc)

    async def _retrying(self, read: Callable[[], Any]) -> Any:
        while True:
            try:
                return await read()
            except KubeError as exc:
                if not _retryable(exc):
                    raise
                await self._pause(exc)

    async def _pause(self, exc: KubeError | None) -> None:
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        delay = WAIT_BACKOFF.delay(self.failures, retry_after)
        self.failures += 1
        await asyncio.sleep(delay)


def _retryable(exc: KubeError) -> bool:
    if isinstance(exc, ApiError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, TransportError) and exc.retryable


def _deleted_status(where: str) -> Any:
    from ..models import Status

    return Status(kind="Status", api_version="v1", status="Failure", code=404,
                  reason="NotFound", message=f"{where} was deleted while waiting for it")


def _missing_status(where: str) -> Any:
    from ..models import Status

    return Status(kind="Status", api_version="v1", status="Failure", code=404,
                  reason="NotFound", message=f"{where} not found")
