"""Time for the controller runtime: a monotonic clock, and one a test moves by hand.

The work queue (delays, backoff, the token bucket) and leader election (renew deadlines,
lease expiry) read time only through a :class:`Clock`: ``now()`` (monotonic seconds) and
``sleep(seconds)``. In production that is :data:`MONOTONIC` (``time.monotonic`` and
``asyncio.sleep``); a test gives a :class:`FakeClock` and moves it with
:meth:`FakeClock.advance`, so a 15-second lease expires in no time and at exactly the
moment the test chooses.

Wall-clock time never decides anything here: it is only written into objects (a Lease's
``renewTime``, an Event's ``eventTime``) for people to read.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["MONOTONIC", "Clock", "DeadlineExceeded", "FakeClock", "MonotonicClock", "run_until"]

R = TypeVar("R")


class Clock:
    """Monotonic time and sleeping; subclass both methods together."""

    def now(self) -> float:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``now() >= deadline`` (at once when it is already past)."""
        delay = deadline - self.now()
        if delay > 0:
            await self.sleep(delay)


class MonotonicClock(Clock):
    """``time.monotonic()`` and ``asyncio.sleep()``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "MONOTONIC"


MONOTONIC: Clock = MonotonicClock()
"""The real clock: what every component uses unless it is given another."""


class FakeClock(Clock):
    """A clock that moves only when the test calls :meth:`advance`.

    ``await clock.sleep(s)`` returns once the clock has been advanced by ``s`` (or more);
    sleepers wake in deadline order. :meth:`wait_for_sleepers` lets a test wait (in real
    time, bounded) until the code under test has gone back to sleep, which is how it
    knows that everything due at the current time has run.

    Args:
        start: the initial reading of :meth:`now`.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        self._changed.set()
        try:
            await future
        finally:
            if not future.done():
                future.cancel()  # cancelled: leave no live entry behind
            self._changed.set()

    @property
    def sleepers(self) -> int:
        """How many ``sleep()`` calls are waiting right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    @property
    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes, or ``None`` when nobody sleeps."""
        self._prune()
        return self._sleepers[0][0] if self._sleepers else None

    def _prune(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due (they run at
        the next ``await`` of the caller)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def wait_for_sleepers(self, n: int, *, timeout: float = 10.0) -> None:
        """Wait (real time, at most ``timeout`` seconds) until at least ``n`` sleepers wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.sleepers < n:
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.sleepers} sleepers after {timeout} s, expected {n}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                continue

    def __repr__(self) -> str:
        return f"<FakeClock now={self._now:.3f} sleepers={self.sleepers}>"


class DeadlineExceeded(Exception):
    """:func:`run_until` stopped the awaitable at its deadline."""


async def run_until(clock: Clock, awaitable: Awaitable[R], deadline: float) -> R:
    """Await ``awaitable``, but cancel it when ``clock`` reaches ``deadline`` and raise
    :class:`DeadlineExceeded` (``asyncio.wait_for`` on any clock)."""
    task = asyncio.ensure_future(awaitable)
    if deadline - clock.now() <= 0 and not task.done():
        task.cancel()
        await asyncio.wait({task})
        raise DeadlineExceeded
    timer = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        timer.cancel()
        await asyncio.wait({task, timer})
        raise
    timer.cancel()
    if not task.done():
        task.cancel()
        await asyncio.wait({task, timer})
        if not task.cancelled() and task.exception() is None:
            return task.result()  # it finished as it was cancelled
        raise DeadlineExceeded
    await asyncio.wait({timer})
    return task.result()
