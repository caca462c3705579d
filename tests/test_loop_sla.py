"""SLA timers on the cases opened by the out-of-spec rule: each breach is raised once, on the frozen clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.core.clock import FrozenClock
from loopline.core.db import Database
from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.customer.models import Account, Case
from loopline.loop.sla import sweep
from tests.conftest import Login
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, demo_ids, inspection
from tests.support import cli
from tests.sync_helpers import Device


@pytest.fixture(scope="module")
async def ids(world_runtime: Runtime) -> dict[str, str]:
    return await demo_ids(world_runtime)


async def flags_by_account(runtime: Runtime) -> dict[str, list[str]]:
    async with runtime.db.read_session() as session:
        codes = {a.id: a.code for a in await session.scalars(select(Account))}
        return {codes[c.account_id]: c.flags for c in await session.scalars(select(Case))}


async def test_breaches_follow_each_accounts_policy_and_are_raised_once(
    world_client: AsyncTestClient[Any],
    world_login: Login,
    world_runtime: Runtime,
    world_settings: Settings,
    ids: dict[str, str],
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_018, LATE_SHIFT_C1)))
    async with world_runtime.db.read_session() as session:
        opened = min(c.created_at for c in await session.scalars(select(Case)) if c.created_at is not None)

    async def sweep_at(hours: float) -> int:
        later = FrozenClock(opened + timedelta(hours=hours))
        runtime = Runtime(settings=world_settings, db=Database.open(world_settings), clock=later)
        try:
            return await sweep(runtime)
        finally:
            await runtime.db.close()

    assert await sweep_at(1) == 0
    # Three hours on: only the VIP's two-hour first response is late (A-002 has 4 h, A-003 8 h).
    assert await sweep_at(3) == 1
    assert await sweep_at(3.5) == 0
    assert await flags_by_account(world_runtime) == {
        "A-001": ["first_response_breached"],
        "A-002": [],
        "A-003": [],
    }
    # Thirty hours on: A-001's 24 h resolution, A-002's and A-003's first responses.
    assert await sweep_at(30) == 3
    assert await flags_by_account(world_runtime) == {
        "A-001": ["first_response_breached", "resolution_breached"],
        "A-002": ["first_response_breached"],
        "A-003": ["first_response_breached"],
    }
    async with world_runtime.db.read_session() as session:
        events = list(await session.scalars(select(DomainEvent).where(DomainEvent.type == "case.sla_breached")))
    assert len(events) == 4
    assert "0 SLA breaches flagged" in cli(world_settings, "cases", "sweep").stdout
