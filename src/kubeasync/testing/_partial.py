"""Metadata-only answers: ``PartialObjectMetadata`` and ``PartialObjectMetadataList``.

A client that sends ``Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1``
(client-go's metadata client, ``kubeasync``'s ``metadata_only=True``) gets the objects'
kind-less shells, as kube-apiserver (1.15 on; checked on 1.20) answers them:

- a list is ``{"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
  "metadata": <the list's>, "items": [...]}``, each item ``{"kind":
  "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": <the object's>}``;
- a get, and every object of a watch's events (bookmarks included; not the Status of an
  ERROR event), is one ``PartialObjectMetadata``;
- asking a list for ``PartialObjectMetadata`` (or a single object for the list kind) is 406
  NotAcceptable, even with ``application/json`` as a second choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.descriptor import ResourceDescriptor
from . import _status as st

__all__ = ["partial_list", "partial_object", "wants_partial"]

_API_VERSION = "meta.k8s.io/v1"
_OBJECT = "PartialObjectMetadata"
_LIST = "PartialObjectMetadataList"


def _asked(accept: str) -> str | None:
    """The meta.k8s.io/v1 kind the first ``as=`` part of an Accept header asks for."""
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if pieces[0] not in ("application/json", "*/*", "application/*"):
            continue
        params = dict(p.partition("=")[::2] for p in pieces[1:])
        asked = params.get("as")
        if asked is None:
            continue
        if params.get("g") == "meta.k8s.io" and params.get("v") == "v1":
            return asked
        return None
    return None


def _go_type(d: ResourceDescriptor[Any, Any], kind: str) -> str:
    package = d.group.split(".")[0] if d.group else "core"
    return f"*{package}.{kind}"


def partial_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": _OBJECT, "apiVersion": _API_VERSION, "metadata": obj.get("metadata") or {}}


def partial_list(listing: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": _LIST, "apiVersion": _API_VERSION,
            "metadata": listing.get("metadata") or {},
            "items": [partial_object(item) for item in listing.get("items") or ()]}


def _not_acceptable(asked: str, d: ResourceDescriptor[Any, Any], collection: bool) -> st.StatusError:
    if collection:
        what = f"is a list ({_go_type(d, d.kind + 'List')})"
    else:
        what = f"is not a list ({_go_type(d, d.kind)})"
    return st.StatusError(406, "NotAcceptable",
                          f"you requested {asked}, but the requested object {what}")


def wants_partial(accept: str, d: ResourceDescriptor[Any, Any], *, collection: bool,
                  watch: bool = False) -> bool:
    """Whether a request asks for metadata-only answers (see the module docstring).

    Raises 406 for the wrong one of the two kinds (a list asked as an object, an object as
    a list); a watch takes ``PartialObjectMetadata``, the kind of its events' objects.
    """
    asked = _asked(accept)
    if asked not in (_OBJECT, _LIST):
        return False
    wanted = _LIST if collection and not watch else _OBJECT
    if asked != wanted:
        raise _not_acceptable(asked, d, collection and not watch)
    return True
