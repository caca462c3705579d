"""Loop rule 2 through the sync push: a drift inside the limits opens a quality watch, never a case."""

from __future__ import annotations

import statistics
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func
from sqlmodel import col, select

from loopline.catalog.models import InspectionPlan, Line
from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.customer.models import Case
from loopline.quality.models import Batch, CapabilitySnapshot, Measurement, NonConformance, QualityWatch
from tests.conftest import Login
from tests.sync_helpers import Device, new_id

# Scenario step 1: C1 subgroup means on line L2 (lots 016 and 017), six steadily decreasing.
DRIFT = [("CN-SZ-L2-2406-016", 52.1), ("CN-SZ-L2-2406-016", 50.4)] + [
    ("CN-SZ-L2-2406-017", mean) for mean in (48.9, 47.0, 45.2, 43.8)
]
# A realistic within-subgroup spread (s = 5.1): the means stay inside 3 sigma, so only the trend signals.
SPREAD = [-7.0, -3.0, 0.0, 3.0, 7.0]


async def test_six_decreasing_means_open_one_quality_watch_for_the_line_supervisor_and_no_customer_action(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    async with world_runtime.db.read_session() as session:
        lots = {b.lot_no: b for b in await session.scalars(select(Batch))}
        plan = (await session.scalars(select(InspectionPlan).where(InspectionPlan.code == "FINAL-HLD200"))).one()
        line = (await session.scalars(select(Line).where(Line.code == "L2"))).one()
    wang = Device(world_client, await world_login("wang.lei"))
    inspection_ids = []
    for day, (lot, mean) in enumerate(DRIFT):
        inspection_ids.append(new_id())
        await wang.push_ok(
            wang.mutation(
                "inspection.submit",
                {
                    "id": inspection_ids[-1],
                    "batch_id": lots[lot].id,
                    "plan_id": plan.id,
                    "kind": "in_process",
                    "captured_at": f"2024-06-{3 + day:02d}T10:00:00Z",
                    "measurements": [{"characteristic": "C1", "value": mean + d} for d in SPREAD],
                },
            )
        )
        async with world_runtime.db.read_session() as session:
            watches = list(await session.scalars(select(QualityWatch)))
        # Five points are not a trend yet; the sixth completes Nelson 3.
        assert len(watches) == (1 if day == len(DRIFT) - 1 else 0)

    async with world_runtime.db.read_session() as session:
        [watch] = (await session.scalars(select(QualityWatch))).all()
        signals = {
            m.inspection_id: m.spc_signals
            for m in await session.scalars(
                select(Measurement).where(col(Measurement.inspection_id).in_(inspection_ids))
            )
        }
        snapshot = (
            await session.scalars(
                select(CapabilitySnapshot).where(CapabilitySnapshot.inspection_id == inspection_ids[-1])
            )
        ).one()
        nc_count = await session.scalar(select(func.count()).select_from(NonConformance))
        case_count = await session.scalar(select(func.count()).select_from(Case))
        opened = list(await session.scalars(select(DomainEvent).where(DomainEvent.type == "quality_watch.opened")))
    assert (watch.line, watch.characteristic_code, watch.rules, watch.status) == ("L2", "C1", ["NELSON3"], "open")
    assert watch.assignee_id == line.supervisor_id
    assert watch.batch_id == lots["CN-SZ-L2-2406-017"].id
    assert signals[inspection_ids[-1]] == ["NELSON3"]
    assert all(signals[i] == [] for i in inspection_ids[:-1])
    assert (nc_count, case_count, len(opened)) == (0, 0, 1)

    # Capability over the six subgroups, computed here from the raw values.
    values = [mean + d for _, mean in DRIFT for d in SPREAD]
    mean, sigma = statistics.fmean(values), statistics.stdev(values)
    expected_cpk = min(75 - mean, mean - 25) / (3 * sigma)
    assert (snapshot.subgroups, snapshot.n) == (6, 30)
    assert snapshot.cpk is not None
    assert abs(snapshot.cpk - expected_cpk) < 1e-9
    assert snapshot.cpk_target == 1.33
    assert snapshot.meets_target is (expected_cpk >= 1.33)
