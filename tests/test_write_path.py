"""The unit of work: change log, versions and the audit chain, and what bypassing it does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlmodel import col

from loopline.catalog.models import Plant
from loopline.core.audit import AuditEvent, verify_chain
from loopline.core.changelog import ChangeLog
from loopline.core.db import Database
from loopline.core.entity import STAFF_SCOPE
from loopline.core.runtime import Runtime
from loopline.core.uow import WriteOutsideUnitOfWork
from tests.support import FreshDatabase, cli


@pytest.fixture
async def empty_runtime(fresh_database: FreshDatabase) -> Any:
    runtime = Runtime(settings=fresh_database.settings, db=Database.open(fresh_database.settings))
    yield runtime
    await runtime.db.close()


async def _log(runtime: Runtime) -> list[ChangeLog]:
    async with runtime.db.read_session() as session:
        return list(await session.scalars(select(ChangeLog).order_by(col(ChangeLog.seq))))


async def test_every_write_appends_change_log_and_audit_in_its_transaction(empty_runtime: Runtime) -> None:
    async with empty_runtime.unit_of_work(actor="tester", command="test.create") as session:
        plant = Plant(code="P1", name="Plant one", country="DE")
        session.add(plant)
    async with empty_runtime.unit_of_work(actor="tester", command="test.rename") as session:
        row = await session.get(Plant, plant.id)
        assert row is not None
        row.name = "Plant 1"
        row.tz = "Europe/Berlin"
    async with empty_runtime.unit_of_work(actor="tester", command="test.delete") as session:
        await session.delete(await session.get(Plant, plant.id))

    log = await _log(empty_runtime)
    assert [(c.seq, c.op, c.version, c.scope_key) for c in log] == [
        (1, "put", 1, STAFF_SCOPE),
        (2, "put", 2, STAFF_SCOPE),
        (3, "delete", 3, STAFF_SCOPE),
    ]
    assert log[1].data is not None
    assert log[1].data["name"] == "Plant 1"
    assert log[2].data is None

    async with empty_runtime.db.read_session() as session:
        events = list(await session.scalars(select(AuditEvent).order_by(col(AuditEvent.seq))))
        report = await verify_chain(session)
    assert [(e.action, e.command, e.actor) for e in events] == [
        ("plant.insert", "test.create", "tester"),
        ("plant.update", "test.rename", "tester"),
        ("plant.delete", "test.delete", "tester"),
    ]
    assert events[1].diff == {"name": ["Plant one", "Plant 1"], "tz": ["UTC", "Europe/Berlin"]}
    assert report.ok
    assert report.events == 3


async def test_a_failed_transaction_leaves_no_trace(empty_runtime: Runtime) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with empty_runtime.unit_of_work(actor="tester") as session:
            session.add(Plant(code="P2", name="Plant two", country="DE"))
            await session.flush()
            raise RuntimeError("boom")
    assert await _log(empty_runtime) == []
    async with empty_runtime.db.read_session() as session:
        assert (await session.scalars(select(Plant))).all() == []


async def test_writes_that_bypass_the_unit_of_work_are_refused(empty_runtime: Runtime) -> None:
    async with empty_runtime.db.write_session() as session:
        session.add(Plant(code="P3", name="Plant three", country="DE"))
        with pytest.raises(WriteOutsideUnitOfWork):
            await session.flush()
        await session.rollback()
    async with empty_runtime.unit_of_work(actor="tester") as session:
        with pytest.raises(WriteOutsideUnitOfWork):
            await session.execute(update(Plant).values(name="x"))


async def _tamper(runtime: Runtime, statement: Any) -> None:
    # The attacker writes the table directly, as someone with database access would.
    async with runtime.db.writer.begin() as connection:
        await connection.execute(statement)


async def _chain_with_events(runtime: Runtime, count: int) -> None:
    for n in range(count):
        async with runtime.unit_of_work(actor="tester") as session:
            session.add(Plant(code=f"T{n}", name=f"Plant {n}", country="CZ"))


async def test_audit_chain_detects_an_edited_row(empty_runtime: Runtime, fresh_database: FreshDatabase) -> None:
    await _chain_with_events(empty_runtime, 5)
    assert "5 events" in cli(fresh_database.settings, "audit", "verify").stdout

    await _tamper(empty_runtime, update(AuditEvent).where(col(AuditEvent.seq) == 3).values(actor="someone-else"))
    async with empty_runtime.db.read_session() as session:
        report = await verify_chain(session)
    assert (report.first_broken_seq, report.reason) == (3, "event content does not match its hash")
    result = cli(fresh_database.settings, "audit", "verify", check=False)
    assert result.returncode == 1
    assert "BROKEN at seq 3" in result.stderr


async def test_audit_chain_detects_a_deleted_row(empty_runtime: Runtime) -> None:
    await _chain_with_events(empty_runtime, 5)
    await _tamper(empty_runtime, delete(AuditEvent).where(col(AuditEvent.seq) == 2))
    async with empty_runtime.db.read_session() as session:
        report = await verify_chain(session)
    assert (report.first_broken_seq, report.reason) == (2, "event 2 is missing")


async def test_audit_chain_detects_a_deleted_row_whose_successors_were_renumbered(empty_runtime: Runtime) -> None:
    await _chain_with_events(empty_runtime, 4)
    await _tamper(empty_runtime, delete(AuditEvent).where(col(AuditEvent.seq) == 2))
    await _tamper(empty_runtime, text("UPDATE audit_event SET seq = seq - 1 WHERE seq > 2"))
    async with empty_runtime.db.read_session() as session:
        report = await verify_chain(session)
    assert report.first_broken_seq == 2
    assert report.reason == "link to the previous event is broken"


async def test_audit_chain_detects_deleted_newest_rows_against_an_anchor(empty_runtime: Runtime) -> None:
    await _chain_with_events(empty_runtime, 3)
    async with empty_runtime.db.read_session() as session:
        anchor = (await verify_chain(session)).head_hash
    await _tamper(empty_runtime, delete(AuditEvent).where(col(AuditEvent.seq) == 3))
    async with empty_runtime.db.read_session() as session:
        assert (await verify_chain(session)).ok
        report = await verify_chain(session, expected_head=anchor)
    assert report.first_broken_seq == 3


async def test_the_change_log_and_the_api_tell_the_same_story(client: Any, login: Any, runtime: Runtime) -> None:
    """Replaying the log's latest `put` per entity gives exactly what a fresh REST read returns."""
    admin = await login("admin")
    async with runtime.db.read_session() as session:
        log = list(await session.scalars(select(ChangeLog).order_by(col(ChangeLog.seq))))
    replayed: dict[tuple[str, str], dict[str, Any] | None] = {}
    for change in log:
        replayed[(change.entity, change.entity_id)] = change.data if change.op == "put" else None
    for path, entity in [
        ("/api/v1/batches", "batch"),
        ("/api/v1/accounts", "account"),
        ("/api/v1/contacts", "contact"),
        ("/api/v1/shipments", "shipment"),
        ("/api/v1/plants", "plant"),
        ("/api/v1/product-models", "product_model"),
    ]:
        items = (await client.get(path, headers=admin, params={"limit": 500})).json()["items"]
        from_log = {eid: data for (kind, eid), data in replayed.items() if kind == entity and data is not None}
        assert {item["id"]: item for item in items} == from_log, entity


async def test_a_failed_savepoint_undoes_its_rows_and_its_bookkeeping(empty_runtime: Runtime) -> None:
    uow = empty_runtime.unit_of_work(actor="tester", command="test.savepoints")
    async with uow as session:
        async with uow.savepoint():
            session.add(Plant(code="KEEP", name="Kept", country="DE"))
        with pytest.raises(RuntimeError, match="poison"):
            async with uow.savepoint():
                session.add(Plant(code="DROP", name="Dropped", country="DE"))
                await session.flush()
                raise RuntimeError("poison")
        async with uow.savepoint():
            session.add(Plant(code="ALSO", name="Also kept", country="DE"))
    log = await _log(empty_runtime)
    assert [(c.data or {}).get("code") for c in log] == ["KEEP", "ALSO"]
    async with empty_runtime.db.read_session() as session:
        assert sorted((await session.scalars(select(col(Plant.code)))).all()) == ["ALSO", "KEEP"]
        events = (await session.scalars(select(col(AuditEvent.action)))).all()
        assert list(events) == ["plant.insert", "plant.insert"]
        assert (await verify_chain(session)).ok
