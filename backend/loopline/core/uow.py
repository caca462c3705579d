"""The write path: one unit of work per write transaction.

Every write in Loopline goes through `UnitOfWork`. Inside it, services add, change and
delete entities on an ordinary session. The session's flush and commit events do the
bookkeeping, so no service can forget it:

* every changed `Entity` gets its version bumped once per transaction and its
  timestamps set from the injected clock;
* at commit, one `change_log` row per changed entity and scope key, and one
  `audit_event` per changed entity (plus any explicit `audit()` events) are appended,
  in the same transaction, under the database's write lock.

The listeners are registered on SQLAlchemy's `Session` class itself, so they watch every
ORM session in the process: a flush of entity changes on a session without a unit of
work raises `WriteOutsideUnitOfWork`, and ORM bulk DML on entity tables is refused,
because both would bypass the log.

Sequence numbers: on SQLite the `BEGIN IMMEDIATE` write lock already serializes writers.
On PostgreSQL a transaction-scoped advisory lock is taken before the next `seq` is read,
so a reader can never see seq 11 before seq 10 commits.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace, TracebackType
from typing import Any, cast

from sqlalchemy import Table, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, attributes
from sqlmodel import col

from loopline.core.audit import GENESIS_HASH, AuditEvent, audit_diff, seal
from loopline.core.canonical import jsonable_fields, to_jsonable
from loopline.core.changelog import ChangeLog
from loopline.core.clock import Clock
from loopline.core.db import Database, insert_rows, table_of
from loopline.core.entity import Entity
from loopline.core.prepared import Prepared

_CHANGE_LOG_LOCK = 0x4C4F4F50  # "LOOP": the advisory lock that orders change-log appends


# Set by the unit of work itself, never by the caller.
_BOOKKEEPING = frozenset({"version", "created_at", "updated_at"})


class WriteOutsideUnitOfWork(RuntimeError):
    pass


@dataclass
class _Change:
    model: type[Entity]
    entity_id: str
    op: str  # insert | update | delete
    diff: dict[str, Any]
    # The ORM object, or for a set-based insert the row it wrote (until the ORM loads it).
    entity: Entity | None = None
    row: dict[str, Any] | None = None
    # For updates: the scopes the entity lived in before this transaction moved it.
    prior_scopes: list[str] = field(default_factory=list)
    # Its public data when its command ended (None once deleted), for the audit event and the log.
    data: dict[str, Any] | None = None

    def copy(self) -> _Change:
        return _Change(
            self.model, self.entity_id, self.op, dict(self.diff), self.entity, self.row, list(self.prior_scopes)
        )

    def after(self, earlier: _Change) -> _Change:
        """This change as the log records it when `earlier` changed the entity before, in the same
        transaction: one row, now, wherever it lives; removed from where it lived before both."""
        self.prior_scopes = [] if earlier.op == "insert" else earlier.prior_scopes
        return self

    def version(self) -> int:
        version = self.entity.version if self.entity is not None else 1
        return version + 1 if self.op == "delete" else version

    def public_data(self) -> dict[str, Any]:
        if self.entity is not None:
            return self.entity.public_data()
        assert self.row is not None
        private = self.model.__private__
        return jsonable_fields((name, value) for name, value in self.row.items() if name not in private)

    def scope_keys(self) -> list[str]:
        if self.entity is not None:
            return self.entity.scope_keys()
        # scope_keys reads attributes only, so the written row can stand in for the entity.
        return self.model.scope_keys(SimpleNamespace(**self.row))  # type: ignore[arg-type]


def _changed(entity: Entity, op: str, diff: dict[str, Any], prior_scopes: list[str] | None = None) -> _Change:
    return _Change(type(entity), entity.id, op, diff, entity=entity, prior_scopes=prior_scopes or [])


@dataclass(frozen=True)
class CommittedChange:
    """A change-log row as written, so this process's live tail need not read it back."""

    seq: int
    scope_key: str
    entity: str
    entity_id: str
    op: str
    version: int
    data: dict[str, Any] | None


