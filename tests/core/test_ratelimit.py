"""Token bucket and the sliding abuse counter."""

from __future__ import annotations

from hubbub.core.ratelimit import SlidingCounter, TokenBucket


def test_bucket_starts_full_and_empties() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert not bucket.take(0.4)  # 0.8 token
    assert bucket.take(0.5)  # 1 token
    assert not bucket.take(0.5)
    # A long pause refills only up to the burst.
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_ignores_time_going_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert bucket.take(11.0)


def test_sustained_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=1, now=0.0)
    allowed = sum(bucket.take(i * 0.01) for i in range(1, 1001))  # 100 frames/s for 10 s
    assert 99 <= allowed <= 101


def test_sliding_counter_passes_limit_within_window() -> None:
    counter = SlidingCounter(limit=3, window=10.0)
    assert not counter.add(0.0)
    assert not counter.add(1.0)
    assert not counter.add(2.0)
    assert counter.add(3.0)  # the 4th within 10 s


def test_sliding_counter_forgets_old_events() -> None:
    counter = SlidingCounter(limit=3, window=10.0)
    for t in (0.0, 1.0, 2.0):
        counter.add(t)
    assert not counter.add(10.5)  # 0.0 is out of the window
    assert not counter.add(11.5)
    assert counter.add(12.0)  # 2.0, 10.5, 11.5, 12.0


def test_sliding_counter_memory_is_bounded() -> None:
    counter = SlidingCounter(limit=5, window=1.0)
    for i in range(10_000):
        counter.add(i * 2.0)
    assert len(counter._events) == 6
