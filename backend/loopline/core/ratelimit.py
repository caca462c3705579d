"""A sliding-window counter for login attempts, per key (a username, a client address).

It lives in the process: enough for the embedded default and for a single server;
behind several processes each keeps its own count, which loosens the limit by the
number of processes (a shared Redis counter is the scaled-out answer).
"""

from __future__ import annotations

from collections import defaultdict, deque

from loopline.core.clock import Clock


class SlidingWindowLimiter:
    def __init__(self, clock: Clock, *, limit: int, window_s: float) -> None:
        self._clock = clock
        self._limit = limit
        self._window_s = window_s
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def _prune(self, key: str) -> deque[float]:
        now = self._clock.now().timestamp()
        hits = self._hits[key]
        while hits and hits[0] <= now - self._window_s:
            hits.popleft()
        return hits

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None if it may try now."""
        hits = self._prune(key)
        if len(hits) < self._limit:
            return None
        return max(1, int(hits[0] + self._window_s - self._clock.now().timestamp()) + 1)

    def hit(self, key: str) -> None:
        self._prune(key).append(self._clock.now().timestamp())

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
