"""Event-loop lag, measured inside the server: how late the loop wakes a task that slept 1 ms.

Whatever blocks the loop (a CPU-bound step, a synchronous file or database call) delays
every request the process serves, chat and sync included; this probe shows by how much.
It is off unless `LOOPLINE_LOOP_LAG_PROBE=1`. Then a task samples the lag without pause,
and an admin reads the percentiles at `GET /admin/debug/loop-lag` and starts a new
measurement window with `DELETE` on the same path: a benchmark resets, loads the server,
then reads. Being in the server process, it needs no access to the process from outside
and measures exactly the loop that serves the requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Controller, Litestar, delete, get
from litestar.datastructures import State
from pydantic import BaseModel

from loopline.core.auth import admin_only
from loopline.core.errors import AppError

SLEEP_S = 0.001


class LoopLag(BaseModel):
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


class LoopLagProbe:
    def __init__(self, keep: int = 500_000) -> None:
        # At most one sample per millisecond: a bounded window of the last few minutes.
        self._samples: deque[float] = deque(maxlen=keep)

    def reset(self) -> None:
        self._samples.clear()

    def report(self) -> LoopLag:
        ordered = sorted(self._samples)

        def percentile(q: float) -> float:
            if not ordered:
                return 0.0
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

        return LoopLag(
            samples=len(ordered),
            p50_ms=percentile(0.5),
            p90_ms=percentile(0.9),
            p99_ms=percentile(0.99),
            max_ms=percentile(1.0),
        )

    async def _sample_forever(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(SLEEP_S)
            self._samples.append(max(0.0, time.perf_counter() - started - SLEEP_S))

    @asynccontextmanager
    async def lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        sampler = asyncio.create_task(self._sample_forever())
        try:
            yield
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)


def _probe(state: State) -> LoopLagProbe:
    probe: LoopLagProbe | None = state.get("loop_lag")
    if probe is None:
        raise AppError(
            "probe_disabled",
            "The loop-lag probe is off; start the server with LOOPLINE_LOOP_LAG_PROBE=1.",
            status_code=404,
        )
    return probe


class LoopLagController(Controller):
    path = "/admin/debug/loop-lag"
    tags = ["admin"]
    guards = [admin_only]

    @get("/", operation_id="admin_get_loop_lag")
    async def report(self, state: State) -> LoopLag:
        """Event-loop lag percentiles since the probe started or was last reset."""
        return _probe(state).report()

    @delete("/", operation_id="admin_reset_loop_lag")
    async def reset(self, state: State) -> None:
        """Start a new measurement window."""
        _probe(state).reset()
