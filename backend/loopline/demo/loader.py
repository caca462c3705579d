"""The demo scenario (Nordlicht Automotive Electronics, shared/demo/scenario.md): its master data.

`load_demo` loads the master data and then plays the scenario's timeline through the loop
rules (`demo/timeline.py`); tests that play the loop themselves start from
`load_master_data`. Master data is: plants and lines, product models, the inspection plan,
defect codes and complaint categories, users, accounts and contacts, batches, shipments
and entitlement rules. Everything that happens in the scenario's timeline (inspections,
NCs, cases, advisories, remedies, CAPA, costs) is produced later by the loop rules.

Everything is written in one unit of work (`system:demo`), so the change log and the
audit chain see the demo data like any other data, and a failed load leaves nothing
behind. Order of work inside it:

1. catalog and plants (users need the plant ids for their memberships);
2. users, through `people.service.add_user`; account rows are built in memory first so
   that their ids are known for the account memberships;
3. everything that refers to users: lines (supervisor), accounts (account manager),
   entitlement rules (approver), then contacts, batches and shipments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loopline.catalog.models import (
    Characteristic,
    ComplaintCategory,
    DefectCategoryMap,
    DefectCode,
    InspectionPlan,
    Line,
    PlanStatus,
    Plant,
    ProductModel,
    Severity,
)
from loopline.core.access import Role
from loopline.core.clock import FrozenClock
from loopline.core.entity import Entity
from loopline.core.runtime import Runtime
from loopline.customer.models import (
    Account,
    Contact,
    EntitlementRule,
    RemedyKind,
    Shipment,
    ShipmentLine,
    Tier,
)
from loopline.demo.timeline import START, play_timeline
from loopline.people.models import MembershipKind, User
from loopline.people.service import add_user
from loopline.quality.models import Batch, BatchStatus

DEMO_PASSWORD = "loopline-demo"
ACTOR = "system:demo"
COMMAND = "demo.load"

T = TypeVar("T")


def june(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment in June 2024, UTC."""
    return datetime(2024, 6, day, hour, minute, tzinfo=UTC)


# --- catalog -------------------------------------------------------------------------

# code, name, country, tz, line codes
PLANTS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("CN-SZ", "Suzhou", "CN", "Asia/Shanghai", ("L1", "L2")),
    ("CZ-BR", "Brno", "CZ", "Europe/Prague", ("L1",)),
)

# sku, name, family, unit cost (EUR)
PRODUCT_MODELS: tuple[tuple[str, str, str, str], ...] = (
    ("HLD-200", "LED headlamp driver, 12 V, passenger cars", "headlamp-driver", "18.00"),
    ("HLD-300", "LED headlamp driver, 24 V, trucks", "headlamp-driver", "24.00"),
    ("TPS-10", "Tyre-pressure sensor", "tyre-pressure-sensor", "9.00"),
)

# code, name, severity
DEFECT_CODES: tuple[tuple[str, str, Severity], ...] = (
    ("CC-THIN", "Conformal coating below LSL", Severity.MAJOR),
    ("ELEC-OUT", "LED output current out of range", Severity.MAJOR),
    ("MECH-LATCH", "Connector latch broken", Severity.MINOR),
)

# code, labels
COMPLAINT_CATEGORIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("FLICKER", {"en": "Intermittent flicker / moisture", "zh": "间歇性闪烁 / 受潮"}),
    ("DIM", {"en": "Light too dim", "zh": "亮度不足"}),
    ("CONNECTOR", {"en": "Connector problem", "zh": "连接器故障"}),
)

# defect code -> complaint category
DEFECT_CATEGORY_MAP: tuple[tuple[str, str], ...] = (
    ("CC-THIN", "FLICKER"),
    ("ELEC-OUT", "DIM"),
    ("MECH-LATCH", "CONNECTOR"),
)

PLAN_CODE = "FINAL-HLD200"
PLAN_VERSION = 3
PLAN_PRODUCT = "HLD-200"

