"""Server-side apply of one object or a whole manifest, in a safe order.

``await kube.apply(objs, field_manager="me")`` sends each object as an apply patch
(``PATCH`` with ``application/apply-patch+yaml``, the way ``kubectl apply --server-side``
does): the server creates what is missing, updates what changed, and records which fields
each field manager owns.

- Order: Namespaces first, then CustomResourceDefinitions, then everything else in the
  order given. Before the first custom resource of a CRD applied in the same call, it waits
  (``establish_timeout``) until the CRD is ``Established`` and discovery serves its kind.
- Each object's resource comes from the server's discovery (cached per client), its
  namespace from the object, else the client's default (cluster-scoped kinds take none).
- The answers are typed: a built-in kind's model (a registered one's for kinds given to
  ``kube.register``), the object's own class for a model instance, dicts otherwise.
- The first failure stops it: :class:`ApplyError` says which object (its position, its
  document and line when it came from :func:`~kubeasync.load_all_yaml`, apiVersion, kind,
  namespace, name) and why (``.error``, the server's typed error); ``.applied`` holds what
  was applied before it. A field another manager owns raises :class:`ApplyConflict` (also
  a :class:`~kubeasync.Conflict`) naming the fields and managers, unless ``force=True``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..core.descriptor import ResourceDescriptor
from ..core.errors import ApiError, Conflict, KubeError
from ..core.params import PatchType
from ..manifests import KubeObject, Manifest
from ..models._base import to_dict
from .discovery import NoMatchError, descriptor_for

if TYPE_CHECKING:
    from .client import Client
    from .resource import ResourceApi

__all__ = ["ApplyConflict", "ApplyError", "FieldConflict", "apply_objects", "apply_order"]

CRD_GROUP = "apiextensions.k8s.io"
CRD_KIND = "CustomResourceDefinition"

_CONFLICT_MESSAGE = re.compile(r'conflict with "(?P<manager>[^"]*)"')


class FieldConflict(msgspec.Struct, frozen=True):
    """One field another field manager owns: ``field`` as the server names it
    (``.spec.replicas``, ``.spec.containers[name="app"].image``), ``manager`` the owner."""

    manager: str
    field: str


class ApplyError(KubeError):
    """Applying one object of ``kube.apply(...)`` failed; the ones before it were applied.

    Attributes:
        index: the object's position in what was given (0 for the first).
        document, line: where it is in its manifest (from ``load_all_yaml``), else ``None``.
        api_version, kind, namespace, name: which object it is.
        applied: the objects applied before it, as the server answered them, in the order
            they were applied.
        error: why: the server's typed error (:class:`~kubeasync.Invalid`,
            :class:`~kubeasync.NotFound`, ...), a
            :class:`~kubeasync.NoMatchError` for a kind the server does not serve, a
            ``ValueError`` for an object that cannot be applied, or a ``TimeoutError``
            when a CRD did not become Established in time.
    """

    index: int
    document: int | None
    line: int | None
    api_version: str
    kind: str
    namespace: str | None
    name: str
    applied: list[KubeObject]
    error: BaseException

    def __init__(self, what: _Item, applied: list[KubeObject], error: BaseException) -> None:
        Exception.__init__(self, f"apply of {what.describe()} failed: {error}"
                                 f"{_before(applied)}")
        self._set(what, applied, error)

    def _set(self, what: _Item, applied: list[KubeObject], error: BaseException) -> None:
        self.index, self.document, self.line = what.index, what.document, what.line
        self.api_version, self.kind = what.api_version, what.kind
        self.namespace, self.name = what.namespace, what.name
        self.applied = applied
        self.error = error


class ApplyConflict(ApplyError, Conflict):
    """The object has fields another field manager owns (409 Conflict): they are in
    ``conflicts``. ``force=True`` takes them over; or leave them out of the object."""

    conflicts: tuple[FieldConflict, ...]

    def __init__(self, what: _Item, applied: list[KubeObject], error: ApiError) -> None:
        Conflict.__init__(self, error.status, code=error.code, retry_after=error.retry_after,
                          method=error.method, path=error.path)
        self._set(what, applied, error)
        causes = error.status.details.causes if error.status.details else None
        found = []
        for cause in causes or ():
            if cause.reason != "FieldManagerConflict":
                continue
            match = _CONFLICT_MESSAGE.search(cause.message or "")
            found.append(FieldConflict(match["manager"] if match else "", cause.field or ""))
        self.conflicts = tuple(found)
        if found:
            by_manager: dict[str, list[str]] = {}
            for conflict in found:
                by_manager.setdefault(conflict.manager, []).append(conflict.field)
            owners = "; ".join(f'field manager "{m}" owns {", ".join(fields)}'
                               for m, fields in by_manager.items())
            why = f"conflicts: {owners} (force=True takes them over)"
        else:
            why = str(error)
        self.args = (f"apply of {what.describe()} failed: {why}{_before(applied)}",)


def _before(applied: list[KubeObject]) -> str:
    if not applied:
        return ""
    return f" ({len(applied)} object{'s' if len(applied) != 1 else ''} before it applied)"


class _Item(msgspec.Struct):
    index: int
    obj: object
    plain: Mapping[str, Any]
    document: int | None
    line: int | None
    api_version: str = ""
    kind: str = ""
    namespace: str | None = None
    name: str = ""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def describe(self) -> str:
        what = " ".join(part for part in (self.api_version, self.kind) if part) or "an object"
        if self.name:
            what += f" {self.namespace}/{self.name}" if self.namespace else f" {self.name}"
        where = f"object {self.index}"
        if self.document is not None:
            where += f", document {self.document}"
            if self.line is not None:
                where += f" line {self.line}"
        return f"{what} ({where})"


def apply_order(kinds: Iterable[tuple[str, str]]) -> list[int]:
    """The order in which ``(apiVersion, kind)`` pairs are applied, as indices: Namespaces,
    then CustomResourceDefinitions, then the rest, each in the order given (sans-IO)."""

    def rank(pair: tuple[str, str]) -> int:
        api_version, kind = pair
        if api_version == "v1" and kind == "Namespace":
            return 0
        if api_version.rpartition("/")[0] == CRD_GROUP and kind == CRD_KIND:
            return 1
        return 2

    pairs = list(kinds)
    return sorted(range(len(pairs)), key=lambda i: rank(pairs[i]))


async def apply_objects(
    client: Client,
    objs: Iterable[object],
    *,
    field_manager: str,
    force: bool,
    dry_run: bool,
    establish_timeout: float,
    timeout: float | None,
) -> list[KubeObject]:
    """``kube.apply`` for a sequence: returns the applied objects in the order given."""
    if not isinstance(field_manager, str) or not field_manager:
        raise ValueError("field_manager must be a non-empty str (it names who owns the fields)")
    if not isinstance(force, bool) or not isinstance(dry_run, bool):
        raise ValueError("force and dry_run must be bools")
    if isinstance(establish_timeout, bool) or not isinstance(establish_timeout, (int, float)) \
            or not establish_timeout > 0:
        raise ValueError(f"establish_timeout must be a positive number, got {establish_timeout!r}")
    positions = objs if isinstance(objs, Manifest) else None
    items = [_item(i, obj, positions) for i, obj in enumerate(objs)]
    for item in items:
        _identify(client, item)
    crds: dict[tuple[str, str], str] = {}  # (group, kind) -> the name of a CRD of this call
    for item in items:
        if item.group == CRD_GROUP and item.kind == CRD_KIND:
            spec = item.plain.get("spec") or {}
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            if isinstance(group, str) and isinstance(kind, str):
                crds[(group, kind)] = item.name
    results: dict[int, KubeObject] = {}
    applied: list[KubeObject] = []
    established: set[str] = set()
    for index in apply_order((item.api_version, item.kind) for item in items):
        item = items[index]
        try:
            crd = crds.get((item.group, item.kind)) if not dry_run else None
            if crd is not None and crd not in established:
                await _wait_established(client, crd, establish_timeout)
                established.add(crd)
            api = await _resolve(client, item, establish_timeout if crd is not None else None)
            item.namespace = api.descriptor.namespace_for(
                item.namespace, default=client.namespace) if api.descriptor.namespaced else None
            answer = await api.patch(
                item.name, item.obj, namespace=item.namespace, patch_type=PatchType.APPLY,
                field_manager=field_manager, force=force, dry_run=dry_run, timeout=timeout,
            )
        except Conflict as exc:
            raise ApplyConflict(item, list(applied), exc) from exc
        except (KubeError, ValueError, TimeoutError) as exc:  # the server's, or ours
            raise ApplyError(item, list(applied), exc) from exc
        results[index] = answer
        applied.append(answer)
    return [results[i] for i in range(len(items))]


def _item(index: int, obj: object, manifest: Manifest | None) -> _Item:
    where = manifest.where(index) if manifest is not None else None
    document, line = where if where is not None else (None, None)
    if isinstance(obj, msgspec.Struct):
        plain: Mapping[str, Any] = to_dict(obj)
    elif isinstance(obj, Mapping):
        plain = obj
    else:
        item = _Item(index, obj, {}, document, line)
        raise ApplyError(item, [], ValueError(
            f"objs[{index}] must be a Kubernetes object (a model instance or a mapping),"
            f" not {type(obj).__name__}"))
    return _Item(index, obj, plain, document, line)


def _identify(client: Client, item: _Item) -> None:
    """apiVersion, kind, name and namespace of the object, checked before anything is sent."""
    plain = item.plain
    api_version, kind = plain.get("apiVersion"), plain.get("kind")
    if (api_version is None or kind is None) and isinstance(item.obj, msgspec.Struct):
        # A model built in code may leave them out: its row knows them.
        row = client._descriptor_of_model(type(item.obj))
        if row is not None:
            api_version, kind = row.api_version, row.kind
    metadata = plain.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    item.api_version = api_version if isinstance(api_version, str) else ""
    item.kind = kind if isinstance(kind, str) else ""
    item.name = name if isinstance(name, str) else ""
    item.namespace = namespace if isinstance(namespace, str) and namespace else None
    problem = None
    if not item.api_version or not item.kind:
        problem = "it has no apiVersion and kind"
    elif not item.name:
        problem = "it has no metadata.name (server-side apply needs one: generateName is not applied)"
    if problem is not None:
        raise ApplyError(item, [], ValueError(problem))


async def _resolve(client: Client, item: _Item, wait: float | None) -> ResourceApi[Any, Any]:
    """The API of the object's resource; for a kind whose CRD this call applied, asked
    again until discovery serves it (within ``wait`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (wait or 0.0)
    pause = 0.05
    while True:
        try:
            served = await client.discovery.find_kind(item.api_version, item.kind)
            break
        except NoMatchError:
            if wait is None or loop.time() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)
    known = client._known_descriptor(served.group, served.version, served.kind)
    descriptor = descriptor_for(served, known)
    if isinstance(item.obj, msgspec.Struct) and type(item.obj) is not descriptor.model:
        # An instance of a model of your own: the answer decodes into its class.
        descriptor = ResourceDescriptor(
            group=descriptor.group, version=descriptor.version, kind=descriptor.kind,
            plural=descriptor.plural, namespaced=descriptor.namespaced,
            verbs=descriptor.verbs, subresources=descriptor.subresources,
            short_names=descriptor.short_names, model=type(item.obj), list_model=dict,
        )
    return client.resource(descriptor)


async def _wait_established(client: Client, name: str, timeout: float) -> None:
    """Until the CRD ``name`` has the condition ``Established=True``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = 0.05
    crds = client.custom_resource_definitions
    while True:
        crd = await crds.get(name)
        conditions = crd.status.conditions if crd.status is not None else None
        if any(c.type == "Established" and c.status == "True" for c in conditions or ()):
            return
        if loop.time() + pause > deadline:
            raise TimeoutError(
                f"the CustomResourceDefinition {name} was not Established within {timeout} s"
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)
