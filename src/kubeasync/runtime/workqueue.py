"""The work queue of a controller, with client-go's semantics (``util/workqueue``).

    queue: WorkQueue[ObjectKey] = WorkQueue("websites")
    queue.add(key)                      # queued once however often it is added
    key = await queue.get()             # this worker now holds the key
    try:
        ...
    except Exception:
        queue.add_rate_limited(key)     # again after the key's backoff
    else:
        queue.forget(key)               # the backoff starts again from the bottom
    finally:
        queue.done(key)                 # a key re-added meanwhile is queued again now

The rules, as client-go's typed queue keeps them:

- **dirty**: a key is in the queue at most once; adding a queued key does nothing.
- **processing**: :meth:`~WorkQueue.get` hands a key to one worker and marks it processing
  until :meth:`~WorkQueue.done`. A key added while it is processing is not handed to
  another worker: it waits, and is queued again when the first worker calls ``done``. So
  no two workers ever hold one key, and a change that came in while it was processed is
  never lost.
- **delaying**: :meth:`~WorkQueue.add_after` adds the key once the delay has passed; a key
  waiting twice keeps the earlier time.
- **rate limiting**: :meth:`~WorkQueue.add_rate_limited` adds the key after
  ``rate_limiter.when(key)``: by default the larger of a per-key exponential backoff (5 ms
  doubling to 1,000 s, reset by :meth:`~WorkQueue.forget`) and an overall token bucket
  (10 per second, bursts of 100), client-go's ``DefaultControllerRateLimiter``.
- **shutdown**: ``await queue.shutdown()`` stops: nothing more is added, queued and delayed
  keys are dropped and every waiting ``get()`` raises :class:`QueueShutDown`;
  ``shutdown(drain=True)`` also stops the adds and the delayed keys, but hands out what is
  queued and returns once every key handed out is done.

Time comes from a :class:`~kubeasync.runtime.clock.Clock` (a
:class:`~kubeasync.runtime.clock.FakeClock` in tests). The queue belongs to one event loop
and is used from its thread only; nothing in it blocks.

Metrics are client-go's, with its names (``workqueue_depth``, ``workqueue_adds_total``,
``workqueue_retries_total``, ``workqueue_queue_duration_seconds``,
``workqueue_work_duration_seconds``, ``workqueue_unfinished_work_seconds``,
``workqueue_longest_running_processor_seconds``), readable as numbers
(:attr:`WorkQueue.metrics`) or in the Prometheus text format (:meth:`QueueMetrics.render`).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import heapq
import itertools
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..core.backoff import positive_number
from .clock import MONOTONIC, Clock

__all__ = [
    "DEFAULT_BUCKETS",
    "ExponentialBackoff",
    "Histogram",
    "MaxOf",
    "QueueMetrics",
    "QueueShutDown",
    "RateLimiter",
    "TokenBucket",
    "WorkQueue",
    "default_rate_limiter",
]

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """The queue is shut down and holds nothing more for this worker."""


# --------------------------------------------------------------------------- rate limiters


class RateLimiter(Generic[K]):
    """How long a key waits before it is retried (client-go's ``TypedRateLimiter``)."""

    def when(self, key: K) -> float:
        """Seconds to wait before this retry of ``key``; counts the retry."""
        raise NotImplementedError

    def forget(self, key: K) -> None:
        """``key`` succeeded: its history is dropped."""
        raise NotImplementedError

    def retries(self, key: K) -> int:
        """How many retries of ``key`` were counted since it was last forgotten."""
        raise NotImplementedError


class ExponentialBackoff(RateLimiter[K]):
    """``base * 2**n`` seconds for a key's n-th consecutive retry, at most ``maximum``
    (client-go's ``ItemExponentialFailureRateLimiter``: 5 ms to 1,000 s)."""

    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self.base = positive_number(base, "base")
        self.maximum = positive_number(maximum, "maximum")
        if self.maximum < self.base:
            raise ValueError(f"maximum ({maximum}) must be >= base ({base})")
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base is past any maximum
            return self.maximum
        return min(self.maximum, self.base * 2.0 ** failures)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def retries(self, key: K) -> int:
        return self._failures.get(key, 0)


class TokenBucket(RateLimiter[K]):
    """An overall limit for every key together: ``qps`` retries per second, bursts of
    ``burst`` (client-go's ``BucketRateLimiter`` over ``rate.Limiter``). Each retry takes
    a token; once they are spent, a retry waits until its token has been refilled."""

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock = MONOTONIC) -> None:
        self.qps = positive_number(qps, "qps")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock.now()

    def when(self, key: K) -> float:
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: K) -> None:
        pass

    def retries(self, key: K) -> int:
        return 0