@dataclass
class _Context:
    """The books of one transaction, kept per command: a group commit runs several commands,
    each on behalf of its own actor, and each one's audit events name that actor."""

    actor: str
    command: str | None
    clock: Clock
    # The running command's changes and explicit events.
    changes: dict[tuple[str, str], _Change] = field(default_factory=dict)
    explicit_events: list[dict[str, Any]] = field(default_factory=list)
    # What the commands that ended wrote: the log's changes (one per entity) and their audit events.
    logged: dict[tuple[str, str], _Change] = field(default_factory=dict)
    audited: list[dict[str, Any]] = field(default_factory=list)
    # Rows of bookkeeping tables (the domain-event outbox) written with one statement per table at commit.
    staged: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    committed: list[CommittedChange] = field(default_factory=list)
    # Told once the transaction has committed (an ended session's sockets close then); never on rollback.
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    def end_command(self) -> None:
        """Move the running command's changes to the books, under its actor (flushed first)."""
        for key, change in self.changes.items():
            change.data = None if change.op == "delete" else change.public_data()
            earlier = self.logged.get(key)
            self.logged[key] = change if earlier is None else change.after(earlier)
            self.audited.append(
                {
                    "actor": self.actor,
                    "command": self.command,
                    "entity": change.model.__entity__,
                    "entity_id": change.entity_id,
                    "action": f"{change.model.__entity__}.{change.op}",
                    "diff": audit_diff(change, change.data if change.op == "insert" else change.diff),
                }
            )
        self.audited.extend({"actor": self.actor, "command": self.command, **e} for e in self.explicit_events)
        self.changes = {}
        self.explicit_events = []


def _context(session: Session) -> _Context | None:
    return session.info.get("uow")


def _scopes_before_change(entity: Entity) -> list[str]:
    """The scope keys the entity had when loaded, from the attribute history."""
    state = attributes.instance_state(entity)
    before = {}
    for name in type(entity).model_fields:
        history = state.attrs[name].history
        before[name] = history.deleted[0] if history.deleted else getattr(entity, name)
    # scope_keys reads attributes only, so the values before the change can stand in for the entity.
    return type(entity).scope_keys(SimpleNamespace(**before))  # type: ignore[arg-type]


def _changed_fields(entity: Entity) -> dict[str, list[Any]]:
    diff: dict[str, list[Any]] = {}
    state = attributes.instance_state(entity)
    for name in type(entity).model_fields:
        if name in ("version", "updated_at") or name in entity.__private__:
            continue
        history = state.attrs[name].history
        if history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old != new:
                diff[name] = [to_jsonable(old), to_jsonable(new)]
    return diff


def _field_defaults(model: type[Entity], given: dict[str, Any]) -> dict[str, Any]:
    return {name: make() for name, make in _default_makers(model) if name not in given}


