"""The informer's store: the objects of one collection by key, with indexes.

:meth:`Store.apply` applies one batch of watch events (a live event, or a whole resync) in
one synchronous step and returns the :class:`Change` objects it made, so that nothing can
observe a half-applied batch.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Generic, Literal, TypeVar

import msgspec

from ..core.objects import Accessor, Key
from ..streams.events import DeletedEvent, Event

__all__ = ["Change", "ChangeType", "IndexFunc", "Store"]

T = TypeVar("T")

ChangeType = Literal["added", "updated", "deleted"]

IndexFunc = Callable[[T], Iterable[str]]
"""An index function: the index values of an object (a list of str, possibly empty), as
client-go's ``IndexFunc``."""


class Change(msgspec.Struct, Generic[T], frozen=True, gc=False):
    """One change of an informer's store.

    Attributes:
        type: ``"added"``, ``"updated"`` or ``"deleted"``.
        object: the new state; for ``"deleted"`` the last state.
        old: for ``"updated"`` the state before; ``None`` otherwise.
        key: ``(namespace, name)`` (``""`` as namespace for cluster-scoped objects).
    """

    type: ChangeType
    object: T
    old: T | None
    key: Key

    @property
    def namespace(self) -> str | None:
        return self.key[0] or None

    @property
    def name(self) -> str:
        return self.key[1]


class Index(Generic[T]):
    __slots__ = ("fn", "name", "values")

    def __init__(self, name: str, fn: IndexFunc[T]) -> None:
        self.name = name
        self.fn = fn
        self.values: dict[str, set[Key]] = {}

    def values_of(self, obj: T) -> set[str]:
        result = self.fn(obj)
        if isinstance(result, str):
            raise TypeError(
                f"index function {self.name!r} returned the str {result!r};"
                " it must return a list of str (e.g. [value])"
            )
        values = set(result)
        for value in values:
            if not isinstance(value, str):
                raise TypeError(
                    f"index function {self.name!r} returned {value!r}: index values are str"
                )
        return values

    def update(self, key: Key, old: T | None, new: T | None) -> None:
        before = self.values_of(old) if old is not None else set()
        after = self.values_of(new) if new is not None else set()
        for value in before - after:
            keys = self.values[value]
            keys.discard(key)
            if not keys:
                del self.values[value]
        for value in after - before:
            self.values.setdefault(value, set()).add(key)


class Store(Generic[T]):
    """Objects by ``(namespace, name)``, and the named indexes over them."""

    __slots__ = ("_access", "indexes", "objects")

    def __init__(self, access: Accessor) -> None:
        self._access = access
        self.objects: dict[Key, T] = {}
        self.indexes: dict[str, Index[T]] = {}

    def clear(self) -> None:
        self.objects.clear()
        for index in self.indexes.values():
            index.values.clear()

    def add_index(self, name: str, fn: IndexFunc[T]) -> bool:
        """Add an index built over the current objects; False if ``name`` exists with
        this very function (nothing to do); ``ValueError`` if with another."""
        existing = self.indexes.get(name)
        if existing is not None:
            if existing.fn is fn or existing.fn == fn:
                return False
            raise ValueError(f"name: the index {name!r} already exists with another function")
        index: Index[T] = Index(name, fn)
        for key, obj in self.objects.items():
            index.update(key, None, obj)
        self.indexes[name] = index
        return True

    def by_index(self, name: str, value: str) -> builtins.list[T]:
        index = self.indexes.get(name) if isinstance(name, str) else None
        if index is None:
            raise ValueError(f"name: there is no index {name!r}; add it with add_index()")
        if not isinstance(value, str):
            raise ValueError(f"value must be a str, got {value!r}")
        objects = self.objects
        return [objects[key] for key in index.values.get(value, ())]

    def apply(self, batch: builtins.list[Event[T]]) -> builtins.list[Change[T]]:
        """Apply one batch of events; return the changes, in order. Synchronous on
        purpose: nothing else runs until the whole batch is applied."""
        objects = self.objects
        indexes = self.indexes.values()
        key_of = self._access.key
        changes: builtins.list[Change[T]] = []
        for event in batch:
            obj = event.object
            key = key_of(obj)
            old = objects.get(key)
            if type(event) is DeletedEvent:
                if old is None:
                    continue
                del objects[key]
                for index in indexes:
                    index.update(key, old, None)
                # A deletion inferred after a relist carries a tombstone: the store holds
                # the last state anyone saw, which is the best final state there is.
                final = old if event.final_state_unknown else obj
                changes.append(Change("deleted", final, None, key))
            else:
                objects[key] = obj
                for index in indexes:
                    index.update(key, old, obj)
                changes.append(Change("added" if old is None else "updated", obj, old, key))
        return changes
