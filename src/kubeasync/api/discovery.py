"""What the server serves: API groups, their versions and resources, cached per client; and
the mapping from a kind or a kubectl-style name to the resource that serves it.

Two ways to ask, and the client takes whichever the server answers:

- **aggregated discovery** (Kubernetes 1.26+): ``GET /api`` and ``GET /apis`` with
  ``Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`` (and
  ``v2beta1``) answer every group, version and resource in two requests;
- **legacy discovery** (every server; 1.20 has only this): the same two requests without
  the media type parameters answer ``APIVersions`` and ``APIGroupList``, then one
  ``APIResourceList`` per group-version (``GET /api/v1``, ``GET /apis/apps/v1``, ...).

The Accept header offers both, so a server without aggregated discovery simply answers the
legacy documents and no request is wasted. A snapshot is kept for ``ttl`` seconds; a
lookup that misses refreshes it once (a CRD created a moment ago resolves).

Name matching follows kubectl (``kubectl get deploy``): see :meth:`ServerResources.find`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from ..core.codec import decode, decoder_for
from ..core.descriptor import ResourceDescriptor
from ..core.errors import KubeError, NotFound, ServerError
from ..core.names import validate_dns_subdomain
from ..core.request import Request
from ..transport.policy import Session

__all__ = [
    "AGGREGATED_ACCEPT",
    "AmbiguousResourceError",
    "Discovery",
    "NoMatchError",
    "ServedResource",
    "ServerResources",
    "descriptor_for",
    "parse_aggregated",
    "parse_legacy",
]

DEFAULT_TTL = 600.0

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
"""The Accept header of ``GET /api`` and ``GET /apis``: aggregated discovery (v2, then
v2beta1) where the server has it, the legacy documents otherwise."""

_LEGACY_CONCURRENCY = 8


class NoMatchError(KubeError, LookupError):
    """The server serves no resource of that kind or name (after refreshing discovery
    once). ``candidates`` is empty; the message says what the server does serve of the
    group, when it serves any of it."""


class AmbiguousResourceError(KubeError, LookupError):
    """A name matches resources of several groups and none of them wins (see
    :meth:`ServerResources.find`). ``candidates`` lists them; name one with its group
    (``widgets.example.com``) or ask by kind (``resource_for("example.com/v1", "Widget")``).
    """

    def __init__(self, message: str, candidates: Sequence[ServedResource]) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


# --------------------------------------------------------------------------------------------
# what a snapshot holds


class ServedResource(msgspec.Struct, frozen=True):
    """One resource as the server's discovery describes it.

    Attributes:
        group, version: where it is served (the core group is ``""``).
        kind: the kind of its objects.
        plural: the path segment (``deployments``); ``singular`` the singular name
            (discovery's ``singularName``, or the lower-case kind where a server leaves it
            empty, as kubectl guesses it).
        namespaced: its scope.
        verbs, subresources, short_names, categories: as discovery lists them.
    """

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: frozenset[str]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        where = f"{self.plural}.{self.version}.{self.group}" if self.group else (
            f"{self.plural}.{self.version}")
        return f"{where} ({self.api_version} {self.kind})"


class ServerResources(msgspec.Struct, frozen=True):
    """One snapshot of what the server serves.

    Attributes:
        groups: each group and its versions, preferred first, in the server's order (the
            core group ``""`` first).
        resources: every resource of every group-version, in the server's order.
        aggregated: whether the server answered aggregated discovery.
    """

    groups: tuple[tuple[str, tuple[str, ...]], ...]
    resources: tuple[ServedResource, ...]
    aggregated: bool = False

    def versions(self, group: str) -> tuple[str, ...]:
        """The versions of ``group`` (preferred first); empty when it is not served."""
        for name, versions in self.groups:
            if name == group:
                return versions
        return ()

    def for_kind(self, group: str, version: str, kind: str) -> ServedResource | None:
        """The resource serving ``kind`` in ``group/version`` (the kind exactly as written)."""
        for r in self.resources:
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def find(self, name: str, *, builtin_groups: Iterable[tuple[str, str]] = ()) -> ServedResource:
        """The resource kubectl would pick for ``name`` (``kubectl get <name>``).

        ``name`` is a resource, optionally qualified as ``resource.group`` or
        ``resource.version.group`` (``deployments.apps``, ``deployments.v1.apps``). It is
        matched without regard to case against, in this order: plurals, singular names,
        short names and kinds; the first of these that matches anything gives the
        candidates (so a short name never hides a plural). Of each group the server's
        preferred version among them is taken. If several groups remain, the core group
        wins, then a group-version of ``builtin_groups`` (the catalogue's: on 1.20
        ``ingresses`` are networking.k8s.io/v1, not the older extensions/v1beta1), then
        the server's order among built-in groups; candidates of several groups none of
        which is built in are ambiguous (:class:`AmbiguousResourceError`).

        Raises :class:`NoMatchError` when nothing matches.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a resource name such as 'deployments', got {name!r}")
        wanted = name.strip().lower()
        attempts: list[tuple[str, str | None, str | None]] = []
        if wanted.count(".") >= 2:  # resource.version.group
            first, second, rest = wanted.split(".", 2)
            attempts.append((first, second, rest))
        if "." in wanted:  # resource.group
            first, rest = wanted.split(".", 1)
            attempts.append((first, None, rest))
        else:
            attempts.append((wanted, None, None))
        builtin = set(builtin_groups)
        for resource, version, group in attempts:
            found = self._match(resource, version, group, builtin, name)
            if found is not None:
                return found
        raise NoMatchError(f"the server doesn't have a resource type {name!r}")

    def _match(
        self, resource: str, version: str | None, group: str | None,
        builtin: set[tuple[str, str]], asked: str,
    ) -> ServedResource | None:
        scope = [r for r in self.resources
                 if (group is None or r.group == group) and (version is None or r.version == version)]
        tiers = (
            lambda r: r.plural == resource,
            lambda r: r.singular == resource,
            lambda r: resource in (s.lower() for s in r.short_names),
            lambda r: r.kind.lower() == resource,
        )
        for matches in tiers:
            candidates = [r for r in scope if matches(r)]
            if candidates:
                return self._choose(candidates, builtin, asked)
        return None

    def _choose(
        self, candidates: list[ServedResource], builtin: set[tuple[str, str]], asked: str
    ) -> ServedResource:
        best: dict[str, ServedResource] = {}
        for r in candidates:  # one per group: the server's preferred version among them
            order = self.versions(r.group)
            current = best.get(r.group)
            if current is None or _index(order, r.version) < _index(order, current.version):
                best[r.group] = r
        if len(best) == 1:
            return next(iter(best.values()))
        group_order = [g for g, _ in self.groups]

        def rank(r: ServedResource) -> tuple[int, int]:
            tier = 0 if r.group == "" else 1 if (r.group, r.version) in builtin else 2
            return tier, _index(group_order, r.group)

        ranked = sorted(best.values(), key=rank)
        if rank(ranked[0])[0] < 2:
            return ranked[0]
        tied = ranked  # several groups, none built in
        listed = ", ".join(str(r) for r in tied)
        raise AmbiguousResourceError(
            f"{asked!r} matches resources of several groups: {listed}; qualify it with its"
            f" group (e.g. {tied[0].plural}.{tied[0].group})", tied)


