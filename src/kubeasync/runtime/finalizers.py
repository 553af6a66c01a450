"""The finalizer helper: add a finalizer, run cleanup when the object is deleted, remove it.

    finalizer = kubeasync.Finalizer(kube.resource(WEBSITES), "kubeasync.example/cleanup")

    async def reconcile(key: ObjectKey) -> None:
        website = controller.get(key)
        if website is not None:
            await finalizer.handle(website, apply=apply, cleanup=cleanup)

:meth:`Finalizer.handle` does what kube-rs's ``finalizer()`` does: an object that is not
being deleted gets the finalizer (if it lacks it) and then ``apply(obj)``; an object being
deleted (``deletionTimestamp`` set) that still has the finalizer gets ``cleanup(obj)``,
then the finalizer is removed, which lets the API server delete it. Cleanup must be
idempotent: if the process dies between cleanup and the removal, it runs again.

Every write is a merge patch of ``metadata.finalizers`` carrying the resourceVersion the
list was computed from (optimistic concurrency: the server answers 409 when the object
changed meanwhile). On 409 the object is read again and the change recomputed, so a
finalizer another controller added or removed meanwhile is never lost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..core.errors import Conflict, NotFound
from ..core.objects import accessor_of
from ..core.params import PatchType

if TYPE_CHECKING:
    from ..api.resource import ResourceApi

__all__ = ["Finalizer", "deletion_timestamp", "finalizers_of"]

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("kubeasync.finalizers")

_NAME = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def finalizers_of(obj: object) -> list[str]:
    """``metadata.finalizers`` of a model instance or a dict (a new list)."""
    if isinstance(obj, Mapping):
        return list((obj.get("metadata") or {}).get("finalizers") or [])
    return list(getattr(getattr(obj, "metadata", None), "finalizers", None) or [])


def deletion_timestamp(obj: object) -> str | None:
    """``metadata.deletionTimestamp``: set once the object is being deleted."""
    if isinstance(obj, Mapping):
        value = (obj.get("metadata") or {}).get("deletionTimestamp")
    else:
        value = getattr(getattr(obj, "metadata", None), "deletion_timestamp", None)
    return value if isinstance(value, str) and value else None


class Finalizer(Generic[T]):
    """One finalizer of one kind (see the module docstring).

    Args:
        api: the API of the objects (``kube.resource(WEBSITES)``).
        name: the finalizer, domain-qualified (``"example.com/cleanup"``).
        attempts: how many times a write is tried again after a 409 Conflict.
    """

    def __init__(self, api: ResourceApi[T, Any], name: str, *, attempts: int = 10) -> None:
        if not isinstance(name, str) or len(name) > 316 or not _NAME.match(name):
            raise ValueError(
                f"name must be a qualified name such as 'example.com/cleanup', got {name!r}"
            )
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, got {attempts!r}")
        self.api = api
        self.name = name
        self.attempts = attempts

    def __repr__(self) -> str:
        return f"<Finalizer {self.name} of {self.api.descriptor.plural}>"

    def present(self, obj: T) -> bool:
        """Whether ``obj`` carries this finalizer."""
        return self.name in finalizers_of(obj)

    async def handle(
        self,
        obj: T,
        *,
        apply: Callable[[T], Awaitable[R]],
        cleanup: Callable[[T], Awaitable[object]],
    ) -> R | None:
        """Add the finalizer and ``apply``, or ``cleanup`` and remove it (see the module
        docstring). Returns what ``apply`` returned, ``None`` after a cleanup or when
        there was nothing to do (deleted without this finalizer)."""
        if deletion_timestamp(obj) is not None:
            if self.present(obj):
                await cleanup(obj)
                await self.remove(obj)
            return None
        if not self.present(obj):
            added = await self.add(obj)
            if added is None or deletion_timestamp(added) is not None:
                return None  # deleted meanwhile: its next reconcile cleans up
            obj = added
        return await apply(obj)

    async def add(self, obj: T) -> T | None:
        """Add the finalizer (unless the object is being deleted: a deleted object
        cannot get new finalizers). Returns the object as written, or ``None`` when it
        is gone."""
        return await self._change(obj, add=True)

    async def remove(self, obj: T) -> T | None:
        """Remove the finalizer. Returns the object as written, or ``None`` when it is
        gone (removing the last finalizer of a deleted object deletes it)."""
        return await self._change(obj, add=False)

    async def _change(self, obj: T, *, add: bool) -> T | None:
        namespace, name = accessor_of(obj).key(obj)
        ns = namespace or None
        for attempt in range(self.attempts):
            current = finalizers_of(obj)
            if add:
                if self.name in current or deletion_timestamp(obj) is not None:
                    return obj
                wanted = [*current, self.name]
            else:
                if self.name not in current:
                    return obj
                wanted = [f for f in current if f != self.name]
            version = accessor_of(obj).identity(obj)[2]
            patch = {"metadata": {"finalizers": wanted, "resourceVersion": version}}
            try:
                return await self.api.patch(name, patch, namespace=ns,
                                            patch_type=PatchType.MERGE)
            except NotFound:
                return None
            except Conflict:
                log.debug("%r: %s/%s changed meanwhile (attempt %d); reading it again",
                          self, namespace, name, attempt + 1)
            try:
                obj = await self.api.get(name, namespace=ns)
            except NotFound:
                return None
        raise Conflict(_conflict_status(self, namespace, name, self.attempts), code=409)


def _conflict_status(finalizer: Finalizer[Any], namespace: str, name: str, attempts: int) -> Any:
    from ..models import Status

    where = f"{namespace}/{name}" if namespace else name
    return Status(kind="Status", api_version="v1", status="Failure", code=409,
                  reason="Conflict",
                  message=f"{finalizer!r}: {where} kept changing: {attempts} writes met a 409")
