"""The SQLite writer: statements inline, waiting for the write lock off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from loopline.core.audit import AuditEvent
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from tests.support import TEST_DATABASE_URL, FreshDatabase

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL.startswith("postgresql"), reason="the inline writer is SQLite's; PostgreSQL uses asyncpg"
)


async def test_a_write_waiting_for_another_process_lock_leaves_the_event_loop_free(
    fresh_database: FreshDatabase,
) -> None:
    runtime = Runtime(settings=fresh_database.settings, db=Database.open(fresh_database.settings))
    other_process = sqlite3.connect(fresh_database.settings.data_dir / "loopline.db", isolation_level=None)
    other_process.execute("PRAGMA journal_mode=WAL")  # as the server leaves the file
    other_process.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        uow = runtime.unit_of_work(actor="test", command="test.lock")
        async with uow:
            uow.audit(entity="test", entity_id="lock", action="test.waited")

    writer = asyncio.create_task(write())
    # If BEGIN blocked the loop, these ticks would run only after the writer gave up.
    for _ in range(5):
        await asyncio.sleep(0.02)
        assert not writer.done()
    other_process.execute("COMMIT")
    await writer
    other_process.close()
    await runtime.db.close()


async def test_many_concurrent_writers_all_commit(fresh_database: FreshDatabase) -> None:
    """More writers than worker threads: the lock holder's COMMIT must never queue behind waiting BEGINs."""
    runtime = Runtime(settings=fresh_database.settings, db=Database.open(fresh_database.settings))

    async def write(n: int) -> None:
        uow = runtime.unit_of_work(actor="test", command="test.concurrent")
        async with uow:
            uow.audit(entity="test", entity_id=str(n), action="test.wrote")
            await asyncio.sleep(0.01)  # hold the write lock across a yield, as real handlers do

    await asyncio.gather(*(write(n) for n in range(40)))
    async with runtime.db.read_session() as session:
        written = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(col(AuditEvent.action) == "test.wrote")
        )
    assert written == 40
    await runtime.db.close()
