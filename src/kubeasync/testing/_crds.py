"""Custom resources served from the CustomResourceDefinitions in the store.

As on kube-apiserver, creating a CRD (``apiextensions.k8s.io/v1``) serves its resource at
once: one descriptor per served version (all versions share one storage, as they share
the storage version on a real server; objects are answered in the version asked for),
the ``status`` and ``scale`` subresources its versions declare, its scope and short names,
in discovery too. The CRD's status (``acceptedNames``, ``NamesAccepted`` and
``Established``) is written by its strategy in ``_kinds.py``. Deleting the CRD stops
serving the resource and deletes its objects.

The server calls :meth:`CustomResources.sync` after every change of a CRD (a store
listener), and asks :meth:`scale_paths` where a resource keeps its replica count.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core.descriptor import ResourceDescriptor, custom_resource
from ._kinds import CRD_CLEANUP
from ._registry import Registry, meta, rid
from ._store import Event, Obj
from ._subresources import BUILTIN_SCALE, ScalePaths
from ._tables import Column, printer_columns

__all__ = ["CRD_GROUP", "CustomResources", "descriptors_of"]

Descriptor = ResourceDescriptor[Any, Any]
CRD_GROUP = "apiextensions.k8s.io"


def _scale_paths(version: dict[str, Any]) -> ScalePaths | None:
    scale = ((version.get("subresources") or {}).get("scale"))
    if not isinstance(scale, dict):
        return None
    return ScalePaths(spec_replicas=str(scale.get("specReplicasPath") or ".spec.replicas"),
                      status_replicas=str(scale.get("statusReplicasPath") or ".status.replicas"),
                      label_selector=scale.get("labelSelectorPath"), selector_is_string=True)


@dataclass(frozen=True)
class Served:
    """One served version of a CRD."""

    descriptor: Descriptor
    scale: ScalePaths | None
    column_specs: str  # the version's additionalPrinterColumns, as JSON (compared on change)

    @functools.cached_property
    def columns(self) -> tuple[Column, ...]:
        return printer_columns(json.loads(self.column_specs))


def descriptors_of(crd: Obj) -> list[Served]:
    """The descriptors a CRD serves (one per served version), with their scale paths and
    Table columns."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        d = custom_resource(
            group=str(spec.get("group")), version=str(version.get("name")),
            kind=str(names.get("kind")), plural=str(names.get("plural")),
            namespaced=spec.get("scope") != "Cluster",
            subresources=[s for s in ("status", "scale") if s in subresources],
            short_names=names.get("shortNames") or (),
        )
        specs = json.dumps(version.get("additionalPrinterColumns") or [], sort_keys=True)
        out.append(Served(d, _scale_paths(version), specs))
    return out


class CustomResources:
    """The custom resources currently served; ``on_change`` is called with the new table
    whenever a CRD starts or stops serving something."""

    def __init__(self, registry: Registry,
                 on_change: Callable[[tuple[Descriptor, ...]], None]) -> None:
        self.registry = registry
        self.on_change = on_change
        self._builtin = registry.resources
        self._by_crd: dict[str, list[Served]] = {}
        self._crds = next((d for d in registry.resources
                           if d.group == CRD_GROUP and d.kind == "CustomResourceDefinition"),
                          None)
        if self._crds is not None:
            registry.store.subscribe(self._on_event)

    def served_crds(self) -> list[Obj]:
        """The CRDs whose resources are served now."""
        if self._crds is None or not self._by_crd:
            return []
        objects = self.registry.store.objects(rid(self._crds))
        return [objects[("", name)] for name in self._by_crd if ("", name) in objects]

    def columns(self, d: Descriptor) -> tuple[Column, ...] | None:
        """The Table columns of a custom resource (its CRD version's
        ``additionalPrinterColumns``), None for any other resource."""
        for versions in self._by_crd.values():
            for served in versions:
                if served.descriptor == d:
                    return served.columns
        return None

    def serves(self, d: Descriptor) -> bool:
        """Whether ``d`` is a resource of a CRD (and not a built-in one)."""
        return any(served.descriptor == d
                   for versions in self._by_crd.values() for served in versions)

    def scale_paths(self, d: Descriptor) -> ScalePaths:
        for versions in self._by_crd.values():
            for served in versions:
                if served.descriptor == d and served.scale is not None:
                    return served.scale
        return BUILTIN_SCALE

    def _on_event(self, event: Event) -> None:
        assert self._crds is not None
        if event.resource != rid(self._crds):
            return
        name = event.key[1]
        before = self._by_crd.get(name, [])
        after: list[Served] = []
        if event.obj is not None and _established(event.obj) and \
                not meta(event.obj).get("deletionTimestamp"):
            try:
                after = descriptors_of(event.obj)
            except ValueError:  # names the strategy let through but no path can carry
                after = []
        if event.obj is None and event.old is not None:
            self._recheck_later(event.old)
        if before == after:
            return
        if after:
            self._by_crd[name] = after
        else:
            self._by_crd.pop(name, None)
        self.on_change(self._table())
        gone = {rid(v.descriptor) for v in before} - {rid(v.descriptor) for v in after}
        if gone or (event.obj is not None and meta(event.obj).get("deletionTimestamp")):
            self._delete_objects_later(gone, name)

    def _recheck_later(self, gone: Obj) -> None:
        """A deleted CRD frees its names: the CRDs of its group that wanted them are
        looked at again (as the naming controller does), and may now be Established."""
        crds = self._crds
        assert crds is not None
        group = (gone.get("spec") or {}).get("group")
        waiting = [key[1] for key, crd in self.registry.store.objects(rid(crds)).items()
                   if (crd.get("spec") or {}).get("group") == group and not _established(crd)]

        def recheck() -> None:
            for name in waiting:
                self.registry.mutate(crds, None, name, lambda crd: None,
                                     manager="kube-apiserver")

        if waiting:
            _later(recheck)

    def _table(self) -> tuple[Descriptor, ...]:
        custom = [v.descriptor for versions in self._by_crd.values() for v in versions]
        builtin_keys = {(d.group, d.version, d.plural) for d in self._builtin}
        return (*self._builtin,
                *(d for d in custom if (d.group, d.version, d.plural) not in builtin_keys))

    def _delete_objects_later(self, resources: Iterable[str], crd: str) -> None:
        """Delete the objects of resources no CRD serves any more (after the event that
        stopped serving them has reached every listener), then let a deleted CRD go (the
        finalizer its deletion added)."""
        store = self.registry.store
        pending = list(resources)
        crds = self._crds
        assert crds is not None

        def release(obj: Obj) -> None:
            metadata = obj.setdefault("metadata", {})
            metadata["finalizers"] = [f for f in metadata.get("finalizers") or []
                                      if f != CRD_CLEANUP]

        def delete() -> None:
            for resource in pending:
                for key in list(store.objects(resource)):
                    store.commit(resource, key, None)
                    self.registry._owners.pop((resource, key), None)
            current = self.registry.find(crds, None, crd)
            if current is not None and meta(current).get("deletionTimestamp") and \
                    CRD_CLEANUP in (meta(current).get("finalizers") or []):
                self.registry.mutate(crds, None, crd, release, manager="kube-apiserver")

        _later(delete)


def _later(work: Callable[[], None]) -> None:
    """Run ``work`` after the current change has reached every store listener (at once
    when no event loop runs: objects written directly by a test)."""
    try:
        asyncio.get_running_loop().call_soon(work)
    except RuntimeError:
        work()


def _established(crd: Obj) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Established" and
               c.get("status") == "True" for c in conditions)