@functools.cache
def _default_makers(model: type[Entity]) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Each field's default, made once per model: pydantic's `get_default` inspects the factory's
    signature on every call, which costs more than the insert when a rule writes hundreds of rows."""
    makers: list[tuple[str, Callable[[], Any]]] = []
    for name, info in model.model_fields.items():
        if name in _BOOKKEEPING:
            continue
        if info.default_factory_takes_validated_data:
            raise TypeError(f"{model.__name__}.{name}: a default made from other fields is not supported here")
        factory = cast(Callable[[], Any] | None, info.default_factory)
        makers.append((name, factory or functools.partial(copy.deepcopy, info.default)))
    return tuple(makers)


@event.listens_for(Session, "before_flush")
def _track_entity_changes(session: Session, _flush_context: Any, _instances: Any) -> None:
    touched = [o for o in (*session.new, *session.dirty, *session.deleted) if isinstance(o, Entity)]
    if not touched:
        return
    ctx = _context(session)
    if ctx is None:
        raise WriteOutsideUnitOfWork("entity changes must be written through UnitOfWork")
    now = ctx.clock.now()
    for entity in session.new:
        if isinstance(entity, Entity):
            entity.created_at = entity.created_at or now
            entity.updated_at = now
            entity.version = 1
            ctx.changes[(entity.__entity__, entity.id)] = _changed(entity, "insert", {})
    for entity in session.dirty:
        if isinstance(entity, Entity) and session.is_modified(entity, include_collections=False):
            _track_update(ctx, entity, now)
    for entity in session.deleted:
        if isinstance(entity, Entity):
            ctx.changes[(entity.__entity__, entity.id)] = _changed(entity, "delete", entity.public_data())


def _track_update(ctx: _Context, entity: Entity, now: datetime) -> None:
    diff = _changed_fields(entity)
    if not diff:
        return
    key = (entity.__entity__, entity.id)
    change = ctx.changes.get(key)
    if change is None:
        entity.version = (entity.version or 0) + 1
        ctx.changes[key] = _changed(entity, "update", diff, _scopes_before_change(entity))
    elif change.entity is None:
        change.entity = entity  # inserted set-based earlier in this transaction; its state is the ORM's now
    elif change.op == "update":
        for name, (old, new) in diff.items():
            change.diff[name] = [change.diff.get(name, [old])[0], new]
    entity.updated_at = now


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_dml(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if any(issubclass(mapper.class_, Entity) for mapper in state.all_mappers):
        raise WriteOutsideUnitOfWork("bulk DML on entity tables would bypass the change log")


# Built once: every commit runs them, and building them costs more than running them.
_LAST_LOG_SEQ = Prepared(select(func.max(ChangeLog.seq)))
_AUDIT_HEAD = Prepared(select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc()).limit(1))


@event.listens_for(Session, "before_commit")
def _append_log_and_audit(session: Session) -> None:
    ctx = _context(session)
    # Savepoints fire this event too; the books are written once, by the outermost commit.
    if ctx is None or session.in_nested_transaction():
        return
    session.flush()
    ctx.end_command()
    connection = session.connection()
    for table, rows in ctx.staged.items():
        insert_rows(connection, table, rows)
    if not ctx.audited:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGE_LOG_LOCK})
    now = ctx.clock.now()

    [(last_seq,)] = _LAST_LOG_SEQ.rows_in(connection)
    next_seq = (last_seq or 0) + 1
    log_rows: list[dict[str, Any]] = []
    for change in ctx.logged.values():
        entity_type, entity_id = change.model.__entity__, change.entity_id
        deleted = change.op == "delete"
        version = change.version()
        current_scopes = change.scope_keys()
        # An entity that moved scope is deleted where it was, before it is put where it is:
        # a reader of both scopes applies them in seq order and keeps the put.
        for scope_key in [k for k in change.prior_scopes if k not in current_scopes]:
            log_rows.append(
                {
                    "seq": next_seq,
                    "scope_key": scope_key,
                    "entity": entity_type,
                    "entity_id": entity_id,
                    "op": "delete",
                    "version": version,
                    "data": None,
                    "at": now,
                }
            )
            next_seq += 1
        for scope_key in current_scopes:
            log_rows.append(
                {
                    "seq": next_seq,
                    "scope_key": scope_key,
                    "entity": entity_type,
                    "entity_id": entity_id,
                    "op": "delete" if deleted else "put",
                    "version": version,
                    "data": change.data,
                    "at": now,
                }
            )
            next_seq += 1
    insert_rows(connection, table_of(ChangeLog), log_rows)
    ctx.committed.extend(
        CommittedChange(r["seq"], r["scope_key"], r["entity"], r["entity_id"], r["op"], r["version"], r["data"])
        for r in log_rows
    )

    head = _AUDIT_HEAD.rows_in(connection)
    seq, prev_hash = head[0] if head else (0, GENESIS_HASH)
    audit_rows = []
    # Sealed as the text it encodes to, made once: the same bytes, without a call per event.
    at_text = to_jsonable(now)
    for fields in ctx.audited:
        seq += 1
        sealed = {"seq": seq, "at": now, **fields}
        digest = seal({**sealed, "at": at_text}, prev_hash)
        audit_rows.append({**sealed, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    insert_rows(connection, table_of(AuditEvent), audit_rows)


# Told the change-log rows of each commit that appended some (the realtime doorbell); must not block.
AfterCommit = Callable[[list[CommittedChange]], None]


def stage_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Write `rows` into `table` when the transaction commits, in one statement with all others
    staged for it. For append-only bookkeeping that is rarely read inside the transaction (the
    outbox, applied-mutation records); a read that must see them calls `write_staged` first."""
    ctx = _context(session.sync_session)
    if ctx is None:
        raise WriteOutsideUnitOfWork("bookkeeping rows are written through UnitOfWork")
    ctx.staged.setdefault(table, []).extend(rows)