def _index(values: Sequence[str], value: str) -> int:
    try:
        return values.index(value)
    except ValueError:
        return len(values)


# --------------------------------------------------------------------------------------------
# the wire documents


class _GroupVersion(msgspec.Struct):
    version: str
    groupVersion: str = ""


class _APIGroup(msgspec.Struct):
    name: str = ""
    versions: list[_GroupVersion] = msgspec.field(default_factory=list)
    preferredVersion: _GroupVersion | None = None


class _Root(msgspec.Struct):
    """``/api`` (APIVersions), ``/apis`` (APIGroupList) or either as APIGroupDiscoveryList."""

    kind: str = ""
    versions: list[str] | None = None  # APIVersions
    groups: list[_APIGroup] | None = None  # APIGroupList
    items: list[_GroupDiscovery] | None = None  # APIGroupDiscoveryList


class _APIResource(msgspec.Struct):
    name: str
    kind: str = ""
    namespaced: bool = False
    singularName: str = ""
    verbs: list[str] | None = None
    shortNames: list[str] | None = None
    categories: list[str] | None = None


class _APIResourceList(msgspec.Struct):
    groupVersion: str = ""
    resources: list[_APIResource] | None = None


class _Name(msgspec.Struct):
    name: str = ""


class _ResponseKind(msgspec.Struct):
    group: str = ""
    version: str = ""
    kind: str = ""