CHARACTERISTICS: tuple[dict[str, Any], ...] = (
    {
        "code": "C1",
        "name": "Conformal-coating thickness",
        "unit": "µm",
        "nominal": 50.0,
        "lsl": 25.0,
        "usl": 75.0,
        "sample_n": 5,
        "spc_rules": ["WE1", "NELSON3"],
        "cpk_target": 1.33,
        "defect_code_on_fail": "CC-THIN",
    },
    {
        "code": "C2",
        "name": "LED output current",
        "unit": "mA",
        "nominal": 700.0,
        "lsl": 680.0,
        "usl": 720.0,
        "sample_n": 5,
        "defect_code_on_fail": "ELEC-OUT",
    },
    {
        "code": "C3",
        "name": "Solder-void area",
        "unit": "%",
        "nominal": None,
        "lsl": None,
        "usl": 25.0,
        "sample_n": 3,
        "defect_code_on_fail": None,
    },
)

# --- people and customers ------------------------------------------------------------

SLA_2_24 = {"first_response_h": 2, "resolution_h": 24}
SLA_4_48 = {"first_response_h": 4, "resolution_h": 48}
SLA_8_72 = {"first_response_h": 8, "resolution_h": 72}


@dataclass(frozen=True)
class AccountSpec:
    code: str
    name: str
    country: str
    tier: Tier
    region: str
    market: str
    manager: str  # username of the account manager
    sla: dict[str, int]


ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec("A-001", "Autowerk Stuttgart GmbH", "DE", Tier.VIP, "EU", "OEM Tier-1", "lena.fischer", SLA_2_24),
    AccountSpec("A-002", "Great Lakes Fleet Supply Inc.", "US", Tier.KEY, "NA", "fleet", "marcus.reed", SLA_4_48),
    AccountSpec("A-003", "Iberia Motor Parts S.L.", "ES", Tier.STANDARD, "EU", "distributor", "lucia.martin", SLA_8_72),
    AccountSpec(
        "A-004", "Shinsei Auto Trading K.K.", "JP", Tier.STANDARD, "APAC", "distributor", "kenji.sato", SLA_8_72
    ),
    AccountSpec("A-005", "Pampas Repuestos S.A.", "AR", Tier.STANDARD, "LATAM", "aftermarket", "diego.ruiz", SLA_8_72),
)

REGIONS = ("EU", "NA", "APAC", "LATAM")

# A membership before the accounts/plants exist: (kind, plant code | account code | region code)
MembershipSpec = tuple[MembershipKind, str]


@dataclass(frozen=True)
class UserSpec:
    username: str
    display_name: str
    role: Role
    memberships: tuple[MembershipSpec, ...]
    description: str  # one line for `scripts/serve`
    email: str | None = None


