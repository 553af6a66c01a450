"""The work queue: client-go's semantics, on a clock the tests move by hand."""

from __future__ import annotations

import asyncio
import re

import pytest

from kubeasync import (
    ExponentialBackoff,
    MaxOf,
    QueueShutDown,
    TokenBucket,
    WorkQueue,
    default_rate_limiter,
)
from kubeasync.runtime.clock import DeadlineExceeded, FakeClock, run_until


async def settle() -> None:
    """Let every task that can run, run (no I/O here: a few loop turns suffice)."""
    for _ in range(10):
        await asyncio.sleep(0)


def queue(clock: FakeClock | None = None, **options: object) -> WorkQueue[str]:
    return WorkQueue("test", clock=clock or FakeClock(), **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the typed queue


async def test_a_key_is_queued_once_however_often_it_is_added() -> None:
    q = queue()
    for key in ("a", "b", "a", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]  # fair: first added, first out
    assert q.metrics.adds == 3


async def test_a_key_added_while_processing_waits_for_done_then_runs_again() -> None:
    q = queue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker
    second = asyncio.ensure_future(q.get())
    await settle()
    assert not second.done()
    q.done("a")
    assert await asyncio.wait_for(second, 1) == "a"  # once, after the first worker
    q.done("a")
    assert len(q) == 0 and q.processing == 0


async def test_no_two_workers_ever_hold_one_key() -> None:
    q = queue()
    held: set[str] = set()
    overlaps: list[str] = []
    runs: dict[str, int] = {}

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in held:
                overlaps.append(key)
            held.add(key)
            runs[key] = runs.get(key, 0) + 1
            await asyncio.sleep(0)
            q.add(key if runs[key] < 3 else "done")  # re-added while processing
            await asyncio.sleep(0)
            held.discard(key)
            q.done(key)

    workers = [asyncio.ensure_future(worker()) for _ in range(4)]
    for key in "abcdef":
        q.add(key)
    await settle()
    await q.shutdown(drain=True)
    await asyncio.gather(*workers)
    assert overlaps == []
    assert all(runs[key] == 3 for key in "abcdef")


async def test_done_of_a_key_not_being_processed_is_an_error() -> None:
    q = queue()
    q.add("a")
    with pytest.raises(ValueError, match="not being processed"):
        q.done("a")


async def test_a_cancelled_get_passes_its_wakeup_on() -> None:
    q = queue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await settle()
    q.add("a")
    first.cancel()  # woken for "a", cancelled before it ran
    await asyncio.wait({first})
    assert await asyncio.wait_for(second, 1) == "a"


# ------------------------------------------------------------------ delays


async def test_add_after_adds_when_the_delay_has_passed() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add_after("a", 10)
    q.add_after("b", 5)
    q.add_after("c", 0)  # at once
    assert len(q) == 1 and q.delayed == 2
    assert await q.get() == "c"
    await clock.wait_for_sleepers(1)
    clock.advance(4.9)
    await settle()
    assert len(q) == 0
    clock.advance(0.1)
    await settle()
    assert await q.get() == "b"
    clock.advance(5)
    await settle()
    assert await q.get() == "a"
    assert q.delayed == 0


async def test_a_key_waiting_twice_keeps_the_earlier_time() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add_after("a", 10)
    q.add_after("a", 2)  # earlier: wins
    q.add_after("a", 30)  # later: ignored
    assert q.delayed == 1
    await clock.wait_for_sleepers(1)
    clock.advance(2)
    await settle()
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    clock.advance(100)
    await settle()
    assert len(q) == 0  # the superseded times do not add it again


async def test_add_after_rejects_a_bad_delay() -> None:
    q = queue()
    with pytest.raises(ValueError, match="seconds must be a number"):
        q.add_after("a", "soon")  # type: ignore[arg-type]


# ------------------------------------------------------------------ rate limiting


def test_exponential_backoff_doubles_from_5_ms_to_1000_s_and_forget_resets() -> None:
    limiter: ExponentialBackoff[str] = ExponentialBackoff()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:5] == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert delays[17] == 655.36 and delays[18] == 1000.0 and delays[19] == 1000.0
    assert limiter.retries("a") == 20
    assert limiter.when("b") == 0.005  # per key
    limiter.forget("a")
    assert limiter.retries("a") == 0 and limiter.when("a") == 0.005
    for _ in range(200):
        limiter.when("c")
    assert limiter.when("c") == 1000.0  # no overflow


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket: TokenBucket[str] = TokenBucket(qps=10, burst=3, clock=clock)
    assert [bucket.when("k") for _ in range(3)] == [0, 0, 0]
    assert bucket.when("k") == pytest.approx(0.1)
    assert bucket.when("k") == pytest.approx(0.2)  # reservations queue up
    clock.advance(1.0)  # refills to the burst, minus what was reserved
    assert bucket.when("k") == 0
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(qps=1, burst=0)


def test_the_default_limiter_is_the_max_of_the_backoff_and_the_bucket() -> None:
    clock = FakeClock()
    limiter: MaxOf[str] = default_rate_limiter(clock)
    # 100 keys fail at once: the bucket (10/s, burst 100) lets them through...
    assert max(limiter.when(f"k{i}") for i in range(100)) == 0.005
    # ...and the next ones wait for tokens, whatever their own backoff says.
    assert limiter.when("late") == pytest.approx(0.1)
    assert limiter.retries("k1") == 1
    limiter.forget("k1")
    assert limiter.retries("k1") == 0


