"""Statements the write path runs on every push, compiled once and run at the driver on SQLite.

A chat message's push runs a handful of small statements: the device's claim, the thread's
readability, its counter, the participants, the device's record, and the commit's
change-log and audit heads. Through SQLAlchemy each costs 40 to 60 µs of CPU here even when
built once (its cache key, the execution context, the async bridge's round trips, the
result's wrapping), the complex ones more; SQLite runs one in 1.5 µs. On the writer's
inline connection (core/sqlite_inline.py) the statement is already on the event loop's
thread, inside the transaction, so a `Prepared` statement runs its SQL, compiled once, on
that sqlite3 connection directly. Anywhere else (PostgreSQL, aiosqlite) it runs through
SQLAlchemy as before.

At the driver, the engine's statement events do not see it. So: for reads, and for writes
to bookkeeping tables that no listener watches (`db.WATCHED_TABLES`: the principal
cache's users, memberships, login sessions and accounts). A driver error is raised as
SQLAlchemy raises it (`OperationalError`, `IntegrityError`, …), so callers handle both
paths alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Connection, CursorResult, Dialect, bindparam
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from loopline.core.sqlite_inline import InlineConnection

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per positional parameter: its name, its value when bound in the statement, its bind processor.
    parameters: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]


class Prepared:
    """A Core statement run by `rows` (in a coroutine) or `rows_in` (in a sync listener)."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: _Compiled | None = None

    async def rows(self, session: AsyncSession, parameters: Mapping[str, Any] | None = None) -> Rows:
        """The statement's rows, in the session's transaction, after its pending changes (as an
        ORM statement would autoflush them)."""
        if session.new or session.dirty or session.deleted:
            await session.flush()
        connection, driver = await _connection_of(session)
        if driver is None:
            return _rows(await connection.execute(self.statement, parameters))
        return self._run(driver, connection.dialect, parameters or {})

    def rows_in(self, connection: Connection, parameters: Mapping[str, Any] | None = None) -> Rows:
        driver = inline_sqlite(connection)
        if driver is None:
            return _rows(connection.execute(self.statement, parameters))
        return self._run(driver, connection.dialect, parameters or {})

    def _run(self, driver: sqlite3.Connection, dialect: Dialect, given: Mapping[str, Any]) -> Rows:
        compiled = self._compiled or self._compile(dialect)
        values = []
        for name, bound, process in compiled.parameters:
            value = given.get(name, bound)
            values.append(value if process is None else process(value))
        return execute_at_driver(driver, dialect, compiled.sql, values)

    def _compile(self, dialect: Dialect) -> _Compiled:
        assert isinstance(self.statement, ClauseElement)
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        # Rows come back as the driver gives them: only columns the dialect hands over unchanged.
        for column in compiled._result_columns:
            if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
                raise TypeError(f"{column.name}: a column whose values need converting cannot be read at the driver")
        # The SQL as it is sent, with the lists bound in the statement (an access filter's scopes)
        # spelled out as parameters of their own; those given at each run are left unset.
        expanded = compiled.construct_expanded_state(
            {name: None for name, bind in compiled.binds.items() if bind.required}
        )

        def processor(name: str) -> Callable[[Any], Any] | None:
            if name not in compiled.binds:  # an item of a list bound in the statement
                return expanded.processors.get(name)
            return compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)

        self._compiled = _Compiled(
            expanded.statement,
            tuple((name, expanded.parameters[name], processor(name)) for name in expanded.positiontup or ()),
        )
        return self._compiled


# In a session's `info`: its innermost transaction, that transaction's connection and the sqlite3 one under it.
_CONNECTION = "loopline.prepared_connection"


async def _connection_of(session: AsyncSession) -> tuple[AsyncConnection, sqlite3.Connection | None]:
    """The session's connection, kept while its innermost transaction lasts: asking the session
    for it costs more than a statement at the driver.

    Kept no longer: the session emits a savepoint's SAVEPOINT when the savepoint's
    transaction first asks for the connection, so each new one must ask."""
    innermost = session.sync_session.get_nested_transaction() or session.sync_session.get_transaction()
    kept = session.info.get(_CONNECTION)
    if kept is not None and innermost is not None and kept[0] is innermost:
        return kept[1], kept[2]
    connection = await session.connection()
    assert connection.sync_connection is not None
    driver = inline_sqlite(connection.sync_connection)
    innermost = session.sync_session.get_nested_transaction() or session.sync_session.get_transaction()
    session.info[_CONNECTION] = (innermost, connection, driver)
    return connection, driver


def numbered_parameters(prefix: str, count: int, type_: TypeEngine[Any]) -> list[BindParameter[Any]]:
    """Parameters `<prefix>_0` to `<prefix>_<count - 1>`, for a statement built once per number of
    values (a list of them would be an expanding parameter, spelled out at every run)."""
    return [bindparam(f"{prefix}_{n}", type_=type_) for n in range(count)]


def numbered_values(prefix: str, values: Iterable[Any]) -> dict[str, Any]:
    """`values` as the parameters of `numbered_parameters(prefix, …)`."""
    return {f"{prefix}_{n}": value for n, value in enumerate(values)}


def _rows(result: CursorResult[Any]) -> Rows:
    return [tuple(row) for row in result] if result.returns_rows else []


def inline_sqlite(connection: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `connection` when it is the writer's inline one."""
    driver = connection.connection.driver_connection
    return driver.sqlite if isinstance(driver, InlineConnection) else None


def execute_at_driver(
    driver: sqlite3.Connection, dialect: Dialect, sql: str, values: Sequence[Any], *, many: bool = False
) -> Rows:
    """Run `sql` on `driver` (`values` a sequence of rows' values when `many`); a driver error
    is raised as SQLAlchemy raises it."""
    try:
        if many:
            driver.executemany(sql, values)
            return []
        return driver.execute(sql, values).fetchall()
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, values, error, sqlite3.Error, dialect=dialect) from error
