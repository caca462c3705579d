"""Sync throughput beside a raw-SQLite baseline measured in the same run (prints JSON).

- push: `message.post` mutations in batches of 100 through the real push service (and,
  separately, through the HTTP stack in-process), against plain `sqlite3` doing the same
  rows in one thread: idempotency check, insert, thread counter, change-log append,
  applied-mutation record, `last_mid`.
- pull: an initial sync (cursor null, pages of 500) of everything pushed, through the
  pull service, against plain `sqlite3` paging the same change log.

Targets (issue 3): push at least 40 % of the raw baseline; an initial sync of 20,000
changes under 2 s server-side.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402
from sqlmodel import select  # noqa: E402

from loopline.app import create_app  # noqa: E402
from loopline.core import migrate  # noqa: E402
from loopline.core.access import Principal, Role  # noqa: E402
from loopline.core.canonical import canonical_json  # noqa: E402
from loopline.core.db import Database  # noqa: E402
from loopline.core.runtime import Runtime  # noqa: E402
from loopline.core.settings import Settings  # noqa: E402
from loopline.people.models import Membership, User  # noqa: E402
from loopline.quality.models import Batch  # noqa: E402
from loopline.syncing.pull import pull  # noqa: E402
from loopline.syncing.push import push  # noqa: E402
from loopline.threads.models import Thread  # noqa: E402
from loopline_sync.protocol import Mutation, PullRequest, PushRequest  # noqa: E402
from tests.support import DEMO_PASSWORD, GENEROUS_LIMITS, load_demo_into  # noqa: E402

BATCH = 100
PAGE = 500


def message(mid: int, threads: list[str]) -> Mutation:
    """The mid-th message, posted round-robin over the threads."""
    return Mutation(
        mid=mid,
        id=str(uuid.uuid4()),
        name="message.post",
        args={"id": str(uuid.uuid4()), "thread_id": threads[mid % len(threads)], "body": f"reading {mid}: 23.4 µm"},
    )


async def inspector(runtime: Runtime) -> Principal:
    async with runtime.db.read_session() as session:
        user = (await session.scalars(select(User).where(User.username == "wang.lei"))).one()
        plants = frozenset(await session.scalars(select(Membership.ref).where(Membership.user_id == user.id)))
    return Principal(user.id, user.username, Role.INSPECTOR, "bench", plants, frozenset())


async def open_threads(runtime: Runtime, principal: Principal, count: int) -> list[str]:
    """Defects with their threads, so messages spread over threads as in a real plant."""
    async with runtime.db.read_session() as session:
        batch = (await session.scalars(select(Batch).where(Batch.lot_no == "CN-SZ-L2-2406-018"))).one()
    reports = [
        Mutation(
            mid=n,
            id=str(uuid.uuid4()),
            name="defect.report",
            args={
                "id": str(uuid.uuid4()),
                "batch_id": batch.id,
                "defect_code": "CC-THIN",
                "severity": "major",
                "captured_at": "2024-06-17T08:12:00Z",
            },
        )
        for n in range(1, count + 1)
    ]
    await push(runtime, principal, PushRequest(client_id=str(uuid.uuid4()), schema_version=1, mutations=reports))
    async with runtime.db.read_session() as session:
        return list(await session.scalars(select(Thread.id)))


async def push_service(runtime: Runtime, principal: Principal, threads: list[str], count: int) -> float:
    client_id = str(uuid.uuid4())
    started = time.perf_counter()
    for first in range(1, count + 1, BATCH):
        batch = [message(mid, threads) for mid in range(first, min(first + BATCH, count + 1))]
        response = await push(runtime, principal, PushRequest(client_id=client_id, schema_version=1, mutations=batch))
        rejected = [r for r in response.results if r.status != "applied"]
        assert not rejected, rejected[0]
    return time.perf_counter() - started


async def push_http(settings: Settings, threads: list[str], count: int) -> float:
    async with AsyncTestClient(create_app(settings)) as client:
        tokens = (
            await client.post("/api/v1/auth/login", json={"username": "wang.lei", "password": DEMO_PASSWORD})
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        client_id = str(uuid.uuid4())
        started = time.perf_counter()
        for first in range(1, count + 1, BATCH):
            batch = [
                message(mid, threads).model_dump(mode="json") for mid in range(first, min(first + BATCH, count + 1))
            ]
            response = await client.post(
                "/api/v1/sync/push",
                headers=headers,
                json={"client_id": client_id, "schema_version": 1, "mutations": batch},
            )
            assert response.status_code == 200, response.text
        return time.perf_counter() - started


async def initial_sync(runtime: Runtime, principal: Principal) -> tuple[float, int]:
    client_id = str(uuid.uuid4())
    cursor, changes, elapsed = None, 0, 0.0
    while True:
        started = time.perf_counter()
        page = await pull(
            runtime, principal, PullRequest(client_id=client_id, schema_version=1, cursor=cursor, limit=PAGE)
        )
        elapsed += time.perf_counter() - started
        changes += len(page.changes)
        cursor = page.cursor
        if not page.has_more:
            return elapsed, changes


def raw_push(path: Path, author_id: str, threads: list[str], count: int) -> float:
    """The same rows as the service, on a copy of its database, in plain `sqlite3`.

    Per mutation: the thread counter, the message, its change-log row, its sealed audit
    event and the applied-mutation record; per batch the idempotency check and `last_mid`.
    What the baseline leaves out is the framework: no ORM, no validation, no permissions.
    """
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
    db.execute(
        "INSERT INTO sync_client (client_id, user_id, last_mid, scope_sets, created_at, last_pulled_seq) "
        "VALUES ('raw', ?, 0, '{}', '2024-06-17 08:00:00', 0)",
        (author_id,),
    )
    started = time.perf_counter()
    for first in range(1, count + 1, BATCH):
        batch = [message(mid, threads) for mid in range(first, min(first + BATCH, count + 1))]
        now = datetime.now(UTC)
        stamp, at = now.replace(tzinfo=None).isoformat(sep=" "), now.isoformat().replace("+00:00", "Z")
        db.execute("BEGIN IMMEDIATE")
        last_mid = db.execute("SELECT last_mid FROM sync_client WHERE client_id = 'raw'").fetchone()[0]
        ids = [m.args["id"] for m in batch]
        marks = ",".join("?" * len(ids))
        existing = {r[0] for r in db.execute(f"SELECT id FROM message WHERE id IN ({marks})", ids)}
        seq = db.execute("SELECT coalesce(max(seq), 0) FROM change_log").fetchone()[0]
        audit_seq, prev_hash = db.execute("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
        for mutation in batch:
            args = mutation.args
            if mutation.mid <= last_mid or args["id"] in existing:
                continue
            thread_seq = db.execute(
                "UPDATE thread_counter SET last_seq = last_seq + 1 WHERE thread_id = ? RETURNING last_seq",
                (args["thread_id"],),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO message (id, version, created_at, updated_at, thread_id, thread_seq, author_id, "
                "visibility, body, mentions) VALUES (?, 1, ?, ?, ?, ?, ?, 'internal', ?, '[]')",
                (args["id"], stamp, stamp, args["thread_id"], thread_seq, author_id, args["body"]),
            )
            data = {
                "id": args["id"],
                "version": 1,
                "created_at": at,
                "updated_at": at,
                "thread_id": args["thread_id"],
                "thread_seq": thread_seq,
                "author_id": author_id,
                "visibility": "internal",
                "body": args["body"],
                "mentions": [],
                "edited_at": None,
                "deleted_at": None,
            }
            seq += 1
            db.execute(
                "INSERT INTO change_log (seq, scope_key, entity, entity_id, op, version, data, at) "
                "VALUES (?, ?, 'message', ?, 'put', 1, ?, ?)",
                (seq, f"thread:{args['thread_id']}", args["id"], json.dumps(data), stamp),
            )
            audit_seq += 1
            event = {
                "seq": audit_seq,
                "at": at,
                "actor": author_id,
                "command": "sync.push",
                "entity": "message",
                "entity_id": args["id"],
                "action": "message.insert",
                "diff": data,
            }
            digest = hashlib.sha256(prev_hash.encode() + canonical_json(event)).hexdigest()
            db.execute(
                "INSERT INTO audit_event (seq, at, actor, command, entity, entity_id, action, diff, prev_hash, hash) "
                "VALUES (?, ?, ?, 'sync.push', 'message', ?, 'message.insert', ?, ?, ?)",
                (audit_seq, stamp, author_id, args["id"], json.dumps(data), prev_hash, digest),
            )
            prev_hash = digest
            db.execute(
                "INSERT INTO applied_mutation (client_id, mid, mutation_id, name, status, result, applied_at) "
                "VALUES ('raw', ?, ?, 'message.post', 'applied', ?, ?)",
                (
                    mutation.mid,
                    mutation.id,
                    json.dumps({"mid": mutation.mid, "status": "applied", "version": 1}),
                    stamp,
                ),
            )
            last_mid = mutation.mid
        db.execute("UPDATE sync_client SET last_mid = ?, last_push_at = ? WHERE client_id = 'raw'", (last_mid, stamp))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def raw_pull(path: Path, threads: list[str]) -> tuple[float, int]:
    """An initial sync of the same threads' change log in plain `sqlite3`, pages of 500."""
    db = sqlite3.connect(path)
    scopes = [f"thread:{thread_id}" for thread_id in threads]
    marks = ",".join("?" * len(scopes))
    started, after, changes = time.perf_counter(), 0, 0
    while True:
        rows = db.execute(
            f"SELECT seq, entity, entity_id, op, version, data FROM change_log "
            f"WHERE scope_key IN ({marks}) AND seq > ? ORDER BY seq LIMIT ?",
            (*scopes, after, PAGE),
        ).fetchall()
        if not rows:
            break
        json.dumps(
            [
                {"seq": r[0], "entity": r[1], "id": r[2], "op": r[3], "version": r[4], "data": json.loads(r[5])}
                for r in rows
            ]
        )
        changes += len(rows)
        after = rows[-1][0]
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed, changes


