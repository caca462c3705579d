"""An aiosqlite-compatible SQLite connection that runs statements on the calling thread.

aiosqlite sends every call (cursor, execute, fetch, close) to its own thread and back;
on a small machine that costs a few hundred microseconds a statement, far more than the
statement itself, and a sync push runs dozens of statements per batch. Inside a write
transaction SQLite statements are short and never wait on anyone: the write lock is
already held. So this connection runs them inline, and hands to a worker thread only
the two calls that can wait: a `BEGIN` that finds the write lock taken (it waits up to
the busy timeout) and `COMMIT` (fsync). SQLAlchemy's aiosqlite dialect drives it through
`create_async_engine(..., async_creator=...)`, unchanged.

Writers of one engine queue for the write lock in a FIFO gate before they ask SQLite for
it. SQLite's own busy handler polls with sleeps of up to 100 ms, so under load the lock
sat free while the next writer slept, and waiters took it in no particular order; the
gate hands it on the moment a transaction ends. Other processes still meet SQLite's
lock, and wait for it off the loop as before.

Use it for the writer engine only: reads can be long scans, and those stay on aiosqlite
so they never hold the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

# Their own threads, never the loop's default pool: a COMMIT queued behind BEGINs that wait
# for the lock it would release is a deadlock. One thread is enough for commits (SQLite has
# one writer); BEGINs waiting beyond these threads queue without blocking anything else.
_COMMITS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
_LOCK_WAITS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sqlite-lock-wait")


async def _off_loop(executor: ThreadPoolExecutor, call: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(executor, call, *args)


class WriteGate:
    """First come, first served turns at the write lock for the connections of one engine.

    Waiters may sit on different event loops (a test client runs the app on its own), so
    the queue is guarded by a thread lock and a turn is handed over thread-safely.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self, timeout_s: float) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            loop = asyncio.get_running_loop()
            turn: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, turn))
        try:
            await asyncio.wait_for(asyncio.shield(turn), timeout_s)
        except BaseException as exc:
            with self._mutex:
                waiting = (loop, turn) in self._waiters
                if waiting:
                    self._waiters.remove((loop, turn))
            if not waiting:
                # Our turn was handed over as we gave up: pass it on (once it has arrived).
                turn.add_done_callback(lambda _: self.release())
            turn.cancel()
            if isinstance(exc, TimeoutError):
                raise sqlite3.OperationalError("database is locked") from exc
            raise

    def release(self) -> None:
        with self._mutex:
            if not self._waiters:
                self._held = False
                return
            loop, turn = self._waiters.popleft()
        try:
            loop.call_soon_threadsafe(self._hand_over, turn)
        except RuntimeError:  # that waiter's loop has closed: the next one's turn
            self.release()

    def _hand_over(self, turn: asyncio.Future[None]) -> None:
        if turn.done():  # the waiter gave up meanwhile; its done-callback passes the turn on
            return
        turn.set_result(None)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor, owner: InlineConnection) -> None:
        self._cursor = cursor
        self._owner = owner
        self._busy_timeout_ms = owner.busy_timeout_ms

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> Self:
        if sql.lstrip()[:5].upper() == "BEGIN":
            await self._owner.take_turn()
            try:
                await self._begin(sql)
            finally:
                self._owner.end_turn_unless_in_transaction()
        else:
            try:
                self._cursor.execute(sql, parameters)
            finally:
                self._owner.end_turn_unless_in_transaction()
        return self

    async def _begin(self, sql: str) -> None:
        """Take the lock inline when it is free; wait for another process's on a worker thread."""
        connection = self._cursor.connection
        connection.execute("PRAGMA busy_timeout=0")
        try:
            self._cursor.execute(sql)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            await _off_loop(_LOCK_WAITS, self._cursor.execute, sql)
        finally:
            connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Self:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _CursorOpener:
    """What `connection.cursor()` returns in aiosqlite: awaitable and an async context manager."""

    def __init__(self, owner: InlineConnection) -> None:
        self._owner = owner

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._owner._open.cursor(), self._owner)

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection, busy_timeout_ms: int, gate: WriteGate | None) -> None:
        # aiosqlite's name for the open sqlite3 connection; SQLAlchemy checks it before commit and rollback.
        self._connection: sqlite3.Connection | None = connection
        self.busy_timeout_ms = busy_timeout_ms
        self._gate = gate
        self._has_turn = False

    async def take_turn(self) -> None:
        if self._gate is not None and not self._has_turn:
            await self._gate.acquire(self.busy_timeout_ms / 1000)
            self._has_turn = True

    def end_turn_unless_in_transaction(self) -> None:
        """Once the transaction is over (committed, rolled back, failed to begin) the next writer goes."""
        if self._has_turn and (self._connection is None or not self._connection.in_transaction):
            self._has_turn = False
            assert self._gate is not None
            self._gate.release()

    @property
    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The open sqlite3 connection, for statements run at the driver (core/prepared.py)."""
        return self._open

    @property
    def isolation_level(self) -> str | None:
        return self._open.isolation_level

    def cursor(self) -> _CursorOpener:
        return _CursorOpener(self)

    async def commit(self) -> None:
        try:
            await _off_loop(_COMMITS, self._open.commit)
        finally:
            self.end_turn_unless_in_transaction()

    async def rollback(self) -> None:
        try:
            self._open.rollback()
        finally:
            self.end_turn_unless_in_transaction()

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], **kw: Any) -> None:
        self._open.create_function(name, num_params, func, **kw)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.end_turn_unless_in_transaction()


def inline_connector(path: Path, busy_timeout_ms: int, *, writer: bool = True) -> Callable[[], Any]:
    """The `async_creator` for `create_async_engine`: an autocommit-mode connection (we emit BEGIN).

    A reader (`writer=False`) is for short indexed reads only: in WAL a read never waits
    for a lock, so it needs no gate, but a scan would hold the event loop.
    """
    gate = WriteGate() if writer else None

    async def connect() -> InlineConnection:
        # A waiting BEGIN and every COMMIT run on worker threads, never concurrently with other calls.
        connection = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        return InlineConnection(connection, busy_timeout_ms, gate)

    return connect
