"""The retry policy: full-jitter exponential backoff, honouring `Retry-After`.

Kept in one place so the engine, the photo queue, the tests and the load generator agree on it. Full
jitter (a uniform draw between 0 and the exponential ceiling) spreads a fleet of devices
that all lost the network at the same moment, so they do not return in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    # A broken proxy answering `Retry-After: 86400` must not park a device for a day.
    max_retry_after_s: float = 300.0

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after `failures` consecutive failures (1 = the first failure)."""
        exponent = max(0, failures - 1)
        ceiling = self.cap_s if exponent >= 64 else min(self.cap_s, self.base_s * 2**exponent)
        wait = rng.uniform(0.0, ceiling)
        if retry_after is not None and retry_after > 0:
            # The server knows better when it will be back: never come earlier than it asked.
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in delta-seconds; HTTP-dates and garbage are ignored (the backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class Attempts:
    """Consecutive failures within one push(), pull() or photo upload; progress resets the count."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.failures = 0
        self.unauthorized = 0

    def progressed(self) -> None:
        self.failures = 0
        self.unauthorized = 0
