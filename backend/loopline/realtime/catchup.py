"""Catching a socket up: everything after its cursor, then live, with nothing lost in between.

The socket is registered with the hub *before* catching up and holds the live rows that
arrive meanwhile; once caught up to seq S it sends the held rows after S and goes live.
So a change committed between `hello` and the first frame is either in the catch-up or
held, and duplicates are dropped by seq.

A cursor the log tail still covers (same epoch and scopes, above the compaction horizon,
not older than the tail) is served from memory; anything else goes through the pull
service page by page, which also handles resets and scope changes. A live socket whose
user joins threads created since the tail began gets them from memory too, in the shape
the pull service gives a gained scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from loopline.core.runtime import Runtime
from loopline.realtime.connection import Connection
from loopline.realtime.frames import changes_frame, encode_change, signal_frame
from loopline.realtime.hub import Hub
from loopline.realtime.tail import TailRow
from loopline.syncing.meta import compaction_horizon
from loopline.syncing.pull import MAX_SCOPE_DIFF_ROWS, bind_and_record_scopes, pull
from loopline.syncing.scopes import readable_scopes
from loopline_sync.cursor import Cursor, InvalidCursor
from loopline_sync.protocol import PullRequest

PAGE = 500
# Scopes that change while a socket catches up are caught up again; this many times at most.
MAX_ROUNDS = 5


async def current_scopes(runtime: Runtime, connection: Connection) -> frozenset[str] | None:
    async with runtime.db.read_session() as session:
        return await readable_scopes(session, connection.principal)


async def catch_up(hub: Hub, connection: Connection, cursor: str | None) -> None:
    """Send what the client misses after `cursor`, then let live rows through."""
    connection.hold()
    caught_up = await _from_tail(hub, connection, cursor)
    if caught_up is None:
        caught_up = await _through_pull(hub, connection, cursor)
    connection.go_live(caught_up)


async def rescope(hub: Hub, connection: Connection) -> None:
    """The user's scopes may have changed: route the socket anew and send what it gained or lost."""
    scopes = await current_scopes(hub.runtime, connection)
    if scopes == connection.scopes or connection.closed:
        return
    connection.hold()
    cursor = connection.cursor()
    before = connection.scopes
    hub.rerouted(connection, scopes)
    caught_up = await _joined_from_tail(hub, connection, before)
    if caught_up is None:
        caught_up = await _through_pull(hub, connection, cursor)
    connection.go_live(caught_up)


async def _joined_from_tail(hub: Hub, connection: Connection, before: frozenset[str] | None) -> int | None:
    """Send the threads the user just joined from the tail, as a pull would; the seq caught up
    to, or None when the tail cannot (a scope lost, or gained that is not a new thread's).

    A rule that opens a case per account joins hundreds of account managers to new threads
    at once; each of their sockets reading those threads back from the database cost far
    more than the rule itself.
    """
    scopes, sent = connection.scopes, connection.sent_seq
    if before is None or scopes is None or not before < scopes:
        return None
    state = hub.tail.state_of_new_threads(scopes - before, sent)
    if state is None or len(state) > MAX_SCOPE_DIFF_ROWS:
        return None
    epoch, _ = await bind_and_record_scopes(
        hub.runtime, connection.principal, connection.client_id, scopes, hub.runtime.clock.now()
    )
    newer = hub.tail.after(sent)
    if epoch != connection.epoch or newer is None:
        return None
    high = hub.tail.high
    # One frame: its cursor names the new scopes, so the client must hold all they gained when it stores it.
    await connection.send_paced(changes_frame(connection.encoded(state), connection.cursor()))
    await _send_rows(connection, (row for row in newer if row.seq <= high))
    return max(high, sent)


async def _from_tail(hub: Hub, connection: Connection, cursor_text: str | None) -> int | None:
    """The seq caught up to, serving from the tail; None when the tail cannot serve this cursor."""
    if cursor_text is None:
        return None
    try:
        cursor = Cursor.decode(cursor_text)
    except InvalidCursor:
        return None
    if cursor.phase != "log" or cursor.scope_hash != connection.scope_hash:
        return None
    epoch, _ = await bind_and_record_scopes(
        hub.runtime, connection.principal, connection.client_id, connection.scopes, hub.runtime.clock.now()
    )
    async with hub.runtime.db.read_session() as session:
        horizon = await compaction_horizon(session)
    rows = hub.tail.after(cursor.seq)
    if epoch != cursor.epoch or cursor.seq < horizon or rows is None:
        return None
    high = hub.tail.high
    connection.epoch = epoch
    await _send_rows(connection, (row for row in rows if row.seq <= high))
    return max(high, cursor.seq)


async def _send_rows(connection: Connection, rows: Iterator[TailRow]) -> None:
    """The socket's rows among `rows`, in frames whose cursors move along with them."""
    for chunk in _chunks(row for row in rows if connection.reads(row.scope_key)):
        connection.sent_seq = chunk[-1].seq
        changes = connection.encoded(chunk)
        if changes:
            await connection.send_paced(changes_frame(changes, connection.cursor()))


async def _through_pull(hub: Hub, connection: Connection, cursor: str | None) -> int:
    for _ in range(MAX_ROUNDS):
        while True:
            request = PullRequest(
                client_id=connection.client_id, schema_version=connection.schema_version, cursor=cursor, limit=PAGE
            )
            async with hub.pull_gate:
                page = await pull(hub.runtime, connection.principal, request)
            if not page.has_more and hub.runtime.settings.injects("ws_pause_before_first_frame"):
                # The race test's window: subscribed and read, nothing sent yet; a write lands here.
                await asyncio.sleep(2.0)
            if page.reset_required:
                await connection.send_paced(signal_frame("reset_required"))
            if page.changes or not page.has_more:
                await connection.send_paced(changes_frame([encode_change(c) for c in page.changes], page.cursor))
            cursor = page.cursor
            if not page.has_more:
                break
        reached = Cursor.decode(cursor)
        connection.epoch = reached.epoch
        if reached.scope_hash == connection.scope_hash:
            return reached.seq
        # The scopes moved while paging: follow them and page again from here.
        hub.rerouted(connection, await current_scopes(hub.runtime, connection))
    raise RuntimeError("the user's scopes keep changing; the client will reconnect")


def _chunks(rows: Iterator[TailRow]) -> Iterator[list[TailRow]]:
    chunk: list[TailRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == PAGE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
