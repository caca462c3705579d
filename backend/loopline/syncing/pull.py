"""`/sync/pull`: page the change log to a device, filtered by what its user may read.

With no cursor a pull is an initial sync: the current state of every readable entity as
`put`s (the latest log row of each entity up to a snapshot seq), in seq order, then the
log after the snapshot. A cursor from another epoch or from before the compaction
horizon answers `reset_required`, and so does a user who gained a plant or an account
(its history cannot be sent as a diff of the log); a gained thread or colleague arrives as
its current state, and a user who lost scopes receives deletes for what left them.
`last_mid` and the page come from one read transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.changelog import ChangeLog
from loopline.core.errors import AppError
from loopline.core.runtime import Runtime
from loopline.customer.projections import changes_for_customer
from loopline.syncing.envelope import check_client_id, check_schema_version
from loopline.syncing.meta import EPOCH, compaction_horizon, read_meta, server_epoch
from loopline.syncing.models import SyncClient
from loopline.syncing.push import bind_client
from loopline.syncing.scopes import in_scopes, readable_scopes
from loopline_sync import SCHEMA_VERSION
from loopline_sync.cursor import Cursor, InvalidCursor, scope_hash
from loopline_sync.protocol import Change, PullRequest, PullResponse

ALL_SCOPES = "*"
KEPT_SCOPE_SETS = 5
# How often a device's pull time is written down (not on every page).
PULL_RECORD_INTERVAL = timedelta(seconds=60)
CHAT_HISTORY = 200


def log_rows_select() -> Select[Any]:
    """The change-log columns a pull sends (the scope key stays on the server)."""
    columns = (ChangeLog.seq, ChangeLog.entity, ChangeLog.entity_id, ChangeLog.op, ChangeLog.version, ChangeLog.data)
    return core_select(*(col(c) for c in columns))


# A scope difference is sent in one response; more than this is a reset instead.
MAX_SCOPE_DIFF_ROWS = 5000


def _change(row: Any) -> Change:
    # Rows come from our own log: building without re-validation keeps large pages cheap.
    return Change.model_construct(
        seq=row.seq, entity=row.entity, id=row.entity_id, op=row.op, version=row.version, data=row.data
    )


# Made once: an alias made per page is a cycle of a few hundred objects left for the collector.
_NEWER = aliased(ChangeLog)
_LATER = aliased(ChangeLog)


def _latest_rows(scopes: frozenset[str] | None, *, up_to: int, after: int, limit: int) -> Select[Any]:
    """Each entity's newest readable log row up to `up_to`, if it is a put: the state at that seq.

    Messages are capped at the newest `CHAT_HISTORY` per thread scope (internal and
    customer-visible messages count separately); older ones are read online on demand.

    The page walks the log in seq order from `after` and tests each row with indexed
    lookups, so paging a whole snapshot costs one pass over the log (a window function
    would re-rank every row on every page). The scope test is written as an expression
    so that the planner walks the seq index rather than collecting and sorting every
    readable row for each page.
    """
    newer, later = _NEWER, _LATER
    superseded = exists(
        select(col(newer.seq)).where(
            col(newer.entity_id) == ChangeLog.entity_id,
            col(newer.entity) == ChangeLog.entity,
            col(newer.seq) > ChangeLog.seq,
            col(newer.seq) <= up_to,
            in_scopes(scopes, col(newer.scope_key)),
        )
    )
    # A message's first row has version 1: counting those after it counts newer messages.
    older_than_history = exists(
        select(col(later.seq))
        .where(
            col(later.scope_key) == ChangeLog.scope_key,
            col(later.entity) == "message",
            col(later.version) == 1,
            col(later.seq) > ChangeLog.seq,
            col(later.seq) <= up_to,
        )
        .limit(1)
        .offset(CHAT_HISTORY - 1)
    )
    return (
        log_rows_select()
        .where(
            in_scopes(scopes, col(ChangeLog.scope_key).concat("")),
            col(ChangeLog.seq) > after,
            col(ChangeLog.seq) <= up_to,
            col(ChangeLog.op) == "put",
            ~superseded,
            or_(col(ChangeLog.entity) != "message", ~older_than_history),
        )
        .order_by(col(ChangeLog.seq))
        .limit(limit)
    )


def _log_rows(scopes: frozenset[str] | None, *, after: int, limit: int) -> Select[Any]:
    return (
        log_rows_select().where(in_scopes(scopes), col(ChangeLog.seq) > after).order_by(col(ChangeLog.seq)).limit(limit)
    )


class _DifferenceTooLarge(Exception):
    pass


async def _state_in(session: AsyncSession, scopes: frozenset[str], up_to: int) -> list[Change]:
    rows = (await session.execute(_latest_rows(scopes, up_to=up_to, after=0, limit=MAX_SCOPE_DIFF_ROWS + 1))).all()
    if len(rows) > MAX_SCOPE_DIFF_ROWS:
        raise _DifferenceTooLarge
    return [_change(r) for r in rows]


async def _scope_difference(
    session: AsyncSession, before: frozenset[str], now: frozenset[str], up_to: int
) -> list[Change]:
    """What a change of scopes means for a read model that is current at `up_to`.

    Entities readable only through lost scopes are deleted; entities of gained thread
    scopes are sent as they were at `up_to` (the log continues from there).
    """
    changes: list[Change] = []
    lost, gained = before - now, now - before
    if lost:
        still = {(c.entity, c.id) for c in await _state_in(session, now, up_to)}
        changes.extend(
            Change(seq=up_to, entity=c.entity, id=c.id, op="delete", version=c.version)
            for c in await _state_in(session, lost, up_to)
            if (c.entity, c.id) not in still
        )
    if gained:
        changes.extend(await _state_in(session, gained, up_to))
    return changes


# Scopes of one thread or one person are small enough to send as their current state when gained.
DIFFERENTIAL_SCOPES = ("thread:", "person:")


def _sent_as_difference(gained: frozenset[str]) -> bool:
    return all(key.startswith(DIFFERENTIAL_SCOPES) for key in gained)


async def bind_and_record_scopes(
    runtime: Runtime, principal: Principal, client_id: str, scopes: frozenset[str] | None, now: datetime
) -> tuple[str, dict[str, list[str]]]:
    """Bind the client (first contact) and remember the scope set served; returns the epoch and the known sets.

    Paging through a sync must not cost a write per page: when nothing changed and the
    last pull was recorded recently, the records are read and left as they are.
    """
    keys = [ALL_SCOPES] if scopes is None else sorted(scopes)
    async with runtime.db.read_session() as session:
        known_client = await session.get(SyncClient, client_id)
        known_epoch = await read_meta(session, EPOCH)
    if (
        known_client is not None
        and known_epoch is not None
        and known_client.user_id == principal.user_id
        and list(known_client.scope_sets)[-1:] == [scope_hash(keys)]
        and known_client.last_pull_at is not None
        and now - known_client.last_pull_at < PULL_RECORD_INTERVAL
    ):
        return known_epoch, known_client.scope_sets
    async with runtime.unit_of_work(actor=principal.user_id, command="sync.pull") as session:
        client = await bind_client(session, client_id, principal, now)
        epoch = await server_epoch(session)
        known = {h: v for h, v in client.scope_sets.items() if h != scope_hash(keys)}
        recent = dict(list(known.items())[-(KEPT_SCOPE_SETS - 1) :])
        client.scope_sets = {**recent, scope_hash(keys): keys}
        client.last_pull_at = now
    return epoch, client.scope_sets


async def pull(runtime: Runtime, principal: Principal, request: PullRequest) -> PullResponse:
    check_client_id(request.client_id)
    check_schema_version(request.schema_version, oldest=SCHEMA_VERSION)
    try:
        cursor = Cursor.decode(request.cursor) if request.cursor else None
    except InvalidCursor as exc:
        raise AppError("invalid_cursor", "The cursor is not one this server issued.") from exc
    async with runtime.db.read_session() as probe:
        scopes = await readable_scopes(probe, principal)
    epoch, scope_sets = await bind_and_record_scopes(runtime, principal, request.client_id, scopes, runtime.clock.now())
    current_hash = scope_hash([ALL_SCOPES] if scopes is None else scopes)

    async with runtime.db.read_session() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        last_mid = (
            await session.scalar(select(SyncClient.last_mid).where(SyncClient.client_id == request.client_id)) or 0
        )
        high_water = await session.scalar(select(func.max(ChangeLog.seq))) or 0

        async def shown(part: list[Change], *, snapshot: bool) -> list[Change]:
            # Decided once per pull: staff pages go out as logged.
            if principal.is_staff:
                return part
            return await changes_for_customer(session, part, snapshot=snapshot)

        def reset() -> PullResponse:
            fresh = Cursor(epoch, "snapshot", high_water, 0, current_hash)
            return PullResponse(
                cursor=fresh.encode(), last_mid=last_mid, has_more=True, reset_required=True, changes=[]
            )

        changes: list[Change] = []
        if cursor is None:
            cursor = Cursor(epoch, "snapshot", high_water, 0, current_hash)
        elif cursor.epoch != epoch or (cursor.phase == "log" and cursor.seq < await compaction_horizon(session)):
            # A snapshot in progress reads current state, which compaction keeps; a log cursor
            # behind the horizon would miss the rows compaction removed.
            return reset()
        elif cursor.scope_hash != current_hash:
            before = frozenset(scope_sets.get(cursor.scope_hash, [ALL_SCOPES]))
            if (
                scopes is None
                or ALL_SCOPES in before
                or cursor.phase == "snapshot"
                or not _sent_as_difference(scopes - before)
            ):
                return reset()
            try:
                changes = await shown(await _scope_difference(session, before, scopes, cursor.seq), snapshot=False)
            except _DifferenceTooLarge:
                return reset()
            cursor = Cursor(epoch, cursor.phase, cursor.snapshot_seq, cursor.seq, current_hash)

        room = request.limit
        if cursor.phase == "snapshot":
            rows = (
                await session.execute(_latest_rows(scopes, up_to=cursor.snapshot_seq, after=cursor.seq, limit=room + 1))
            ).all()
            page = [_change(r) for r in rows[:room]]
            changes.extend(await shown(page, snapshot=True))
            if len(rows) > room:
                next_cursor = Cursor(epoch, "snapshot", cursor.snapshot_seq, page[-1].seq, current_hash)
                return PullResponse(
                    cursor=next_cursor.encode(), last_mid=last_mid, has_more=True, reset_required=False, changes=changes
                )
            room -= len(page)
            cursor = Cursor(epoch, "log", cursor.snapshot_seq, cursor.snapshot_seq, current_hash)

        rows = (await session.execute(_log_rows(scopes, after=cursor.seq, limit=room + 1))).all()
        page = [_change(r) for r in rows[:room]]
        changes.extend(await shown(page, snapshot=False))
        last_seq = page[-1].seq if page else cursor.seq
        has_more = len(rows) > room
    next_cursor = Cursor(epoch, "log", last_seq, last_seq, current_hash)
    return PullResponse(
        cursor=next_cursor.encode(), last_mid=last_mid, has_more=has_more, reset_required=False, changes=changes
    )
