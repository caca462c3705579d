"""The Python engine's live-tail mode against a real server process: follows, and resumes after drops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline_sync.auth import Auth
from loopline_sync.engine import SyncEngine
from loopline_sync.live import LiveTail
from loopline_sync.store import LocalStore
from loopline_sync.transport import HttpTransport
from tests.live_helpers import User
from tests.support import DEMO_PASSWORD, demo_world, running_server
from tests.sync_helpers import principal_of_token, server_state

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    with demo_world(tmp_path_factory.mktemp("live-engine")) as settings, running_server(settings) as base:
        yield base, settings


@pytest.fixture
async def runtime(server: tuple[str, Settings]) -> AsyncIterator[Runtime]:
    rt = Runtime(settings=server[1], db=Database.open(server[1]))
    yield rt
    await rt.db.close()


async def test_the_live_tail_follows_the_log_and_resumes_after_every_drop_to_the_servers_state(
    server: tuple[str, Settings], runtime: Runtime, tmp_path: Path
) -> None:
    base, _ = server
    transport = HttpTransport(base)
    engine = SyncEngine(
        LocalStore(tmp_path / "tablet.sqlite"), transport, Auth(transport, "lena.fischer", DEMO_PASSWORD)
    )
    tail = LiveTail(engine, base.replace("http://", "ws://"))
    stop = asyncio.Event()
    following = asyncio.create_task(tail.run(stop))
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        wang = await User.sign_in(http, "wang.lei")
        thread_id = await wang.new_thread()
        await wang.post(thread_id, "joining you in", mentions=["lena.fischer"])
        posted = []
        for n in range(30):
            posted.append(await wang.post(thread_id, f"reading {n}"))
            if n in (9, 19):
                await tail.connected.wait()
                await tail.disconnect()  # the tablet walks into a dead zone, twice
        async with asyncio.timeout(30):
            tail.progress.clear()
            while not all(engine.store.get("message", m) for m in posted):
                await tail.progress.wait()
                tail.progress.clear()
    stop.set()
    await following
    principal = await principal_of_token(runtime, (await engine.auth.headers())["Authorization"].split()[1])
    assert engine.store.snapshot() == await server_state(runtime, principal)
    assert tail.stats.connections >= 3
    assert engine.store.outbox_size() == 0
    await transport.aclose()
