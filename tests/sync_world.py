"""Engines against the real app in-process: one world per test, cloned from a demo template."""

from __future__ import annotations

import asyncio
import random
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from loopline.app import create_app
from loopline.core.access import Principal
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline_sync.auth import Auth
from loopline_sync.engine import SyncEngine
from loopline_sync.store import LocalStore
from loopline_sync.transport import Fault, FaultyTransport, HttpTransport
from tests.support import DEMO_PASSWORD, TEST_DATABASE_URL, admin_sql
from tests.sync_helpers import principal_of_token


async def no_wait(_seconds: float) -> None:
    """Backoff without the waiting: retries stay in order, the test stays fast."""
    await asyncio.sleep(0)


@asynccontextmanager
async def cloned_database(template: Settings, data_dir: Path) -> AsyncIterator[Settings]:
    """A copy of the template world's database: a file copy, or PostgreSQL's CREATE DATABASE … TEMPLATE."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not TEST_DATABASE_URL:
        shutil.copy(template.data_dir / "loopline.db", data_dir / "loopline.db")
        yield replace(template, data_dir=data_dir)
        return
    url = make_url(template.database_url)
    name = f"loopline_t_{uuid.uuid4().hex[:12]}"
    await admin_sql(TEST_DATABASE_URL, f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
    try:
        yield replace(
            template, data_dir=data_dir, database_url=url.set(database=name).render_as_string(hide_password=False)
        )
    finally:
        await admin_sql(TEST_DATABASE_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Handset:
    """One device: its local store, its (possibly faulty) transport and its engine."""

    username: str
    store: LocalStore
    transport: FaultyTransport
    engine: SyncEngine
    enqueued: list[str] = field(default_factory=list)

    async def enqueue(self, name: str, args: dict[str, Any]) -> str:
        mutation_id = str(uuid.uuid4())
        await self.engine.enqueue(name, args, id=mutation_id)
        self.enqueued.append(mutation_id)
        return mutation_id


@dataclass
class World:
    client: AsyncTestClient[Any]
    runtime: Runtime
    tmp: Path
    # The simulations model crashes at the protocol level; fsyncs on every write only slow them.
    store_synchronous: str = "FULL"
    handsets: list[Handset] = field(default_factory=list)

    def handset(
        self,
        username: str,
        *,
        seed: int = 0,
        rates: dict[Fault, float] | None = None,
        store_name: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = no_wait,
        batch_size: int = 100,
        pull_limit: int = 500,
    ) -> Handset:
        rng = random.Random(seed)
        http = HttpTransport("http://testserver.local", client=self.client)
        faulty = FaultyTransport(http, rng, rates=rates or {}, sleep=no_wait)
        store = LocalStore(self.tmp / f"{store_name or uuid.uuid4().hex}.db", synchronous=self.store_synchronous)
        auth = Auth(HttpTransport("http://testserver.local", client=self.client), username, DEMO_PASSWORD)
        engine = SyncEngine(
            store, faulty, auth, rng=random.Random(seed + 1), sleep=sleep, batch_size=batch_size, pull_limit=pull_limit
        )
        handset = Handset(username, store, faulty, engine)
        self.handsets.append(handset)
        return handset

    async def principal(self, handset: Handset) -> Principal:
        token = handset.engine.auth.access_token
        assert token is not None
        return await principal_of_token(self.runtime, token)


@asynccontextmanager
async def world(template: Settings, tmp: Path, *, durable: bool = True) -> AsyncIterator[World]:
    """A fresh copy of the demo world with the app running in-process.

    `durable=False` skips fsyncs on the server database and the device stores, for
    simulations whose subject is the protocol, not the disk (the crash test keeps them).
    """
    async with cloned_database(template, tmp / "db") as cloned:
        settings = cloned if durable else replace(cloned, sqlite_synchronous="NORMAL")
        runtime = Runtime(settings=settings, db=Database.open(settings))
        try:
            async with AsyncTestClient(create_app(settings)) as client:
                built = World(client, runtime, tmp, store_synchronous="FULL" if durable else "NORMAL")
                try:
                    yield built
                finally:
                    for handset in built.handsets:
                        handset.store.close()
        finally:
            await runtime.db.close()
