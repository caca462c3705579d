"""The log tail: the newest change-log rows, read once per process and shared by every socket.

A doorbell (or the safety poll) makes the tail read the rows after its high-water mark —
one query per process however many sockets wait — and encode each change once. Sockets
that reconnect with a recent cursor are served from here too; an older cursor falls back
to `/sync/pull`'s reader. Rows are kept in seq order without gaps above `floor`: the
tail holds every row with `floor < seq <= high`.

Customers receive a row in its customer view (`customer/projections.py`), projected once
per row, the first time a customer's socket needs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, deque
from dataclasses import dataclass

import orjson
from sqlalchemy import Text, cast, func, select

from loopline.core.access import Role
from loopline.core.audit import personal_entities
from loopline.core.changelog import ChangeLog
from loopline.core.db import Database, json_text, table_of
from loopline.core.uow import CommittedChange
from loopline.customer.projections import customer_user_ids, for_customer
from loopline.people.models import User
from loopline.realtime.frames import encode_change
from loopline.syncing.pull import CHAT_HISTORY
from loopline_sync.protocol import Change

# A page is read on the event loop's thread: small enough not to hold it long, and other
# tasks run between pages.
FETCH_LIMIT = 500


@dataclass(frozen=True, slots=True)
class TailRow:
    seq: int
    scope_key: str
    entity: str
    entity_id: str
    op: str
    version: int
    change: bytes  # the change as `/sync/pull` sends it, JSON-encoded once


class LogTail:
    def __init__(self, db: Database, capacity: int) -> None:
        self._db = db
        self._rows: deque[TailRow] = deque(maxlen=capacity)
        self.floor = 0
        self.high = 0
        # Where each thread's first row is, for threads created since the tail began: every
        # row of such a thread's scopes is in the tail while that row is.
        self._thread_births: dict[str, int] = {}
        # A person's entities (contacts, users): where their puts are, per scope, so that older
        # ones take the newest data as erasure rewrites them in the log (compliance/erasure.py).
        self._personal = personal_entities()
        self._personal_puts: dict[tuple[str, str, str], list[int]] = {}
        # Customer portal users, followed through the log: whether a case photo is the
        # customer's depends on who uploaded it (`for_customer`).
        self._customer_users: set[str] = set()
        # Rows as customers receive them (None: not at all), by seq, once asked for.
        self._customer_changes: dict[int, bytes | None] = {}

    async def start(self) -> None:
        """Begin at the log's head: older rows are the database's business."""
        async with self._db.read_session() as session:
            self._customer_users = set(await session.scalars(customer_user_ids()))
        self.high = self.floor = await self.head()

    async def head(self) -> int:
        log = table_of(ChangeLog).c
        async with self._db.read_session() as session:
            return int(await session.scalar(select(func.max(log.seq))) or 0)

    async def fetch(self) -> list[TailRow]:
        """The rows committed since the last fetch, appended to the tail and returned."""
        log = table_of(ChangeLog).c
        fetched: list[TailRow] = []
        async with self._db.quick_read_session() as session:
            while True:
                # The data as the stored JSON text: it goes out as it is, never decoded and encoded again.
                data = cast(log.data, Text).label("data")
                rows = (
                    await session.execute(
                        select(log.seq, log.scope_key, log.entity, log.entity_id, log.op, log.version, data)
                        .where(log.seq > self.high)
                        .order_by(log.seq)
                        .limit(FETCH_LIMIT)
                    )
                ).all()
                for row in rows:
                    fetched.append(
                        self._keep(row.seq, row.scope_key, row.entity, row.entity_id, row.op, row.version, row.data)
                    )
                if len(rows) < FETCH_LIMIT:
                    return fetched
                await asyncio.sleep(0)

    def extend(self, committed: list[CommittedChange]) -> list[TailRow] | None:
        """The rows a commit in this process wrote, appended without reading them back; None
        when they do not follow the tail's high-water mark (another commit's rows come first)."""
        if not committed or committed[0].seq != self.high + 1:
            return None
        kept = []
        data, data_text = None, "null"
        for row in committed:
            if row.data is not data:
                # One change's rows share its data: encoded once, as the log stores it.
                data, data_text = row.data, json_text(row.data)
            kept.append(self._keep(row.seq, row.scope_key, row.entity, row.entity_id, row.op, row.version, data_text))
        return kept

    def _keep(
        self, seq: int, scope_key: str, entity: str, entity_id: str, op: str, version: int, data: str | None
    ) -> TailRow:
        change = _encoded(seq, entity, entity_id, op, version, data)
        row = TailRow(seq, scope_key, entity, entity_id, op, version, change)
        if len(self._rows) == self._rows.maxlen:
            self.floor = self._rows[0].seq
            self._customer_changes.pop(self.floor, None)
            if len(self._thread_births) > len(self._rows):
                self._thread_births = {t: s for t, s in self._thread_births.items() if s > self.floor}
            if len(self._personal_puts) > len(self._rows):
                self._personal_puts = {k: s for k, s in self._personal_puts.items() if s[-1] > self.floor}
        self._rows.append(row)
        self.high = seq
        if entity == "thread" and version == 1:
            self._thread_births.setdefault(entity_id, seq)
        elif entity in self._personal and op == "put":
            self._restate_personal(row, data)
        if entity == User.__entity__:
            self._follow_customer_user(entity_id, op, data)
        return row

    def _follow_customer_user(self, user_id: str, op: str, data: str | None) -> None:
        if op == "put" and data is not None and orjson.loads(data).get("role") == Role.CUSTOMER:
            self._customer_users.add(user_id)
        else:
            self._customer_users.discard(user_id)

    def customer_change(self, row: TailRow) -> bytes | None:
        """`row` as a customer receives it, or None when customers receive nothing of it."""
        if row.seq in self._customer_changes:
            return self._customer_changes[row.seq]
        change = for_customer(Change.model_construct(**orjson.loads(row.change)), self._customer_users)
        encoded = None if change is None else encode_change(change)
        if row.seq > self.floor:
            self._customer_changes[row.seq] = encoded
        return encoded

    def _restate_personal(self, newest: TailRow, data: str | None) -> None:
        """Give the older puts of `newest`'s entity in its scope its data: what an erasure
        removed from the log must not reach a socket from memory."""
        key = (newest.entity, newest.entity_id, newest.scope_key)
        first = self._rows[0].seq
        still = []
        for seq in self._personal_puts.get(key, []):
            index = seq - first
            # Seqs are dense, so a row's place is its distance from the first; rows that left are skipped.
            if 0 <= index < len(self._rows) and (old := self._rows[index]).seq == seq:
                change = _encoded(old.seq, old.entity, old.entity_id, old.op, old.version, data)
                self._rows[index] = dataclasses.replace(old, change=change)
                self._customer_changes.pop(seq, None)
                still.append(seq)
        self._personal_puts[key] = [*still, newest.seq]

    def state_of_new_threads(self, scope_keys: frozenset[str], up_to: int) -> list[TailRow] | None:
        """The state of thread scopes at `up_to` as `/sync/pull` sends a scope a user gained (each
        entity's newest row, if a put, in seq order); None unless every scope is a thread's
        created since the tail began, so that the tail holds all of its rows, and holds no more
        messages than a pull sends of a thread's history."""
        births = []
        for key in scope_keys:
            kind, _, rest = key.partition(":")
            born = self._thread_births.get(rest.partition(":")[0]) if kind == "thread" else None
            if born is None or born <= self.floor:
                return None
            births.append(born)
        newest: dict[tuple[str, str], TailRow] = {}
        messages: Counter[str] = Counter()
        for row in self._since(min(births, default=up_to)):
            if row.seq > up_to or row.scope_key not in scope_keys:
                continue
            newest[(row.entity, row.entity_id)] = row
            if row.entity == "message" and row.version == 1:
                messages[row.scope_key] += 1
        if any(count > CHAT_HISTORY for count in messages.values()):
            return None
        return sorted((row for row in newest.values() if row.op == "put"), key=lambda row: row.seq)

    def _since(self, seq: int) -> list[TailRow]:
        """The rows from `seq` on, found from the newest end: a socket joins what was just written."""
        rows = []
        for row in reversed(self._rows):
            if row.seq < seq:
                break
            rows.append(row)
        rows.reverse()
        return rows

    def after(self, seq: int) -> list[TailRow] | None:
        """Every row after `seq`, or None when the tail no longer reaches back that far.

        A list, taken at once: the tail grows while a socket awaits its sends, and an
        iterator over it would fail then."""
        if seq < self.floor:
            return None
        return self._since(seq + 1)


def _encoded(seq: int, entity: str, entity_id: str, op: str, version: int, data: str | None) -> bytes:
    """The change as `/sync/pull` sends it, around the stored JSON text of its data."""
    head = {"seq": seq, "entity": entity, "id": entity_id, "op": op, "version": version}
    return b"".join((orjson.dumps(head)[:-1], b',"data":', (data or "null").encode(), b"}"))