USERS: tuple[UserSpec, ...] = (
    UserSpec(
        "wang.lei",
        "Wang Lei",
        Role.INSPECTOR,
        ((MembershipKind.PLANT, "CN-SZ"),),
        "inspector, Suzhou (CN-SZ): runs the offline audit inspection INS-88213",
        "wang.lei@nordlicht.example",
    ),
    UserSpec(
        "jana.novak",
        "Jana Nováková",
        Role.INSPECTOR,
        ((MembershipKind.PLANT, "CZ-BR"),),
        "inspector, Brno (CZ-BR)",
        "jana.novak@nordlicht.example",
    ),
    UserSpec(
        "lena.fischer",
        "Lena Fischer",
        Role.SERVICE_REP,
        ((MembershipKind.ACCOUNT, "A-001"),),
        "service rep, account manager of Autowerk Stuttgart (A-001, VIP)",
        "lena.fischer@nordlicht.example",
    ),
    UserSpec(
        "marcus.reed",
        "Marcus Reed",
        Role.SERVICE_REP,
        ((MembershipKind.ACCOUNT, "A-002"),),
        "service rep, account manager of Great Lakes Fleet Supply (A-002, key)",
        "marcus.reed@nordlicht.example",
    ),
    UserSpec(
        "lucia.martin",
        "Lucía Martín",
        Role.SERVICE_REP,
        ((MembershipKind.ACCOUNT, "A-003"),),
        "service rep, account manager of Iberia Motor Parts (A-003, standard)",
        "lucia.martin@nordlicht.example",
    ),
    UserSpec(
        "kenji.sato",
        "Kenji Sato",
        Role.SERVICE_REP,
        ((MembershipKind.ACCOUNT, "A-004"),),
        "service rep, account manager of Shinsei Auto Trading (A-004, standard)",
        "kenji.sato@nordlicht.example",
    ),
    UserSpec(
        "diego.ruiz",
        "Diego Ruiz",
        Role.SERVICE_REP,
        ((MembershipKind.ACCOUNT, "A-005"),),
        "service rep, account manager of Pampas Repuestos (A-005, standard)",
        "diego.ruiz@nordlicht.example",
    ),
    UserSpec(
        "qa.manager",
        "QA Manager",
        Role.SUPERVISOR,
        (
            (MembershipKind.PLANT, "CN-SZ"),
            (MembershipKind.PLANT, "CZ-BR"),
            *((MembershipKind.REGION, region) for region in REGIONS),
        ),
        "supervisor, both plants and all regions: approves advisories and remedies",
        "qa.manager@nordlicht.example",
    ),
    UserSpec(
        "admin",
        "Administrator",
        Role.ADMIN,
        (),
        "administrator: sees and manages everything",
        "admin@nordlicht.example",
    ),
    UserSpec(
        "gil.workshop",
        "Taller Hermanos Gil",
        Role.CUSTOMER,
        ((MembershipKind.ACCOUNT, "A-003"),),
        "customer: a workshop of Iberia Motor Parts (A-003); closed by its erasure at D+40 in the played demo",
        "taller@hermanos-gil.example",
    ),
    # Portal logins that outlast the played demo. Each is the login of a contact the scenario
    # already has (the same e-mail address makes it that person's, see compliance/erasure.py),
    # so ADV-031 still goes to its five consented contacts.
    UserSpec(
        "thomas.brandt",
        "Thomas Brandt",
        Role.CUSTOMER,
        ((MembershipKind.ACCOUNT, "A-001"),),
        "customer: purchasing at Autowerk Stuttgart (A-001), received lot 018 and ADV-031",
        "thomas.brandt@autowerk-stuttgart.example",
    ),
    UserSpec(
        "haruka.tanaka",
        "Haruka Tanaka",
        Role.CUSTOMER,
        ((MembershipKind.ACCOUNT, "A-004"),),
        "customer: purchasing at Shinsei Auto Trading (A-004), not affected by lot 018",
        "haruka.tanaka@shinsei-auto.example",
    ),
)

DEMO_LOGINS: list[tuple[str, str]] = [(user.username, user.description) for user in USERS]

SUPERVISOR = "qa.manager"  # supervises every line; approves R3 remedies over the cap


@dataclass(frozen=True)
class ContactSpec:
    account: str
    name: str
    email: str
    phone: str
    service_notices: bool
    consent_at: datetime
    consent_source: str


CONTACTS: tuple[ContactSpec, ...] = (
    ContactSpec(
        "A-001",
        "Katrin Vogel",
        "katrin.vogel@autowerk-stuttgart.example",
        "+49 711 5550 142",
        True,
        datetime(2023, 11, 6, 9, 0, tzinfo=UTC),
        "contract",
    ),
    ContactSpec(
        "A-001",
        "Thomas Brandt",
        "thomas.brandt@autowerk-stuttgart.example",
        "+49 711 5550 187",
        True,
        datetime(2023, 11, 6, 9, 0, tzinfo=UTC),
        "contract",
    ),
    ContactSpec(
        "A-002",
        "Sarah Kowalski",
        "sarah.kowalski@greatlakes-fleet.example",
        "+1 313 555 0164",
        True,
        datetime(2024, 1, 15, 14, 30, tzinfo=UTC),
        "contract",
    ),
    ContactSpec(
        "A-002",
        "Mike Donnelly",
        "mike.donnelly@greatlakes-fleet.example",
        "+1 313 555 0199",
        True,
        datetime(2024, 1, 15, 14, 30, tzinfo=UTC),
        "contract",
    ),
    ContactSpec(
        "A-003",
        "Carmen Ortega",
        "carmen.ortega@iberia-motorparts.example",
        "+34 91 555 0123",
        True,
        datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
        "contract",
    ),
    ContactSpec(
        "A-004",
        "Haruka Tanaka",
        "haruka.tanaka@shinsei-auto.example",
        "+81 3 5555 0148",
        True,
        datetime(2024, 3, 4, 2, 0, tzinfo=UTC),
        "contract",
    ),
    ContactSpec(
        "A-005",
        "Martín Gómez",
        "martin.gomez@pampas-repuestos.example",
        "+54 11 5555 0172",
        True,
        datetime(2024, 3, 18, 13, 0, tzinfo=UTC),
        "contract",
    ),
    # Iberia's customer, on Iberia's dealer portal: never an advisory recipient.
    ContactSpec(
        "A-003",
        "Taller Hermanos Gil",
        "taller@hermanos-gil.example",
        "+34 96 555 0110",
        False,
        datetime(2024, 4, 22, 8, 15, tzinfo=UTC),
        "dealer_portal",
    ),
)

