"""Statements compiled once and run at the driver on SQLite's inline writer (core/prepared.py).

They must answer what SQLAlchemy answers, store values as SQLAlchemy stores them, and fail
as SQLAlchemy fails. On PostgreSQL (the suite's second run) the same tests show the
fallback through SQLAlchemy does the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import String, bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from loopline.core import db as db_module
from loopline.core.access import Role
from loopline.core.db import Database, insert_rows, table_of
from loopline.core.prepared import Prepared
from loopline.core.runtime import Runtime
from loopline.people.models import User
from loopline.people.service import SYSTEM_ACTOR, add_user
from loopline.syncing.models import SyncClient
from tests.support import DEMO_PASSWORD, TEST_DATABASE_URL, FreshDatabase

ON_SQLITE = not TEST_DATABASE_URL.startswith("postgresql")
_clients = table_of(SyncClient).c
_users = table_of(User).c
# The devices of the user named `user` with `last_mid` of 2 or more.
_BY_USER = (
    select(_clients.client_id, _clients.last_mid)
    .join(table_of(User), _users.id == _clients.user_id)
    .where(_users.username == bindparam("user", type_=String), _clients.last_mid >= 2)
    .order_by(_clients.client_id)
)


@pytest.fixture
async def db(fresh_database: FreshDatabase) -> AsyncIterator[Database]:
    """Six devices, c0 to c5, with `last_mid` n, of two users: `USERS[1]` (odd) and `USERS[0]` (even)."""
    settings = fresh_database.settings
    runtime = Runtime(settings=settings, db=Database.open(settings))
    async with runtime.unit_of_work(actor=SYSTEM_ACTOR, command="test.setup") as session:
        users = [
            await add_user(
                session, settings, username=name, password=DEMO_PASSWORD, display_name=name, role=Role.INSPECTOR
            )
            for name in USERS
        ]
        await session.execute(
            insert(table_of(SyncClient)),
            [
                {
                    "client_id": f"c{n}",
                    "user_id": users[n % 2].id,
                    "last_mid": n,
                    "created_at": _at(n),
                    "scope_sets": {},
                }
                for n in range(6)
            ],
        )
    yield runtime.db
    await runtime.db.close()


USERS = ["even.user", "odd.user"]


def _at(n: int) -> datetime:
    return datetime(2026, 11, 24, 9, n, tzinfo=UTC)


def _statements_seen(database: Database) -> list[str]:
    seen: list[str] = []
    event.listen(database.writer.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


async def test_rows_are_what_sqlalchemy_answers_with_bound_values_and_given_ones(db: Database) -> None:
    prepared = Prepared(_BY_USER)  # `>= 2` is bound in the statement, `user` given
    async with db.write_session() as session, session.begin():
        expected = [tuple(row) for row in await session.execute(_BY_USER, {"user": "odd.user"})]
        assert await prepared.rows(session, {"user": "odd.user"}) == expected == [("c3", 3), ("c5", 5)]
        assert await prepared.rows(session, {"user": "nobody"}) == []


async def test_a_list_bound_in_the_statement_is_spelled_out_beside_the_given_values(db: Database) -> None:
    # As an access filter binds a user's scopes: a list known when the statement is built.
    among = select(_clients.client_id).where(
        _clients.client_id.in_(["c1", "c2", "c3"]), _clients.last_mid >= bindparam("least")
    )
    async with db.write_session() as session, session.begin():
        assert sorted(await Prepared(among).rows(session, {"least": 2})) == [("c2",), ("c3",)]


async def test_writes_store_values_as_sqlalchemy_stores_them(db: Database) -> None:
    record = Prepared(
        update(table_of(SyncClient))
        .where(_clients.client_id == bindparam("client"))
        .values(last_mid=bindparam("mid"), last_push_at=bindparam("at"))
    )
    async with db.write_session() as session, session.begin():
        await record.rows(session, {"client": "c1", "mid": 7, "at": _at(30)})
        await session.execute(record.statement, {"client": "c2", "mid": 7, "at": _at(30)})
    async with db.read_session() as session:
        stored = {c.client_id: c for c in await session.scalars(select(SyncClient))}
    assert (stored["c1"].last_mid, stored["c1"].last_push_at) == (7, _at(30))
    async with db.reader.connect() as connection:
        raw = await connection.exec_driver_sql("SELECT last_push_at FROM sync_client WHERE last_mid = 7")
        first, second = [at for (at,) in raw.all()]
        assert first == second  # the same text, or timestamp, for both


async def test_a_write_in_a_savepoint_is_undone_with_the_savepoint(db: Database) -> None:
    """The connection kept for the transaction must not skip a later savepoint's SAVEPOINT."""
    set_mid = Prepared(update(table_of(SyncClient)).where(_clients.client_id == "c1").values(last_mid=bindparam("mid")))
    mid_of_c1 = Prepared(select(_clients.last_mid).where(_clients.client_id == "c1"))
    async with db.write_session() as session, session.begin():
        await set_mid.rows(session, {"mid": 50})
        with contextlib.suppress(LookupError):
            async with session.begin_nested():
                await set_mid.rows(session, {"mid": 60})
                assert await mid_of_c1.rows(session) == [(60,)]
                raise LookupError
        assert await mid_of_c1.rows(session) == [(50,)]


