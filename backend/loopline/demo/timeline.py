"""The scenario's timeline (shared/demo/scenario.md, steps 1-12), played as its people would play it.

Every step is done by the user the scenario names, at the scenario's moment: the loader
moves a frozen clock and calls the same service the user's device or web view calls, with
the user's own principal: a sync push (`/sync/push`) for the field and service work, the
erasure service (`/compliance/contacts/{id}/erasure`) for the GDPR erasure of step 12.
Nothing here writes a nonconformance, case, advisory, remedy or cost: those come out of
the loop rules, which is what the demo proves. The steps only name what people do: submit
inspections, approve and send the advisory, record acknowledgements, triage their cases,
post in the NC thread, ship replacements, file complaints, record costs, open and verify
the CAPA, close the NC and erase the workshop contact.

Left out, because the product has no such feature yet: the routine Q2 orders behind the
return-rate figures of step 11.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any, TypeVar

from sqlmodel import SQLModel, select

from loopline.catalog.models import InspectionPlan
from loopline.compliance.erasure import erase_contact
from loopline.core.access import Principal
from loopline.core.clock import FrozenClock
from loopline.core.numbering import continue_numbering
from loopline.core.runtime import Runtime
from loopline.customer.models import Account, Advisory, AdvisoryRecipient, Case, Contact, Remedy
from loopline.demo.photos import thin_coating_photo, upload
from loopline.people.models import User
from loopline.people.service import principal_of
from loopline.quality.models import Batch, NonConformance
from loopline.syncing.push import push
from loopline.threads.models import SubjectType, Thread
from loopline_sync import SCHEMA_VERSION
from loopline_sync.protocol import Mutation, PushRequest, ResultStatus

M = TypeVar("M", bound=SQLModel)

D0 = datetime.fromisoformat("2024-06-17T00:00:00+00:00")  # Monday; INS-88213 is captured this morning


def day(offset: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment relative to D0, as the scenario counts days (D-9, D+1, ...)."""
    return D0 + timedelta(days=offset, hours=hour, minutes=minute)


# The scenario's first moment: its master data exists then, and the timeline starts there.
START = day(-14)


# Numbers carry on from the system the factory used before Loopline (scenario's numbers).
NUMBERS_BEFORE = {"NC": 141, "CS": 1000, "ADV": 30, "RMA": 7780, "CAPA": 76}

PLAN = "FINAL-HLD200"
LOT_016, LOT_017, LOT_018 = "CN-SZ-L2-2406-016", "CN-SZ-L2-2406-017", "CN-SZ-L2-2406-018"
LOT_019, LOT_044 = "CN-SZ-L1-2406-019", "CZ-BR-L1-2406-044"

# Step 1 and the routine inspections around it: lot, C1 subgroup mean, captured at, number.
# A within-subgroup spread of s = 5.1 µm keeps every routine mean inside three sigma, so
# on line L2 only the trend (Nelson 3, six decreasing means) signals.
SPREAD = (-7.0, -3.0, 0.0, 3.0, 7.0)
ROUTINE_C1: tuple[tuple[str, float, datetime, str], ...] = (
    (LOT_016, 52.1, day(-13, 10), "INS-88101"),
    (LOT_044, 51.0, day(-12, 14), "INS-88104"),
    (LOT_016, 50.4, day(-12, 18), "INS-88107"),
    (LOT_017, 48.9, day(-11, 10), "INS-88115"),
    (LOT_017, 47.0, day(-10, 2), "INS-88119"),
    (LOT_017, 45.2, day(-10, 18), "INS-88124"),
    (LOT_017, 43.8, day(-9, 10), "INS-88130"),  # the sixth decreasing mean: the quality watch
)
# Lot 018's early shift passed (mean 35.0) and the lot was released; lot 019 is verified good.
RELEASE_C1: tuple[tuple[str, tuple[float, ...], datetime, str], ...] = (
    (LOT_018, (34.0, 36.0, 33.0, 35.0, 37.0), day(-5, 9), "INS-88171"),
    (LOT_019, (44.6, 46.6, 49.6, 52.6, 54.6), day(-2, 15), "INS-88196"),
)
# Lot numbers begin with their plant's code.
INSPECTOR_OF_PLANT = {"CN-SZ": "wang.lei", "CZ-BR": "jana.novak"}
# Step 2: the audit inspection on retained late-shift samples, captured offline.
INS_88213 = (24.0, 22.0, 23.0, 26.0, 21.0)
CAPTURED, SYNCED = day(0, 8, 10), day(0, 8, 42)


