"""What the server serves: API groups and their versions, cached per client."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from ..core.codec import decode
from ..core.errors import NotFound
from ..core.names import validate_dns_subdomain
from ..core.request import Request
from ..transport.policy import Session

__all__ = ["Discovery"]

DEFAULT_TTL = 600.0


class _GroupVersion(msgspec.Struct):
    version: str


class _APIGroup(msgspec.Struct):
    versions: list[_GroupVersion] = msgspec.field(default_factory=list)
    preferredVersion: _GroupVersion | None = None


_GROUP_DECODER = msgspec.json.Decoder(_APIGroup)


class Discovery:
    """The client's view of what its server serves, refreshed after ``ttl`` seconds."""

    def __init__(self, session: Session, *, ttl: float = DEFAULT_TTL) -> None:
        self._session = session
        self._ttl = ttl
        self._groups: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def versions(self, group: str) -> tuple[str, ...]:
        """The versions the server serves of ``group`` (preferred first); empty when it
        does not serve the group."""
        validate_dns_subdomain(group, "group")
        cached = self._groups.get(group)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        request = Request("GET", f"/apis/{group}")
        try:
            answer = decode(_GROUP_DECODER, (await self._session.send(request)).body, request)
        except NotFound:
            versions: tuple[str, ...] = ()
        else:
            served = [v.version for v in answer.versions]
            preferred = answer.preferredVersion.version if answer.preferredVersion else None
            if preferred in served:
                served.remove(preferred)
                served.insert(0, preferred)
            versions = tuple(served)
        self._groups[group] = (now, versions)
        return versions

    async def preferred(self, group: str, candidates: Sequence[str]) -> str:
        """The first of ``candidates`` the server serves for ``group``."""
        served = await self.versions(group)
        for version in candidates:
            if version in served:
                return version
        raise NotFound(_status(group, candidates, served), code=404)

    def forget(self) -> None:
        """Drop everything cached (the next question asks the server)."""
        self._groups.clear()


def _status(group: str, candidates: Sequence[str], served: Sequence[str]) -> Any:
    from ..models import Status

    have = ", ".join(served) if served else "none"
    return Status(
        kind="Status", api_version="v1", status="Failure", code=404, reason="NotFound",
        message=f"the server serves no version of {group!r} this client knows"
                f" ({', '.join(candidates)}); it serves: {have}",
    )