# --- production and logistics --------------------------------------------------------

# lot no, product model, plant, line, first and last production day (June 2024), qty.
# Production runs from 06:00 UTC on the first day to 22:00 UTC on the last day.
BATCHES: tuple[tuple[str, str, str, str, int, int, int], ...] = (
    ("CN-SZ-L2-2406-016", "HLD-200", "CN-SZ", "L2", 3, 5, 5_000),
    ("CN-SZ-L2-2406-017", "HLD-200", "CN-SZ", "L2", 6, 8, 5_000),
    ("CN-SZ-L2-2406-018", "HLD-200", "CN-SZ", "L2", 10, 12, 6_000),
    ("CN-SZ-L1-2406-019", "HLD-200", "CN-SZ", "L1", 13, 15, 5_000),
    ("CZ-BR-L1-2406-044", "HLD-200", "CZ-BR", "L1", 4, 6, 4_000),
    ("CZ-BR-L1-2406-045", "HLD-300", "CZ-BR", "L1", 7, 10, 3_000),
    ("CN-SZ-L1-2406-020", "TPS-10", "CN-SZ", "L1", 10, 12, 10_000),
)

# number, account, shipped at (UTC), lot no, qty. Stock (not shipped) is not listed.
SHIPMENTS: tuple[tuple[str, str, datetime, str, int], ...] = (
    ("SH-5501", "A-004", june(7, 9, 30), "CN-SZ-L2-2406-016", 3_000),
    ("SH-5502", "A-003", june(8, 11, 0), "CN-SZ-L2-2406-016", 2_000),
    ("SH-5518", "A-004", june(11, 8, 45), "CN-SZ-L2-2406-017", 1_500),
    ("SH-5519", "A-005", june(11, 13, 20), "CN-SZ-L2-2406-017", 1_000),
    ("SH-5529", "A-001", june(13, 10, 0), "CZ-BR-L1-2406-044", 2_000),
    ("SH-5530", "A-002", june(13, 15, 30), "CZ-BR-L1-2406-045", 3_000),
    ("SH-5531", "A-001", june(14, 9, 0), "CN-SZ-L2-2406-018", 2_000),
    ("SH-5534", "A-002", june(15, 8, 30), "CN-SZ-L2-2406-018", 1_200),
    ("SH-5536", "A-003", june(15, 14, 0), "CN-SZ-L2-2406-018", 800),
    ("SH-5540", "A-003", june(16, 9, 0), "CN-SZ-L1-2406-020", 6_000),
    ("SH-5541", "A-005", june(16, 11, 0), "CN-SZ-L1-2406-020", 4_000),
)

# --- entitlements --------------------------------------------------------------------

ENTITLEMENT_RULES: tuple[dict[str, Any], ...] = (
    {
        "code": "R1",
        "priority": 10,
        "tier": Tier.VIP,
        "requires_advisory": True,
        "min_severity": Severity.MAJOR,
        "remedy": RemedyKind.REPLACE_ALL,
        "terms": {"freight": "air", "freight_per_unit": "2.40"},
        "cap_amount": Decimal("60000"),
        "approval_over": Decimal("60000"),
        "description": (
            "VIP + advisory + severity >= major: replace all affected units from a verified lot, air freight; "
            "auto-approved up to EUR 60k"
        ),
    },
    {
        "code": "R2",
        "priority": 20,
        "tier": Tier.KEY,
        "requires_advisory": True,
        "remedy": RemedyKind.REPLACE_ALL,
        "terms": {"freight": "standard"},
        "cap_amount": Decimal("30000"),
        "approval_over": Decimal("30000"),
        "description": "Key + advisory: replace all affected units, standard freight; auto-approved up to EUR 30k",
    },
    {
        "code": "R3",
        "priority": 30,
        "tier": Tier.STANDARD,
        "requires_advisory": True,
        "remedy": RemedyKind.CREDIT_PCT,
        "terms": {"credit_pct": 10, "replace_failed": True},
        "cap_amount": Decimal("2000"),
        "approval_over": Decimal("2000"),
        "approver": SUPERVISOR,
        "description": (
            "Standard + advisory: replace units with confirmed failure + 10 % credit on the remaining affected "
            "quantity; auto-approved up to EUR 2k, else QA manager"
        ),
    },
    {
        "code": "R4",
        "priority": 90,
        "requires_advisory": False,
        "remedy": RemedyKind.INVESTIGATE,
        "description": "No advisory: standard warranty investigation first",
    },
)


