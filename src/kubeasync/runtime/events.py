"""The event recorder: Kubernetes Events about the objects a controller works on.

    recorder = kubeasync.EventRecorder(kube, "website-controller")
    recorder.normal(website, "Created", "created Deployment web", action="Create")
    recorder.warning(website, "Failed", "the image does not exist", action="Reconcile")
    await recorder.aclose()                    # writes what is pending

Recording never blocks and never raises: ``normal()``/``warning()`` queue the event and a
background task writes it (events are best effort, as in client-go: a reconcile must not
wait for, or fail with, its events). Failed writes are retried while the server is
unreachable or overloaded, and dropped when the server refuses them.

Which API: ``events.k8s.io/v1`` when the server serves it (asked once through
``kube.discovery``), else the core ``v1`` Events; ``api=`` forces one.

Repeats are aggregated as client-go's ``tools/events`` recorder does: events alike in
regarding object, related object, type, reason and action (the note does not count) form
a series. The first is created as an Event; the second updates it at once with
``series: {count: 2, lastObservedTime}`` (core/v1: ``count`` and ``lastTimestamp``);
later ones only count, and the count is written every ``heartbeat`` seconds (30 minutes),
when the series ends (no repeat for ``finish_after`` seconds, 6 minutes) and on
:meth:`EventRecorder.flush`/:meth:`EventRecorder.aclose`. A repeat after a series ended
starts a new Event. At most ``max_pending`` writes wait; beyond that the oldest are
dropped (and counted in ``dropped``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..core.backoff import Backoff
from ..core.errors import ApiError, KubeError, NotFound
from ..core.objects import accessor_of
from ..core.params import PatchType
from ..kinds import CORE_V1_EVENTS, EVENTS_V1_EVENTS, descriptor_for_model
from ..models import format_time
from .clock import MONOTONIC, Clock

if TYPE_CHECKING:
    from ..api.client import Client

__all__ = ["EventRecorder", "object_reference"]

log = logging.getLogger("kubeasync.events")

FINISH_AFTER = 6 * 60.0
HEARTBEAT = 30 * 60.0
MAX_NOTE_BYTES = 1024
EventApi = Literal["auto", "events.k8s.io/v1", "v1"]

_REFERENCE_FIELDS = ("kind", "apiVersion", "name", "namespace", "uid", "resourceVersion",
                     "fieldPath")


def object_reference(obj: object, *, kind: str | None = None,
                     api_version: str | None = None) -> dict[str, str]:
    """An ObjectReference (as a dict of wire names) to a model instance or a dict.

    ``kind``/``apiVersion`` come from the object, else from the built-in kind its model
    belongs to, else from the arguments; ``ValueError`` when none of them says."""
    if isinstance(obj, Mapping) and "metadata" not in obj and "name" in obj:
        return {k: str(obj[k]) for k in _REFERENCE_FIELDS if obj.get(k)}  # a reference
    if hasattr(obj, "field_path") and not hasattr(obj, "metadata"):  # an ObjectReference
        data = msgspec.to_builtins(obj)
        return {k: str(data[k]) for k in _REFERENCE_FIELDS if data.get(k)}
    if isinstance(obj, Mapping):
        kind = kind or obj.get("kind")
        api_version = api_version or obj.get("apiVersion")
    else:
        kind = kind or getattr(obj, "kind", None)
        api_version = api_version or getattr(obj, "api_version", None)
        if not kind or not api_version:
            descriptor = descriptor_for_model(type(obj))
            if descriptor is not None:
                kind = kind or descriptor.kind
                api_version = api_version or descriptor.api_version
    if not kind or not api_version:
        raise ValueError(
            f"cannot tell the kind and apiVersion of {type(obj).__name__} object: give"
            " kind= and api_version= (objects read from lists carry neither)"
        )
    (namespace, name), uid, version = accessor_of(obj).identity(obj)
    if not name:
        raise ValueError("the object has no metadata.name")
    reference = {"kind": kind, "apiVersion": api_version, "name": name, "namespace": namespace,
                 "uid": uid or "", "resourceVersion": version or ""}
    return {k: v for k, v in reference.items() if v}


def _micro(wall: float) -> str:
    return format_time(datetime.fromtimestamp(wall, timezone.utc), micro=True)


def _seconds(wall: float) -> str:
    return format_time(datetime.fromtimestamp(wall, timezone.utc))


def _truncate(note: str) -> str:
    data = note.encode()
    if len(data) <= MAX_NOTE_BYTES:
        return note
    return data[:MAX_NOTE_BYTES - 3].decode(errors="ignore") + "..."


@dataclass
class _Series:
    """One aggregated event: what is written, and what the server holds of it."""

    regarding: dict[str, str]
    related: dict[str, str] | None
    type: str
    reason: str
    action: str
    note: str
    first_wall: float
    last_wall: float
    last_seen: float  # monotonic
    count: int = 1
    written_count: int = 0  # what the server holds (0: nothing yet)
    name: str | None = None
    namespace: str = "default"
    last_written: float = -math.inf  # monotonic
    queued: bool = False
    attempts: int = 0


class EventRecorder:
    """Record Events about objects (see the module docstring).

    Args:
        kube: the client.
        controller: the reporting controller (``reportingController``; core/v1:
            ``source.component`` and ``reportingComponent``), e.g. ``"example.com/websites"``.
        instance: the reporting instance (default: ``"{controller}-{hostname}"``).
        api: ``"auto"`` (events.k8s.io/v1 where served), ``"events.k8s.io/v1"`` or ``"v1"``.
        finish_after: seconds without a repeat after which a series ends.
        heartbeat: seconds between writes of a growing series' count.
        max_pending: writes that may wait before the oldest are dropped.
        retries: attempts per write while the server is unreachable or overloaded.
        clock: the monotonic time source.
    """

    def __init__(
        self,
        kube: Client,
        controller: str,
        *,
        instance: str | None = None,
        api: EventApi = "auto",
        finish_after: float = FINISH_AFTER,
        heartbeat: float = HEARTBEAT,
        max_pending: int = 1000,
        retries: int = 12,
        clock: Clock = MONOTONIC,
    ) -> None:
        if not isinstance(controller, str) or not controller or len(controller) > 128:
            raise ValueError(f"controller must be a non-empty str of at most 128 characters,"
                             f" got {controller!r}")
        if api not in ("auto", "events.k8s.io/v1", "v1"):
            raise ValueError(f"api must be 'auto', 'events.k8s.io/v1' or 'v1', got {api!r}")
        self._kube = kube
        self.controller = controller
        self.instance = (instance if instance is not None
                         else f"{controller}-{socket.gethostname()}")[:128]
        self._wanted_api = api
        self.api: str | None = None if api == "auto" else api
        """The Events API in use (``None`` until the first write found out)."""
        self.finish_after = float(finish_after)
        self.heartbeat = float(heartbeat)
        self.max_pending = max_pending
        self.retries = retries
        self._clock = clock
        self._series: dict[tuple[Any, ...], _Series] = {}
        self._pending: collections.deque[_Series] = collections.deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._backoff = Backoff(initial=0.5, maximum=10.0)
        self.written = 0
        """Writes that succeeded (creates and updates)."""
        self.dropped = 0
        """Events or updates given up (refused, too many retries, or over ``max_pending``)."""

    def __repr__(self) -> str:
        return f"<EventRecorder {self.controller} api={self.api} pending={len(self._pending)}>"

    # ------------------------------------------------------------ recording

    def normal(self, regarding: object, reason: str, note: str = "", *,
               action: str | None = None, related: object | None = None) -> None:
        """Record a ``Normal`` event (see :meth:`event`)."""
        self.event(regarding, "Normal", reason, note, action=action, related=related)

    def warning(self, regarding: object, reason: str, note: str = "", *,
                action: str | None = None, related: object | None = None) -> None:
        """Record a ``Warning`` event (see :meth:`event`)."""
        self.event(regarding, "Warning", reason, note, action=action, related=related)

    def event(self, regarding: object, type: str, reason: str, note: str = "", *,
              action: str | None = None, related: object | None = None) -> None:
        """Record an event about ``regarding`` (a model instance, a dict, or an
        ObjectReference): ``type`` is ``"Normal"`` or ``"Warning"``, ``reason`` a short
        CamelCase word, ``note`` the human-readable text, ``action`` what was done
        (default: the reason). Returns at once; the write happens in the background.

        Bad arguments raise ``ValueError`` (they are the caller's bugs); nothing else does.
        """
        if type not in ("Normal", "Warning"):
            raise ValueError(f"type must be 'Normal' or 'Warning', got {type!r}")
        if not isinstance(reason, str) or not reason or len(reason) > 128:
            raise ValueError(f"reason must be a non-empty str of at most 128 characters,"
                             f" got {reason!r}")
        if not isinstance(note, str):
            raise ValueError(f"note must be a str, got {note!r}")
        action = action or reason
        if not isinstance(action, str) or len(action) > 128:
            raise ValueError(f"action must be a str of at most 128 characters, got {action!r}")
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        ref = object_reference(regarding)
        rel = object_reference(related) if related is not None else None
        identity = {k: v for k, v in ref.items() if k != "resourceVersion"}
        key = (tuple(sorted(identity.items())),
               tuple(sorted(rel.items())) if rel is not None else None, type, reason, action)
        now, wall = self._clock.now(), time.time()
        series = self._series.get(key)
        if series is not None and now - series.last_seen < self.finish_after:
            series.count += 1
            series.last_wall, series.last_seen = wall, now
            if series.count == 2:
                self._queue(series)  # the series starts: written at once
            return
        if series is not None and series.count != series.written_count:
            self._queue(series)  # the old series ends with its final count
        series = _Series(ref, rel, type, reason, action, _truncate(note), wall, wall, now,
                         namespace=ref.get("namespace") or "default")
        self._series[key] = series
        self._queue(series)

    def _queue(self, series: _Series) -> None:
        if not series.queued:
            if len(self._pending) >= self.max_pending:
                dropped = self._pending.popleft()
                dropped.queued = False
                self.dropped += 1
            series.queued = True
            self._pending.append(series)
        self._idle.clear()
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._write_loop(),
                                                                name=repr(self))

    # ------------------------------------------------------------ writing

    async def flush(self) -> None:
        """Write every series' current count, and wait until nothing is pending."""
        for series in self._series.values():
            if series.count != series.written_count:
                self._queue(series)
        await self._idle.wait()

    async def aclose(self) -> None:
        """Flush, then stop the background task. Safe to call twice."""
        if not self._closed:
            await self.flush()
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def __aenter__(self) -> EventRecorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _write_loop(self) -> None:
        clock = self._clock
        while True:
            self._expire()
            if self._pending:
                series = self._pending.popleft()
                series.queued = False
                await self._write(series)
                continue
            self._idle.set()
            self._wakeup.clear()
            next_due = self._next_due()
            sleeper = asyncio.ensure_future(clock.sleep(max(0.0, next_due - clock.now()))
                                            if next_due < math.inf else asyncio.Event().wait())
            waker = asyncio.ensure_future(self._wakeup.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
            if sleeper.done() and not sleeper.cancelled():
                self._heartbeat()

    def _next_due(self) -> float:
        dues = []
        for series in self._series.values():
            dues.append(series.last_seen + self.finish_after)
            if series.count != series.written_count:
                dues.append(series.last_written + self.heartbeat)
        return min(dues) if dues else math.inf

    def _heartbeat(self) -> None:
        now = self._clock.now()
        for series in self._series.values():
            if series.count != series.written_count and now >= series.last_written \
                    + self.heartbeat:
                self._queue(series)

    def _expire(self) -> None:
        """Series without a repeat for ``finish_after``: write the final count, forget."""
        now = self._clock.now()
        for key, series in list(self._series.items()):
            if now - series.last_seen >= self.finish_after:
                if series.count != series.written_count and series.attempts == 0:
                    self._queue(series)
                    continue
                if not series.queued:
                    del self._series[key]

    async def _write(self, series: _Series) -> None:
        while True:
            try:
                await self._send(series)
            except ApiError as exc:
                if exc.code == 429 or exc.code >= 500:
                    if await self._retry(series, exc):
                        continue
                    return
                log.warning("%r: the server refused an event (%s %s about %s): %s", self,
                            series.type, series.reason, series.regarding.get("name"), exc)
                self.dropped += 1
                series.written_count = series.count  # do not try this one again
                return
            except KubeError as exc:
                if await self._retry(series, exc):
                    continue
                return
            series.attempts = 0
            series.last_written = self._clock.now()
            self.written += 1
            return

    async def _retry(self, series: _Series, exc: KubeError) -> bool:
        series.attempts += 1
        if series.attempts >= self.retries:
            log.warning("%r: giving up on an event after %d attempts: %s", self,
                        series.attempts, exc)
            self.dropped += 1
            series.attempts = 0
            series.written_count = series.count
            return False
        retry_after = exc.retry_after if isinstance(exc, ApiError) else None
        await self._clock.sleep(self._backoff.delay(series.attempts - 1, retry_after))
        return True

    async def _events_api(self) -> str:
        if self.api is None:
            try:
                versions = await self._kube.discovery.versions("events.k8s.io")
            except KubeError:
                versions = ()
            self.api = "events.k8s.io/v1" if "v1" in versions else "v1"
        return self.api

    async def _send(self, series: _Series) -> None:
        api_version = await self._events_api()
        modern = api_version == "events.k8s.io/v1"
        api = self._kube.resource(EVENTS_V1_EVENTS if modern else CORE_V1_EVENTS)
        count = series.count
        if series.name is not None and series.written_count > 0:
            patch: dict[str, Any]
            if modern:
                patch = {"series": {"count": count,
                                    "lastObservedTime": _micro(series.last_wall)}}
            else:
                patch = {"count": count, "lastTimestamp": _seconds(series.last_wall)}
            try:
                await api.patch(series.name, patch, namespace=series.namespace,
                                patch_type=PatchType.MERGE)
                series.written_count = count
                return
            except NotFound:
                pass  # deleted meanwhile (Events expire): create it again
        name = _event_name(series.regarding.get("name", "event"), series.first_wall)
        body = self._body(series, name, modern, count)
        await api.create(body, namespace=series.namespace)
        series.name = name
        series.written_count = count

    def _body(self, series: _Series, name: str, modern: bool, count: int) -> dict[str, Any]:
        metadata = {"name": name, "namespace": series.namespace}
        if modern:
            body: dict[str, Any] = {
                "metadata": metadata, "eventTime": _micro(series.first_wall),
                "reportingController": self.controller, "reportingInstance": self.instance,
                "action": series.action, "reason": series.reason, "type": series.type,
                "regarding": series.regarding, "note": series.note,
            }
            if series.related is not None:
                body["related"] = series.related
            if count > 1:
                body["series"] = {"count": count, "lastObservedTime": _micro(series.last_wall)}
            return body
        body = {
            "metadata": metadata, "involvedObject": series.regarding, "reason": series.reason,
            "message": series.note, "type": series.type, "count": count,
            "firstTimestamp": _seconds(series.first_wall),
            "lastTimestamp": _seconds(series.last_wall),
            "source": {"component": self.controller, "host": socket.gethostname()},
            "reportingComponent": self.controller, "reportingInstance": self.instance,
            "action": series.action,
        }
        if series.related is not None:
            body["related"] = series.related
        return body


def _event_name(regarding: str, wall: float) -> str:
    # client-go's: "<object name>.<unix nanoseconds in hex>", cut to fit 253 characters.
    suffix = f".{int(wall * 1e9):x}"
    return regarding[: 253 - len(suffix)].rstrip(".-") + suffix
