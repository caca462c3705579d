"""Sliding-window counters of attempts (sign-ins per username and per client address).

In the process by default. With `LOOPLINE_REDIS_URL` set they live in Redis, so every
server process counts against the same limit and a restart does not hand an attacker a
fresh allowance. Time comes from the runtime's clock in both, so tests move a frozen
clock instead of sleeping.
"""

from __future__ import annotations

import secrets
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from loopline.core.clock import Clock

REDIS_PREFIX = "loopline:attempts:"

# Checks every quota and counts the attempt against all of them only if none is used up, in
# one step, so concurrent attempts from several processes cannot all slip under a limit.
# KEYS: one sorted set of attempt times per quota. ARGV: now, window, a unique member, then
# each quota's limit. Answers the seconds until the fullest quota frees, or nil if counted.
_ATTEMPT_SCRIPT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = nil
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
    local frees_in = oldest and (tonumber(oldest) + window - now) or window
    if wait == nil or frees_in > wait then wait = frees_in end
  end
end
if wait ~= nil then return tostring(wait) end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
end
return nil
"""


@dataclass(frozen=True)
class Quota:
    key: str
    limit: int  # attempts per window


def _whole_seconds(frees_in: float) -> int:
    return max(1, int(frees_in) + 1)


class AttemptLimiter(Protocol):
    async def attempt(self, quotas: Sequence[Quota]) -> int | None:
        """Count an attempt against every quota, or against none if one is used up.

        None when counted; otherwise the seconds until the attempt may be made.
        """

    async def forget(self, key: str) -> None:
        """Drop the attempts counted for `key` (a successful sign-in clears its username)."""

    async def aclose(self) -> None: ...


class MemoryAttemptLimiter:
    def __init__(self, clock: Clock, *, window_s: float) -> None:
        self._clock = clock
        self._window_s = window_s
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def _frees_in(self, quota: Quota, now: float) -> float | None:
        hits = self._hits[quota.key]
        while hits and hits[0] <= now - self._window_s:
            hits.popleft()
        if len(hits) < quota.limit:
            return None
        return hits[0] + self._window_s - now if hits else self._window_s

    async def attempt(self, quotas: Sequence[Quota]) -> int | None:
        now = self._clock.now().timestamp()
        waits = [wait for quota in quotas if (wait := self._frees_in(quota, now)) is not None]
        if waits:
            return _whole_seconds(max(waits))
        for quota in quotas:
            self._hits[quota.key].append(now)
        return None

    async def forget(self, key: str) -> None:
        self._hits.pop(key, None)

    async def aclose(self) -> None:
        self._hits.clear()


class RedisAttemptLimiter:
    def __init__(self, redis: Redis, clock: Clock, *, window_s: float) -> None:
        self._redis = redis
        self._clock = clock
        self._window_s = window_s
        self._attempt = redis.register_script(_ATTEMPT_SCRIPT)

    async def attempt(self, quotas: Sequence[Quota]) -> int | None:
        # A unique member: two attempts in the same instant are two attempts.
        args: list[float | str] = [self._clock.now().timestamp(), self._window_s, secrets.token_hex(8)]
        args += [quota.limit for quota in quotas]
        frees_in = await self._attempt(keys=[REDIS_PREFIX + quota.key for quota in quotas], args=args)
        return None if frees_in is None else _whole_seconds(float(frees_in))

    async def forget(self, key: str) -> None:
        await self._redis.delete(REDIS_PREFIX + key)

    async def aclose(self) -> None:
        await self._redis.aclose()


def attempt_limiter(redis_url: str, clock: Clock, *, window_s: float) -> AttemptLimiter:
    if redis_url:
        return RedisAttemptLimiter(Redis.from_url(redis_url), clock, window_s=window_s)
    return MemoryAttemptLimiter(clock, window_s=window_s)