# --- builders: scenario tables -> validated rows ---------------------------------------


def build_plants() -> list[Plant]:
    return [
        Plant.model_validate({"code": code, "name": name, "country": country, "tz": tz})
        for code, name, country, tz, _lines in PLANTS
    ]


def build_lines(plants: dict[str, Plant], supervisor_id: str) -> list[Line]:
    return [
        Line.model_validate(
            {
                "plant_id": plants[plant_code].id,
                "code": line_code,
                "name": f"{name} line {line_code}",
                "supervisor_id": supervisor_id,
            }
        )
        for plant_code, name, _country, _tz, line_codes in PLANTS
        for line_code in line_codes
    ]


def build_product_models() -> list[ProductModel]:
    return [
        ProductModel.model_validate({"sku": sku, "name": name, "family": family, "unit_cost": Decimal(cost)})
        for sku, name, family, cost in PRODUCT_MODELS
    ]


def build_defect_codes() -> list[DefectCode]:
    return [DefectCode.model_validate({"code": c, "name": n, "severity": s}) for c, n, s in DEFECT_CODES]


def build_complaint_categories() -> list[ComplaintCategory]:
    return [ComplaintCategory.model_validate({"code": c, "labels": labels}) for c, labels in COMPLAINT_CATEGORIES]


def build_defect_category_map() -> list[DefectCategoryMap]:
    return [DefectCategoryMap.model_validate({"defect_code": d, "category_code": c}) for d, c in DEFECT_CATEGORY_MAP]


def build_plan(models: dict[str, ProductModel]) -> InspectionPlan:
    return InspectionPlan.model_validate(
        {
            "code": PLAN_CODE,
            "plan_version": PLAN_VERSION,
            "status": PlanStatus.RELEASED,
            "product_model_id": models[PLAN_PRODUCT].id,
        }
    )


def build_characteristics(plan: InspectionPlan) -> list[Characteristic]:
    return [Characteristic.model_validate({**spec, "plan_id": plan.id}) for spec in CHARACTERISTICS]


def build_accounts() -> list[Account]:
    """Accounts without their account manager: the users need the account ids first."""
    return [
        Account.model_validate(
            {
                "code": a.code,
                "name": a.name,
                "country": a.country,
                "tier": a.tier,
                "region": a.region,
                "market": a.market,
                "sla_policy": a.sla,
            }
        )
        for a in ACCOUNTS
    ]


def membership_ref(kind: MembershipKind, code: str, plants: dict[str, Plant], accounts: dict[str, Account]) -> str:
    """A membership ref as stored: the plant or account id, or the region code itself."""
    if kind is MembershipKind.PLANT:
        return plants[code].id
    if kind is MembershipKind.ACCOUNT:
        return accounts[code].id
    return code


def build_contacts(accounts: dict[str, Account]) -> list[Contact]:
    return [
        Contact.model_validate(
            {
                "account_id": accounts[c.account].id,
                "name": c.name,
                "email": c.email,
                "phone": c.phone,
                "consents": {
                    "service_notices": c.service_notices,
                    "at": c.consent_at.isoformat(),
                    "source": c.consent_source,
                },
            }
        )
        for c in CONTACTS
    ]


def build_batches(plants: dict[str, Plant], models: dict[str, ProductModel]) -> list[Batch]:
    return [
        Batch.model_validate(
            {
                "lot_no": lot_no,
                "product_model_id": models[sku].id,
                "plant_id": plants[plant].id,
                "line": line,
                "produced_from": june(first_day, 6),
                "produced_to": june(last_day, 22),
                "qty": qty,
                "status": BatchStatus.RELEASED,
            }
        )
        for lot_no, sku, plant, line, first_day, last_day, qty in BATCHES
    ]