async def insert_entities(
    session: AsyncSession, model: type[Entity], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert new entities with one statement and the same bookkeeping as `session.add`; the rows written.

    For high-volume writes (chat, a rule opening a case per account) where building ORM
    objects and flushing them one by one costs more than the write itself. Each row gives
    the entity's fields; missing ones take their defaults, and version and timestamps are
    set here as the flush would. Entities loaded later in the transaction are tracked as usual.
    """
    ctx = _context(session.sync_session)
    if ctx is None:
        raise WriteOutsideUnitOfWork("entity changes must be written through UnitOfWork")
    if not rows:
        return []
    # Pending ORM objects first: the new rows may refer to them.
    await session.flush()
    now = ctx.clock.now()
    written = []
    for row in rows:
        full = {**_field_defaults(model, row), **row, "version": 1, "created_at": now, "updated_at": now}
        written.append(full)
        ctx.changes[(model.__entity__, full["id"])] = _Change(model, full["id"], "insert", {}, row=full)
    # At the driver, below the ORM-level guard against bypassing the log: the rows are tracked above.
    connection = await session.connection()
    await connection.run_sync(insert_rows, table_of(model), written)
    return written


class UnitOfWork:
    """``async with UnitOfWork(db, actor=..., command=...) as session:`` — one write transaction.

    Commits on a clean exit, rolls back on an exception. After the block,
    `committed` lists the change-log rows it appended (for the realtime doorbell).
    """

    def __init__(
        self,
        db: Database,
        *,
        actor: str,
        clock: Clock,
        command: str | None = None,
        after_commit: Sequence[AfterCommit] = (),
    ) -> None:
        self._maker = db.write_session
        self._context = _Context(actor=actor, command=command, clock=clock)
        self._after_commit = after_commit
        self.session: AsyncSession | None = None

    @property
    def committed(self) -> list[CommittedChange]:
        return self._context.committed

    def audit(self, *, entity: str, entity_id: str, action: str, diff: dict[str, Any] | None = None) -> None:
        """Record an event that changes no entity (a login, a detected token reuse)."""
        self._context.explicit_events.append(
            {"entity": entity, "entity_id": entity_id, "action": action, "diff": to_jsonable(diff)}
        )

    def call_on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this transaction has committed; never if it rolls back."""
        self._context.on_commit.append(callback)

    async def write_staged(self) -> None:
        """Write the rows staged so far now (see `stage_rows`), for a read that must see them."""
        assert self.session is not None
        staged, self._context.staged = self._context.staged, {}
        connection = await self.session.connection()
        for table, rows in staged.items():
            await connection.run_sync(insert_rows, table, rows)

    async def insert_rows(self, model: type[Entity], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`insert_entities` in this unit of work."""
        assert self.session is not None
        return await insert_entities(self.session, model, rows)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction whose failure undoes its rows *and* its bookkeeping."""
        assert self.session is not None
        ctx = self._context
        changes = {key: change.copy() for key, change in ctx.changes.items()}
        events = list(ctx.explicit_events)
        staged = {table: list(rows) for table, rows in ctx.staged.items()}
        on_commit = list(ctx.on_commit)
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            ctx.changes = changes
            ctx.explicit_events = events
            ctx.staged = staged
            ctx.on_commit = on_commit
            raise

    @asynccontextmanager
    async def on_behalf_of(self, actor: str, command: str | None, *, isolated: bool = True) -> AsyncIterator[None]:
        """Run one command of a group commit: its audit events naming `actor`; `isolated`, in
        its own savepoint (undone alone when it raises).

        As if it had its own transaction: an entity it changes after an earlier command of
        the group gets a version and an audit event of its own; the change log keeps one row
        per entity and scope, as for any transaction.
        """
        assert self.session is not None
        ctx = self._context
        await self.session.flush()
        ctx.end_command()
        outer = ctx.actor, ctx.command
        ctx.actor, ctx.command = actor, command
        try:
            async with self.savepoint() if isolated else contextlib.nullcontext():
                yield
                await self.session.flush()
            ctx.end_command()
        finally:
            ctx.actor, ctx.command = outer

    async def __aenter__(self) -> AsyncSession:
        self.session = self._maker()
        self.session.info["uow"] = self._context
        return self.session

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.session is not None
        try:
            if exc_type is None:
                await self.session.commit()
                if self._context.committed:
                    for hook in self._after_commit:
                        hook(self._context.committed)
                for callback in self._context.on_commit:
                    callback()
            else:
                await self.session.rollback()
                self._context.committed.clear()
        finally:
            await self.session.close()