class MaxOf(RateLimiter[K]):
    """The longest wait of several limiters (each one counts every retry)."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOf needs at least one rate limiter")
        self.limiters = limiters

    def when(self, key: K) -> float:
        return max([limiter.when(key) for limiter in self.limiters])

    def forget(self, key: K) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def retries(self, key: K) -> int:
        return max(limiter.retries(key) for limiter in self.limiters)


def default_rate_limiter(clock: Clock = MONOTONIC) -> MaxOf[K]:
    """client-go's ``DefaultControllerRateLimiter``: per-key 5 ms doubling to 1,000 s,
    under an overall bucket of 10 per second with bursts of 100."""
    return MaxOf(ExponentialBackoff(0.005, 1000.0), TokenBucket(10.0, 100, clock=clock))


# --------------------------------------------------------------------------- metrics

DEFAULT_BUCKETS: tuple[float, ...] = tuple(1e-8 * 10.0 ** i for i in range(10))
"""client-go's latency buckets: 10 ns to 10 s, by factors of 10."""


@dataclass
class Histogram:
    """A Prometheus-style histogram: ``counts`` (cumulative, per upper bound), ``sum``,
    ``count``."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    sum: float = 0.0
    count: int = 0
    _per_bucket: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # One slot per bucket and one past the last: observing is a bisection, and the
        # cumulative counts are added up only when read.
        self._per_bucket = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        self._per_bucket[bisect.bisect_left(self.buckets, value)] += 1

    @property
    def counts(self) -> list[int]:
        """How many observations were at most each bound (cumulative)."""
        return list(itertools.accumulate(self._per_bucket[:-1]))


@dataclass
class QueueMetrics:
    """The queue's figures (client-go's workqueue metrics); read them at any time.

    Attributes:
        adds: keys added (a key already queued is not counted again).
        retries: :meth:`WorkQueue.add_rate_limited` calls.
        queue_duration: seconds keys waited in the queue before a worker took them.
        work_duration: seconds workers held keys (``get`` to ``done``).
    """

    name: str = ""
    adds: int = 0
    retries: int = 0
    queue_duration: Histogram = field(default_factory=Histogram)
    work_duration: Histogram = field(default_factory=Histogram)
    _depth: Callable[[], int] = field(default=lambda: 0, repr=False)
    _unfinished: Callable[[], tuple[float, float]] = field(default=lambda: (0.0, 0.0),
                                                           repr=False)

    @property
    def depth(self) -> int:
        """Keys queued now (not the ones being processed, nor the delayed ones)."""
        return self._depth()

    @property
    def unfinished_work_seconds(self) -> float:
        """Seconds the keys being processed have been held so far, together."""
        return self._unfinished()[0]

    @property
    def longest_running_processor_seconds(self) -> float:
        """Seconds the longest-held key has been held so far."""
        return self._unfinished()[1]

    def render(self) -> str:
        """The metrics in the Prometheus text exposition format."""
        label = f'{{name="{_escape(self.name)}"}}'
        lines = [
            "# TYPE workqueue_depth gauge",
            f"workqueue_depth{label} {self.depth}",
            "# TYPE workqueue_adds_total counter",
            f"workqueue_adds_total{label} {self.adds}",
            "# TYPE workqueue_retries_total counter",
            f"workqueue_retries_total{label} {self.retries}",
            "# TYPE workqueue_unfinished_work_seconds gauge",
            f"workqueue_unfinished_work_seconds{label} {self.unfinished_work_seconds!r}",
            "# TYPE workqueue_longest_running_processor_seconds gauge",
            f"workqueue_longest_running_processor_seconds{label}"
            f" {self.longest_running_processor_seconds!r}",
        ]
        for metric, histogram in (("workqueue_queue_duration_seconds", self.queue_duration),
                                  ("workqueue_work_duration_seconds", self.work_duration)):
            lines.append(f"# TYPE {metric} histogram")
            for bound, count in zip(histogram.buckets, histogram.counts, strict=True):
                lines.append(f'{metric}_bucket{{name="{_escape(self.name)}",le="{bound:g}"}}'
                             f" {count}")
            lines.append(f'{metric}_bucket{{name="{_escape(self.name)}",le="+Inf"}}'
                         f" {histogram.count}")
            lines.append(f"{metric}_sum{label} {histogram.sum!r}")
            lines.append(f"{metric}_count{label} {histogram.count}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --------------------------------------------------------------------------- the queue


class WorkQueue(Generic[K]):
    """A deduplicating, delaying, rate-limited queue of keys (see the module docstring).

    Args:
        name: the ``name`` label of its metrics.
        rate_limiter: what :meth:`add_rate_limited` waits (default:
            :func:`default_rate_limiter`).
        clock: the time source (default :data:`~kubeasync.runtime.clock.MONOTONIC`).
    """

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter[K] | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        if not isinstance(name, str):
            raise ValueError(f"name must be a str, got {name!r}")
        if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
            raise ValueError(f"rate_limiter must be a RateLimiter, got {rate_limiter!r}")
        self.name = name
        self._clock = clock
        self._now = clock.now
        self.rate_limiter: RateLimiter[K] = (
            rate_limiter if rate_limiter is not None else default_rate_limiter(clock)
        )
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: dict[K, float] = {}  # key -> when a worker took it
        self._added_at: dict[K, float] = {}  # key -> when it was queued (for the latency)
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._delayed: dict[K, float] = {}  # key -> when it is due
        self._heap: list[tuple[float, int, K]] = []
        self._order = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._pump_wakeup: asyncio.Event | None = None
        self._shutting_down = False
        self._draining = False
        self._drained: asyncio.Event | None = None
        self.metrics = QueueMetrics(name, _depth=self.__len__, _unfinished=self._unfinished)

    def __repr__(self) -> str:
        state = " shutting down" if self._shutting_down else ""
        return (f"<WorkQueue {self.name!r} depth={len(self._queue)}"
                f" processing={len(self._processing)} delayed={len(self._delayed)}{state}>")

    # ------------------------------------------------------------ adding

    def add(self, key: K) -> None:
        """Queue ``key`` (once: a queued key is not queued again). A key being processed
        is queued again when its worker calls :meth:`done`. Ignored once shut down."""
        if self._shutting_down or key in self._dirty:
            return
        self.metrics.adds += 1
        self._dirty.add(key)
        if key not in self._added_at:
            self._added_at[key] = self._now()
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, seconds: float) -> None:
        """Add ``key`` once ``seconds`` have passed (at once when ``seconds <= 0``). A key
        already waiting keeps the earlier of its two times."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or math.isnan(seconds):
            raise ValueError(f"seconds must be a number, got {seconds!r}")
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        due = self._clock.now() + seconds
        waiting = self._delayed.get(key)
        if waiting is not None and waiting <= due:
            return
        self._delayed[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        if self._heap[0][2] == key:  # the earliest now: the pump must wake sooner
            self._start_pump()

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after the rate limiter's wait for it (a retry: counted)."""
        if self._shutting_down:
            return
        self.metrics.retries += 1
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """``key`` succeeded: its backoff starts again from the bottom. (It does not
        remove the key from the queue.)"""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """Retries of ``key`` counted since it was last forgotten."""
        return self.rate_limiter.retries(key)

    # ------------------------------------------------------------ processing

    async def get(self) -> K:
        """The next key; the caller holds it until :meth:`done`. Waits while the queue is
        empty; raises :class:`QueueShutDown` once the queue is shut down (and, when
        draining, empty)."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(f"{self!r} is shut down")
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._getters:
                    self._getters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # it was woken for a key: pass the wakeup on
                raise
        key = self._queue.popleft()
        now = self._now()
        self._dirty.discard(key)
        self._processing[key] = now
        added = self._added_at.pop(key, None)
        if added is not None:
            self.metrics.queue_duration.observe(now - added)
        if self._draining and not self._queue:
            self._wake_all()  # idle workers learn that nothing more comes
        return key

    def done(self, key: K) -> None:
        """The worker is finished with ``key``; if it was added meanwhile, it is queued
        again now."""
        started = self._processing.pop(key, None)
        if started is None:
            raise ValueError(f"done({key!r}): the key is not being processed")
        self.metrics.work_duration.observe(self._now() - started)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()
        self._check_drained()

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def __len__(self) -> int:
        """The depth: keys queued now."""
        return len(self._queue)

    @property
    def processing(self) -> int:
        """How many keys workers hold right now."""
        return len(self._processing)

    @property
    def delayed(self) -> int:
        """How many keys wait for their delay (``add_after``, ``add_rate_limited``)."""
        return len(self._delayed)

    def _unfinished(self) -> tuple[float, float]:
        now = self._clock.now()
        held = [now - started for started in self._processing.values()]
        return (sum(held), max(held)) if held else (0.0, 0.0)

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # ------------------------------------------------------------ delays

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump_wakeup = asyncio.Event()
            self._pump = asyncio.get_running_loop().create_task(
                self._run_pump(self._pump_wakeup), name=f"{self!r} delays"
            )
        elif self._pump_wakeup is not None:
            self._pump_wakeup.set()

    async def _run_pump(self, wakeup: asyncio.Event) -> None:
        """Move delayed keys into the queue when they fall due; ends when none wait."""
        heap = self._heap
        while heap and not self._shutting_down:
            due, _, key = heap[0]
            if self._delayed.get(key) != due:
                heapq.heappop(heap)  # superseded by an earlier time
                continue
            now = self._clock.now()
            if due <= now:
                heapq.heappop(heap)
                del self._delayed[key]
                self.add(key)
                continue
            wakeup.clear()
            sleeper = asyncio.ensure_future(self._clock.sleep(due - now))
            waker = asyncio.ensure_future(wakeup.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    # ------------------------------------------------------------ shutdown

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    async def shutdown(self, *, drain: bool = False) -> None:
        """Stop the queue.

        Without ``drain``: adds are ignored from now on, queued and delayed keys are
        dropped, and every ``get()`` raises :class:`QueueShutDown`; returns at once (keys
        being processed may still be marked :meth:`done`).

        With ``drain=True``: adds and delayed keys likewise, but the keys already queued
        are still handed out; returns once the queue is empty and every key handed out
        is done.
        """
        # Everything up to the first await happens at once: no worker takes a key
        # between the call and the drop.
        self._shutting_down = True
        self._delayed.clear()
        self._heap.clear()
        if not drain:
            for key in self._queue:
                self._dirty.discard(key)
                self._added_at.pop(key, None)
            self._queue.clear()
        else:
            self._draining = True
            self._drained = asyncio.Event()
            self._check_drained()
        self._wake_all()
        pump, self._pump = self._pump, None
        if pump is not None and not pump.done():
            pump.cancel()
            await asyncio.wait({pump})
        if drain and self._drained is not None:
            await self._drained.wait()

    def _wake_all(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _check_drained(self) -> None:
        if self._draining and self._drained is not None and not self._queue \
                and not self._processing:
            self._drained.set()
        elif self._draining and not self._queue:
            self._wake_all()  # idle workers learn that nothing more comes


