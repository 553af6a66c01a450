"""The informer's store: the objects of one collection by key, with indexes.

:meth:`Store.apply` applies one batch of watch events (a live event, or a whole resync) in
one synchronous step and returns the :class:`Change` objects it made, so that nothing can
observe a half-applied batch.

How objects are kept (lean)
---------------------------
A decoded pod of ~6 KB of JSON is ~10-17 KB of Python objects (every str, dict and list
of it, and the list page its ``fieldsV1`` views keep alive); at 100k pods that is gigabytes.
So the store keeps each object **encoded**: its JSON, deflated against a dictionary that
is the first object the store received (objects of one collection are alike: a pod of a
Deployment compresses to a few hundred bytes against another pod of it). It keeps beside
it what reads must find without decoding:

- the labels, as one shared dict per distinct label set (the pods of one ReplicaSet share
  one), grouped by label set, so that ``list(label_selector=...)`` evaluates the selector
  once per distinct label set and decodes only what it returns;
- each index's values per key, so that updating an index never decodes the old state.

Reads decode on access (``get`` ~30-60 us for such a pod), through a small LRU of decoded
objects: the objects most recently stored or read are returned as the very same instance,
and an object handed to ``changes()`` consumers is the one ``get()`` returns right after.
What users can rely on: ``get()`` and ``list()`` return objects *equal* to what the server
sent (after the transform); they are *identical* between two reads only while in the
cache, so mutating a returned object never changes the store (it never did safely).
"""

from __future__ import annotations

import builtins
import collections
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

import msgspec

from ..core.codec import decoder_for, gc_paused
from ..core.objects import Accessor, Key
from ..core.selectors import LabelSelector
from ..streams.events import DeletedEvent, Event

__all__ = ["DEFAULT_CACHE_SIZE", "Change", "ChangeType", "IndexFunc", "Store"]

T = TypeVar("T")

ChangeType = Literal["added", "updated", "deleted"]

IndexFunc = Callable[[T], Iterable[str]]
"""An index function: the index values of an object (a list of str, possibly empty), as
client-go's ``IndexFunc``."""

DEFAULT_CACHE_SIZE = 1024
"""Decoded objects an informer's store keeps at hand (the most recently stored or read)."""

# Deflate with a 16 KiB window and a small state: measured here as the best trade-off
# between compressed size and the cost of copying the primed compressor per object.
_WBITS = -14
_MEM_LEVEL = 5
_LEVEL = 1
_NO_LABELS: Mapping[str, str] = {}
_GC_PAUSE_BATCH = 256

_encode = msgspec.json.Encoder().encode


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
    __slots__ = ("by_key", "fn", "name", "values")

    def __init__(self, name: str, fn: IndexFunc[T]) -> None:
        self.name = name
        self.fn = fn
        self.values: dict[str, set[Key]] = {}
        self.by_key: dict[Key, frozenset[str]] = {}

    def values_of(self, obj: T) -> frozenset[str]:
        result = self.fn(obj)
        if isinstance(result, str):
            raise TypeError(
                f"index function {self.name!r} returned the str {result!r};"
                " it must return a list of str (e.g. [value])"
            )
        values = frozenset(result)
        for value in values:
            if not isinstance(value, str):
                raise TypeError(
                    f"index function {self.name!r} returned {value!r}: index values are str"
                )
        return values

    def update(self, key: Key, new: T | None) -> None:
        before = self.by_key.get(key, frozenset())
        after = self.values_of(new) if new is not None else frozenset()
        for value in before - after:
            keys = self.values[value]
            keys.discard(key)
            if not keys:
                del self.values[value]
        for value in after - before:
            self.values.setdefault(value, set()).add(key)
        if after:
            self.by_key[key] = after
        else:
            self.by_key.pop(key, None)

    def clear(self) -> None:
        self.values.clear()
        self.by_key.clear()


class _LabelGroup:
    """The keys of the objects that carry one label set (in the order they were stored),
    and that set (shared)."""

    __slots__ = ("keys", "labels")

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = labels
        self.keys: dict[Key, None] = {}


class _Codec:
    """Deflates JSON against a dictionary: the first object this store encoded."""

    __slots__ = ("_compress", "_decompress")

    def __init__(self, dictionary: bytes) -> None:
        self._compress = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL,
                                          zlib.Z_DEFAULT_STRATEGY, dictionary)
        self._decompress = zlib.decompressobj(_WBITS, zdict=dictionary)

    def pack(self, data: bytes) -> bytes:
        # Copying the primed compressor costs far less than loading the dictionary again.
        compressor = self._compress.copy()
        return compressor.compress(data) + compressor.flush()

    def unpack(self, packed: bytes) -> bytes:
        return self._decompress.copy().decompress(packed)