class _SubresourceDiscovery(msgspec.Struct):
    subresource: str
    verbs: list[str] | None = None


class _ResourceDiscovery(msgspec.Struct):
    resource: str
    responseKind: _ResponseKind | None = None
    scope: str = ""
    singularResource: str = ""
    verbs: list[str] | None = None
    shortNames: list[str] | None = None
    categories: list[str] | None = None
    subresources: list[_SubresourceDiscovery] | None = None


class _VersionDiscovery(msgspec.Struct):
    version: str
    resources: list[_ResourceDiscovery] | None = None
    freshness: str = ""


class _GroupDiscovery(msgspec.Struct):
    metadata: _Name | None = None
    versions: list[_VersionDiscovery] | None = None


def parse_aggregated(documents: Iterable[bytes]) -> ServerResources:
    """A snapshot from the ``APIGroupDiscoveryList`` answers of ``/api`` and ``/apis``
    (sans-IO). Versions are listed preferred first, as the server orders them."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    resources: list[ServedResource] = []
    for body in documents:
        root = _decode_root(body)
        for item in root.items or ():
            group = item.metadata.name if item.metadata else ""
            versions = item.versions or []
            groups.append((group, tuple(v.version for v in versions)))
            for v in versions:
                for r in v.resources or ():
                    kind = r.responseKind.kind if r.responseKind else ""
                    resources.append(ServedResource(
                        group=group, version=v.version, kind=kind, plural=r.resource,
                        singular=r.singularResource or kind.lower(),
                        namespaced=r.scope == "Namespaced",
                        verbs=frozenset(r.verbs or ()),
                        subresources=frozenset(s.subresource for s in r.subresources or ()),
                        short_names=tuple(r.shortNames or ()),
                        categories=tuple(r.categories or ()),
                    ))
    return ServerResources(tuple(groups), tuple(resources), aggregated=True)


def parse_legacy(
    groups: Sequence[tuple[str, Sequence[str]]], resource_lists: Iterable[bytes]
) -> ServerResources:
    """A snapshot from the groups (versions preferred first) and the ``APIResourceList``
    of each group-version (sans-IO). Subresources (``deployments/scale``) become the
    ``subresources`` of their resource."""
    resources: list[ServedResource] = []
    for body in resource_lists:
        listing = decode(decoder_for(_APIResourceList), body)
        group, _, version = listing.groupVersion.rpartition("/")
        entries = listing.resources or []
        subresources: dict[str, set[str]] = {}
        for entry in entries:
            if "/" in entry.name:
                parent, _, sub = entry.name.partition("/")
                subresources.setdefault(parent, set()).add(sub)
        for entry in entries:
            if "/" in entry.name:
                continue
            resources.append(ServedResource(
                group=group, version=version, kind=entry.kind, plural=entry.name,
                singular=entry.singularName or entry.kind.lower(),
                namespaced=entry.namespaced, verbs=frozenset(entry.verbs or ()),
                subresources=frozenset(subresources.get(entry.name, ())),
                short_names=tuple(entry.shortNames or ()),
                categories=tuple(entry.categories or ()),
            ))
    order = {(g, v): (gi, vi) for gi, (g, versions) in enumerate(groups)
             for vi, v in enumerate(versions)}
    resources.sort(key=lambda r: order.get((r.group, r.version), (len(order), 0)))
    return ServerResources(tuple((g, tuple(v)) for g, v in groups), tuple(resources))


def _decode_root(body: bytes) -> _Root:
    return decode(decoder_for(_Root), body)


def _preferred_first(group: _APIGroup) -> tuple[str, ...]:
    versions = [v.version for v in group.versions]
    preferred = group.preferredVersion.version if group.preferredVersion else None
    if preferred in versions:
        versions.remove(preferred)
        versions.insert(0, preferred)
    return tuple(versions)


def _legacy_groups(core: _Root, named: _Root) -> list[tuple[str, tuple[str, ...]]]:
    groups: list[tuple[str, tuple[str, ...]]] = []
    if core.versions:
        groups.append(("", tuple(core.versions)))
    groups += [(g.name, _preferred_first(g)) for g in named.groups or ()]
    return groups


# --------------------------------------------------------------------------------------------
# the per-client cache


class Discovery:
    """The client's view of what its server serves, refreshed after ``ttl`` seconds."""

    def __init__(self, session: Session, *, ttl: float = DEFAULT_TTL) -> None:
        self._session = session
        self._ttl = ttl
        self._groups: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._snapshot: tuple[float, ServerResources] | None = None
        self._lock: asyncio.Lock | None = None

    # ------------------------------------------------------------ groups

    async def versions(self, group: str) -> tuple[str, ...]:
        """The versions the server serves of ``group`` (preferred first); empty when it
        does not serve the group. One small request (``GET /apis/{group}``), or none when
        a fresh snapshot of every resource is cached."""
        validate_dns_subdomain(group, "group")
        now = time.monotonic()
        if self._snapshot is not None and now - self._snapshot[0] < self._ttl:
            return self._snapshot[1].versions(group)
        cached = self._groups.get(group)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        request = Request("GET", f"/apis/{group}")
        try:
            answer = decode(decoder_for(_APIGroup), (await self._session.send(request)).body,
                            request)
        except NotFound:
            versions: tuple[str, ...] = ()
        else:
            versions = _preferred_first(answer)
        self._groups[group] = (now, versions)
        return versions

    async def preferred(self, group: str, candidates: Sequence[str]) -> str:
        """The first of ``candidates`` the server serves for ``group``."""
        served = await self.versions(group)
        for version in candidates:
            if version in served:
                return version
        raise NotFound(_status(group, candidates, served), code=404)

    # ------------------------------------------------------------ resources

    async def resources(self, *, refresh: bool = False) -> ServerResources:
        """Every group, version and resource the server serves (cached for ``ttl`` s;
        ``refresh=True`` asks the server again)."""
        return await self._current(None if not refresh else self._cached())

    async def find_kind(self, api_version: str, kind: str) -> ServedResource:
        """The resource serving ``kind`` of ``api_version`` (``"apps/v1"``, ``"v1"``),
        refreshing discovery once if the cached snapshot does not have it."""
        if not isinstance(api_version, str) or not api_version or api_version.count("/") > 1:
            raise ValueError(f"api_version must be 'group/version' or 'v1', got {api_version!r}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"kind must be a non-empty str, got {kind!r}")
        group, _, version = api_version.rpartition("/")
        snapshot = await self._current(None)
        found = snapshot.for_kind(group, version, kind)
        if found is None:
            snapshot = await self._current(snapshot)
            found = snapshot.for_kind(group, version, kind)
        if found is None:
            served = snapshot.versions(group)
            also = (f"; the server serves {group or 'the core group'} in "
                    f"{', '.join(served)}" if served else "")
            raise NoMatchError(f'no matches for kind "{kind}" in version "{api_version}"{also}')
        return found

    async def find(
        self, name: str, *, builtin_groups: Iterable[tuple[str, str]] = ()
    ) -> ServedResource:
        """The resource kubectl would pick for ``name`` (see :meth:`ServerResources.find`),
        refreshing discovery once if the cached snapshot matches nothing."""
        builtin = tuple(builtin_groups)
        snapshot = await self._current(None)
        try:
            return snapshot.find(name, builtin_groups=builtin)
        except NoMatchError:
            pass
        return (await self._current(snapshot)).find(name, builtin_groups=builtin)

    def forget(self) -> None:
        """Drop everything cached (the next question asks the server)."""
        self._groups.clear()
        self._snapshot = None

    # ------------------------------------------------------------ fetching

    def _cached(self) -> ServerResources | None:
        return self._snapshot[1] if self._snapshot is not None else None

    async def _current(self, stale: ServerResources | None) -> ServerResources:
        """The cached snapshot if fresh and not ``stale``; otherwise a new one. Concurrent
        callers share one fetch: a caller that found ``stale`` wanting takes whatever
        snapshot replaced it meanwhile."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            cached = self._snapshot
            if (cached is not None and time.monotonic() - cached[0] < self._ttl
                    and cached[1] is not stale):
                return cached[1]
            started = time.monotonic()
            snapshot = await self._fetch()
            self._snapshot = (started, snapshot)
            return snapshot

    async def _fetch(self) -> ServerResources:
        headers = {"Accept": AGGREGATED_ACCEPT}
        core_body, named_body = await asyncio.gather(
            self._get(Request("GET", "/api", headers=headers)),
            self._get(Request("GET", "/apis", headers=headers)),
        )
        core, named = _decode_root(core_body), _decode_root(named_body)
        if core.kind == named.kind == "APIGroupDiscoveryList":
            return parse_aggregated((core_body, named_body))
        # Legacy discovery (a proxy that passed one aggregated answer through is asked again
        # for the plain document).
        if core.kind == "APIGroupDiscoveryList":
            core = _decode_root(await self._get(Request("GET", "/api")))
        if named.kind == "APIGroupDiscoveryList":
            named = _decode_root(await self._get(Request("GET", "/apis")))
        groups = _legacy_groups(core, named)
        paths = [f"/apis/{g}/{v}" if g else f"/api/{v}" for g, versions in groups for v in versions]
        semaphore = asyncio.Semaphore(_LEGACY_CONCURRENCY)

        async def one(path: str) -> bytes | None:
            async with semaphore:
                try:
                    return await self._get(Request("GET", path))
                except (NotFound, ServerError):
                    # A group-version gone since /apis answered, or an aggregated API
                    # server that is down (503): what kubectl skips with a warning.
                    return None

        bodies = await asyncio.gather(*(one(p) for p in paths))
        return parse_legacy(groups, (b for b in bodies if b is not None))

    async def _get(self, request: Request) -> bytes:
        return (await self._session.send(request)).body


def _status(group: str, candidates: Sequence[str], served: Sequence[str]) -> Any:
    from ..models import Status

    have = ", ".join(served) if served else "none"
    return Status(
        kind="Status", api_version="v1", status="Failure", code=404, reason="NotFound",
        message=f"the server serves no version of {group!r} this client knows"
                f" ({', '.join(candidates)}); it serves: {have}",
    )



def descriptor_for(
    served: ServedResource, known: ResourceDescriptor[Any, Any] | None = None
) -> ResourceDescriptor[Any, Any]:
    """The descriptor of a served resource: ``known`` itself (a catalogue row, a
    registered descriptor) when the server serves it as described there, else one with
    ``known``'s models (plain dicts without one) and the server's plural, scope, verbs,
    subresources and short names."""
    if known is not None and (
        known.plural, known.namespaced, known.verbs, known.subresources
    ) == (served.plural, served.namespaced, served.verbs, served.subresources):
        return known
    return ResourceDescriptor(
        group=served.group, version=served.version, kind=served.kind, plural=served.plural,
        namespaced=served.namespaced, verbs=served.verbs, subresources=served.subresources,
        short_names=served.short_names,
        model=known.model if known is not None else dict,
        list_model=known.list_model if known is not None else dict,
    )
