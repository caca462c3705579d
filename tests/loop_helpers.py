"""Shared arrangements for the loop-rule tests: the demo's ids and an inspection of plan FINAL-HLD200."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.catalog.models import InspectionPlan
from loopline.core.runtime import Runtime
from loopline.customer.models import Account, Advisory
from loopline.people.models import User
from loopline.quality.models import Batch
from tests.conftest import Login
from tests.sync_helpers import Device, new_id

LOT_018, LOT_016, LOT_019 = "CN-SZ-L2-2406-018", "CN-SZ-L2-2406-016", "CN-SZ-L1-2406-019"
# INS-88213: four of five C1 readings below the lower limit of 25 µm.
LATE_SHIFT_C1 = [24.0, 22.0, 23.0, 26.0, 21.0]


async def demo_ids(runtime: Runtime) -> dict[str, str]:
    """Lots, plans, account codes and usernames to their ids."""
    async with runtime.db.read_session() as session:
        found = {b.lot_no: b.id for b in await session.scalars(select(Batch))}
        found |= {p.code: p.id for p in await session.scalars(select(InspectionPlan))}
        found |= {a.code: a.id for a in await session.scalars(select(Account))}
        found |= {u.username: u.id for u in await session.scalars(select(User))}
    return found


def inspection(ids: dict[str, str], lot: str, c1: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "batch_id": ids[lot],
        "plan_id": ids["FINAL-HLD200"],
        "kind": "audit",
        "captured_at": "2024-06-17T08:10:00Z",
        "measurements": [{"characteristic": "C1", "value": v} for v in c1],
        **extra,
    }


async def lot_018_under_advisory(
    client: AsyncTestClient[Any], login: Login, runtime: Runtime, ids: dict[str, str]
) -> Advisory:
    """Scenario steps 2-4: INS-88213 finds lot 018 out of spec, and QA approves and sends the advisory."""
    wang, qa = Device(client, await login("wang.lei")), Device(client, await login("qa.manager"))
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_018, LATE_SHIFT_C1)))
    async with runtime.db.read_session() as session:
        drafted = (await session.scalars(select(Advisory))).one()
    await qa.push_ok(
        qa.mutation("advisory.approve", {"id": drafted.id}), qa.mutation("advisory.send", {"id": drafted.id})
    )
    return drafted
