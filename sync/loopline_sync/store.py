"""The device's durable local state: identity, outbox, read model and photo queue in one SQLite file.

Why one file and one connection: the protocol's safety rests on a few things changing
together — a pulled page, the cursor that points past it, and the outbox entries the
page acknowledges. SQLite gives us that in a single local transaction, the same way the
PWA uses one IndexedDB transaction.

The methods are synchronous and small. The engine runs them through `asyncio.to_thread`
because a commit waits for `fsync`, which on a phone's flash or a loaded CI disk can
take tens of milliseconds, and one event loop may drive many engines (the load
generator). A lock serialises access to the connection across those worker threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from loopline_sync.errors import ClientOwnedByOtherUser, OutboxInconsistent
from loopline_sync.ids import new_id
from loopline_sync.protocol import Change

# Bumped when the file layout changes; a file written by a newer app is refused, not guessed at.
STORE_FORMAT = 2  # 2: the photo queue (blob_queue)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    client_id     TEXT NOT NULL,
    owner_user_id TEXT,
    cursor        TEXT,
    -- The next mid to hand out. Kept here, not derived from MAX(outbox.mid): once the
    -- outbox drains, a rowid-style counter would restart and break the gapless sequence.
    next_mid      INTEGER NOT NULL CHECK (next_mid >= 1),
    -- The highest last_mid the server ever acknowledged; a smaller one later means the
    -- server lost acknowledged work.
    acked_mid     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
    mid         INTEGER PRIMARY KEY,
    mutation_id TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    args        TEXT NOT NULL,
    client_ts   TEXT NOT NULL,
    user_id     TEXT
);
-- data IS NULL marks a tombstone: it keeps the delete's version so an older put that
-- arrives late cannot bring the row back. Tombstones go with reset_read_model().
CREATE TABLE IF NOT EXISTS read_model (
    entity  TEXT NOT NULL,
    id      TEXT NOT NULL,
    version INTEGER NOT NULL,
    data    TEXT,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;
-- Photos waiting for upload, by content hash: a photo attached twice is sent once.
-- state: pending (to send), uploaded (the server has it), rejected (it never will).
CREATE TABLE IF NOT EXISTS blob_queue (
    sha256   TEXT PRIMARY KEY,
    path     TEXT NOT NULL,
    size     INTEGER NOT NULL CHECK (size >= 0),
    mime     TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'uploaded', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    reason_code TEXT,
    reason   TEXT,
    added_at TEXT NOT NULL
);
"""

# Ties go to the later change: pages arrive in the server's seq order, so for equal
# versions the later one is the newer fact (a delete when a scope is lost, then the same
# version put again when it comes back). Only a strictly older version is ignored.
_UPSERT = """
INSERT INTO read_model (entity, id, version, data) VALUES (?, ?, ?, ?)
ON CONFLICT (entity, id) DO UPDATE SET version = excluded.version, data = excluded.data
WHERE excluded.version >= read_model.version
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One queued mutation, exactly as it will be pushed (and re-pushed)."""

    mid: int
    mutation_id: str
    name: str
    args: dict[str, Any]
    client_ts: str
    user_id: str | None

    def wire(self) -> dict[str, Any]:
        """The `mutations[]` item of a push request."""
        return {
            "mid": self.mid,
            "id": self.mutation_id,
            "name": self.name,
            "args": self.args,
            "client_ts": self.client_ts,
        }


class BlobUpload(StrEnum):
    PENDING = "pending"
    UPLOADED = "uploaded"
    REJECTED = "rejected"