class TimelineError(RuntimeError):
    """A step was refused: the demo would no longer show what the scenario says."""


@dataclass
class Device:
    """One user's device: their principal, a client id of its own and the next mutation id."""

    principal: Principal
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    mids: Iterator[int] = field(default_factory=lambda: count(1))


@dataclass
class Player:
    """Plays pushes at chosen moments through the real push service."""

    runtime: Runtime
    clock: FrozenClock
    devices: dict[str, Device] = field(default_factory=dict)

    @classmethod
    def on(cls, runtime: Runtime) -> Player:
        clock = FrozenClock(START)
        return cls(dataclasses.replace(runtime, clock=clock), clock)

    async def enrol(self, username: str) -> None:
        """Give the user a device. The loader plays people, it does not sign in as them: the
        principal is what the user may read, as a sign-in would resolve it."""
        async with self.runtime.db.read_session() as session:
            user = (await session.scalars(select(User).where(User.username == username))).one()
            self.devices[username] = Device(await principal_of(session, user, session_id="demo-loader"))

    async def push(self, username: str, *mutations: tuple[str, dict[str, Any]]) -> None:
        """Push `mutations` as `username` now (on the frozen clock); every one must be applied."""
        at = self.clock.now()
        device = self.devices[username]
        request = PushRequest(
            client_id=device.client_id,
            schema_version=SCHEMA_VERSION,
            mutations=[
                Mutation(mid=next(device.mids), id=str(uuid.uuid4()), name=name, args=args, client_ts=at)
                for name, args in mutations
            ],
        )
        response = await push(self.runtime, device.principal, request)
        refused = [r for r in response.results if r.status != ResultStatus.APPLIED]
        if refused:
            raise TimelineError(f"{username} at {at:%Y-%m-%d %H:%M}: {refused}")

    async def one(self, model: type[M], *where: Any) -> M:
        async with self.runtime.db.read_session() as session:
            return (await session.scalars(select(model).where(*where))).one()

    async def all(self, model: type[M], *where: Any) -> list[M]:
        async with self.runtime.db.read_session() as session:
            return list(await session.scalars(select(model).where(*where)))


def new_id() -> str:
    return str(uuid.uuid4())


# --- the steps, each with its moment and its user ------------------------------------

Mutations = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Step:
    """What `username` pushes at `at`. The mutations are made when the step is played, so a
    step can name records that earlier steps' rules created (the NC, a case, a remedy)."""

    at: datetime
    username: str
    mutations: Callable[[Player], Awaitable[Mutations]]

    async def play(self, player: Player) -> None:
        await player.push(self.username, *await self.mutations(player))


@dataclass(frozen=True)
class OnlineStep:
    """What `username` does at `at` in the web view: `act` calls the service its REST endpoint calls."""

    at: datetime
    username: str
    act: Callable[[Player, Principal], Awaitable[object]]

    async def play(self, player: Player) -> None:
        await self.act(player, player.devices[self.username].principal)


def step(at: datetime, username: str, *mutations: tuple[str, dict[str, Any]]) -> Step:
    """A step whose mutations are known in advance."""

    async def fixed(_player: Player) -> Mutations:
        return list(mutations)

    return Step(at, username, fixed)


async def the_nc(player: Player) -> NonConformance:
    return await player.one(NonConformance, NonConformance.source_ref == "INS-88213")


async def case_of(player: Player, account_code: str) -> Case:
    """The account's case about NC-0142."""
    account = await player.one(Account, Account.code == account_code)
    return await player.one(Case, Case.nc_id == (await the_nc(player)).id, Case.account_id == account.id)


def inspections() -> list[Step]:
    """Step 1 and the routine around it: six decreasing C1 means on L2 open a quality watch
    and nothing else; the early shift of lot 018 and lot 019 pass and are released."""
    routine = [(lot, tuple(mean + s for s in SPREAD), at, number) for lot, mean, at, number in ROUTINE_C1]

    def submit(lot_no: str, c1: tuple[float, ...], captured: datetime, number: str) -> Step:
        async def made(player: Player) -> Mutations:
            return [("inspection.submit", await inspection(player, lot_no, c1, captured, number))]

        return Step(captured, INSPECTOR_OF_PLANT[lot_no[:5]], made)

    return [submit(*args) for args in [*routine, *RELEASE_C1]]


