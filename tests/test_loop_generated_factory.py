"""The loop rules on generated factories: outcomes worked out here, from the generated data alone.

Each seed invents a factory (tests/factory_builder.py) and builds it through the admin API
in a world of its own. The people in it then act through the sync push, as on their
devices: an inspector's reading goes out of spec, a supervisor approves and sends the
advisory, each affected account acknowledges, customers complain and ask. What the
system should do is computed in this module from domain.md's rules and the generated
data — who received the lot, each tier's SLA, which rule applies and what it grants, in
whole cents — never by calling the production rule code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from loopline.core.settings import Settings
from loopline.customer.models import Advisory, AdvisoryRecipient, Case, Remedy
from loopline.quality.models import Batch, NonConformance, QualityCost
from tests.factory_builder import (
    NUMBER_WIDTHS,
    ComplaintSpec,
    Factory,
    GeneratedWorld,
    RuleSpec,
    empty_template,
    generate,
    generated_world,
)
from tests.sync_helpers import Device, new_id

# Chosen (from the first 3,000) so that between them they meet every outcome in EVERY_OUTCOME below.
SEEDS = [383, 788, 11, 154, 242, 777]
SEVERITY_RANK = {"minor": 0, "major": 1, "critical": 2}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with empty_template(tmp_path_factory.mktemp("generated-template")) as settings:
        yield settings


# --- the expected outcomes, from domain.md ---------------------------------------------


def number(factory: Factory, prefix: str, nth: int) -> str:
    """The `nth` number given after the counter's generated starting point."""
    return f"{prefix}-{factory.number_starts[prefix] + nth:0{NUMBER_WIDTHS[prefix]}d}"


def applicable_rule(
    factory: Factory, tier: str, severity: str | None, advisory: bool, defect_code: str | None
) -> RuleSpec | None:
    """The rule of highest priority whose every stated condition holds (an unknown severity meets no minimum)."""

    def holds(rule: RuleSpec) -> bool:
        return (
            rule.tier in (None, tier)
            and rule.requires_advisory == advisory
            and (rule.defect_codes is None or defect_code in rule.defect_codes)
            and (
                rule.min_severity is None
                or (severity is not None and SEVERITY_RANK[severity] >= SEVERITY_RANK[rule.min_severity])
            )
        )

    return min(filter(holds, factory.rules), key=lambda rule: rule.priority, default=None)


def euros(amount: Fraction) -> Decimal:
    """Whole cents, half a cent rounded up (commercial rounding)."""
    return Decimal(math.floor(amount * 100 + Fraction(1, 2))) / 100


@dataclass(frozen=True)
class Owed:
    kind: str
    qty: int
    amount: Decimal
    auto_approved: bool
    approver: str | None  # the rule's approver, who must decide what is over the cap


def owed(
    rule: RuleSpec | None, unit_cost: Decimal, *, affected: int, failed: int, granted: frozenset[str]
) -> list[Owed]:
    """What the rule grants one case: scenario R1-R4 generalised to the rule's terms and cap."""
    if rule is None:
        return []
    unit = Fraction(unit_cost)
    parts: list[tuple[str, int, Fraction]] = []
    if rule.remedy == "investigate":
        parts.append(("investigate", 0, Fraction(0)))
    # Every affected unit replaced, and the credit, are owed once per account and advisory.
    if rule.remedy == "replace_all" and "replace_all" not in granted:
        freight = Fraction(Decimal(rule.terms.get("freight_per_unit", "0")))
        parts.append(("replace_all", affected, (unit + freight) * affected))
    if failed and (rule.remedy == "replace_failed" or (rule.remedy == "credit_pct" and rule.terms["replace_failed"])):
        parts.append(("replace_failed", failed, unit * failed))
    # The credit covers the affected units not replaced (CS-1003, not CS-1004).
    if rule.remedy == "credit_pct" and "credit_pct" not in granted:
        remaining = affected - failed
        parts.append(("credit_pct", remaining, unit * remaining * Fraction(str(rule.terms["credit_pct"])) / 100))
    priced = []
    for kind, qty, amount in parts:
        # At or under the cap it is approved on the spot (R1: "auto <= EUR 60k"); an investigation never is.
        auto = kind != "investigate" and rule.cap is not None and euros(amount) <= rule.cap
        priced.append(Owed(kind, qty, euros(amount), auto, None if auto else rule.approver))
    return priced