@dataclass(frozen=True)
class BlobEntry:
    """One photo of the photo queue: its bytes stay in the file at `path`, named by their hash."""

    sha256: str
    path: str
    size: int
    mime: str
    state: BlobUpload
    attempts: int
    reason_code: str | None
    reason: str | None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class LocalStore:
    """A durable SQLite file; create one per user and device (the client id is per file)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a write takes the
        # file lock up front instead of failing half-way when another process writes.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        # FULL: an enqueue that returned must survive a power cut (NORMAL in WAL may not).
        # Simulations that model crashes differently may pass NORMAL to skip the fsyncs.
        if synchronous not in {"FULL", "NORMAL"}:
            raise ValueError("synchronous is FULL or NORMAL")
        self._conn.execute(f"PRAGMA synchronous = {synchronous}")
        self._migrate()

    # -- lifecycle ---------------------------------------------------------------

    def _migrate(self) -> None:
        (format_,) = self._conn.execute("PRAGMA user_version").fetchone()
        if format_ > STORE_FORMAT:
            raise RuntimeError(f"{self.path} was written by a newer app (format {format_} > {STORE_FORMAT})")
        # executescript() commits on its own, so the (idempotent) DDL runs outside _write().
        self._conn.executescript(_SCHEMA)
        with self._write() as conn:
            # The client id is made once per installation: INSERT OR IGNORE keeps an existing one.
            conn.execute("INSERT OR IGNORE INTO meta (id, client_id, next_mid) VALUES (1, ?, 1)", (new_id(),))
            conn.execute(f"PRAGMA user_version = {STORE_FORMAT}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or none of it does."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def _meta(self, column: str) -> Any:
        return self._read_one(f"SELECT {column} FROM meta WHERE id = 1")

    # -- identity and bookkeeping --------------------------------------------------

    @property
    def client_id(self) -> str:
        value: str = self._meta("client_id")
        return value

    @property
    def owner_user_id(self) -> str | None:
        value: str | None = self._meta("owner_user_id")
        return value

    @property
    def cursor(self) -> str | None:
        value: str | None = self._meta("cursor")
        return value

    @property
    def next_mid(self) -> int:
        value: int = self._meta("next_mid")
        return value

    @property
    def acked_mid(self) -> int:
        value: int = self._meta("acked_mid")
        return value

    def bind_owner(self, user_id: str) -> str:
        """Record the user this client id belongs to, unless one is recorded; return the owner."""
        with self._write() as conn:
            conn.execute("UPDATE meta SET owner_user_id = ? WHERE id = 1 AND owner_user_id IS NULL", (user_id,))
            (owner,) = conn.execute("SELECT owner_user_id FROM meta WHERE id = 1").fetchone()
        return str(owner)

    # -- outbox --------------------------------------------------------------------

    def enqueue(self, name: str, args: dict[str, Any], *, mutation_id: str, client_ts: str, user_id: str | None) -> int:
        """Queue a mutation under the next gapless mid and return that mid.

        Reading `next_mid`, inserting and advancing it happen in one IMMEDIATE
        transaction, so concurrent writers (threads or processes) never share or skip a mid.
        A known user other than the owner is refused: the server would apply the owner's
        queue under whoever pushes it, so two users' writes must never share one queue.
        """
        args_text = _dumps(args)
        with self._write() as conn:
            mid, owner = conn.execute("SELECT next_mid, owner_user_id FROM meta WHERE id = 1").fetchone()
            if user_id is not None:
                if owner is not None and owner != user_id:
                    raise ClientOwnedByOtherUser(
                        "This device's queue belongs to another user; use a store of your own.",
                        details={"owner_user_id": owner},
                    )
                if owner is None:
                    conn.execute("UPDATE meta SET owner_user_id = ? WHERE id = 1", (user_id,))
            conn.execute(
                "INSERT INTO outbox (mid, mutation_id, name, args, client_ts, user_id) VALUES (?, ?, ?, ?, ?, ?)",
                (mid, mutation_id, name, args_text, client_ts, user_id),
            )
            conn.execute("UPDATE meta SET next_mid = ? WHERE id = 1", (mid + 1,))
        return int(mid)

    def pending(self, limit: int, *, from_mid: int | None = None) -> list[OutboxEntry]:
        """The oldest queued mutations (from `from_mid` on, if given), in mid order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT mid, mutation_id, name, args, client_ts, user_id FROM outbox"
                " WHERE mid >= ? ORDER BY mid LIMIT ?",
                (from_mid or 0, max(0, limit)),
            ).fetchall()
        return [
            OutboxEntry(mid, mutation_id, name, json.loads(args), ts, user)
            for mid, mutation_id, name, args, ts, user in rows
        ]

    def outbox_size(self) -> int:
        value: int = self._read_one("SELECT COUNT(*) FROM outbox")
        return value

    def outbox_mids(self) -> list[int]:
        with self._lock:
            return [mid for (mid,) in self._conn.execute("SELECT mid FROM outbox ORDER BY mid")]

    def ack(self, last_mid: int) -> int:
        """Drop the outbox entries the server acknowledged (mid <= last_mid); return how many."""
        with self._write() as conn:
            return self._ack(conn, last_mid)

    @staticmethod
    def _ack(conn: sqlite3.Connection, last_mid: int) -> int:
        (next_mid,) = conn.execute("SELECT next_mid FROM meta WHERE id = 1").fetchone()
        if last_mid >= next_mid:
            # Acting on it would drop mutations that were never sent.
            raise OutboxInconsistent(
                f"The server acknowledges mid {last_mid}, but this device has issued only up to {next_mid - 1}.",
                details={"last_mid": last_mid, "issued_up_to": next_mid - 1},
            )
        dropped = conn.execute("DELETE FROM outbox WHERE mid <= ?", (last_mid,)).rowcount
        conn.execute("UPDATE meta SET acked_mid = MAX(acked_mid, ?) WHERE id = 1", (last_mid,))
        return int(dropped)

    # -- read model ----------------------------------------------------------------

    def apply_pull_page(self, changes: Sequence[Change], cursor: str, last_mid: int) -> None:
        """Apply a pulled page, store its cursor and drop acknowledged mutations, atomically.

        If anything fails half-way, nothing changes: the cursor still points before the
        page, so the next pull fetches it again (applying a page twice is harmless).
        """
        with self._write() as conn:
            for change in changes:
                data = None if change.op == "delete" else _dumps(change.data or {})
                conn.execute(_UPSERT, (change.entity, change.id, change.version, data))
            conn.execute("UPDATE meta SET cursor = ? WHERE id = 1", (cursor,))
            self._ack(conn, last_mid)

    def reset_read_model(self) -> None:
        """Forget the read model and the cursor (for `reset_required`); the outbox stays."""
        with self._write() as conn:
            conn.execute("DELETE FROM read_model")
            conn.execute("UPDATE meta SET cursor = NULL WHERE id = 1")

    def get(self, entity: str, entity_id: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT version, data FROM read_model WHERE entity = ? AND id = ? AND data IS NOT NULL",
                (entity, entity_id),
            ).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def snapshot(self, *, tombstones: bool = False) -> dict[tuple[str, str], tuple[int, dict[str, Any] | None]]:
        """The read model as {(entity, id): (version, data)}; tombstones (data None) on request."""
        sql = "SELECT entity, id, version, data FROM read_model"
        if not tombstones:
            sql += " WHERE data IS NOT NULL"
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY entity, id").fetchall()
        return {
            (entity, id_): (version, None if data is None else json.loads(data)) for entity, id_, version, data in rows
        }

    # -- photo queue ---------------------------------------------------------------

    def queue_blob(self, sha256: str, path: str, size: int, mime: str, added_at: str) -> None:
        """Add a photo to the queue; one already queued (the same bytes) is left as it is."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO blob_queue (sha256, path, size, mime, added_at) VALUES (?, ?, ?, ?, ?)",
                (sha256, path, size, mime, added_at),
            )

    def pending_blobs(self) -> list[BlobEntry]:
        """Photos still to upload, oldest first."""
        return self._blobs("WHERE state = 'pending' ORDER BY added_at, sha256")

    def blob(self, sha256: str) -> BlobEntry | None:
        found = self._blobs("WHERE sha256 = ?", (sha256,))
        return found[0] if found else None

    def _blobs(self, where: str, params: Sequence[Any] = ()) -> list[BlobEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT sha256, path, size, mime, state, attempts, reason_code, reason FROM blob_queue " + where,
                params,
            ).fetchall()
        return [
            BlobEntry(sha, path, size, mime, BlobUpload(state), attempts, code, reason)
            for sha, path, size, mime, state, attempts, code, reason in rows
        ]

    def blob_attempted(self, sha256: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE blob_queue SET attempts = attempts + 1 WHERE sha256 = ?", (sha256,))

    def blob_settled(
        self, sha256: str, state: BlobUpload, reason_code: str | None = None, reason: str | None = None
    ) -> None:
        """The photo left the queue: uploaded, or rejected for good (with the server's reason)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE blob_queue SET state = ?, reason_code = ?, reason = ? WHERE sha256 = ?",
                (state.value, reason_code, reason, sha256),
            )