def offline_audit() -> list[Step]:
    """Steps 2-3: INS-88213 with two photos, captured at 08:10 in a Wi-Fi dead zone and synced
    at 08:42. The photo queue sends the photos; the rules open NC-0142 and all that follows."""

    async def made(player: Player) -> Mutations:
        taken = [thin_coating_photo(CAPTURED + timedelta(minutes=view), view) for view in (1, 2)]
        hashes = await upload(player.runtime, player.devices["wang.lei"].principal, taken)
        audit = await inspection(player, LOT_018, INS_88213, CAPTURED, "INS-88213")
        notes = "Retained late-shift samples; thin coating at the connector edge."
        return [("inspection.submit", {**audit, "kind": "audit", "notes": notes, "photo_hashes": hashes})]

    return [Step(SYNCED, "wang.lei", made)]


async def inspection(player: Player, lot_no: str, c1: tuple[float, ...], at: datetime, number: str) -> dict[str, Any]:
    plan = await player.one(InspectionPlan, InspectionPlan.code == PLAN)
    lot = await player.one(Batch, Batch.lot_no == lot_no)
    return {
        "id": new_id(),
        "number": number,
        "batch_id": lot.id,
        "plan_id": plan.id,
        "kind": "in_process",
        "captured_at": at.isoformat(),
        "measurements": [{"characteristic": "C1", "value": value} for value in c1],
    }


def advisory() -> list[Step]:
    """Step 4: QA approves at 09:30 and sends at 09:32; each account manager records the
    customer's acknowledgement from the call and takes the case in hand."""

    async def approve_or_send(player: Player, command: str) -> Mutations:
        drafted = await player.one(Advisory, Advisory.nc_id == (await the_nc(player)).id)
        return [(f"advisory.{command}", {"id": drafted.id})]

    def acknowledged(account_code: str) -> Callable[[Player], Awaitable[Mutations]]:
        async def made(player: Player) -> Mutations:
            case = await case_of(player, account_code)
            recipient = (
                await player.all(
                    AdvisoryRecipient,
                    AdvisoryRecipient.advisory_id == case.advisory_id,
                    AdvisoryRecipient.account_id == case.account_id,
                )
            )[0]
            return [
                ("advisory.respond", {"recipient_id": recipient.id, "response": "acknowledge"}),
                ("case.set_status", {"id": case.id, "from": "new", "to": "in_progress"}),
            ]

        return made

    async def approve(player: Player) -> Mutations:
        return await approve_or_send(player, "approve")

    async def send(player: Player) -> Mutations:
        return await approve_or_send(player, "send")

    return [
        Step(day(0, 9, 30), "qa.manager", approve),
        Step(day(0, 9, 32), "qa.manager", send),
        Step(day(0, 10, 5), "lena.fischer", acknowledged("A-001")),
        Step(day(0, 14, 20), "marcus.reed", acknowledged("A-002")),
        Step(day(1, 9, 15), "lucia.martin", acknowledged("A-003")),
    ]


CHAT = (
    ("lucia.martin", day(0, 11, 2), "Iberia asks: is the early-shift part of lot 018 affected as well?"),
    (
        "wang.lei",
        day(0, 11, 20),
        "Early shift passed: C1 = 34, 36, 33, 35, 37 µm (INS-88171). Only the late shift is below 25 µm.",
    ),
    (
        "qa.manager",
        day(0, 11, 45),
        "Decision: ADV-031 stays at batch level for the whole of lot 018, the conservative choice.",
    ),
)


def chat() -> list[Step]:
    """Step 5: service asks in the NC thread, the inspector answers with segment data, QA decides."""

    def post(username: str, at: datetime, body: str) -> Step:
        async def made(player: Player) -> Mutations:
            nc = await the_nc(player)
            thread = await player.one(
                Thread, Thread.subject_type == SubjectType.NONCONFORMANCE, Thread.subject_id == nc.id
            )
            return [("message.post", {"id": new_id(), "thread_id": thread.id, "body": body})]

        return Step(at, username, made)

    return [post(*line) for line in CHAT]