def owed_on_complaint(
    factory: Factory, complaint: ComplaintSpec, *, linked: bool, granted: frozenset[str]
) -> list[Owed]:
    account = factory.account(complaint.account)
    code = factory.categories[complaint.category]
    # A complaint that links takes the nonconformance's severity; one that does not has no known severity.
    rule = applicable_rule(factory, account.tier, factory.fail_severity if linked else None, linked, code)
    return owed(
        rule,
        factory.unit_cost(complaint.lot_no),
        affected=max(complaint.qty_affected, complaint.qty_failed),
        failed=complaint.qty_failed,
        granted=granted,
    )


@dataclass(frozen=True)
class Grants:
    acknowledged: dict[str, list[Owed]]  # by affected account: its inspection-deviation case
    complaint: list[Owed]  # the complaint about the affected lot
    unlinked: list[Owed]  # the complaint about a lot no nonconformance covers

    @property
    def on_the_nc(self) -> list[Owed]:
        return [*(p for parts in self.acknowledged.values() for p in parts), *self.complaint]


def expected_grants(factory: Factory) -> Grants:
    acknowledged = {
        account: owed(
            applicable_rule(factory, factory.account(account).tier, factory.fail_severity, True, factory.fail_code),
            factory.unit_cost(factory.affected_lot),
            affected=factory.received(account, factory.affected_lot),
            failed=0,
            granted=frozenset(),
        )
        for account in factory.affected_accounts
    }
    complaint = factory.affected_complaint
    granted = frozenset(p.kind for p in acknowledged[complaint.account])
    return Grants(
        acknowledged,
        owed_on_complaint(factory, complaint, linked=True, granted=granted),
        owed_on_complaint(factory, factory.unaffected_complaint, linked=False, granted=frozenset()),
    )


# --- reading what the system did ---------------------------------------------------------


async def rows(world: GeneratedWorld, model: type[Any], *where: Any) -> list[Any]:
    async with world.runtime.db.read_session() as session:
        return list(await session.scalars(select(model).where(*where)))


async def remedies_of(world: GeneratedWorld, case_id: str) -> list[Owed]:
    """The case's remedies in the terms of `Owed`, approver as a username."""
    usernames = {user_id: name for name, user_id in world.ids.items()}
    return by_kind(
        [
            Owed(
                r.kind,
                r.qty,
                r.amount,
                r.status == "approved",
                usernames.get(r.details.get("approver_id") or ""),
            )
            for r in await rows(world, Remedy, Remedy.case_id == case_id)
        ]
    )


def by_kind(parts: list[Owed]) -> list[Owed]:
    return sorted(parts, key=lambda o: o.kind)


def sla_of(case: Case) -> tuple[timedelta, timedelta]:
    """How far the case's due times lie from its opening, to the second (the transaction takes a moment)."""
    assert case.created_at is not None
    assert case.sla_first_response_due is not None
    assert case.sla_resolution_due is not None
    first = case.sla_first_response_due - case.created_at
    resolution = case.sla_resolution_due - case.created_at
    return (
        timedelta(seconds=round(first.total_seconds())),
        timedelta(seconds=round(resolution.total_seconds())),
    )


def policy_of(factory: Factory, account: str) -> tuple[timedelta, timedelta]:
    sla = factory.sla[factory.account(account).tier]
    return timedelta(hours=sla.first_response_h), timedelta(hours=sla.resolution_h)


