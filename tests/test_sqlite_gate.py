"""The SQLite writer's gate: writers of one process take the write lock in turn, first come first served."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from loopline.core.audit import AuditEvent
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from tests.support import TEST_DATABASE_URL, FreshDatabase

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL.startswith("postgresql"), reason="the gate is the SQLite writer's; PostgreSQL has row locks"
)


async def _audited(runtime: Runtime, action: str) -> int:
    async with runtime.db.read_session() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(col(AuditEvent.action) == action)
        )
    return int(count or 0)


async def test_writers_take_the_lock_in_the_order_they_asked(fresh_database: FreshDatabase) -> None:
    """SQLite's busy handler lets sleeping waiters in by chance; the gate hands the lock on in order."""
    runtime = Runtime(settings=fresh_database.settings, db=Database.open(fresh_database.settings))
    order: list[int] = []

    async def write(n: int) -> None:
        uow = runtime.unit_of_work(actor="test", command="test.turns")
        async with uow as session:
            await session.execute(select(1))  # begins the write transaction: the turn is taken here
            order.append(n)
            uow.audit(entity="test", entity_id=str(n), action="test.turn")
            await asyncio.sleep(0)  # others queue while this one holds the lock

    writers = []
    for n in range(12):
        writers.append(asyncio.create_task(write(n)))
        await asyncio.sleep(0)  # each reaches its BEGIN before the next one starts
    await asyncio.gather(*writers)
    assert order == list(range(12))
    assert await _audited(runtime, "test.turn") == 12
    await runtime.db.close()


async def test_a_writer_that_waits_past_the_busy_timeout_gives_up_and_the_next_goes_on(
    fresh_database: FreshDatabase,
) -> None:
    settings = dataclasses.replace(fresh_database.settings, sqlite_busy_timeout_ms=100)
    runtime = Runtime(settings=settings, db=Database.open(settings))
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        uow = runtime.unit_of_work(actor="test", command="test.hold")
        async with uow as session:
            await session.execute(select(1))
            holding.set()
            await release.wait()
            uow.audit(entity="test", entity_id="holder", action="test.held")

    async def write(action: str) -> None:
        uow = runtime.unit_of_work(actor="test", command="test.wait")
        async with uow as session:
            await session.execute(select(1))
            uow.audit(entity="test", entity_id=action, action=action)

    holder = asyncio.create_task(hold())
    await holding.wait()
    with pytest.raises(OperationalError, match="database is locked"):
        await write("test.gave_up")
    release.set()
    await holder
    await write("test.after")  # the turn the impatient writer abandoned did not get lost
    assert await _audited(runtime, "test.gave_up") == 0
    assert await _audited(runtime, "test.held") == await _audited(runtime, "test.after") == 1
    await runtime.db.close()
