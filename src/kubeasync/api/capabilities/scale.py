"""The ``scale`` subresource: read and write a workload's replica count alone, as an
autoscaling/v1 ``Scale`` (Deployments, ReplicaSets, StatefulSets, ReplicationControllers,
and custom resources whose CRD declares a scale subresource)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ...core.codec import decoder_for
from ...core.descriptor import Capability, ResourceDescriptor, Wire
from ...core.params import PatchParams, PatchType, WriteParams
from ...core.request import Request, RequestBuilder, encode_object, encode_patch
from ..resource import ResourceApi
from ._registry import capability

if TYPE_CHECKING:
    from ...models.autoscaling_v1 import Scale

__all__ = [
    "SCALE",
    "ScaleApi",
    "get_scale_request",
    "patch_scale_request",
    "replace_scale_request",
]

T = TypeVar("T")
L = TypeVar("L")

SCALE = Capability(
    "scale", Wire.JSON, request="autoscaling/v1 Scale", response="autoscaling/v1 Scale",
    methods=("get_scale", "replace_scale", "patch_scale"),
)

# What the bodies of the subresource are: an autoscaling/v1 Scale, whatever the kind.
# Its model is named, not imported, so that importing kubeasync imports no model module.
_SCALE: ResourceDescriptor[Any, Any] = ResourceDescriptor(
    group="autoscaling", version="v1", kind="Scale", plural="scales",
    model="kubeasync.models.autoscaling_v1:Scale", list_model="builtins:dict",
)


def get_scale_request(
    descriptor: ResourceDescriptor[Any, Any], name: str, namespace: str | None
) -> Request:
    """``GET .../{name}/scale`` (sans-IO)."""
    return RequestBuilder(descriptor).get(name, namespace, subresource="scale")


def replace_scale_request(
    descriptor: ResourceDescriptor[Any, Any],
    name: str,
    namespace: str | None,
    scale: object,
    params: WriteParams,
) -> Request:
    """``PUT .../{name}/scale`` with a Scale (a model instance or a dict; ``kind`` and
    ``apiVersion`` are filled in when missing and must be ``Scale``, ``autoscaling/v1``)."""
    body = encode_object(_SCALE, scale, argument="scale", name=name, namespace=namespace)
    return RequestBuilder(descriptor).replace(name, namespace, body, params, subresource="scale")


def patch_scale_request(
    descriptor: ResourceDescriptor[Any, Any],
    name: str,
    namespace: str | None,
    patch: object,
    params: PatchParams,
) -> Request:
    """``PATCH .../{name}/scale`` (sans-IO); an APPLY patch is a whole Scale."""
    body = encode_patch(_SCALE, patch, params.patch_type, name=name, namespace=namespace)
    return RequestBuilder(descriptor).patch(name, namespace, body, params, subresource="scale")


@capability(SCALE)
class ScaleApi(ResourceApi[T, L]):
    """The API of a resource with a ``scale`` subresource (Deployments, StatefulSets, ...)."""

    async def get_scale(
        self, name: str, *, namespace: str | None = None, timeout: float | None = None
    ) -> Scale:
        """``GET .../{plural}/{name}/scale``: the object's desired and current replicas
        (``spec.replicas``, ``status.replicas``, ``status.selector``)."""
        request = get_scale_request(self.descriptor, name, self._namespace(namespace))
        return await self._session.request(request, _scale_decoder(), timeout=timeout)

    async def replace_scale(
        self,
        name: str,
        scale: Scale | Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        timeout: float | None = None,
    ) -> Scale:
        """``PUT .../{plural}/{name}/scale``: set the replica count. With
        ``metadata.resourceVersion`` set (as a Scale read by :meth:`get_scale` has), the
        server answers 409 :class:`~kubeasync.Conflict` if the object changed since."""
        ns = self._object_namespace(scale, namespace)
        request = replace_scale_request(self.descriptor, name, ns, scale,
                                        WriteParams(dry_run, field_manager))
        return await self._session.request(request, _scale_decoder(), timeout=timeout)

    async def patch_scale(
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
    ) -> Scale:
        """``PATCH .../{plural}/{name}/scale``, e.g. ``{"spec": {"replicas": 3}}``."""
        params = PatchParams(PatchType.coerce(patch_type), field_manager, force, dry_run)
        request = patch_scale_request(self.descriptor, name, self._namespace(namespace), patch,
                                      params)
        return await self._session.request(request, _scale_decoder(), timeout=timeout)


def _scale_decoder() -> msgspec.json.Decoder[Scale]:
    # Imported on first use, not with kubeasync; decoder_for builds one decoder per type.
    from ...models.autoscaling_v1 import Scale

    return decoder_for(Scale)
