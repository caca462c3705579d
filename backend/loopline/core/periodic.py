"""Background work on a timer, for as long as a block runs (the server's lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def every(interval_s: float, action: Callable[[], Awaitable[object]], *, what: str) -> AsyncIterator[None]:
    """Run `action` now and then every `interval_s` seconds until the block ends (0 or less: never).

    A failure is logged and the action runs again at the next tick: housekeeping must not
    stop for one bad round.
    """

    async def forever() -> None:
        while True:
            try:
                await action()
            except Exception:
                log.exception("%s failed; trying again in %s s", what, interval_s)
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(forever(), name=what) if interval_s > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
