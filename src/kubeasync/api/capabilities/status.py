"""The ``status`` subresource: read and write an object's status alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from ...core.descriptor import Capability, Wire
from ...core.params import PatchParams, PatchType, WriteParams
from ..resource import ResourceApi
from ._registry import capability

__all__ = ["STATUS", "StatusApi"]

T = TypeVar("T")
L = TypeVar("L")

STATUS = Capability(
    "status", Wire.JSON, request="the kind's model", response="the kind's model",
    methods=("get_status", "replace_status", "patch_status"),
)


@capability(STATUS)
class StatusApi(ResourceApi[T, L]):
    """The API of a resource with a ``status`` subresource."""

    async def get_status(
        self, name: str, *, namespace: str | None = None, timeout: float | None = None
    ) -> T:
        """``GET .../{plural}/{name}/status``: read one object through its status subresource."""
        request = self._requests.get(name, self._namespace(namespace), subresource="status")
        return await self._call(request, timeout)

    async def replace_status(
        self,
        name: str,
        obj: T | Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        timeout: float | None = None,
    ) -> T:
        """``PUT .../{plural}/{name}/status``: replace the object's status.

        The server keeps the spec as it is; on built-in kinds it does write the metadata's
        labels and annotations sent along (custom resources keep theirs)."""
        return await self._replace_at(name, obj, namespace, "status",
                                      WriteParams(dry_run, field_manager), timeout)

    async def patch_status(
        self,
        name: str,
        patch: object,
        *,
        namespace: str | None = None,
        patch_type: PatchType | str = PatchType.MERGE,
        field_manager: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
    ) -> T:
        """``PATCH .../{plural}/{name}/status``: patch only the object's status."""
        return await self._patch_at(name, patch, namespace, "status",
                                    PatchParams(PatchType.coerce(patch_type), field_manager, force, dry_run),
                                    timeout)
