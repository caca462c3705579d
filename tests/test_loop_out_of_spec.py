"""Loop rule 1 through the sync push: an out-of-spec inspection opens the whole customer response at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func
from sqlmodel import col, select

from loopline.core.audit import AuditEvent
from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.customer.models import Account, Advisory, AdvisoryRecipient, Case, Contact
from loopline.quality.models import Batch, Inspection, NonConformance
from loopline.threads.models import SubjectType, Thread, ThreadParticipant
from tests.conftest import Login
from tests.loop_helpers import LATE_SHIFT_C1, LOT_016, LOT_018, LOT_019, demo_ids, inspection
from tests.sync_helpers import Device


@pytest.fixture(scope="module")
async def ids(world_runtime: Runtime) -> dict[str, str]:
    return await demo_ids(world_runtime)


async def count(runtime: Runtime, model: type[Any], *where: Any) -> int:
    async with runtime.db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def events(runtime: Runtime, event_type: str) -> list[DomainEvent]:
    async with runtime.db.read_session() as session:
        return list(await session.scalars(select(DomainEvent).where(DomainEvent.type == event_type)))


async def test_an_out_of_spec_inspection_holds_the_lot_and_opens_cases_for_exactly_the_accounts_that_received_it(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    submitted = inspection(ids, LOT_018, LATE_SHIFT_C1, number="INS-88213")
    response = await wang.push_ok(wang.mutation("inspection.submit", submitted))
    assert response["results"][0]["status"] == "applied"

    async with world_runtime.db.read_session() as session:
        [nc] = (await session.scalars(select(NonConformance))).all()
        batch = await session.get(Batch, ids[LOT_018])
        cases = list(await session.scalars(select(Case).where(Case.nc_id == nc.id)))
        accounts = {a.id: a for a in await session.scalars(select(Account))}
        [advisory] = (await session.scalars(select(Advisory).where(Advisory.nc_id == nc.id))).all()
        recipients = list(
            await session.scalars(select(AdvisoryRecipient).where(AdvisoryRecipient.advisory_id == advisory.id))
        )
        consented = [
            c
            for c in await session.scalars(select(Contact).where(col(Contact.account_id).in_(advisory.account_ids)))
            if c.consents.get("service_notices") is True and c.pseudonymized_at is None
        ]
        nc_thread = (
            await session.scalars(
                select(Thread).where(Thread.subject_type == SubjectType.NONCONFORMANCE, Thread.subject_id == nc.id)
            )
        ).one()
        participants = set(
            await session.scalars(select(ThreadParticipant.user_id).where(ThreadParticipant.thread_id == nc_thread.id))
        )
    assert (nc.source, nc.source_ref, nc.defect_code, nc.severity) == ("inspection", "INS-88213", "CC-THIN", "major")
    assert nc.batch_ids == [ids[LOT_018]]
    assert batch is not None
    assert batch.status == "on_hold"
    # The trace's accounts, and only they: the VIP's other lot (044) plays no part.
    assert sorted(accounts[c.account_id].code for c in cases) == ["A-001", "A-002", "A-003"]
    for case in cases:
        account = accounts[case.account_id]
        assert (case.origin, case.defect_code, case.severity, case.status) == (
            "inspection_deviation",
            "CC-THIN",
            "major",
            "new",
        )
        assert case.created_at is not None
        assert case.sla_first_response_due is not None
        assert case.sla_resolution_due is not None
        # Due times count from the push that opened the case (the same instant, give or take the transaction).
        first_response = case.sla_first_response_due - case.created_at
        resolution = case.sla_resolution_due - case.created_at
        assert abs(first_response - timedelta(hours=account.sla_policy["first_response_h"])) < timedelta(seconds=1)
        assert abs(resolution - timedelta(hours=account.sla_policy["resolution_h"])) < timedelta(seconds=1)
    managers = {accounts[c.account_id].account_manager_id for c in cases}
    assert managers == {ids["lena.fischer"], ids["marcus.reed"], ids["lucia.martin"]}
    assert managers | {ids["wang.lei"]} <= participants
    assert (advisory.status, advisory.affected_qty, len(advisory.account_ids)) == ("draft", 4000, 3)
    assert sorted(r.contact_id for r in recipients) == sorted(c.id for c in consented)
    assert consented, "the demo has consented contacts at the affected accounts"
    assert [len(await events(world_runtime, t)) for t in ("nc.created", "batch.held", "case.created")] == [1, 1, 3]
    assert len(await events(world_runtime, "advisory.drafted")) == 1
    assert await count(world_runtime, AuditEvent, AuditEvent.action == "rule.out_of_spec") == 1

    # The same inspection again (a resend) and a second failing one join what exists.
    await wang.push_ok(wang.mutation("inspection.submit", submitted))
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_018, [20.0, 21.0, 22.0, 23.0, 24.0])))
    assert await count(world_runtime, NonConformance) == 1
    assert await count(world_runtime, Case, Case.nc_id == nc.id) == 3
    assert await count(world_runtime, Advisory) == 1
    assert len(await events(world_runtime, "case.created")) == 3


async def test_an_inspection_within_limits_opens_nothing(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    cases_before = await count(world_runtime, Case)
    await wang.push_ok(wang.mutation("inspection.submit", inspection(ids, LOT_019, [49.0, 50.5, 51.2, 48.8, 50.1])))
    async with world_runtime.db.read_session() as session:
        batch = await session.get(Batch, ids[LOT_019])
        ncs = list(await session.scalars(select(NonConformance)))
    assert batch is not None
    assert batch.status != "on_hold"
    assert all(ids[LOT_019] not in nc.batch_ids for nc in ncs)
    assert await count(world_runtime, Case) == cases_before


async def test_a_failure_inside_the_rule_leaves_nothing_of_it(
    world_client: AsyncTestClient[Any],
    world_login: Login,
    world_runtime: Runtime,
    ids: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_trace(*_args: Any) -> Any:
        raise RuntimeError("the trace step fails")

    monkeypatch.setattr("loopline.loop.out_of_spec.forward_trace", broken_trace)
    wang = Device(world_client, await world_login("wang.lei"))
    tables: list[type[Any]] = [NonConformance, Case, Advisory, Thread, DomainEvent]
    before = {m: await count(world_runtime, m) for m in tables}
    submitted = inspection(ids, LOT_016, LATE_SHIFT_C1)
    response = await wang.push_ok(wang.mutation("inspection.submit", submitted))
    assert (response["results"][0]["status"], response["results"][0]["error"]["code"]) == ("rejected", "internal_error")
    assert {m: await count(world_runtime, m) for m in before} == before
    assert await count(world_runtime, Inspection, Inspection.id == submitted["id"]) == 0
    async with world_runtime.db.read_session() as session:
        batch = await session.get(Batch, ids[LOT_016])
    assert batch is not None
    assert batch.status != "on_hold"
