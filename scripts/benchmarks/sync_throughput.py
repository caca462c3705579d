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
import json
import logging
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402
from sqlmodel import select  # noqa: E402

from loopline.app import create_app  # noqa: E402
from loopline.core import migrate  # noqa: E402
from loopline.core.access import Principal, Role  # noqa: E402
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
    await push(runtime, principal, PushRequest(client_id="bench-setup", schema_version=1, mutations=reports))
    async with runtime.db.read_session() as session:
        return list(await session.scalars(select(Thread.id)))


async def push_service(runtime: Runtime, principal: Principal, threads: list[str], count: int) -> float:
    client_id = f"bench-{uuid.uuid4()}"
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
        client_id = f"bench-{uuid.uuid4()}"
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
    client_id = f"bench-{uuid.uuid4()}"
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


def raw_push(path: Path, count: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("""
        PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
        CREATE TABLE sync_client(client_id TEXT PRIMARY KEY, last_mid INTEGER NOT NULL);
        CREATE TABLE applied_mutation(client_id TEXT, mid INTEGER, mutation_id TEXT, result TEXT,
                                      PRIMARY KEY (client_id, mid));
        CREATE TABLE thread(id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
        CREATE TABLE message(id TEXT PRIMARY KEY, thread_id TEXT, thread_seq INTEGER, author_id TEXT, body TEXT,
                             version INTEGER, UNIQUE(thread_id, thread_seq));
        CREATE TABLE change_log(seq INTEGER PRIMARY KEY, scope_key TEXT, entity TEXT, entity_id TEXT, op TEXT,
                                version INTEGER, data TEXT);
        CREATE INDEX ix_scope ON change_log(scope_key, seq);
        INSERT INTO sync_client VALUES ('raw', 0); INSERT INTO thread VALUES ('t', 0);
    """)
    started = time.perf_counter()
    for first in range(1, count + 1, BATCH):
        mids = list(range(first, min(first + BATCH, count + 1)))
        db.execute("BEGIN IMMEDIATE")
        last_mid = db.execute("SELECT last_mid FROM sync_client WHERE client_id = 'raw'").fetchone()[0]
        placeholders = ",".join("?" * len(mids))
        done = {
            r[0]
            for r in db.execute(
                f"SELECT mid FROM applied_mutation WHERE client_id = 'raw' AND mid IN ({placeholders})", mids
            )
        }
        seq = db.execute("SELECT coalesce(max(seq), 0) FROM change_log").fetchone()[0]
        for mid in mids:
            if mid in done or mid <= last_mid:
                continue
            message_id = str(uuid.uuid4())
            thread_seq = db.execute(
                "UPDATE thread SET last_seq = last_seq + 1 WHERE id = 't' RETURNING last_seq"
            ).fetchone()[0]
            body = f"reading {mid}: 23.4 µm"
            db.execute("INSERT INTO message VALUES (?, 't', ?, 'u', ?, 1)", (message_id, thread_seq, body))
            seq += 1
            data = json.dumps({"id": message_id, "thread_id": "t", "thread_seq": thread_seq, "body": body})
            db.execute(
                "INSERT INTO change_log VALUES (?, 'thread:t', 'message', ?, 'put', 1, ?)", (seq, message_id, data)
            )
            db.execute(
                "INSERT INTO applied_mutation VALUES ('raw', ?, ?, '{\"status\":\"applied\"}')",
                (mid, str(uuid.uuid4())),
            )
            last_mid = mid
        db.execute("UPDATE sync_client SET last_mid = ? WHERE client_id = 'raw'", (last_mid,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def raw_pull(path: Path) -> tuple[float, int]:
    db = sqlite3.connect(path)
    started, after, changes = time.perf_counter(), 0, 0
    while True:
        rows = db.execute(
            "SELECT seq, entity, entity_id, op, version, data FROM change_log "
            "WHERE scope_key IN ('thread:t') AND seq > ? ORDER BY seq LIMIT ?",
            (after, PAGE),
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
    service_s = await push_service(runtime, principal, threads, count)
    sync_s, synced = await initial_sync(runtime, principal)
    await runtime.db.close()
    http_s = await push_http(settings, threads, http_count)
    raw_s = raw_push(Path(tmp) / "raw.db", count)
    raw_pull_s, raw_pulled = raw_pull(Path(tmp) / "raw.db")
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
