"""The in-memory object store: one global resourceVersion, bounded history, listeners.

Objects are plain JSON dicts (unknown fields survive, as in etcd) and are never mutated
after they are stored: every write stores a new dict, so history entries and watch events
can share them safely. The history is what watches resume from and what consistent
list pages (continue tokens, ``resourceVersionMatch=Exact``) are rebuilt from; once an
event falls off the history, resourceVersions up to it are "compacted" and answer 410.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

_ENCODER = msgspec.json.Encoder()


def clone(obj: Any) -> Any:
    """A deep copy of JSON data (faster than copy.deepcopy for this shape of data)."""
    return msgspec.json.decode(_ENCODER.encode(obj))


@dataclass(frozen=True)
class Event:
    """One committed change. ``obj`` is the new state (None when deleted), ``old`` the
    previous one (None when added)."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    key: Key
    obj: Obj | None
    old: Obj | None


class Expired(Exception):
    """The requested resourceVersion is older than the history reaches."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Store:
    def __init__(self, history: int = 1000) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.rv = 1
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._history: deque[Event] = deque()
        self._history_limit = history
        # Every resourceVersion >= horizon can still be served from history.
        self.horizon = 1
        self._listeners: list[Callable[[Event], None]] = []

    # ------------------------------------------------------------ reads

    def get(self, resource: str, key: Key) -> Obj | None:
        return self._objects.get(resource, {}).get(key)

    def objects(self, resource: str) -> dict[Key, Obj]:
        return self._objects.setdefault(resource, {})

    def sorted_items(self, resource: str, namespace: str | None) -> list[tuple[Key, Obj]]:
        items = self._objects.get(resource, {})
        return sorted(
            (kv for kv in items.items() if namespace is None or kv[0][0] == namespace),
            key=lambda kv: kv[0],
        )

    def snapshot(self, resource: str, rv: int) -> dict[Key, Obj]:
        """The resource's objects as they were at ``rv`` (rebuilt by undoing history)."""
        self.check(rv)
        state = dict(self._objects.get(resource, {}))
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.resource != resource:
                continue
            if event.old is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.old
        return state

    def events_after(self, rv: int) -> Iterator[Event]:
        self.check(rv)
        for event in self._history:
            if event.rv > rv:
                yield event

    def check(self, rv: int) -> None:
        if rv < self.horizon:
            raise Expired(rv, self.horizon + 1)

    # ------------------------------------------------------------ writes

    def commit(self, resource: str, key: Key, obj: Obj | None) -> Event:
        """Store ``obj`` (or delete the key when None) at the next resourceVersion.

        ``obj`` must be a fresh dict; its ``metadata.resourceVersion`` is set here.
        """
        objects = self._objects.setdefault(resource, {})
        old = objects.get(key)
        self.rv += 1
        if obj is None:
            if old is None:
                raise KeyError(key)
            del objects[key]
            kind = "DELETED"
        else:
            obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            objects[key] = obj
            kind = "ADDED" if old is None else "MODIFIED"
        event = Event(self.rv, kind, resource, key, obj, old)
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self.horizon = self._history.popleft().rv
        for listener in list(self._listeners):
            listener(event)
        return event

    def compact(self) -> None:
        """Forget all history: every resourceVersion handed out so far answers 410.

        The counter moves on by one, so a client that relists after the 410 gets a
        resourceVersion it can watch from (rather than the expired one again)."""
        self._history.clear()
        self.rv += 1
        self.horizon = self.rv

    # ------------------------------------------------------------ listeners

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
