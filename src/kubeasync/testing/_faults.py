"""Fault injection: make the next matching requests fail the way real clusters fail.

Every rule applies to the next ``n`` requests that match its optional ``method`` and
``path`` (a regular expression searched in the URL path), then disappears. Rules are
checked in the order they were added; a request triggers at most one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FaultRule", "Faults"]

_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    502: "",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected by kubeasync.testing",
    503: "The server is currently unable to handle the request (injected by kubeasync.testing)",
    504: "The server was unable to return a response in the time allotted, but may still be"
         " processing the request (injected by kubeasync.testing)",
}


@dataclass
class FaultRule:
    """One pending fault. ``action`` is one of ``fail``, ``html``, ``delay``, ``drop``
    (any request), ``stall`` and ``drop_watch`` (watch requests only)."""

    action: str
    remaining: int
    method: str | None = None
    path: str | None = None
    status: int = 503
    retry_after: int | None = None
    seconds: float = 0.0
    events: int = 0
    mid_line: bool = False
    message: str | None = None
    hits: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.remaining < 1:
            raise ValueError(f"n must be >= 1, got {self.remaining}")
        self._pattern = re.compile(self.path) if self.path is not None else None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "InternalError" if self.status >= 500 else "")

    @property
    def text(self) -> str:
        return self.message or _MESSAGES.get(self.status, f"injected HTTP {self.status}")


class Faults:
    """The fault rules of one :class:`~kubeasync.testing.FakeApiServer` (``server.faults``)."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def _add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        retry_after: int | None = None,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> FaultRule:
        """Answer the next ``n`` matching requests with ``status`` and a Status body
        (429 carries ``Retry-After`` and ``details.retryAfterSeconds`` when ``retry_after``
        is given; 5xx carry the reason a real server uses)."""
        if status < 400:
            raise ValueError(f"status must be an error status (>= 400), got {status}")
        return self._add(FaultRule("fail", n, method, path, status=status,
                                   retry_after=retry_after, message=message))

    def html_next(
        self, n: int = 1, *, status: int = 502, method: str | None = None, path: str | None = None
    ) -> FaultRule:
        """Answer with an HTML error page, as a proxy or load balancer in front would."""
        return self._add(FaultRule("html", n, method, path, status=status))

    def delay_next(
        self, n: int = 1, *, seconds: float, method: str | None = None, path: str | None = None
    ) -> FaultRule:
        """Hold the next ``n`` matching requests for ``seconds`` before serving them."""
        return self._add(FaultRule("delay", n, method, path, seconds=seconds))

    def drop_next(
        self, n: int = 1, *, method: str | None = None, path: str | None = None
    ) -> FaultRule:
        """Close the connection of the next ``n`` matching requests without answering."""
        return self._add(FaultRule("drop", n, method, path))

    def drop_watch_after(
        self, n_events: int, *, n: int = 1, path: str | None = None, mid_line: bool = False
    ) -> FaultRule:
        """Cut the next ``n`` matching watches off (no terminating chunk) after
        ``n_events`` events. With ``mid_line``, the cut falls inside the next line: its
        first half is sent (once there is a next event), then the connection closes."""
        if n_events < 0:
            raise ValueError(f"n_events must be >= 0, got {n_events}")
        return self._add(FaultRule("drop_watch", n, "GET", path, events=n_events,
                                   mid_line=mid_line))

    def stall_next_watch(self, *, n: int = 1, path: str | None = None) -> FaultRule:
        """Answer the next ``n`` matching watches with 200 and headers, then send nothing
        at all (no events, no bookmarks, no end) until the client leaves."""
        return self._add(FaultRule("stall", n, "GET", path))

    def clear(self) -> None:
        """Forget every pending rule."""
        self.rules.clear()

    def take(self, method: str, path: str, *, watch: bool) -> FaultRule | None:
        """The rule this request triggers, if any (its count is used up here).

        Called once for every request with ``watch=False`` (request-level rules), and once
        more by a watch with ``watch=True`` (stream-level rules)."""
        for rule in self.rules:
            if (rule.action in ("stall", "drop_watch")) != watch:
                continue
            if not rule.matches(method, path):
                continue
            rule.remaining -= 1
            rule.hits += 1
            if rule.remaining <= 0:
                self.rules.remove(rule)
            return rule
        return None
