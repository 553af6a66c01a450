"""Watch events: one msgspec Struct per event type, tagged by ``type``.

An event line is ``{"type": "...", "object": {...}}`` and the type of ``object`` depends on
``type``: the resource's model for ADDED/MODIFIED/DELETED/BOOKMARK, a ``Status`` for ERROR.
One decoder per model decodes the union of them: msgspec reads the tag first, then decodes
``object`` straight into the right type, in one pass over the bytes, with no intermediate
dict or ``msgspec.Raw`` (the API server writes ``type`` before ``object``; if a server did
not, msgspec would still decode correctly, with a little look-ahead).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, TypeVar, Union

import msgspec

from ..core.errors import ApiError, error_from_status
from ..models import Status

__all__ = [
    "AddedEvent",
    "BookmarkEvent",
    "DeletedEvent",
    "ErrorEvent",
    "Event",
    "EventType",
    "ModifiedEvent",
    "StreamEvent",
    "WatchEvent",
    "event_decoder",
]

T = TypeVar("T")

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


class WatchEvent(msgspec.Struct, Generic[T], tag_field="type", frozen=True, gc=False):
    """One watch event: ``event.type`` and ``event.object``.

    Each type is its own subclass (:class:`AddedEvent`, :class:`ModifiedEvent`,
    :class:`DeletedEvent`, :class:`BookmarkEvent`, :class:`ErrorEvent`), so both
    ``event.type == "ADDED"`` and ``isinstance(event, AddedEvent)`` work.

    ``object`` is the resource's model for ADDED, MODIFIED and DELETED (for DELETED, its
    last state), and for BOOKMARK an instance of the model in which only ``kind``,
    ``apiVersion`` and ``metadata.resourceVersion`` are set. ERROR events (only from
    a raw :class:`~kubeasync.WatchStream`) carry a :class:`~kubeasync.models.Status`.
    Annotate a variable with :data:`Event` (the union of the four), not with this base
    class, so that checking ``event.type`` narrows it.
    """

    object: T
    type: ClassVar[EventType]


class AddedEvent(WatchEvent[T], tag="ADDED", frozen=True):
    """An object was created (or, during a watcher's resync, first seen)."""

    type: ClassVar[Literal["ADDED"]] = "ADDED"


class ModifiedEvent(WatchEvent[T], tag="MODIFIED", frozen=True):
    """An object changed; ``object`` is its new state."""

    type: ClassVar[Literal["MODIFIED"]] = "MODIFIED"


class DeletedEvent(WatchEvent[T], tag="DELETED", frozen=True):
    """An object was deleted; ``object`` is its last state.

    ``final_state_unknown`` is True for a deletion the watcher inferred after a relist (the
    object was gone from the new list): its last state was never seen, and ``object`` is a
    tombstone holding only ``kind``, ``apiVersion`` and the ``metadata`` name, namespace,
    uid and last resourceVersion the watcher saw. Keep the objects yourself, or use an
    informer, when you need their final state.
    """

    type: ClassVar[Literal["DELETED"]] = "DELETED"
    final_state_unknown: bool = False


class BookmarkEvent(WatchEvent[T], tag="BOOKMARK", frozen=True):
    """The collection reached ``object.metadata.resource_version`` (nothing else is set)."""

    type: ClassVar[Literal["BOOKMARK"]] = "BOOKMARK"


class ErrorEvent(WatchEvent[Status], tag="ERROR", frozen=True):
    """The server reported an error inside the stream (e.g. 410 Expired), then ended it."""

    type: ClassVar[Literal["ERROR"]] = "ERROR"

    def to_error(self) -> ApiError:
        """The typed :class:`~kubeasync.ApiError` this event stands for (410 -> ``Gone``)."""
        return error_from_status(self.object)


Event = Union[AddedEvent[T], ModifiedEvent[T], DeletedEvent[T], BookmarkEvent[T]]  # noqa: UP007
"""What a resilient watch yields. A union, so that ``event.type == "DELETED"`` narrows
``event`` to :class:`DeletedEvent` (and ``event.final_state_unknown`` type-checks)."""

StreamEvent = Union[AddedEvent[T], ModifiedEvent[T], DeletedEvent[T], BookmarkEvent[T],  # noqa: UP007
                    ErrorEvent]
"""What one raw watch request yields: the events above, or the server's ERROR."""


_EVENT_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def event_decoder(model: type[T]) -> msgspec.json.Decoder[StreamEvent[T]]:
    """The shared decoder of watch event lines for a model (built once, reused)."""
    decoder = _EVENT_DECODERS.get(model)
    if decoder is None:
        obj: Any = dict[str, Any] if model is dict else model
        union = Union[  # noqa: UP007 - a runtime type expression built from a variable
            AddedEvent[obj], ModifiedEvent[obj], DeletedEvent[obj], BookmarkEvent[obj], ErrorEvent
        ]
        decoder = msgspec.json.Decoder(union)
        _EVENT_DECODERS[model] = decoder
    return decoder