async def push(device: Device, name: str, args: dict[str, Any]) -> None:
    response = await device.push_ok(device.mutation(name, args))
    assert [r["status"] for r in response["results"]] == ["applied"], response


async def open_case(world: GeneratedWorld, username: str, account: str, **args: Any) -> Case:
    device = Device(world.client, await world.headers(username))
    case_id = new_id()
    await push(device, "case.open", {"id": case_id, "account_id": world.ids[account], "title": "generated", **args})
    [case] = await rows(world, Case, Case.id == case_id)
    return case


async def file_complaint(world: GeneratedWorld, complaint: ComplaintSpec) -> Case:
    """The complaint, opened by its account's manager."""
    return await open_case(
        world,
        world.factory.account(complaint.account).manager,
        complaint.account,
        lot_no=complaint.lot_no,
        category_code=complaint.category,
        qty_affected=complaint.qty_affected,
        qty_failed=complaint.qty_failed,
    )


def inspection(world: GeneratedWorld, lot_no: str, readings: list[float]) -> dict[str, Any]:
    return {
        "id": new_id(),
        "batch_id": world.ids[lot_no],
        "plan_id": world.ids["plan"],
        "kind": "audit",
        "captured_at": datetime.now(UTC).isoformat(),
        "measurements": [{"characteristic": "X1", "value": value} for value in readings],
    }


# --- the loop, step by step --------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
async def test_the_loop_rules_on_a_generated_factory_give_the_outcomes_worked_out_independently(
    template: Settings, tmp_path: Path, seed: int
) -> None:
    factory = generate(seed)
    grants = expected_grants(factory)
    async with generated_world(template, tmp_path / "world", factory) as world:
        deviation_cases = await out_of_spec_opens_cases_for_exactly_the_accounts_that_received_the_lot(world)
        await the_sent_advisory_is_every_cases_first_response(world)
        await each_acknowledgement_grants_the_accounts_rule(world, deviation_cases, grants)
        linked = await complaints_link_only_to_what_the_account_received_and_the_nc_covers(world, grants)
        await inquiries_are_answered_from_the_trace(world)
        await waiting_remedies_go_to_the_named_approver_and_the_costs_follow(world, linked, grants)
        await numbering_continues_per_prefix(world)


async def out_of_spec_opens_cases_for_exactly_the_accounts_that_received_the_lot(
    world: GeneratedWorld,
) -> dict[str, Case]:
    factory, ids = world.factory, world.ids
    inspector = Device(world.client, await world.headers(factory.inspector))
    first = inspector.mutation("inspection.submit", inspection(world, factory.affected_lot, factory.failing_samples[0]))
    assert [r["status"] for r in (await inspector.push_ok(first))["results"]] == ["applied"]

    [nc] = await rows(world, NonConformance)
    assert (nc.number, nc.source, nc.defect_code, nc.severity, nc.batch_ids) == (
        number(factory, "NC", 1),
        "inspection",
        factory.fail_code,
        factory.fail_severity,
        [ids[factory.affected_lot]],
    )
    assert [b.status for b in await rows(world, Batch, Batch.id == ids[factory.affected_lot])] == ["on_hold"]
    code_of = {ids[a.code]: a.code for a in factory.accounts}
    cases = {code_of[c.account_id]: c for c in await rows(world, Case, Case.nc_id == nc.id)}
    assert sorted(cases) == sorted(factory.affected_accounts)
    for account, case in cases.items():
        assert (case.origin, case.status, case.severity, case.defect_code, case.batch_id, case.assignee_id) == (
            "inspection_deviation",
            "new",
            factory.fail_severity,
            factory.fail_code,
            ids[factory.affected_lot],
            ids[factory.account(account).manager],
        )
        assert sla_of(case) == policy_of(factory, account)
    [advisory] = await rows(world, Advisory)
    assert (advisory.number, advisory.status, advisory.severity, advisory.affected_qty) == (
        number(factory, "ADV", 1),
        "draft",
        factory.fail_severity,
        sum(factory.received(a, factory.affected_lot) for a in factory.affected_accounts),
    )
    assert sorted(advisory.account_ids) == sorted(ids[a] for a in factory.affected_accounts)
    recipients = await rows(world, AdvisoryRecipient, AdvisoryRecipient.advisory_id == advisory.id)
    consented = [
        ids[f"{a}/{contact.name}"]
        for a in factory.affected_accounts
        for contact in factory.account(a).contacts
        if contact.consented
    ]
    assert sorted(r.contact_id for r in recipients) == sorted(consented)

    # The same push again, the same inspection in a new mutation, and another failing one join what exists.
    assert [r["status"] for r in (await inspector.push_ok(first))["results"]] == ["duplicate"]
    await push(inspector, "inspection.submit", first["args"])
    await push(inspector, "inspection.submit", inspection(world, factory.affected_lot, factory.failing_samples[1]))
    assert len(await rows(world, NonConformance)) == 1
    assert len(await rows(world, Case)) == len(cases)
    assert len(await rows(world, Advisory)) == 1
    return cases