async def run(tmp: str, count: int, http_count: int) -> dict[str, Any]:
    settings = Settings.from_env(env={}, data_dir=Path(tmp) / "server", **GENEROUS_LIMITS)
    await load_demo_into(settings)
    runtime = Runtime(settings=settings, db=Database.open(settings))
    principal = await inspector(runtime)
    # 100 threads: the initial sync carries at most 200 messages per thread.
    threads = await open_threads(runtime, principal, 100)
    # The baseline starts from the same database the service starts from.
    with sqlite3.connect(Path(tmp) / "server" / "loopline.db") as source:
        source.execute("VACUUM INTO ?", (str(Path(tmp) / "raw.db"),))
    service_s = await push_service(runtime, principal, threads, count)
    sync_s, synced = await initial_sync(runtime, principal)
    await runtime.db.close()
    http_s = await push_http(settings, threads, http_count)
    raw_s = raw_push(Path(tmp) / "raw.db", principal.user_id, threads, count)
    raw_pull_s, raw_pulled = raw_pull(Path(tmp) / "raw.db", threads)
    push_rate, raw_rate = count / service_s, count / raw_s
    return {
        "mutations": count,
        "push": {
            "service_per_s": round(push_rate),
            "http_per_s": round(http_count / http_s),
            "raw_sqlite_per_s": round(raw_rate),
            "ratio_service_to_raw": round(push_rate / raw_rate, 3),
            "target_ratio": 0.4,
            "met": push_rate / raw_rate >= 0.4,
        },
        "initial_sync": {
            "changes": synced,
            "server_seconds": round(sync_s, 3),
            "changes_per_s": round(synced / sync_s),
            "target_seconds": 2.0,
            "met": sync_s < 2.0,
        },
        "raw_pull": {
            "changes": raw_pulled,
            "seconds": round(raw_pull_s, 3),
            "changes_per_s": round(raw_pulled / raw_pull_s),
        },
    }


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mutations", type=int, default=20_000)
    parser.add_argument("--http-mutations", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Alembic runs its own event loop: migrate before ours starts.
        migrate.upgrade(Settings.from_env(env={}, data_dir=Path(tmp) / "server", **GENEROUS_LIMITS))
        print(json.dumps(asyncio.run(run(tmp, args.mutations, args.http_mutations)), indent=2))


if __name__ == "__main__":
    main()