def fulfilment(at: datetime, username: str, find_case: Callable[[Player], Awaitable[Case]]) -> Step:
    """The case's remedies carried out (replacement shipped and accepted, credit note issued)."""

    async def made(player: Player) -> Mutations:
        case = await find_case(player)
        return [("remedy.execute", {"id": remedy.id}) for remedy in await player.all(Remedy, Remedy.case_id == case.id)]

    return Step(at, username, made)


def resolutions() -> list[Step]:
    """Step 6: the three cases resolve by fulfilment after 22 h, 41 h and 62 h."""

    def of(account_code: str) -> Callable[[Player], Awaitable[Case]]:
        async def found(player: Player) -> Case:
            return await case_of(player, account_code)

        return found

    return [
        fulfilment(day(1, 6, 40), "lena.fischer", of("A-001")),
        fulfilment(day(2, 1, 42), "marcus.reed", of("A-002")),
        fulfilment(day(2, 22, 42), "lucia.martin", of("A-003")),
    ]


WORKSHOP_CASE, LATCH_CASE = "7d3c3b9e-0c4a-4f2e-9a51-6c1b2f0e1004", "7d3c3b9e-0c4a-4f2e-9a51-6c1b2f0e1005"


def complaints() -> list[Step]:
    """Steps 7-9: the workshop's complaint links itself and is handled by the rules alone;
    Shinsei's latch complaint is investigated, not linked, and resolved late (one breach);
    Pampas asks whether it is affected and the trace answers."""

    async def workshop_complaint(player: Player) -> Mutations:
        iberia = await player.one(Account, Account.code == "A-003")
        workshop = await player.one(Contact, Contact.account_id == iberia.id, Contact.name == "Taller Hermanos Gil")
        complaint = {
            "id": WORKSHOP_CASE,
            "title": "3 headlamps flicker",
            "description": "Three drivers flicker after rain. The label photo reads lot CN-SZ-L2-2406-018.",
            "contact_id": workshop.id,
            "lot_no": LOT_018,
            "category_code": "FLICKER",
            "qty_failed": 3,
        }
        return [("case.open", complaint)]

    async def workshop_case(player: Player) -> Case:
        return await player.one(Case, Case.id == WORKSHOP_CASE)

    async def latch_complaint(player: Player) -> Mutations:
        shinsei = await player.one(Account, Account.code == "A-004")
        complaint = {
            "id": LATCH_CASE,
            "account_id": shinsei.id,
            "title": "4 connector latches broken",
            "lot_no": LOT_017,
            "category_code": "CONNECTOR",
            "qty_failed": 4,
        }
        return [("case.open", complaint)]

    async def inquiry(player: Player) -> Mutations:
        pampas = await player.one(Account, Account.code == "A-005")
        asked = {"id": new_id(), "account_id": pampas.id, "kind": "inquiry", "title": "Are we affected by ADV-031?"}
        return [("case.open", asked)]

    def latch_status(before: str, after: str) -> tuple[str, dict[str, Any]]:
        return ("case.set_status", {"id": LATCH_CASE, "from": before, "to": after})

    async def latch_reply(player: Player) -> Mutations:
        """Kenji answers Shinsei in the case's thread, where the customer reads it: the first response."""
        thread = await player.one(Thread, Thread.subject_type == SubjectType.CASE, Thread.subject_id == LATCH_CASE)
        body = "We are investigating lot CN-SZ-L2-2406-017. Please send the 4 units; a return label follows."
        return [
            latch_status("new", "in_progress"),
            ("message.post", {"id": new_id(), "thread_id": thread.id, "body": body, "visibility": "customer"}),
        ]

    return [
        Step(day(9, 9), "gil.workshop", workshop_complaint),
        fulfilment(day(9, 14), "lucia.martin", workshop_case),
        Step(day(12, 2), "kenji.sato", latch_complaint),
        Step(day(12, 3), "kenji.sato", latch_reply),
        Step(day(13, 15), "diego.ruiz", inquiry),
        step(day(16, 2), "kenji.sato", latch_status("in_progress", "resolved")),
    ]


CAPA_ID = "7d3c3b9e-0c4a-4f2e-9a51-6c1b2f0e0077"
CAPA_ACTIONS = (
    ("D3 containment: hold lot 018, re-coat the 2,000 units in finished-goods stock", day(1, 12)),
    ("D5/D6: clean nozzle #2 every 8 h; inline thickness gauge on L2", day(7, 12)),
    ("D5/D6: Nelson-3 rule on C1 raised to stop the line", day(7, 12)),
    ("D7: control plan and PFMEA updated", day(14, 12)),
)
COSTS = (
    ("internal_failure", "4200.00", "Re-coat 2,000 units x EUR 2.10", day(3, 16)),
    ("appraisal", "1800.00", "Extra 100 % thickness testing, 40 h x EUR 45", day(5, 16)),
)


