"""Token buckets and abuse windows: pure, the caller passes ``now``."""

from __future__ import annotations

from collections import deque

_EPSILON = 1e-9


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; one frame costs one."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend a token if there is one; ``False`` means rate limited."""
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._last = now
        if self._tokens >= 1.0 - _EPSILON:  # refills add up with float error
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False


class SlidingCounter:
    """Counts events in the last ``window`` seconds; ``add`` says when ``limit`` is passed.

    Holds at most ``limit + 1`` timestamps, so a flood costs bounded memory."""

    __slots__ = ("_events", "_limit", "_window")

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._events: deque[float] = deque(maxlen=limit + 1)

    def add(self, now: float) -> bool:
        """Record an event; ``True`` when more than ``limit`` fell within the window."""
        self._events.append(now)
        return len(self._events) > self._limit and now - self._events[0] <= self._window
