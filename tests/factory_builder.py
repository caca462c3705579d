"""A second factory for the loop-rule tests: generated from a seed, built through the admin API alone.

`generate(seed)` invents everything the demo fixes by hand — plants and lines, product
models and their unit costs, a plan's limits, defect codes and their complaint
categories, accounts with tiers, SLA policies, account managers and contacts, batches,
shipments, entitlement rules, where the number counters stand — and what the people in
it will do (which readings fail, who complains about what). `generated_world` builds it
in an empty database of its own, as an administrator would, through `/api/v1/admin/...`.
"""

from __future__ import annotations

import asyncio
import math
import random
import string
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from loopline.app import create_app
from loopline.core.access import Role
from loopline.core.db import Database
from loopline.core.numbering import continue_numbering
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.people.service import create_user
from tests.conftest import Headers, sign_in
from tests.support import GENEROUS_LIMITS, FreshDatabase
from tests.sync_world import cloned_database

PASSWORD = "generated-factory"
TIERS = ("standard", "key", "vip")
SEVERITIES = ("minor", "major", "critical")
REGIONS = ("EMEA", "AMER", "APAC", "LATAM", "NORDIC")
TIMEZONES = ("Europe/Berlin", "Asia/Shanghai", "America/Chicago", "Asia/Kolkata", "America/Sao_Paulo")
# Widths as people know them: NC-0142, CS-1001, ADV-031, RMA-7781.
NUMBER_WIDTHS = {"NC": 4, "CS": 4, "ADV": 3, "RMA": 4}


@dataclass(frozen=True)
class PlantSpec:
    code: str
    tz: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    sku: str
    unit_cost: Decimal


@dataclass(frozen=True)
class Limits:
    nominal: float
    lsl: float | None
    usl: float | None
    sample_n: int


@dataclass(frozen=True)
class Sla:
    first_response_h: int
    resolution_h: int


@dataclass(frozen=True)
class ContactSpec:
    name: str
    consented: bool


@dataclass(frozen=True)
class AccountSpec:
    code: str
    tier: str
    region: str
    manager: str
    contacts: tuple[ContactSpec, ...]
    # A customer login of the account; when there is one, the customer answers advisories itself.
    portal_user: str | None

    @property
    def answerer(self) -> str:
        return self.portal_user or self.manager


@dataclass(frozen=True)
class BatchSpec:
    lot_no: str
    sku: str
    plant: str
    line: str
    qty: int


@dataclass(frozen=True)
class ShipmentSpec:
    number: str
    account: str
    lines: tuple[tuple[str, int], ...]  # (lot no, qty)


@dataclass(frozen=True)
class RuleSpec:
    code: str
    priority: int
    tier: str | None
    min_severity: str | None
    requires_advisory: bool
    defect_codes: tuple[str, ...] | None
    remedy: str
    terms: dict[str, Any]
    cap: Decimal | None
    approver: str | None


@dataclass(frozen=True)
class ComplaintSpec:
    account: str
    lot_no: str
    category: str
    qty_affected: int
    qty_failed: int


