"""Shared arrangements for the loop-rule tests: the demo's ids and an inspection of plan FINAL-HLD200."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from loopline.catalog.models import InspectionPlan
from loopline.core.runtime import Runtime
from loopline.customer.models import Account
from loopline.people.models import User
from loopline.quality.models import Batch
from tests.sync_helpers import new_id

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
