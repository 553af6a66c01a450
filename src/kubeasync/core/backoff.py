"""Backoff: how long to wait before trying again, for requests and watches alike."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff", "positive_number"]


def positive_number(value: object, name: str) -> float:
    """``value`` as a float, if it is a number > 0 (not a bool); else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before trying again after consecutive failures.

    The n-th consecutive failure waits ``min(maximum, initial * factor**n)`` stretched by a
    random factor in ``[1, 1 + jitter]`` (capped at ``maximum``), so that many clients cut
    off at once do not come back at once. A server's ``Retry-After`` (or
    ``retryAfterSeconds``) is used instead, up to ``maximum``. Watchers count afresh once
    ``reset_after`` seconds passed without a failure.

    One type for both: requests retry with ``Backoff(0.1, 10)`` (see :class:`RetryPolicy`),
    watchers with ``Backoff()`` (0.8 s to 30 s, as client-go's reflector).
    """

    initial: float = 0.8
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    reset_after: float = 120.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "reset_after"):
            positive_number(getattr(self, name), name)
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) \
                or self.factor < 1:
            raise ValueError(f"factor must be a number >= 1, got {self.factor!r}")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, (int, float)) \
                or self.jitter < 0:
            raise ValueError(f"jitter must be a number >= 0, got {self.jitter!r}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum ({self.maximum}) must be >= initial ({self.initial})")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(self.maximum, max(0.0, retry_after))
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return min(self.maximum, base * (1 + self.jitter * random.random()))