@dataclass(frozen=True)
class Factory:
    seed: int
    plants: tuple[PlantSpec, ...]
    models: tuple[ModelSpec, ...]
    limits: Limits
    fail_code: str
    fail_severity: str
    other_code: str
    other_severity: str
    categories: dict[str, str]  # complaint category -> the one defect code it maps to
    fail_category: str  # the category of the failing characteristic's defect code
    sla: dict[str, Sla]  # by tier
    inspector: str
    supervisors: tuple[str, ...]
    reps: tuple[str, ...]
    accounts: tuple[AccountSpec, ...]
    batches: tuple[BatchSpec, ...]
    shipments: tuple[ShipmentSpec, ...]
    rules: tuple[RuleSpec, ...]
    number_starts: dict[str, int]
    # What happens in it.
    affected_lot: str
    spare_lot: str  # the same model as the affected lot, never shipped
    failing_samples: tuple[list[float], ...]  # two failing inspections of the affected lot
    spare_sample: list[float]
    affected_complaint: ComplaintSpec
    unaffected_complaint: ComplaintSpec
    stray_complaint: ComplaintSpec  # a lot the account never received
    unaffected_inquirer: str
    affected_inquirer: str

    def account(self, code: str) -> AccountSpec:
        return next(a for a in self.accounts if a.code == code)

    def batch(self, lot_no: str) -> BatchSpec:
        return next(b for b in self.batches if b.lot_no == lot_no)

    def unit_cost(self, lot_no: str) -> Decimal:
        sku = self.batch(lot_no).sku
        return next(m.unit_cost for m in self.models if m.sku == sku)

    def received(self, account: str, lot_no: str) -> int:
        return sum(qty for s in self.shipments if s.account == account for lot, qty in s.lines if lot == lot_no)

    def lots_received(self, account: str) -> set[str]:
        return {lot for s in self.shipments if s.account == account for lot, _ in s.lines}

    @property
    def affected_accounts(self) -> list[str]:
        return [a.code for a in self.accounts if self.received(a.code, self.affected_lot)]