async def test_it_sees_the_sessions_pending_changes_as_an_orm_statement_would(db: Database) -> None:
    async with db.write_session() as session, session.begin():
        device = await session.get(SyncClient, "c0")
        assert device is not None
        device.last_mid = 42  # pending: not flushed yet
        assert await Prepared(select(_clients.last_mid).where(_clients.client_id == "c0")).rows(session) == [(42,)]


async def test_inside_a_listener_it_runs_on_the_sync_connection(db: Database) -> None:
    prepared = Prepared(_BY_USER)
    async with db.write_session() as session, session.begin():
        connection = await session.connection()
        rows = await connection.run_sync(lambda sync: prepared.rows_in(sync, {"user": "even.user"}))
    assert rows == [("c2", 2), ("c4", 4)]


async def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(db: Database) -> None:
    duplicate = Prepared(
        insert(table_of(SyncClient)).values(
            client_id=bindparam("client"),
            user_id=select(_users.id).limit(1).scalar_subquery(),
            last_mid=0,
            created_at=_at(0),
            scope_sets={},
        )
    )
    async with db.write_session() as session, session.begin():
        with pytest.raises(IntegrityError):
            await duplicate.rows(session, {"client": "c1"})


async def test_a_column_whose_values_need_converting_is_refused(db: Database) -> None:
    prepared = Prepared(select(_clients.client_id, _clients.created_at))
    async with db.write_session() as session, session.begin():
        if ON_SQLITE:
            with pytest.raises(TypeError, match="created_at"):
                await prepared.rows(session)
        else:  # through SQLAlchemy, which converts them
            assert len(await prepared.rows(session)) == 6


@pytest.mark.skipif(not ON_SQLITE, reason="the driver path is SQLite's inline writer")
async def test_on_the_inline_writer_it_runs_at_the_driver_and_elsewhere_through_sqlalchemy(db: Database) -> None:
    prepared = Prepared(_BY_USER)
    seen = _statements_seen(db)
    async with db.write_session() as session, session.begin():
        await prepared.rows(session, {"user": "odd.user"})
        assert seen == ["BEGIN IMMEDIATE"]  # the select ran on the sqlite3 connection: no statement event
    async with db.read_session() as session:  # aiosqlite: its own thread, so through SQLAlchemy
        reads: list[Any] = []
        event.listen(db.reader.sync_engine, "before_cursor_execute", lambda *args: reads.append(args[2]))
        assert await prepared.rows(session, {"user": "odd.user"}) == [("c3", 3), ("c5", 5)]
        assert [read for read in reads if "sync_client" in read] == [str(_BY_USER.compile(db.reader))]


@pytest.mark.skipif(not ON_SQLITE, reason="the driver path is SQLite's inline writer")
async def test_inserts_go_to_the_driver_unless_a_listener_watches_their_table(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _statements_seen(db)

    async def insert_device(client_id: str) -> None:
        async with db.write_session() as session, session.begin():
            [(user_id,)] = await Prepared(select(_users.id).where(_users.username == "odd.user")).rows(session)
            device = {"client_id": client_id, "user_id": user_id, "last_mid": 9, "created_at": _at(9), "scope_sets": {}}
            device["last_pulled_seq"] = 0  # `insert_rows` is given every column with a default
            connection = await session.connection()
            await connection.run_sync(insert_rows, table_of(SyncClient), [device])

    await insert_device("at the driver")
    assert not [sql for sql in seen if sql.startswith("INSERT")]
    monkeypatch.setattr(db_module, "WATCHED_TABLES", {"sync_client"})
    await insert_device("through sqlalchemy")
    assert [sql for sql in seen if sql.startswith("INSERT")] != []
    async with db.reader.connect() as connection:
        stored = await connection.exec_driver_sql("SELECT created_at, scope_sets FROM sync_client WHERE last_mid = 9")
        first, second = stored.all()
        assert first == second
