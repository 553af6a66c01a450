"""The one way to read an object's identity, whether it is a model instance or a dict.

Objects of typed resources are msgspec Structs (``obj.metadata.name``), those of untyped
ones plain dicts (``obj["metadata"]["name"]``). Everything that needs a key, a uid, a
resourceVersion or the labels of an object reads them through an :class:`Accessor`, picked
once per resource (:func:`accessor_for`), so the watch hot path pays no ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DICTS",
    "INITIAL_EVENTS_END",
    "STRUCTS",
    "Accessor",
    "Identity",
    "Key",
    "accessor_for",
    "accessor_of",
    "namespace_of",
    "object_key",
]

Key = tuple[str, str]
"""``(namespace, name)``; the namespace is ``""`` for cluster-scoped objects."""

Identity = tuple[Key, "str | None", "str | None"]
"""``(key, uid, resourceVersion)``."""

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
"""The annotation of the BOOKMARK that ends a watch's streamed initial state."""


class Accessor:
    """Reads the metadata of one representation of objects (Structs or dicts)."""

    __slots__ = ()

    def identity(self, obj: Any) -> Identity:
        raise NotImplementedError

    def key(self, obj: Any) -> Key:
        return self.identity(obj)[0]

    def labels(self, obj: Any) -> Mapping[str, str] | None:
        raise NotImplementedError

    def annotations(self, obj: Any) -> Mapping[str, str] | None:
        raise NotImplementedError

    def list_parts(self, page: Any) -> tuple[list[Any], str | None, str | None]:
        """A list page's items, continue token and resourceVersion."""
        raise NotImplementedError

    def bookmark(self, obj: Any) -> tuple[str | None, bool]:
        """A bookmark's resourceVersion, and whether it ends the initial events."""
        _, _, rv = self.identity(obj)
        annotations = self.annotations(obj) or {}
        return rv, annotations.get(INITIAL_EVENTS_END) == "true"


class _StructAccessor(Accessor):
    __slots__ = ()

    def identity(self, obj: Any) -> Identity:
        meta = obj.metadata
        if meta is None:
            return ("", ""), None, None
        return (meta.namespace or "", meta.name or ""), meta.uid, meta.resource_version

    def labels(self, obj: Any) -> Mapping[str, str] | None:
        meta = obj.metadata
        return meta.labels if meta is not None else None

    def annotations(self, obj: Any) -> Mapping[str, str] | None:
        meta = obj.metadata
        return meta.annotations if meta is not None else None

    def list_parts(self, page: Any) -> tuple[list[Any], str | None, str | None]:
        items = list(page.items or [])
        meta = page.metadata
        if meta is None:
            return items, None, None
        return items, meta.continue_ or None, meta.resource_version or None


class _DictAccessor(Accessor):
    __slots__ = ()

    def identity(self, obj: Any) -> Identity:
        meta = obj.get("metadata") or {}
        return (
            (meta.get("namespace") or "", meta.get("name") or ""),
            meta.get("uid"),
            meta.get("resourceVersion"),
        )

    def labels(self, obj: Any) -> Mapping[str, str] | None:
        labels: Mapping[str, str] | None = (obj.get("metadata") or {}).get("labels")
        return labels

    def annotations(self, obj: Any) -> Mapping[str, str] | None:
        annotations: Mapping[str, str] | None = (obj.get("metadata") or {}).get("annotations")
        return annotations

    def list_parts(self, page: Any) -> tuple[list[Any], str | None, str | None]:
        meta = page.get("metadata") or {}
        return (
            list(page.get("items") or []),
            meta.get("continue") or None,
            meta.get("resourceVersion") or None,
        )


STRUCTS: Accessor = _StructAccessor()
DICTS: Accessor = _DictAccessor()


def accessor_for(model: type[Any]) -> Accessor:
    """The accessor for objects decoded into ``model`` (``dict`` or a Struct type)."""
    return DICTS if issubclass(model, Mapping) else STRUCTS


def accessor_of(obj: object) -> Accessor:
    """The accessor for one object of either representation."""
    return DICTS if isinstance(obj, Mapping) else STRUCTS


def namespace_of(obj: object) -> str | None:
    """``metadata.namespace`` of a model instance, a dict, or anything shaped like one."""
    if isinstance(obj, Mapping):
        metadata = obj.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    else:
        namespace = getattr(getattr(obj, "metadata", None), "namespace", None)
    return namespace if isinstance(namespace, str) and namespace else None


def object_key(obj: object) -> Key:
    """``(namespace, name)`` of a model instance or a dict, ``""`` for what is unset (the
    namespace of a cluster-scoped object): the key informers and watchers file objects by."""
    return accessor_of(obj).key(obj)