class _Names:
    """Random codes that never repeat within one factory (unique columns)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set[str]()

    def letters(self, n: int) -> str:
        return "".join(self.rng.choices(string.ascii_uppercase, k=n))

    def fresh(self, make: Callable[[], str]) -> str:
        while (name := make()) in self.used:
            pass
        self.used.add(name)
        return name


def _money(rng: random.Random, low_cents: int, high_cents: int) -> Decimal:
    """Cents spread evenly over orders of magnitude, so caps fall both below and above the amounts."""
    return Decimal(int(10 ** rng.uniform(math.log10(low_cents), math.log10(high_cents)))) / 100


def _sla(rng: random.Random) -> Sla:
    first_response_h = rng.randint(1, 12)
    return Sla(first_response_h, first_response_h + rng.randint(4, 120))


def _limits(rng: random.Random) -> Limits:
    nominal = round(rng.uniform(1, 400), 2)
    tolerance = round(max(nominal * rng.uniform(0.05, 0.4), 0.1), 2)
    sides = rng.choice(["both", "lower", "upper"])
    return Limits(
        nominal=nominal,
        lsl=round(nominal - tolerance, 2) if sides != "upper" else None,
        usl=round(nominal + tolerance, 2) if sides != "lower" else None,
        sample_n=rng.randint(2, 6),
    )


def _sample(rng: random.Random, limits: Limits, *, failing: bool) -> list[float]:
    """`sample_n` readings; when failing, at least one outside the limits and, where room, one exactly on a limit."""
    low = limits.lsl if limits.lsl is not None else limits.nominal - 1
    high = limits.usl if limits.usl is not None else limits.nominal + 1
    readings = [round(rng.uniform(low, high), 3) for _ in range(limits.sample_n)]
    readings = [min(max(r, low), high) for r in readings]
    if not failing:
        return readings
    bad = rng.randint(1, limits.sample_n)
    for i in range(bad):
        if limits.lsl is not None and (limits.usl is None or rng.random() < 0.5):
            readings[i] = round(limits.lsl - rng.uniform(0.01, 5), 3)
        else:
            assert limits.usl is not None
            readings[i] = round(limits.usl + rng.uniform(0.01, 5), 3)
    if bad < limits.sample_n:
        # A reading on the limit is inside "lsl..usl".
        readings[-1] = limits.lsl if limits.lsl is not None else high
    rng.shuffle(readings)
    return readings


def _rules(rng: random.Random, fail_code: str, other_code: str, supervisors: tuple[str, ...]) -> tuple[RuleSpec, ...]:
    drafts: list[dict[str, Any]] = []
    for tier in TIERS:
        if rng.random() < 0.15:
            continue  # a tier no rule speaks for
        # Acknowledging grants nothing under replace_failed (no unit has failed yet): rarer, so the others show.
        remedy = rng.choices(["replace_all", "credit_pct", "replace_failed"], weights=[5, 4, 2])[0]
        terms: dict[str, Any] = {}
        if remedy == "replace_all":
            terms = (
                {"freight": "air", "freight_per_unit": str(Decimal(rng.randint(5, 500)) / 100)}
                if rng.random() < 0.5
                else {"freight": "standard"}
            )
        elif remedy == "credit_pct":
            terms = {"credit_pct": rng.choice([3, 5, 10, 12.5, 15, 20, 33]), "replace_failed": rng.random() < 0.7}
        drafts.append(
            {
                "tier": tier,
                "min_severity": rng.choice([None, None, *SEVERITIES]),
                "requires_advisory": True,
                "defect_codes": rng.choice([None, None, None, (fail_code,), (other_code,)]),
                "remedy": remedy,
                "terms": terms,
                "cap": _money(rng, 1_000, 50_000_000),
            }
        )
    if rng.random() < 0.5:
        # Any tier under an advisory: the failed units. Its priority may put it before the tier rules.
        drafts.append({"requires_advisory": True, "remedy": "replace_failed", "cap": _money(rng, 1_000, 5_000_000)})
    for tier in TIERS:
        if rng.random() < 0.4:
            drafts.append(
                {
                    "tier": tier,
                    "requires_advisory": False,
                    "defect_codes": rng.choice([None, (other_code,)]),
                    "remedy": "replace_failed",
                    "cap": _money(rng, 1_000, 500_000),
                }
            )
    if rng.random() < 0.8:
        drafts.append({"requires_advisory": False, "remedy": "investigate", "cap": None})
    priorities = rng.sample(range(1, 1000), len(drafts))
    return tuple(
        RuleSpec(
            code=f"GR{i + 1}",
            priority=priority,
            tier=draft.get("tier"),
            min_severity=draft.get("min_severity"),
            requires_advisory=draft["requires_advisory"],
            defect_codes=draft.get("defect_codes"),
            remedy=draft["remedy"],
            terms=draft.get("terms", {}),
            cap=draft["cap"],
            approver=rng.choice(supervisors) if draft["cap"] is not None else None,
        )
        for i, (draft, priority) in enumerate(zip(drafts, priorities, strict=True))
    )


def generate(seed: int) -> Factory:
    rng = random.Random(seed)
    names = _Names(rng)
    plants = tuple(
        PlantSpec(
            names.fresh(lambda: f"{names.letters(2)}-{names.letters(2)}"),
            rng.choice(TIMEZONES),
            tuple(f"L{n}" for n in rng.sample(range(1, 10), rng.randint(1, 3))),
        )
        for _ in range(rng.randint(1, 3))
    )
    models = tuple(
        ModelSpec(
            names.fresh(lambda: f"{names.letters(3)}-{rng.randint(10, 999)}"), Decimal(rng.randint(50, 9999)) / 100
        )
        for _ in range(rng.randint(2, 3))
    )
    fail_code, other_code = (names.fresh(lambda: f"{names.letters(4)}-{names.letters(3)}") for _ in range(2))
    fail_category, other_category = (names.fresh(lambda: names.letters(6)) for _ in range(2))
    inspector = names.fresh(lambda: f"insp.{names.letters(5).lower()}")
    supervisors = tuple(names.fresh(lambda: f"sup.{names.letters(5).lower()}") for _ in range(rng.randint(1, 2)))
    reps = tuple(names.fresh(lambda: f"rep.{names.letters(5).lower()}") for _ in range(rng.randint(2, 4)))

    accounts = []
    for _ in range(rng.randint(3, 6)):
        code = names.fresh(lambda: f"{names.letters(1)}-{rng.randint(100, 999)}")
        contacts = tuple(
            ContactSpec(names.fresh(lambda: f"{names.letters(1)}. {names.letters(6).title()}"), consented)
            for consented in [True] * rng.randint(1, 2) + [False] * rng.randint(0, 1)
        )
        accounts.append(
            AccountSpec(
                code=code,
                tier=rng.choice(TIERS),
                region=rng.choice(REGIONS),
                manager=rng.choice(reps),
                contacts=contacts,
                portal_user=f"portal.{code.lower()}" if rng.random() < 0.4 else None,
            )
        )

    def batch(sku: str, seq: int) -> BatchSpec:
        plant = rng.choice(plants)
        line = rng.choice(plant.lines)
        return BatchSpec(f"{plant.code}-{line}-2611-{seq:03d}", sku, plant.code, line, rng.randint(2_000, 9_000))

    seqs = rng.sample(range(1, 1000), 6)
    affected, spare = batch(models[0].sku, seqs[0]), batch(models[0].sku, seqs[1])
    others = [batch(rng.choice(models).sku, seq) for seq in seqs[2 : 2 + rng.randint(2, 4)]]

    # Every line ships at most a sixteenth of its lot, so no lot ships more than it holds.
    def line_of(lot: BatchSpec) -> tuple[str, int]:
        return lot.lot_no, rng.randint(1, lot.qty // 16)

    def shipment(account: str, lines: list[tuple[str, int]]) -> ShipmentSpec:
        return ShipmentSpec(names.fresh(lambda: f"SH-{rng.randint(10_000, 99_999)}"), account, tuple(lines))

    codes = [a.code for a in accounts]
    hit = rng.sample(codes, rng.randint(1, len(codes) - 1))
    missed = [c for c in codes if c not in hit]
    shipments = []
    for code in hit:
        for _ in range(rng.randint(1, 2)):
            extra = [line_of(rng.choice(others))] if rng.random() < 0.5 else []
            shipments.append(shipment(code, [line_of(affected), *extra]))
    for i, code in enumerate(missed):
        # The first unaffected account holds some other lot; later ones may hold nothing at all.
        for lot in rng.sample(others, rng.randint(1 if i == 0 else 0, 2)):
            shipments.append(shipment(code, [line_of(lot)]))

    def received(account: str, lot_no: str) -> int:
        return sum(q for s in shipments if s.account == account for lot, q in s.lines if lot == lot_no)

    complainer = rng.choice(hit)
    in_hand = received(complainer, affected.lot_no)
    failed = rng.randint(1, min(in_hand, 40))
    other_holdings = [(s.account, lot) for s in shipments for lot, _ in s.lines if lot != affected.lot_no]
    other_account, other_lot = rng.choice(other_holdings)
    categories = {fail_category: fail_code, other_category: other_code}
    limits = _limits(rng)
    return Factory(
        seed=seed,
        plants=plants,
        models=models,
        limits=limits,
        fail_code=fail_code,
        fail_severity=rng.choice(SEVERITIES),
        other_code=other_code,
        other_severity=rng.choice(SEVERITIES),
        categories=categories,
        fail_category=fail_category,
        sla={tier: _sla(rng) for tier in TIERS},
        inspector=inspector,
        supervisors=supervisors,
        reps=reps,
        accounts=tuple(accounts),
        batches=(affected, spare, *others),
        shipments=tuple(shipments),
        rules=_rules(rng, fail_code, other_code, supervisors),
        number_starts={prefix: rng.randint(0, 10**width // 2) for prefix, width in NUMBER_WIDTHS.items()},
        affected_lot=affected.lot_no,
        spare_lot=spare.lot_no,
        failing_samples=(_sample(rng, limits, failing=True), _sample(rng, limits, failing=True)),
        spare_sample=_sample(rng, limits, failing=True),
        affected_complaint=ComplaintSpec(
            complainer, affected.lot_no, fail_category, rng.choice([0, rng.randint(failed, in_hand)]), failed
        ),
        unaffected_complaint=ComplaintSpec(
            other_account, other_lot, rng.choice(list(categories)), 0, rng.randint(1, 20)
        ),
        stray_complaint=ComplaintSpec(rng.choice(missed), affected.lot_no, fail_category, 0, rng.randint(1, 5)),
        unaffected_inquirer=rng.choice(missed),
        affected_inquirer=rng.choice(hit),
    )


# --- building it --------------------------------------------------------------------


@dataclass
class GeneratedWorld:
    client: AsyncTestClient[Any]
    runtime: Runtime
    factory: Factory
    ids: dict[str, str]  # business keys (codes, lot nos, usernames, "account/contact") to ids

    async def headers(self, username: str) -> Headers:
        return {"Authorization": f"Bearer {(await sign_in(self.client, username, PASSWORD))['access_token']}"}


@contextmanager
def empty_template(data_dir: Path) -> Iterator[Settings]:
    """A migrated database holding nothing but its administrator, as `loopline users create` leaves it."""
    fresh = FreshDatabase.create(data_dir, **GENEROUS_LIMITS)

    async def bootstrap() -> None:
        runtime = Runtime(settings=fresh.settings, db=Database.open(fresh.settings))
        try:
            await create_user(
                runtime, actor="system:test", username="admin", password=PASSWORD, display_name="Admin", role=Role.ADMIN
            )
        finally:
            await runtime.db.close()

    try:
        asyncio.run(bootstrap())
        yield fresh.settings
    finally:
        fresh.drop()


@asynccontextmanager
async def generated_world(template: Settings, data_dir: Path, factory: Factory) -> AsyncIterator[GeneratedWorld]:
    async with cloned_database(template, data_dir) as settings:
        runtime = Runtime(settings=settings, db=Database.open(settings))
        try:
            # No endpoint moves a counter: a site taking over numbers from an older system does it once.
            async with runtime.unit_of_work(actor="system:test", command="numbering.continue") as session:
                for prefix, after in factory.number_starts.items():
                    await continue_numbering(session, prefix, after)
            async with AsyncTestClient(create_app(settings)) as client:
                world = GeneratedWorld(client, runtime, factory, {})
                await _Builder(world, await world.headers("admin")).build()
                yield world
        finally:
            await runtime.db.close()


class _Builder:
    """Posts the factory to the admin API in the order its references need, noting each new id."""

    def __init__(self, world: GeneratedWorld, admin: Headers) -> None:
        self.world, self.admin = world, admin
        self.factory, self.ids = world.factory, world.ids

    async def create(self, path: str, body: dict[str, Any], key: str) -> str:
        response = await self.world.client.post(f"/api/v1/admin/{path}", headers=self.admin, json=body)
        assert response.status_code == 201, (path, body, response.text)
        self.ids[key] = str(response.json()["id"])
        return self.ids[key]

    async def user(self, username: str, role: Role, memberships: list[tuple[str, str]]) -> None:
        body = {
            "username": username,
            "password": PASSWORD,
            "display_name": username.title(),
            "role": role,
            "memberships": [{"kind": kind, "ref": ref} for kind, ref in memberships],
        }
        await self.create("users", body, username)

    async def build(self) -> None:
        await self.plants_and_staff()
        await self.catalog()
        await self.accounts()
        await self.logistics()
        await self.rules()

    async def plants_and_staff(self) -> None:
        factory, ids = self.factory, self.ids
        for plant in factory.plants:
            body = {"code": plant.code, "name": plant.code, "country": plant.code[:2], "tz": plant.tz}
            await self.create("plants", body, plant.code)
        plants = [("plant", ids[p.code]) for p in factory.plants]
        await self.user(factory.inspector, Role.INSPECTOR, plants)
        regions = [("region", r) for r in sorted({a.region for a in factory.accounts})]
        for supervisor in factory.supervisors:
            await self.user(supervisor, Role.SUPERVISOR, [*plants, *regions])
        for rep in factory.reps:
            await self.user(rep, Role.SERVICE_REP, [])  # managing an account is what lets a rep see it
        for plant in factory.plants:
            for line in plant.lines:
                body = {"plant_id": ids[plant.code], "code": line, "supervisor_id": ids[factory.supervisors[0]]}
                await self.create("lines", body, f"{plant.code}/{line}")

    async def catalog(self) -> None:
        factory, ids = self.factory, self.ids
        for model in factory.models:
            body = {"sku": model.sku, "name": model.sku, "unit_cost": str(model.unit_cost)}
            await self.create("product-models", body, model.sku)
        for code, severity in (
            (factory.fail_code, factory.fail_severity),
            (factory.other_code, factory.other_severity),
        ):
            await self.create("defect-codes", {"code": code, "name": code, "severity": severity}, code)
        for category, code in factory.categories.items():
            await self.create("complaint-categories", {"code": category, "labels": {"en": category}}, category)
            await self.create("defect-category-map", {"defect_code": code, "category_code": category}, f"{category}>")
        plan: dict[str, Any] = {
            "code": "GEN-PLAN",
            "product_model_id": ids[factory.models[0].sku],
            "plan_version": 1,
            "status": "released",
        }
        await self.create("inspection-plans", plan, "plan")
        limits = factory.limits
        characteristic: dict[str, Any] = {
            "plan_id": ids["plan"],
            "code": "X1",
            "name": "Generated characteristic",
            "nominal": limits.nominal,
            "lsl": limits.lsl,
            "usl": limits.usl,
            "sample_n": limits.sample_n,
            "defect_code_on_fail": factory.fail_code,
        }
        await self.create("characteristics", characteristic, "X1")

    async def accounts(self) -> None:
        factory, ids = self.factory, self.ids
        for account in factory.accounts:
            sla = factory.sla[account.tier]
            body: dict[str, Any] = {
                "code": account.code,
                "name": f"Account {account.code}",
                "country": "XX",
                "tier": account.tier,
                "region": account.region,
                "account_manager_id": ids[account.manager],
                "sla_policy": {"first_response_h": sla.first_response_h, "resolution_h": sla.resolution_h},
            }
            await self.create("accounts", body, account.code)
            for contact in account.contacts:
                consents = {"service_notices": contact.consented, "source": "contract"}
                body = {"account_id": ids[account.code], "name": contact.name, "consents": consents}
                await self.create("contacts", body, f"{account.code}/{contact.name}")
            if account.portal_user:
                await self.user(account.portal_user, Role.CUSTOMER, [("account", ids[account.code])])

    async def logistics(self) -> None:
        factory, ids = self.factory, self.ids
        start = datetime(2026, 11, 2, 6, tzinfo=UTC)
        for batch in factory.batches:
            body: dict[str, Any] = {
                "lot_no": batch.lot_no,
                "product_model_id": ids[batch.sku],
                "plant_id": ids[batch.plant],
                "line": batch.line,
                "qty": batch.qty,
                "status": "released",
                "produced_from": start.isoformat(),
                "produced_to": (start + timedelta(days=2)).isoformat(),
            }
            await self.create("batches", body, batch.lot_no)
        for shipment in factory.shipments:
            account = factory.account(shipment.account)
            body = {
                "account_id": ids[account.code],
                "number": shipment.number,
                "shipped_at": (start + timedelta(days=4)).isoformat(),
                "destination_region": account.region,
            }
            await self.create("shipments", body, shipment.number)
            for lot, qty in shipment.lines:
                body = {"shipment_id": ids[shipment.number], "batch_id": ids[lot], "qty": qty}
                await self.create("shipment-lines", body, f"{shipment.number}/{lot}")

    async def rules(self) -> None:
        for rule in self.factory.rules:
            cap = str(rule.cap) if rule.cap is not None else None
            body: dict[str, Any] = {
                "code": rule.code,
                "priority": rule.priority,
                "tier": rule.tier,
                "min_severity": rule.min_severity,
                "requires_advisory": rule.requires_advisory,
                "defect_codes": list(rule.defect_codes) if rule.defect_codes is not None else None,
                "remedy": rule.remedy,
                "terms": rule.terms,
                # The cap is where approval starts (domain.md: "under the cap ... above it a named approver").
                "cap_amount": cap,
                "approval_over": cap,
                "approver_id": self.ids[rule.approver] if rule.approver else None,
            }
            await self.create("entitlement-rules", body, rule.code)