async def the_sent_advisory_is_every_cases_first_response(world: GeneratedWorld) -> None:
    factory, ids = world.factory, world.ids
    supervisor = Device(world.client, await world.headers(factory.supervisors[-1]))
    [advisory] = await rows(world, Advisory)
    await push(supervisor, "advisory.approve", {"id": advisory.id})
    await push(supervisor, "advisory.send", {"id": advisory.id})
    [sent] = await rows(world, Advisory)
    assert (sent.status, sent.approved_by) == ("sent", ids[factory.supervisors[-1]])
    assert [b.status for b in await rows(world, Batch, Batch.id == ids[factory.affected_lot])] == ["under_advisory"]
    for case in await rows(world, Case, Case.nc_id == advisory.nc_id):
        assert case.advisory_id == advisory.id
        assert case.first_response_at is not None
        assert case.sla_first_response_due is not None
        assert case.first_response_at <= case.sla_first_response_due


async def each_acknowledgement_grants_the_accounts_rule(
    world: GeneratedWorld, cases: dict[str, Case], grants: Grants
) -> None:
    """Every consented contact of every affected account acknowledges; the account's case is granted once."""
    factory, ids = world.factory, world.ids
    [advisory] = await rows(world, Advisory)
    recipients = await rows(world, AdvisoryRecipient, AdvisoryRecipient.advisory_id == advisory.id)
    for account in factory.affected_accounts:
        answerer = Device(world.client, await world.headers(factory.account(account).answerer))
        for recipient in (r for r in recipients if r.account_id == ids[account]):
            await push(answerer, "advisory.respond", {"recipient_id": recipient.id, "response": "acknowledge"})
    granted = {account: await remedies_of(world, case.id) for account, case in cases.items()}
    assert granted == {account: by_kind(parts) for account, parts in grants.acknowledged.items()}


async def complaints_link_only_to_what_the_account_received_and_the_nc_covers(
    world: GeneratedWorld, grants: Grants
) -> Case:
    factory, ids = world.factory, world.ids
    [advisory] = await rows(world, Advisory)
    cases_before = len(await rows(world, Case))

    complaint = factory.affected_complaint
    linked = await file_complaint(world, complaint)
    assert (linked.origin, linked.batch_id, linked.nc_id, linked.advisory_id, linked.defect_code, linked.flags) == (
        "customer",
        ids[complaint.lot_no],
        advisory.nc_id,
        advisory.id,
        factory.fail_code,
        [],
    )
    assert sla_of(linked) == policy_of(factory, complaint.account)
    assert await remedies_of(world, linked.id) == by_kind(grants.complaint)

    # A lot the account received, but no open nonconformance of the category's defect code covers it.
    complaint = factory.unaffected_complaint
    unlinked = await file_complaint(world, complaint)
    assert (unlinked.batch_id, unlinked.nc_id, unlinked.advisory_id, unlinked.defect_code, unlinked.flags) == (
        ids[complaint.lot_no],
        None,
        None,
        factory.categories[complaint.category],
        [],
    )
    assert await remedies_of(world, unlinked.id) == by_kind(grants.unlinked)

    # The affected lot, named by an account that never received it: flagged, not linked.
    complaint = factory.stray_complaint
    stray = await file_complaint(world, complaint)
    assert (stray.flags, stray.batch_id, stray.nc_id, stray.advisory_id) == (["lot_not_received"], None, None, None)
    assert await remedies_of(world, stray.id) == []
    assert len(await rows(world, Case)) == cases_before + 3
    return linked