def improvement() -> list[Step]:
    """Steps 10-11: CAPA-0077 (8D), the internal-failure and appraisal costs, the NC walked to
    dispositioned, and at D+45 the effectiveness check and the NC's closing."""

    def on_the_nc(at: datetime, build: Callable[[NonConformance], Mutations]) -> Step:
        async def made(player: Player) -> Mutations:
            return build(await the_nc(player))

        return Step(at, "qa.manager", made)

    def status(nc: NonConformance, *walk: str) -> Mutations:
        return [("nc.set_status", {"id": nc.id, "from": a, "to": b}) for a, b in itertools.pairwise(walk)]

    def capa(nc: NonConformance) -> Mutations:
        actions = [{"description": what, "due": due.isoformat(), "status": "done"} for what, due in CAPA_ACTIONS]
        root_cause = "D4: nozzle #2 on L2 partially clogged, plus coating viscosity drift above 28 °C."
        return [("capa.open", {"id": CAPA_ID, "nc_ids": [nc.id], "root_cause": root_cause, "actions": actions})]

    def cost(category: str, amount: str, description: str, at: datetime) -> Step:
        def build(nc: NonConformance) -> Mutations:
            entry = {"nc_id": nc.id, "category": category, "amount": amount, "description": description}
            return [("quality_cost.record", {"id": new_id(), **entry, "incurred_at": at.isoformat()})]

        return on_the_nc(at, build)

    check = {
        "id": CAPA_ID,
        "criterion": "Cpk(C1) >= 1.33 over 30 subgroups with zero out-of-spec",
        "result": "passed",
        "evidence": "Cpk(C1) = 1.52 over 30 subgroups, zero OOS",
    }
    return [
        on_the_nc(day(1, 10), capa),
        on_the_nc(day(1, 11), lambda nc: status(nc, "open", "contained")),
        on_the_nc(day(3, 11), lambda nc: status(nc, "contained", "investigating", "dispositioned")),
        *(cost(*entry) for entry in COSTS),
        step(day(45, 10), "qa.manager", ("capa.verify", check)),
        on_the_nc(day(45, 11), lambda nc: status(nc, "dispositioned", "closed")),
    ]


ERASURE_REASON = "Art. 17 request of the workshop, forwarded by Iberia Motor Parts (DSR-2024-017)"


def erasure() -> list[OnlineStep]:
    """Step 12: at D+40 the workshop behind CS-1004 exercises erasure, and QA erases its contact.
    CS-1004 and NC-0142 keep pointing at the pseudonymized contact: they are retained quality records."""

    async def erase(player: Player, principal: Principal) -> None:
        workshop_case = await player.one(Case, Case.id == WORKSHOP_CASE)
        if workshop_case.contact_id is None:
            raise TimelineError("CS-1004 names no contact to erase")
        await erase_contact(player.runtime, principal, workshop_case.contact_id, reason=ERASURE_REASON)

    return [OnlineStep(day(40, 10), "qa.manager", erase)]


def timeline() -> list[Step | OnlineStep]:
    """Every step of the scenario, in the order of their moments (ties keep the story's order)."""
    return sorted(
        [
            *inspections(),
            *offline_audit(),
            *advisory(),
            *chat(),
            *resolutions(),
            *complaints(),
            *improvement(),
            *erasure(),
        ],
        key=at,
    )


def at(played: Step | OnlineStep) -> datetime:
    return played.at


async def continue_scenario_numbers(runtime: Runtime) -> None:
    async with runtime.unit_of_work(actor="system:demo", command="demo.numbering") as session:
        for prefix, after in NUMBERS_BEFORE.items():
            await continue_numbering(session, prefix, after)


async def play_timeline(runtime: Runtime) -> None:
    """Play steps 1-12 of the scenario into a database that holds its master data only."""
    player = Player.on(runtime)
    await continue_scenario_numbers(player.runtime)
    steps = timeline()
    for username in dict.fromkeys(played.username for played in steps):
        await player.enrol(username)
    for played in steps:
        player.clock.at = played.at
        await played.play(player)
