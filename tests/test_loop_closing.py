"""Closing the loop on lot 018: remedies as external-failure cost, CAPA effectiveness, and when the NC may close."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.customer.models import AdvisoryRecipient, Case
from loopline.quality.models import NonConformance, QualityCost
from tests.conftest import Login
from tests.loop_helpers import LOT_018, demo_ids, lot_018_under_advisory
from tests.sync_helpers import Device, new_id


@pytest.fixture(scope="module")
async def ids(world_runtime: Runtime) -> dict[str, str]:
    return await demo_ids(world_runtime)


def result(response: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    last = response["results"][-1]
    error = last.get("error") or {}
    return last["status"], error.get("code"), error.get("details", {})


async def test_nc_0142_costs_69894_and_closes_only_after_its_cases_and_a_verified_capa(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    qa, gil = (
        Device(world_client, await world_login("qa.manager")),
        Device(world_client, await world_login("gil.workshop")),
    )
    await lot_018_under_advisory(world_client, world_login, world_runtime, ids)
    async with world_runtime.db.read_session() as session:
        nc = (await session.scalars(select(NonConformance))).one()
        recipients = list(await session.scalars(select(AdvisoryRecipient)))
    # Every account acknowledges (scenario step 4); each acknowledgement grants the account's remedy.
    acknowledged: set[str] = set()
    for recipient in recipients:
        if recipient.account_id not in acknowledged:
            acknowledged.add(recipient.account_id)
            answer = {"recipient_id": recipient.id, "response": "acknowledge"}
            await qa.push_ok(qa.mutation("advisory.respond", answer))
    # The workshop's complaint (step 7): three failed units replaced.
    complaint = {"id": new_id(), "title": "3 flicker", "lot_no": LOT_018, "category_code": "FLICKER", "qty_failed": 3}
    await gil.push_ok(gil.mutation("case.open", complaint))
    # People record the internal failure and appraisal costs (step 11).
    for category, amount, what in [
        ("internal_failure", "4200.00", "re-coat 2,000 x 2.10"),
        ("appraisal", "1800.00", "100 % thickness testing, 40 h x 45"),
    ]:
        cost = {"id": new_id(), "nc_id": nc.id, "category": category, "amount": amount, "description": what}
        await qa.push_ok(qa.mutation("quality_cost.record", {**cost, "incurred_at": "2024-06-19T12:00:00Z"}))

    async with world_runtime.db.read_session() as session:
        costs = list(await session.scalars(select(QualityCost).where(QualityCost.nc_id == nc.id)))
    by_category: defaultdict[str, Decimal] = defaultdict(Decimal)
    for entry in costs:
        by_category[entry.category] += entry.amount
    # External failure: 36,000 + 4,800 (A-001) + 21,600 (A-002) + 1,440 (A-003 credit) + 54 (CS-1004).
    assert dict(by_category) == {
        "external_failure": Decimal("63894.00"),
        "internal_failure": Decimal("4200.00"),
        "appraisal": Decimal("1800.00"),
    }
    assert sum(by_category.values()) == Decimal("69894.00")

    walk = [("open", "contained"), ("contained", "investigating"), ("investigating", "dispositioned")]
    for before, after in walk:
        await qa.push_ok(qa.mutation("nc.set_status", {"id": nc.id, "from": before, "to": after}))
    close = {"id": nc.id, "from": "dispositioned", "to": "closed"}
    status, code, details = result(await qa.push_ok(qa.mutation("nc.set_status", close)))
    async with world_runtime.db.read_session() as session:
        cases = list(await session.scalars(select(Case).where(Case.nc_id == nc.id)))
    assert (status, code) == ("rejected", "nc_not_closable")
    assert details["open_cases"] == sorted(c.number for c in cases)
    assert "capa" in details

    capa_id = new_id()
    await qa.push_ok(qa.mutation("capa.open", {"id": capa_id, "nc_ids": [nc.id], "root_cause": "nozzle #2 clogged"}))
    check = {"id": capa_id, "criterion": "Cpk(C1) >= 1.33 over 30 subgroups, zero OOS"}
    await qa.push_ok(qa.mutation("capa.verify", {**check, "result": "failed"}))
    _, code, details = result(await qa.push_ok(qa.mutation("nc.set_status", close)))
    assert (code, "capa" in details) == ("nc_not_closable", True)
    await qa.push_ok(qa.mutation("capa.verify", {**check, "result": "passed", "evidence": "Cpk 1.52"}))
    _, code, details = result(await qa.push_ok(qa.mutation("nc.set_status", close)))
    assert (code, "capa" in details, "open_cases" in details) == ("nc_not_closable", False, True)

    for case in cases:
        await qa.push_ok(qa.mutation("case.set_status", {"id": case.id, "from": case.status, "to": "resolved"}))
    assert result(await qa.push_ok(qa.mutation("nc.set_status", close)))[:2] == ("applied", None)
    async with world_runtime.db.read_session() as session:
        walked = await session.scalars(select(DomainEvent.type).where(DomainEvent.subject_id == nc.id))
        assert [kind for kind in walked if kind != "nc.created"] == [
            "nc.contained",
            "nc.investigating",
            "nc.dispositioned",
            "nc.closed",
        ]
