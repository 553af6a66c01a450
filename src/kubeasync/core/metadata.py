"""Metadata-only reads: ask the server for ``PartialObjectMetadata`` instead of whole objects.

``api.list(metadata_only=True)`` (and ``iterate``, ``get``, ``watch``, ``watch_stream``,
``informer``) sends the Accept header of client-go's metadata client, and the API server
answers each object as a ``PartialObjectMetadata`` (``apiVersion: meta.k8s.io/v1``: kind,
apiVersion and ``metadata``, managedFields included) and a list as a
``PartialObjectMetadataList``: a small fraction of the bytes of full pods, to send, to
decode and to keep.

The requests are those of the resource itself, on its own paths; only the decoding changes.
So a metadata-only read is the same verb on another descriptor: :func:`metadata_descriptor`
gives the resource's twin whose models are :class:`~kubeasync.models.PartialObjectMetadata`
and :class:`~kubeasync.models.PartialObjectMetadataList`, and everything built from a
descriptor (request building, the kind check, the watcher, the informer and its sharing
key) follows from it.

A server that cannot answer metadata only picks the header's second choice, plain
``application/json``, and sends the full objects: they decode into the same models, keeping
kind, apiVersion and metadata only (the kind check accepts either). A server that refuses
the header outright (406 Not Acceptable) gets the read again with plain JSON.
"""

from __future__ import annotations

import threading
from typing import Any

from ..models.meta_v1 import PartialObjectMetadata, PartialObjectMetadataList
from .descriptor import ResourceDescriptor

__all__ = [
    "METADATA_API_VERSION",
    "PARTIAL_KINDS",
    "PARTIAL_LIST_ACCEPT",
    "PARTIAL_OBJECT_ACCEPT",
    "is_metadata_only",
    "metadata_descriptor",
]

METADATA_API_VERSION = "meta.k8s.io/v1"

PARTIAL_OBJECT_ACCEPT = (
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
)
"""The Accept header of a metadata-only get or watch (a watch's events carry objects)."""

PARTIAL_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
"""The Accept header of a metadata-only list."""

PARTIAL_KINDS: dict[type[Any], str] = {
    PartialObjectMetadata: "PartialObjectMetadata",
    PartialObjectMetadataList: "PartialObjectMetadataList",
}
"""The kind each metadata model is answered as (besides the resource's own kind)."""

_TWINS: dict[ResourceDescriptor[Any, Any],
             ResourceDescriptor[PartialObjectMetadata, PartialObjectMetadataList]] = {}
_TWINS_LOCK = threading.Lock()


def is_metadata_only(descriptor: ResourceDescriptor[Any, Any]) -> bool:
    """Whether the descriptor's objects are read as metadata only."""
    return descriptor.typed and descriptor.model is PartialObjectMetadata


def metadata_descriptor(
    descriptor: ResourceDescriptor[Any, Any],
) -> ResourceDescriptor[PartialObjectMetadata, PartialObjectMetadataList]:
    """The same resource, its objects read as ``PartialObjectMetadata`` (built once)."""
    if is_metadata_only(descriptor):
        return descriptor
    twin = _TWINS.get(descriptor)
    if twin is None:
        with _TWINS_LOCK:
            twin = _TWINS.get(descriptor)
            if twin is None:
                twin = _TWINS[descriptor] = ResourceDescriptor(
                    kind=descriptor.kind, version=descriptor.version, plural=descriptor.plural,
                    group=descriptor.group, namespaced=descriptor.namespaced,
                    subresources=descriptor.subresources, verbs=descriptor.verbs,
                    short_names=descriptor.short_names, attribute=descriptor.attribute,
                    model=PartialObjectMetadata, list_model=PartialObjectMetadataList,
                )
    return twin