async def test_add_rate_limited_waits_the_backoff_counts_retries_and_forget_resets() -> None:
    clock = FakeClock()
    q = queue(clock, rate_limiter=ExponentialBackoff(base=1.0, maximum=8.0))
    for expected_delay in (1.0, 2.0, 4.0, 8.0, 8.0):
        q.add_rate_limited("a")
        await clock.wait_for_sleepers(1)
        clock.advance(expected_delay - 0.01)
        await settle()
        assert len(q) == 0, expected_delay
        clock.advance(0.01)
        await settle()
        assert await q.get() == "a"
        q.done("a")
    assert q.num_requeues("a") == 5 and q.metrics.retries == 5
    q.forget("a")
    assert q.num_requeues("a") == 0
    q.add_rate_limited("a")
    await clock.wait_for_sleepers(1)
    clock.advance(1.0)
    await settle()
    assert len(q) == 1


# ------------------------------------------------------------------ shutdown


async def test_shutdown_stops_drops_what_waits_and_wakes_the_workers() -> None:
    clock = FakeClock()
    q = queue(clock)
    q.add("x")
    assert await q.get() == "x"  # being processed during the shutdown
    idle = asyncio.ensure_future(q.get())
    await settle()
    q.add("a")  # handed to the idle worker
    q.add("b")  # queued: dropped by the shutdown
    q.add_after("c", 5)  # delayed: dropped
    assert await idle == "a"
    waiting = asyncio.ensure_future(q.get())
    assert len(q) == 1
    await q.shutdown()
    assert len(q) == 0
    with pytest.raises(QueueShutDown):
        await waiting  # "b" was dropped before it ran
    q.add("d")  # ignored
    assert len(q) == 0 and q.delayed == 0
    with pytest.raises(QueueShutDown):
        await q.get()
    q.done("x")  # keys being processed may still be marked done
    q.done("a")
    clock.advance(10)
    await settle()
    assert len(q) == 0


async def test_shutdown_drops_queued_keys_and_every_waiting_get_raises() -> None:
    q = queue()
    getters = [asyncio.ensure_future(q.get()) for _ in range(3)]
    await settle()
    await q.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(result, QueueShutDown) for result in results)
    q2 = queue()
    q2.add("a")
    await q2.shutdown()
    assert len(q2) == 0  # dropped, never handed out
    with pytest.raises(QueueShutDown):
        await q2.get()


async def test_shutdown_with_drain_hands_out_what_is_queued_and_waits_for_done() -> None:
    q = queue()
    for key in "abc":
        q.add(key)
    handled: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            await asyncio.sleep(0)
            handled.append(key)
            q.add("late")  # ignored: draining
            q.done(key)

    workers = [asyncio.ensure_future(worker()) for _ in range(2)]
    await q.shutdown(drain=True)
    assert sorted(handled) == ["a", "b", "c"]
    await asyncio.wait_for(asyncio.gather(*workers), 1)  # idle workers were told


# ------------------------------------------------------------------ metrics


async def test_metrics_count_adds_retries_latency_and_work_duration() -> None:
    clock = FakeClock()
    q = queue(clock, rate_limiter=ExponentialBackoff(base=0.5, maximum=1.0))
    q.add("a")
    q.add("a")
    q.add("b")
    assert q.metrics.depth == 2 and q.metrics.adds == 2
    clock.advance(0.25)
    key = await q.get()
    assert q.metrics.queue_duration.count == 1 and q.metrics.queue_duration.sum == 0.25
    clock.advance(2.0)
    assert q.metrics.unfinished_work_seconds == 2.0
    assert q.metrics.longest_running_processor_seconds == 2.0
    q.done(key)
    assert q.metrics.work_duration.count == 1 and q.metrics.work_duration.sum == 2.0
    q.add_rate_limited("a")
    text = q.metrics.render()
    assert 'workqueue_depth{name="test"} 1' in text
    assert 'workqueue_adds_total{name="test"} 2' in text
    assert 'workqueue_retries_total{name="test"} 1' in text
    assert 'workqueue_work_duration_seconds_count{name="test"} 1' in text
    assert 'workqueue_queue_duration_seconds_bucket{name="test",le="+Inf"} 1' in text
    # cumulative buckets: 0.25 s falls in le=1 and le=10, not below
    assert 'workqueue_queue_duration_seconds_bucket{name="test",le="0.1"} 0' in text
    assert 'workqueue_queue_duration_seconds_bucket{name="test",le="1"} 1' in text
    for line in text.splitlines():
        assert line.startswith("# TYPE ") or re.match(r"^workqueue_\w+\{[^}]*\} \S+$", line), line


# ------------------------------------------------------------------ the clock


async def test_run_until_cancels_at_the_deadline_of_a_fake_clock() -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(run_until(clock, forever(), clock.now() + 5))
    await started.wait()
    await clock.wait_for_sleepers(1)
    clock.advance(4.99)
    await settle()
    assert not task.done()
    clock.advance(0.01)
    with pytest.raises(DeadlineExceeded):
        await asyncio.wait_for(task, 1)
    assert await run_until(clock, asyncio.sleep(0, "fast"), clock.now() + 1) == "fast"
