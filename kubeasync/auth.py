"""Credential providers: the one seam between configuration and the session.

The session asks its :class:`Auth` for headers before every request, and calls
:meth:`Auth.refresh` once after a 401 before repeating the request. Every provider keeps
its secret out of ``repr()`` and out of exception messages.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Auth", "BearerToken", "NoAuth"]


class Auth:
    """Base class: no credentials (client certificates, if any, live in the TLS context)."""

    async def headers(self) -> Mapping[str, str]:
        """Headers to add to the next request (e.g. ``Authorization``)."""
        return {}

    async def refresh(self) -> bool:
        """Called after a 401: drop cached credentials and fetch new ones.

        Returns True when the credentials may have changed, so repeating the request
        could succeed; False when there is nothing to refresh.
        """
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoAuth(Auth):
    """No credentials at all (an insecure local server, or client-certificate auth only)."""


class BearerToken(Auth):
    """A fixed bearer token."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be a non-empty str")
        self._header = {"Authorization": f"Bearer {token.strip()}"}

    async def headers(self) -> Mapping[str, str]:
        return self._header

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"
