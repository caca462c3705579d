"""The whole demo scenario (shared/demo/scenario.md) as `scripts/serve` loads it: every outcome here
came out of the loop rules while `demo/timeline.py` played what the people in it do."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlmodel import SQLModel, col, select

from loopline.core.audit import AuditEvent, verify_chain
from loopline.core.changelog import ChangeLog
from loopline.core.db import Database
from loopline.core.entity import Entity
from loopline.core.events import DomainEvent
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.customer.models import Account, Advisory, AdvisoryRecipient, Case, Contact, Remedy, Shipment
from loopline.demo.loader import CONTACTS, load_demo
from loopline.demo.timeline import CAPTURED, ERASURE_REASON, SYNCED, day
from loopline.loop.trace import case_context
from loopline.media.models import Attachment, Blob
from loopline.people.models import User
from loopline.quality.models import Batch, Capa, Inspection, NonConformance, QualityCost, QualityWatch
from loopline.threads.models import Message, SubjectType, Thread
from tests.personal_data import copies_of
from tests.support import demo_world

M = TypeVar("M", bound=SQLModel)
LOT_017, LOT_018, LOT_020 = "CN-SZ-L2-2406-017", "CN-SZ-L2-2406-018", "CN-SZ-L1-2406-020"


@pytest.fixture(scope="module")
def scenario_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with demo_world(tmp_path_factory.mktemp("scenario"), loader=load_demo) as settings:
        yield settings


@pytest.fixture(scope="module")
async def runtime(scenario_settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings=scenario_settings, db=Database.open(scenario_settings))
    yield rt
    await rt.db.close()


async def rows(runtime: Runtime, model: type[M], *where: Any) -> list[M]:
    async with runtime.db.read_session() as session:
        return list(await session.scalars(select(model).where(*where)))


async def by_code(runtime: Runtime) -> dict[str, str]:
    """Account codes and usernames to ids, and ids back to account codes."""
    accounts = {a.code: a.id for a in await rows(runtime, Account)}
    users = {u.username: u.id for u in await rows(runtime, User)}
    return accounts | users | {account_id: code for code, account_id in accounts.items()}


async def cases(runtime: Runtime) -> dict[str, Case]:
    return {case.number: case for case in await rows(runtime, Case)}


def hours(case: Case) -> float:
    assert case.resolved_at is not None
    assert case.created_at is not None
    return (case.resolved_at - case.created_at) / timedelta(hours=1)


async def test_step_1_the_drift_on_l2_opens_a_quality_watch_and_no_customer_action(runtime: Runtime) -> None:
    [watch] = await rows(runtime, QualityWatch)
    [lot_017] = await rows(runtime, Batch, Batch.lot_no == LOT_017)
    ids = await by_code(runtime)
    assert (watch.number, watch.line, watch.characteristic_code, watch.rules) == ("QW-0001", "L2", "C1", ["NELSON3"])
    assert (watch.batch_id, watch.assignee_id, watch.created_at) == (lot_017.id, ids["qa.manager"], day(-9, 10))
    before_d0 = [event.type for event in await rows(runtime, DomainEvent, col(DomainEvent.occurred_at) < CAPTURED)]
    assert "quality_watch.opened" in before_d0
    assert not [kind for kind in before_d0 if kind.startswith(("nc.", "case.", "advisory."))]


async def test_steps_2_3_the_offline_inspection_opens_nc_0142_and_traces_lot_018_to_three_accounts(
    runtime: Runtime,
) -> None:
    [audit] = await rows(runtime, Inspection, Inspection.number == "INS-88213")
    # Captured in the dead zone at 08:10, received at 08:42: a sync lag of 32 minutes.
    assert (audit.captured_at, audit.received_at, audit.result) == (CAPTURED, SYNCED, "fail")
    # Its two photos went through the image pipeline, which read their capture time from EXIF.
    photos = await rows(runtime, Attachment, Attachment.entity_id == audit.id)
    blobs = await rows(runtime, Blob, col(Blob.sha256).in_([p.sha256 for p in photos]))
    assert [p.state for p in photos] == ["available", "available"]
    assert sorted((b.state, b.format, b.captured_at, b.device) for b in blobs) == [
        ("complete", "JPEG", CAPTURED + timedelta(minutes=view), "Loopline Demo tablet") for view in (1, 2)
    ]
    [nc] = await rows(runtime, NonConformance)
    [lot] = await rows(runtime, Batch, Batch.lot_no == LOT_018)
    assert (nc.number, nc.defect_code, nc.severity, nc.source_ref, nc.batch_ids) == (
        "NC-0142",
        "CC-THIN",
        "major",
        "INS-88213",
        [lot.id],
    )
    ids = await by_code(runtime)
    deviation = {number: case for number, case in (await cases(runtime)).items() if case.nc_id == nc.id}
    # A-001 also holds lot CZ-BR-L1-2406-044 (SH-5529), which is not involved: one case, for lot 018.
    assert {number: ids[case.account_id] for number, case in deviation.items() if case.origin != "customer"} == {
        "CS-1001": "A-001",
        "CS-1002": "A-002",
        "CS-1003": "A-003",
    }
    assert all(deviation[n].created_at == SYNCED for n in ("CS-1001", "CS-1002", "CS-1003"))
    [advisory] = await rows(runtime, Advisory)
    recipients = await rows(runtime, AdvisoryRecipient)
    assert (advisory.number, advisory.severity, advisory.affected_qty) == ("ADV-031", "major", 4000)
    assert sorted(ids[a] for a in advisory.account_ids) == ["A-001", "A-002", "A-003"]
    # Five consented contacts; the workshop (no consent to service notices) is not one of them.
    assert len(recipients) == 5
    assert (await cases(runtime))["CS-1004"].contact_id not in {r.contact_id for r in recipients}
    at_sync = [e.type for e in await rows(runtime, DomainEvent, DomainEvent.occurred_at == SYNCED)]
    assert (at_sync.count("nc.created"), at_sync.count("case.created"), at_sync.count("advisory.drafted")) == (1, 3, 1)
    unaffected = (await rows(runtime, Shipment, Shipment.number == "SH-5529"))[0]
    assert unaffected.account_id == ids["A-001"]


async def test_step_4_the_advisory_answers_every_case_inside_its_sla_and_the_tiers_get_their_remedies(
    runtime: Runtime,
) -> None:
    all_cases = await cases(runtime)
    for number in ("CS-1001", "CS-1002", "CS-1003"):
        case = all_cases[number]
        assert case.first_response_at == day(0, 9, 32), number
        assert case.sla_first_response_due is not None
        assert case.first_response_at <= case.sla_first_response_due
    remedies = {(r.number, all_cases_by_id(all_cases)[r.case_id]): r for r in await rows(runtime, Remedy)}
    assert {key: (r.kind, r.qty, r.amount, r.status) for key, r in remedies.items()} == {
        # R1: 2,000 x 18 + air freight 2,000 x 2.40, under the 60k cap.
        ("RMA-7781", "CS-1001"): ("replace_all", 2000, Decimal("40800.00"), "executed"),
        # R2: 1,200 x 18, standard freight.
        ("RMA-7782", "CS-1002"): ("replace_all", 1200, Decimal("21600.00"), "executed"),
        # R3: 10 % credit on 800 x 18.
        ("RMA-7783", "CS-1003"): ("credit_pct", 800, Decimal("1440.00"), "executed"),
        # R3 again for the workshop's 3 failed units; the credit went with CS-1003.
        ("RMA-7784", "CS-1004"): ("replace_failed", 3, Decimal("54.00"), "executed"),
        # R4: no advisory, a warranty investigation first.
        ("RMA-7785", "CS-1005"): ("investigate", 0, Decimal("0.00"), "proposed"),
    }
    ids = await by_code(runtime)
    answered = {ids[r.account_id]: r.state for r in await rows(runtime, AdvisoryRecipient) if r.responded_at}
    assert answered == {"A-001": "acknowledged", "A-002": "acknowledged", "A-003": "acknowledged"}


def all_cases_by_id(all_cases: dict[str, Case]) -> dict[str, str]:
    return {case.id: number for number, case in all_cases.items()}


async def test_inside_cs_1001_the_service_rep_sees_the_batch_inspection_its_photos_and_the_nc(
    runtime: Runtime,
) -> None:
    vip_case = (await cases(runtime))["CS-1001"]
    async with runtime.db.read_session() as session:
        context = await case_context(session, vip_case)
    assert context.batch is not None
    assert context.batch.lot_no == LOT_018
    assert "INS-88213" in {i.inspection.number for i in context.inspections}
    assert [nc.number for nc in context.nonconformances] == ["NC-0142"]
    assert len(context.attachments) == 2


async def test_step_5_service_and_the_shop_floor_talk_in_the_nc_thread(runtime: Runtime) -> None:
    [nc] = await rows(runtime, NonConformance)
    [thread] = await rows(
        runtime, Thread, Thread.subject_type == SubjectType.NONCONFORMANCE, Thread.subject_id == nc.id
    )
    ids = await by_code(runtime)
    posted = sorted(await rows(runtime, Message, Message.thread_id == thread.id), key=lambda m: m.thread_seq)
    assert [m.author_id for m in posted] == [ids["lucia.martin"], ids["wang.lei"], ids["qa.manager"]]
    assert "33, 35, 37" in posted[1].body


async def test_steps_6_to_9_resolution_times_slas_and_auto_handling_come_out_as_the_scenario_says(
    runtime: Runtime,
) -> None:
    all_cases = await cases(runtime)
    assert sorted(all_cases) == [f"CS-{n}" for n in range(1001, 1007)]
    assert all(case.status == "resolved" for case in all_cases.values())
    elapsed = {number: round(hours(case)) for number, case in all_cases.items()}
    assert elapsed == {"CS-1001": 22, "CS-1002": 41, "CS-1003": 62, "CS-1004": 5, "CS-1005": 96, "CS-1006": 0}
    ids = await by_code(runtime)
    accounts = {a.id: a for a in await rows(runtime, Account)}
    by_tier: defaultdict[str, list[float]] = defaultdict(list)
    for case in all_cases.values():
        by_tier[accounts[case.account_id].tier].append(round(hours(case)))
    assert {tier: statistics.median(values) for tier, values in by_tier.items()} == {
        "vip": 22,
        "key": 41,
        "standard": 33.5,
    }
    breached = {number for number, case in all_cases.items() if any(f.endswith("_breached") for f in case.flags)}
    # One red SLA: Shinsei was answered within the hour, and resolved after 96 h of the 72 allowed.
    assert breached == {"CS-1005"}
    assert [f for f in all_cases["CS-1005"].flags if f.endswith("_breached")] == ["resolution_breached"]
    assert all_cases["CS-1005"].first_response_at == day(12, 3)
    assert {number for number, case in all_cases.items() if case.auto_handled} == {"CS-1004", "CS-1006"}

    [nc] = await rows(runtime, NonConformance)
    [advisory] = await rows(runtime, Advisory)
    workshop, latches, inquiry = all_cases["CS-1004"], all_cases["CS-1005"], all_cases["CS-1006"]
    assert (workshop.account_id, workshop.nc_id, workshop.advisory_id, workshop.defect_code) == (
        ids["A-003"],
        nc.id,
        advisory.id,
        "CC-THIN",
    )
    # Same line and month, another defect and a lot under no advisory: not linked.
    assert (latches.account_id, latches.nc_id, latches.advisory_id, latches.defect_code) == (
        ids["A-004"],
        None,
        None,
        "MECH-LATCH",
    )
    assert (inquiry.account_id, inquiry.origin, inquiry.advisory_id) == (ids["A-005"], "inquiry", None)
    assert LOT_017 in inquiry.resolution
    assert LOT_020 in inquiry.resolution


async def test_steps_10_11_copq_is_69894_and_nc_0142_closed_only_after_its_cases_and_capa_0077(
    runtime: Runtime,
) -> None:
    [nc] = await rows(runtime, NonConformance)
    by_category: defaultdict[str, Decimal] = defaultdict(Decimal)
    for entry in await rows(runtime, QualityCost, QualityCost.nc_id == nc.id):
        by_category[entry.category] += entry.amount
    assert dict(by_category) == {
        "external_failure": Decimal("63894.00"),  # 57,600 + 4,800 + 1,440 + 54
        "internal_failure": Decimal("4200.00"),
        "appraisal": Decimal("1800.00"),
    }
    assert sum(by_category.values()) == Decimal("69894.00")

    [capa] = await rows(runtime, Capa)
    assert (capa.number, capa.status, capa.nc_ids, capa.effectiveness["result"]) == (
        "CAPA-0077",
        "closed",
        [nc.id],
        "passed",
    )
    closed = await rows(runtime, DomainEvent, DomainEvent.subject_id == nc.id, DomainEvent.type == "nc.closed")
    resolved = [e.occurred_at for e in await rows(runtime, DomainEvent, DomainEvent.type == "case.resolved")]
    verified = await rows(runtime, DomainEvent, DomainEvent.type == "capa.effectiveness_passed")
    assert nc.status == "closed"
    assert [e.occurred_at for e in closed] == [day(45, 11)]
    assert max(resolved) < verified[0].occurred_at < closed[0].occurred_at
    [lot] = await rows(runtime, Batch, Batch.lot_no == LOT_018)
    assert lot.status == "under_advisory"


async def test_the_audit_chain_of_the_whole_scenario_verifies(runtime: Runtime) -> None:
    async with runtime.db.read_session() as session:
        report = await verify_chain(session)
    assert report.ok, report
    assert report.events > 100


async def test_step_12_the_workshop_is_erased_while_cs_1004_nc_0142_and_the_chain_stay_intact(runtime: Runtime) -> None:
    workshop_case = (await cases(runtime))["CS-1004"]
    [workshop] = await rows(runtime, Contact, Contact.id == workshop_case.contact_id)
    assert workshop.pseudonymized_at == day(40, 10)
    assert (workshop.name, workshop.email, workshop.phone) == (f"Erased contact {workshop.id[-8:]}", None, None)
    assert workshop.consents["service_notices"] is False
    [nc] = await rows(runtime, NonConformance)
    [advisory] = await rows(runtime, Advisory)
    ids = await by_code(runtime)
    # The retained quality records still point at the contact, unchanged by the erasure.
    assert (workshop_case.account_id, workshop_case.nc_id, workshop_case.advisory_id) == (
        ids["A-003"],
        nc.id,
        advisory.id,
    )
    assert (workshop_case.status, workshop_case.auto_handled) == ("resolved", True)
    assert (nc.number, nc.status) == ("NC-0142", "closed")
    [erased] = await rows(runtime, AuditEvent, AuditEvent.action == "contact.erased")
    assert (erased.entity_id, erased.actor, erased.at) == (workshop.id, ids["qa.manager"], day(40, 10))
    assert erased.diff is not None
    assert erased.diff["reason"] == ERASURE_REASON
    async with runtime.db.read_session() as session:
        report = await verify_chain(session)
    assert report.ok, report

    # Its name, e-mail and phone survive nowhere: not in a table, the change log or the audit chain.
    [spec] = [c for c in CONTACTS if c.name == "Taller Hermanos Gil"]
    assert await copies_of(runtime, [spec.name, spec.email, spec.phone]) == []
    # The search does find a contact nobody erased, in its row and in the change log.
    assert {table for table, _, _ in await copies_of(runtime, ["carmen.ortega@iberia-motorparts.example"])} == {
        "contact",
        "change_log",
    }


def entity_models() -> list[type[Entity]]:
    """Every table that keeps `created_at` and `updated_at`."""
    found: list[type[Entity]] = []
    pending: list[type[Entity]] = [Entity]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if getattr(model, "__table__", None) is not None:
            found.append(model)
    return found


async def test_every_row_is_stamped_on_the_scenario_clock(runtime: Runtime) -> None:
    # The master data exists when the timeline starts; nothing is created or changed on the day
    # the demo happens to be loaded, and nothing is changed before it was created.
    start, end = day(-14), day(45, 23, 59)
    outside: list[tuple[str, str, Any, Any]] = []
    for model in entity_models():
        for row in await rows(runtime, model):
            assert row.created_at is not None
            assert row.updated_at is not None
            if not start <= row.created_at <= row.updated_at <= end:
                outside.append((model.__entity__, row.id, row.created_at, row.updated_at))
    assert outside == []
    async with runtime.db.read_session() as session:
        stamps = [*await session.scalars(select(AuditEvent.at)), *await session.scalars(select(ChangeLog.at))]
    assert [at for at in stamps if not start <= at <= end] == []