def build_shipments(accounts: dict[str, Account]) -> list[Shipment]:
    return [
        Shipment.model_validate(
            {
                "number": number,
                "account_id": accounts[account].id,
                "shipped_at": shipped_at,
                "destination_region": accounts[account].region,
            }
        )
        for number, account, shipped_at, _lot_no, _qty in SHIPMENTS
    ]


def build_shipment_lines(shipments: dict[str, Shipment], batches: dict[str, Batch]) -> list[ShipmentLine]:
    """One line per shipment (one lot each in the scenario), under the shipment's account."""
    return [
        ShipmentLine.model_validate(
            {
                "shipment_id": shipments[number].id,
                "account_id": shipments[number].account_id,
                "batch_id": batches[lot_no].id,
                "product_model_id": batches[lot_no].product_model_id,
                "qty": qty,
            }
        )
        for number, _account, _shipped_at, lot_no, qty in SHIPMENTS
    ]


def build_entitlement_rules(users: dict[str, User]) -> list[EntitlementRule]:
    rules = []
    for spec in ENTITLEMENT_RULES:
        data = {key: value for key, value in spec.items() if key != "approver"}
        if "approver" in spec:
            data["approver_id"] = users[spec["approver"]].id
        rules.append(EntitlementRule.model_validate(data))
    return rules


def by_key(rows: Iterable[T], key: str) -> dict[str, T]:
    """Rows by a natural key (code, sku, lot number), to resolve the tables' references."""
    return {getattr(row, key): row for row in rows}


async def add_in_order(session: AsyncSession, groups: Iterable[Sequence[Entity]]) -> None:
    """Add the groups one after another, flushing each so later groups may refer to it."""
    for group in groups:
        session.add_all(group)
        await session.flush()


# --- the loader ----------------------------------------------------------------------


async def database_is_empty(runtime: Runtime) -> bool:
    """True when no user exists (a fresh database: the demo may be loaded)."""
    async with runtime.db.read_session() as session:
        return await session.scalar(select(func.count()).select_from(User)) == 0


async def load_demo(runtime: Runtime) -> None:
    """Load the scenario into an empty database: its master data, then its timeline played
    through the loop rules (`demo/timeline.py`). Every row is stamped on the scenario's frozen
    clock: the master data at the scenario's start, each step at its moment."""
    await load_master_data(dataclasses.replace(runtime, clock=FrozenClock(START)))
    await play_timeline(runtime)


async def load_master_data(runtime: Runtime) -> None:
    """Load the scenario's master data into an empty database; refuse any other database."""
    if not await database_is_empty(runtime):
        raise RuntimeError("demo data is only loaded into an empty database, and this one has users")

    plants = by_key(build_plants(), "code")
    models = by_key(build_product_models(), "sku")
    plan = build_plan(models)
    # Account rows are built before the users so that account memberships can name their ids.
    accounts = by_key(build_accounts(), "code")
    async with runtime.unit_of_work(actor=ACTOR, command=COMMAND) as session:
        # 1. Catalog and plants: nothing here refers to a user.
        await add_in_order(
            session,
            (
                list(plants.values()),
                list(models.values()),
                build_defect_codes(),
                build_complaint_categories(),
                build_defect_category_map(),
                [plan],
                build_characteristics(plan),
            ),
        )
        # 2. Users with their memberships.
        users = {
            spec.username: await add_user(
                session,
                runtime.settings,
                username=spec.username,
                password=DEMO_PASSWORD,
                display_name=spec.display_name,
                role=spec.role,
                email=spec.email,
                memberships=[(kind, membership_ref(kind, code, plants, accounts)) for kind, code in spec.memberships],
            )
            for spec in USERS
        }
        for account_spec in ACCOUNTS:
            accounts[account_spec.code].account_manager_id = users[account_spec.manager].id
        # 3. Everything that refers to users, accounts or batches.
        batches = by_key(build_batches(plants, models), "lot_no")
        shipments = by_key(build_shipments(accounts), "number")
        await add_in_order(
            session,
            (
                build_lines(plants, users[SUPERVISOR].id),
                list(accounts.values()),
                build_entitlement_rules(users),
                build_contacts(accounts),
                list(batches.values()),
                list(shipments.values()),
                build_shipment_lines(shipments, batches),
            ),
        )