async def inquiries_are_answered_from_the_trace(world: GeneratedWorld) -> None:
    factory, ids = world.factory, world.ids
    [advisory] = await rows(world, Advisory)
    account = factory.unaffected_inquirer
    answered = await open_case(world, factory.account(account).manager, account, kind="inquiry", title="Affected?")
    assert (answered.status, answered.auto_handled, answered.advisory_id, answered.nc_id) == (
        "resolved",
        True,
        None,
        None,
    )
    assert answered.first_response_at == answered.resolved_at
    assert sla_of(answered) == policy_of(factory, account)
    for lot in factory.lots_received(account):
        assert lot in answered.resolution
    assert factory.affected_lot not in answered.resolution

    account = factory.affected_inquirer
    affected = await open_case(world, factory.account(account).manager, account, kind="inquiry", title="Affected?")
    assert (affected.status, affected.auto_handled, affected.advisory_id, affected.nc_id) == (
        "new",
        False,
        advisory.id,
        advisory.nc_id,
    )
    assert ids[account] == affected.account_id


async def waiting_remedies_go_to_the_named_approver_and_the_costs_follow(
    world: GeneratedWorld, linked: Case, grants: Grants
) -> None:
    """The approvers decide what waits; the complaint's remedies carried out resolve it, by the rules alone or not."""
    factory, ids = world.factory, world.ids
    for remedy in await rows(world, Remedy, Remedy.status == "proposed", Remedy.kind != "investigate"):
        approver = next(name for name, user_id in ids.items() if user_id == remedy.details["approver_id"])
        await push(
            Device(world.client, await world.headers(approver)),
            "remedy.decide",
            {"id": remedy.id, "decision": "approve"},
        )
    complaint = factory.affected_complaint
    manager = Device(world.client, await world.headers(factory.account(complaint.account).manager))
    for remedy in await rows(world, Remedy, Remedy.case_id == linked.id):
        await push(manager, "remedy.execute", {"id": remedy.id})
    [case] = await rows(world, Case, Case.id == linked.id)
    if grants.complaint:
        assert (case.status, case.auto_handled) == ("resolved", all(p.auto_approved for p in grants.complaint))
    else:
        assert (case.status, case.auto_handled) == ("new", False)

    # Every remedy on the nonconformance's cases, once approved, is its external-failure cost.
    [nc] = await rows(world, NonConformance)
    expected = sorted(p.amount for p in grants.on_the_nc if p.amount)
    costs = await rows(world, QualityCost, QualityCost.nc_id == nc.id)
    assert {c.category for c in costs} <= {"external_failure"}
    assert sorted(c.amount for c in costs) == expected