class Store(Generic[T]):
    """Objects by ``(namespace, name)``, kept encoded, and the named indexes over them."""

    __slots__ = ("_access", "_cache", "_cache_size", "_codec", "_decode", "_groups",
                 "_label_sets", "_labels", "_packed", "indexes")

    def __init__(self, access: Accessor, model: type[Any] = dict,
                 *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._access = access
        self._decode: Callable[[bytes], Any] = decoder_for(model).decode
        self._codec: _Codec | None = None
        self._packed: dict[Key, bytes] = {}
        self._labels: dict[Key, Mapping[str, str]] = {}
        # One shared dict per distinct label set, and the keys that carry it.
        self._label_sets: dict[frozenset[tuple[str, str]], Mapping[str, str]] = {}
        self._groups: dict[int, _LabelGroup] = {}
        self._cache: collections.OrderedDict[Key, T] = collections.OrderedDict()
        self._cache_size = cache_size
        self.indexes: dict[str, Index[T]] = {}

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, key: object) -> bool:
        return key in self._packed

    def keys(self) -> builtins.list[Key]:
        return builtins.list(self._packed)

    def get(self, key: Key) -> T | None:
        """The object stored under ``key`` (decoded, or the cached instance), or None."""
        cache = self._cache
        obj = cache.get(key)
        if obj is not None:
            cache.move_to_end(key)
            return obj
        packed = self._packed.get(key)
        if packed is None:
            return None
        obj = self._unpack(packed)
        self._remember(key, obj)
        return obj

    def objects(self, keys: Iterable[Key] | None = None) -> builtins.list[T]:
        """The objects of ``keys`` (all by default), decoded; the cache is read, not
        filled, so that one large read does not push out what is in use."""
        cache, packed = self._cache, self._packed
        if keys is None:
            keys = packed
        out: builtins.list[T] = []
        # Decoding many objects allocates many: the GC's passes over them would cost more
        # than the decoding (see kubeasync.core.codec).
        with gc_paused():
            for key in keys:
                obj = cache.get(key)
                if obj is None:
                    data = packed.get(key)
                    if data is None:
                        continue
                    obj = self._unpack(data)
                out.append(obj)
        return out

    def select(self, selector: LabelSelector | None, namespace: str | None = None,
               ) -> builtins.list[Key]:
        """The keys of the objects in ``namespace`` (any if None) whose labels match."""
        if selector is None:
            keys: Iterable[Key] = self._packed
        else:
            matched = [group for group in self._groups.values()
                       if selector.matches(group.labels)]
            if len(matched) == 1:
                keys = matched[0].keys
            else:
                # In the order the objects were stored, as a scan of the store would be.
                shared = {id(group.labels) for group in matched}
                keys = [key for key, labels in self._labels.items() if id(labels) in shared]
        if namespace is None:
            return builtins.list(keys)
        return [key for key in keys if key[0] == namespace]

    def snapshot(self) -> Sequence[Change[T]]:
        """Every stored object as an ``added`` change, decoded as it is read (a replay of
        100k objects costs nothing until a consumer reads it)."""
        return _Replay(self, builtins.list(self._packed.items()))

    def labels_of(self, key: Key) -> Mapping[str, str] | None:
        return self._labels.get(key) if key in self._packed else None

    # ------------------------------------------------------------------ writes

    def clear(self) -> None:
        self._packed.clear()
        self._labels.clear()
        self._label_sets.clear()
        self._groups.clear()
        self._cache.clear()
        for index in self.indexes.values():
            index.clear()

    def add_index(self, name: str, fn: IndexFunc[T]) -> bool:
        """Add an index built over the current objects; False if ``name`` exists with
        this very function (nothing to do); ``ValueError`` if with another."""
        existing = self.indexes.get(name)
        if existing is not None:
            if existing.fn is fn or existing.fn == fn:
                return False
            raise ValueError(f"name: the index {name!r} already exists with another function")
        index: Index[T] = Index(name, fn)
        for key in self._packed:
            obj = self.get(key)
            index.update(key, obj)
        self.indexes[name] = index
        return True

    def by_index(self, name: str, value: str) -> builtins.list[T]:
        index = self.indexes.get(name) if isinstance(name, str) else None
        if index is None:
            raise ValueError(f"name: there is no index {name!r}; add it with add_index()")
        if not isinstance(value, str):
            raise ValueError(f"value must be a str, got {value!r}")
        return self.objects(index.values.get(value, ()))

    def apply(self, batch: builtins.list[Event[T]]) -> builtins.list[Change[T]]:
        """Apply one batch of events; return the changes, in order. Synchronous on
        purpose: nothing else runs until the whole batch is applied."""
        if len(batch) < _GC_PAUSE_BATCH:
            return self._apply(batch)
        # A resync's batch holds every object decoded: the GC's passes over them would
        # cost more than encoding them.
        with gc_paused():
            return self._apply(batch)

    def _apply(self, batch: builtins.list[Event[T]]) -> builtins.list[Change[T]]:
        packed = self._packed
        indexes = self.indexes.values()
        key_of = self._access.key
        changes: builtins.list[Change[T]] = []
        for event in batch:
            obj = event.object
            key = key_of(obj)
            if type(event) is DeletedEvent:
                if key not in packed:
                    continue
                # A deletion inferred after a relist carries a tombstone: the store holds
                # the last state anyone saw, which is the best final state there is.
                final = self.get(key) if event.final_state_unknown else obj
                assert final is not None
                self._forget(key)
                for index in indexes:
                    index.update(key, None)
                changes.append(Change("deleted", final, None, key))
            else:
                old = self.get(key) if key in packed else None
                self._put(key, obj)
                for index in indexes:
                    index.update(key, obj)
                changes.append(Change("added" if old is None else "updated", obj, old, key))
        return changes

    # ------------------------------------------------------------------ representation

    def _unpack(self, packed: bytes) -> T:
        assert self._codec is not None
        obj: T = self._decode(self._codec.unpack(packed))
        return obj

    def _remember(self, key: Key, obj: T) -> None:
        cache = self._cache
        cache[key] = obj
        cache.move_to_end(key)
        if len(cache) > self._cache_size:
            cache.popitem(last=False)

    def _put(self, key: Key, obj: T) -> None:
        data = _encode(obj)
        codec = self._codec
        if codec is None:
            codec = self._codec = _Codec(data)
        self._packed[key] = codec.pack(data)
        self._set_labels(key, self._access.labels(obj) or _NO_LABELS)
        if self._cache_size:
            self._remember(key, obj)

    def _forget(self, key: Key) -> None:
        del self._packed[key]
        self._cache.pop(key, None)
        labels = self._labels.pop(key)
        group = self._groups[id(labels)]
        del group.keys[key]
        if not group.keys:
            del self._groups[id(labels)]
            del self._label_sets[frozenset(labels.items())]

    def _set_labels(self, key: Key, labels: Mapping[str, str]) -> None:
        previous = self._labels.get(key)
        if previous is not None:
            if previous == labels:
                return
            group = self._groups[id(previous)]
            del group.keys[key]
            if not group.keys:
                del self._groups[id(previous)]
                del self._label_sets[frozenset(previous.items())]
        items = frozenset(labels.items())
        shared = self._label_sets.get(items)
        if shared is None:
            # A copy of its own: the object's dict may be mutated by whoever holds it.
            shared = self._label_sets[items] = {_intern(k): _intern(v)
                                                for k, v in labels.items()}
            self._groups[id(shared)] = _LabelGroup(shared)
        self._labels[key] = shared
        self._groups[id(shared)].keys[key] = None


def _intern(value: str) -> str:
    return sys.intern(value) if type(value) is str else value


class _Replay(Sequence[Change[T]], Generic[T]):
    """The store's objects at one moment as ``added`` changes, decoded when read."""

    __slots__ = ("_items", "_store")

    def __init__(self, store: Store[T], items: builtins.list[tuple[Key, bytes]]) -> None:
        self._store = store
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> Change[T]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Change[T]]: ...

    def __getitem__(self, i: int | slice) -> Change[T] | Sequence[Change[T]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        key, packed = self._items[i]
        cached = self._store._cache.get(key)
        # The cached instance if it is still this state, else this state decoded.
        obj = cached if cached is not None and self._store._packed.get(key) is packed else (
            self._store._unpack(packed))
        return Change("added", obj, None, key)

    def __iter__(self) -> Iterator[Change[T]]:
        for i in range(len(self._items)):
            yield self[i]
