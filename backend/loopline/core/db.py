"""Database engines and sessions.

SQLite is the embedded default and has one trap under an async server: concurrent
read-modify-write transactions lose updates or fail with "database is locked" unless
every write transaction takes the write lock up front. So on SQLite:

* the DBAPI connection runs in autocommit mode and we emit ``BEGIN`` ourselves;
* the *writer* engine begins with ``BEGIN IMMEDIATE`` (waits up to the busy timeout
  for the lock instead of failing half-way), the *reader* engine with a deferred
  ``BEGIN`` so reads never queue behind writes (WAL gives them a snapshot);
* WAL journal, ``foreign_keys=ON``, a busy timeout and the configured ``synchronous``
  level are set on every connection;
* a third, *quick reader* engine runs short indexed reads (the live tail's new rows)
  on the event loop's thread, like the writer, without aiosqlite's thread hops.

On PostgreSQL both engines are one pool; ordering of the change log is handled by the
unit of work (an advisory lock), not here.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, Table, event, insert, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel

from loopline.core.errors import UnstorableValue
from loopline.core.prepared import execute_at_driver, inline_sqlite
from loopline.core.settings import Settings
from loopline.core.sqlite_inline import inline_connector


def table_of(model: type[SQLModel]) -> Table:
    """The model's table, for Core statements where ORM objects would cost more than the write."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def json_text(value: Any) -> str:
    """How JSON columns are written (the engines' serializer): the change log's `data` as stored.

    JSON columns are written on every change-log append; orjson encodes them several times faster."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as refused:
        raise UnstorableValue(str(refused)) from refused


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) in one executemany at the driver.

    For the bookkeeping a rule writes by the thousand (change log, audit, set-based entity
    inserts): SQLAlchemy's Core insert prepares every parameter of every row on its own,
    which costs more than SQLite's insert. Values go through the columns' own bind
    processors, so they are stored as a Core insert stores them, but a value shared by
    consecutive rows (one change's data in each of its scopes, the commit's timestamp) is
    processed once.
    """
    if not rows:
        return
    sql, columns, processors = _driver_insert(table, frozenset(rows[0]), connection.dialect)
    values_of = operator.itemgetter(*columns)
    processed_columns = [(index, process) for index, process in enumerate(processors) if process is not None]
    last: list[tuple[Any, Any]] = [(_UNSET, None)] * len(columns)
    parameters = []
    for row in rows:
        values = list(values_of(row)) if len(columns) > 1 else [row[columns[0]]]
        for index, process in processed_columns:
            value = values[index]
            seen, processed = last[index]
            if value is not seen:
                processed = process(value)
                last[index] = (value, processed)
            values[index] = processed
        parameters.append(tuple(values))
    driver = inline_sqlite(connection)
    if driver is not None and table.name not in WATCHED_TABLES:
        # Through SQLAlchemy the statement cost more than SQLite's insert (core/prepared.py).
        execute_at_driver(driver, connection.dialect, sql, parameters, many=True)
        return
    connection.exec_driver_sql(sql, parameters, execution_options={WRITES_TABLE: table.name})


_UNSET = object()
# The execution option that names the table a driver-level write goes to: listeners that
# watch writes by table (the principal cache) cannot read it from the SQL text.
WRITES_TABLE = "loopline.writes_table"
# The tables whose writes a statement listener must see (the principal cache adds its own):
# `insert_rows` writes the others at the driver on SQLite's inline writer, unseen by listeners.
WATCHED_TABLES: set[str] = set()


@functools.cache
def _driver_insert(
    table: Table, keys: frozenset[str], dialect: Dialect
) -> tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...]]:
    """The statement, its parameters' order (positional paramstyles: SQLite's ?, asyncpg's $n)
    and each parameter's bind processor."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    assert compiled.positiontup is not None
    columns = tuple(compiled.positiontup)
    assert set(columns) == keys
    processors = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)
    return str(compiled), columns, processors


READER_THREADS = 2
# SQLite's default is 2,000 KiB per connection (a pull's walk of the log needs it: 1.8 s against
# 2.9 s at 512 KiB for the initial sync of `scripts/bench sync`).
QUICK_READER_CACHE_KIB = 512


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite(engine: AsyncEngine, settings: Settings, begin: str, *, cache_kib: int | None = None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL is a property of the file. Asking to switch fails at once, without waiting, while
        # another connection writes, so a new connection only asks when the file is not WAL yet.
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def create_engine_for(settings: Settings, *, writer: bool = True, inline: bool = True) -> AsyncEngine:
    """The writer, or a reader: inline on the loop's thread (short reads) or through aiosqlite."""
    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        timeout_s = settings.sqlite_busy_timeout_ms / 1000
        if writer or inline:
            database = make_url(url).database
            assert database is not None
            engine = create_async_engine(
                url,
                async_creator=inline_connector(Path(database), settings.sqlite_busy_timeout_ms, writer=writer),
                json_serializer=json_text,
            )
        else:
            # Each aiosqlite connection is a thread of its own, with a malloc arena and a page cache
            # that grow to megabytes under a burst of reads (a thousand sockets' first syncs). More
            # threads than this buy nothing on a GIL-bound process: a read waits for one instead.
            engine = create_async_engine(
                url,
                connect_args={"timeout": timeout_s},
                json_serializer=json_text,
                pool_size=READER_THREADS,
                max_overflow=0,
            )
        # The quick reader's reads touch a few pages by index; a big page cache would only hold memory.
        quick_cache = QUICK_READER_CACHE_KIB if inline and not writer else None
        _configure_sqlite(engine, settings, "BEGIN IMMEDIATE" if writer else "BEGIN", cache_kib=quick_cache)
        return engine
    return create_async_engine(url, pool_pre_ping=True, json_serializer=json_text)


@dataclass
class Database:
    """The process's engines; handed to everything that talks to the database."""

    settings: Settings
    writer: AsyncEngine
    reader: AsyncEngine
    quick_reader: AsyncEngine
    write_session: async_sessionmaker[AsyncSession] = field(init=False)
    _read_session: async_sessionmaker[AsyncSession] = field(init=False)
    _quick_read_session: async_sessionmaker[AsyncSession] = field(init=False)

    def __post_init__(self) -> None:
        self.write_session = async_sessionmaker(self.writer, expire_on_commit=False)
        self._read_session = async_sessionmaker(self.reader, expire_on_commit=False)
        self._quick_read_session = async_sessionmaker(self.quick_reader, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings) -> Database:
        writer = create_engine_for(settings, writer=True)
        if not is_sqlite(settings.resolved_database_url):
            return cls(settings=settings, writer=writer, reader=writer, quick_reader=writer)
        reader = create_engine_for(settings, writer=False, inline=False)
        quick_reader = create_engine_for(settings, writer=False, inline=True)
        return cls(settings=settings, writer=writer, reader=reader, quick_reader=quick_reader)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        async with self._read_session() as session:
            yield session

    @asynccontextmanager
    async def quick_read_session(self) -> AsyncIterator[AsyncSession]:
        """For reads by index of a bounded number of rows: on SQLite they hold the event loop while they run."""
        async with self._quick_read_session() as session:
            yield session

    async def close(self) -> None:
        for engine in {self.writer, self.reader, self.quick_reader}:
            await engine.dispose()
