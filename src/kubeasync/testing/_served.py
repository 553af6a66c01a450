"""What the embedded server serves by default: every row of the generated catalogue.

The rows come from :mod:`kubeasync.kinds` unchanged, with two adjustments made here once:

- the six seed resources (Pods, Jobs, Services, PVCs, Namespaces, ConfigMaps) are served
  as ``SEED_RESOURCES`` narrows them: the verbs kube-apiserver 1.20 serves too (the fake is
  held to that server's recorded answers), and
- every other row keeps only the subresources the server implements (``status``,
  ``scale``, ``token``...): a subresource it would answer as the main resource (a
  Service's ``proxy``, a Pod's ``resize``) is not advertised in discovery and answers 404.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.descriptor import ResourceDescriptor
from ..kinds import BUILTIN_RESOURCES, SEED_RESOURCES

__all__ = ["IMPLEMENTED_SUBRESOURCES", "SERVED_RESOURCES", "served_row", "version_priority"]

Descriptor = ResourceDescriptor[Any, Any]

#: The subresources the embedded server has handlers for (``binding`` is added for Pods
#: by the server itself: the scheduler's write).
IMPLEMENTED_SUBRESOURCES = frozenset({
    "status", "scale", "token", "log", "eviction", "exec", "attach", "portforward", "finalize",
})


def served_row(d: Descriptor) -> Descriptor:
    """The row as served: the same descriptor when the server implements all of its
    subresources, else a copy (with dict models: the server never decodes) without the
    others."""
    subresources = frozenset(d.subresources) & IMPLEMENTED_SUBRESOURCES
    if subresources == frozenset(d.subresources):
        return d
    return ResourceDescriptor(
        group=d.group, version=d.version, kind=d.kind, plural=d.plural,
        namespaced=d.namespaced, verbs=d.verbs, subresources=subresources,
        short_names=d.short_names, model=dict, list_model=dict,
    )


def _served() -> tuple[Descriptor, ...]:
    seeded = {(d.group, d.version, d.plural) for d in SEED_RESOURCES}
    rest = tuple(served_row(d) for d in BUILTIN_RESOURCES
                 if (d.group, d.version, d.plural) not in seeded)
    return (*SEED_RESOURCES, *rest)


SERVED_RESOURCES: tuple[Descriptor, ...] = _served()
"""What the embedded server serves by default: every catalogue row (the seed rows as
narrowed for fidelity with kube-apiserver 1.20, the others without the subresources it
does not implement)."""


_VERSION = re.compile(r"v(?P<major>[0-9]+)(?:(?P<level>alpha|beta)(?P<minor>[0-9]+))?")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' order of versions (sort ascending: the preferred first): stable before
    beta before alpha, then the higher major and minor; others last, alphabetically."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return (3, 0, 0, version)
    level = {None: 0, "beta": 1, "alpha": 2}[match["level"]]
    return (level, -int(match["major"]), -int(match["minor"] or 0), "")