async def numbering_continues_per_prefix(world: GeneratedWorld) -> None:
    """A second nonconformance, on a lot nobody received, takes the next NC number and opens nothing else."""
    factory, ids = world.factory, world.ids
    inspector = Device(world.client, await world.headers(factory.inspector))
    await push(inspector, "inspection.submit", inspection(world, factory.spare_lot, factory.spare_sample))
    ncs = sorted(await rows(world, NonConformance), key=lambda nc: nc.number)
    assert [nc.number for nc in ncs] == [number(factory, "NC", 1), number(factory, "NC", 2)]
    assert ncs[1].batch_ids == [ids[factory.spare_lot]]
    assert [b.status for b in await rows(world, Batch, Batch.id == ids[factory.spare_lot])] == ["on_hold"]
    assert await rows(world, Case, Case.nc_id == ncs[1].id) == []
    assert [a.number for a in await rows(world, Advisory)] == [number(factory, "ADV", 1)]
    # Cases and remedies numbered on, each prefix from its own counter with no gap.
    cases = await rows(world, Case)
    assert sorted(c.number for c in cases) == [number(factory, "CS", n) for n in range(1, len(cases) + 1)]
    remedies = await rows(world, Remedy)
    assert sorted(r.number for r in remedies) == [number(factory, "RMA", n) for n in range(1, len(remedies) + 1)]


# --- what the seeds cover -------------------------------------------------------------------

EVERY_OUTCOME = {
    *(
        f"acknowledged:{tier}:{kind}"
        for tier in ("standard", "key", "vip")
        for kind in ("nothing", "replace_all:auto", "replace_all:waits", "credit_pct:auto", "credit_pct:waits")
    ),
    # A complaint never gets all units replaced: its account's acknowledgement did that already.
    *(f"complaint:{kind}" for kind in ("nothing", "replace_failed:auto", "replace_failed:waits")),
    *(f"unlinked:{kind}" for kind in ("nothing", "investigate:waits", "replace_failed:auto", "replace_failed:waits")),
    "limits:lsl",
    "limits:usl",
    "limits:lsl+usl",
    "a credit on half a cent",
    "air freight",
    "answered on the portal",
    "several plants",
    "inquirer without lots",
}


def test_the_seeds_between_them_meet_every_kind_of_outcome() -> None:
    """A change to the generator that loses a kind of outcome fails here, not silently."""
    met = set[str]().union(*(outcomes_covered(generate(seed)) for seed in SEEDS))
    assert met == EVERY_OUTCOME


def outcomes_covered(factory: Factory) -> set[str]:
    """The kinds of outcome a factory leads to, by this module's own reckoning."""
    grants = expected_grants(factory)

    def kinds(name: str, parts: list[Owed]) -> set[str]:
        return {f"{name}:{p.kind}:{'auto' if p.auto_approved else 'waits'}" for p in parts} or {f"{name}:nothing"}

    limits = factory.limits
    covered = {"limits:" + "+".join(side for side, at in [("lsl", limits.lsl), ("usl", limits.usl)] if at is not None)}
    for account, parts in grants.acknowledged.items():
        covered |= kinds(f"acknowledged:{factory.account(account).tier}", parts)
        covered |= {"answered on the portal"} if factory.account(account).portal_user else set()
    covered |= kinds("complaint", grants.complaint) | kinds("unlinked", grants.unlinked)
    covered |= {"a credit on half a cent"} if _credit_on_a_half_cent(factory) else set()
    covered |= {"air freight"} if any(r.terms.get("freight_per_unit") for r in factory.rules) else set()
    covered |= {"several plants"} if len(factory.plants) > 1 else set()
    covered |= {"inquirer without lots"} if not factory.lots_received(factory.unaffected_inquirer) else set()
    return covered


def _credit_on_a_half_cent(factory: Factory) -> bool:
    """Whether some account's credit ends in half a cent after an even cent, where rounding to even would differ."""
    for account in factory.affected_accounts:
        rule = applicable_rule(factory, factory.account(account).tier, factory.fail_severity, True, factory.fail_code)
        if rule is not None and rule.remedy == "credit_pct":
            in_cents = (
                Fraction(factory.unit_cost(factory.affected_lot))
                * factory.received(account, factory.affected_lot)
                * Fraction(str(rule.terms["credit_pct"]))
            )
            if in_cents.denominator == 2 and math.floor(in_cents) % 2 == 0:
                return True
    return False
