"""Every operation, every role, an object of another scope: it reads as missing, and nothing changes.

`tests/test_access_matrix.py` checks which roles may call a route at all; this checks the
objects. For every operation in the OpenAPI document with an id in its path, and for every
mutation in the sync registry, each role is aimed at an object it may not read (another
plant's, another account's, a thread it is not in) and must get exactly what it gets for
an id that does not exist: 404 (or its role's 403, the same for any id), `rejected` with
the same code through `/sync/push`, never a 200 or 500, and no change by its hand.

Nothing is listed by hand that could be derived: operations come from the OpenAPI
document and mutations from the registry, and a new one that names an object this module
does not know how to find in another scope fails `test_every_*_has_a_known_target`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func
from sqlmodel import col, select

from loopline.catalog.models import InspectionPlan
from loopline.core.access import Principal, ScopedEntity
from loopline.core.audit import AuditEvent
from loopline.core.entity import Entity
from loopline.core.runtime import Runtime
from loopline.customer.models import Advisory, AdvisoryRecipient, Case, Remedy, RemedyKind
from loopline.integration.models import WebhookSubscription
from loopline.media.models import Attachment
from loopline.media.mutations import LINKABLE
from loopline.people.models import User
from loopline.people.service import principal_of
from loopline.quality.models import Batch, Capa, Defect, NonConformance
from loopline.syncing.push import MUTATIONS
from loopline.syncing.scopes import readable_scopes
from loopline.threads.models import Message, Thread
from tests.conftest import Login
from tests.loop_helpers import demo_ids, inspection, lot_018_under_advisory
from tests.sync_helpers import Device, new_id
from tests.test_access_matrix import POLICY, ROLES, Access, operations

CAPTURED = "2024-06-17T08:10:00Z"

# Path parameters whose name is not `<entity>_id`, and `{entity_id}` of the admin routes
# (named by their operation, `admin_update_<entity>`).
PARAMETER_ENTITIES: dict[str, str] = {"nc_id": "nonconformance", "plan_id": "inspection_plan"}

# Operations whose path parameter names no object in a scope, and why.
UNSCOPED_OPERATIONS: dict[str, str] = {
    "blob_upload_offset": "an upload is addressed by its content hash: whoever holds the bytes may resume it",
    "blob_upload_chunk": "an upload is addressed by its content hash: whoever holds the bytes may resume it",
    "web_asset": "the web app's own files, the same public build for everyone",
}

Finder = Callable[[Runtime, Principal], Awaitable[str | None]]


def _entities() -> dict[str, type[ScopedEntity]]:
    found: dict[str, type[ScopedEntity]] = {}
    pending: list[type[Entity]] = [ScopedEntity]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if hasattr(cls, "__table__") and issubclass(cls, ScopedEntity):
            found[cls.__entity__] = cls
    return found


ENTITIES = _entities()


async def _other_scope_rows(runtime: Runtime, model: type[ScopedEntity], principal: Principal) -> list[Any]:
    """The rows none of whose change-log scopes this user reads (none for admins, who read every scope).

    The scopes a device pulls are the reference: whatever a user cannot pull, they must not read.
    """
    async with runtime.db.read_session() as session:
        scopes = await readable_scopes(session, principal)
        if scopes is None:
            return []
        rows = await session.scalars(select(model).order_by(col(model.id)))
        return [row for row in rows if not set(row.scope_keys()) & scopes]


async def _other_scope_row(runtime: Runtime, model: type[ScopedEntity], principal: Principal) -> Any:
    rows = await _other_scope_rows(runtime, model, principal)
    return rows[0] if rows else None


def _entity_finder(model: type[ScopedEntity]) -> Finder:
    async def find(runtime: Runtime, principal: Principal) -> str | None:
        row = await _other_scope_row(runtime, model, principal)
        return row.id if row else None

    return find


async def _other_scope_blob(runtime: Runtime, principal: Principal) -> str | None:
    """A photo attached only to records of other scopes (the same bytes on a readable record are readable)."""
    unreadable = await _other_scope_rows(runtime, Attachment, principal)
    async with runtime.db.read_session() as session:
        everywhere = list(await session.scalars(select(Attachment)))
    unreadable_ids = {a.id for a in unreadable}
    hashes = {a.sha256 for a in unreadable} - {a.sha256 for a in everywhere if a.id not in unreadable_ids}
    return min(hashes, default=None)


async def _webhook_of_admins(runtime: Runtime, principal: Principal) -> str | None:
    """Subscriptions are the admins' alone: any one is out of everybody else's reach."""
    if principal.is_admin:
        return None
    async with runtime.db.read_session() as session:
        return await session.scalar(select(WebhookSubscription.id).order_by(col(WebhookSubscription.id)))


SPECIAL_FINDERS: dict[str, Finder] = {"sha256": _other_scope_blob, "subscription_id": _webhook_of_admins}


def finder_for(operation_id: str, parameter: str) -> Finder | None:
    if parameter in SPECIAL_FINDERS:
        return SPECIAL_FINDERS[parameter]
    if parameter == "entity_id":
        entity = operation_id.removeprefix("admin_update_")
    else:
        entity = PARAMETER_ENTITIES.get(parameter, parameter.removesuffix("_id"))
    model = ENTITIES.get(entity)
    return _entity_finder(model) if model else None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    parameter: str
    body: Any


def _example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """The smallest value the schema accepts, so that a write reaches its lookup by id."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for variants in ("oneOf", "anyOf"):
        if variants in schema:
            return _example(next(v for v in schema[variants] if v.get("type") != "null"), components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", [])
        return {name: _example(schema["properties"][name], components) for name in required}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "x" * max(int(schema.get("minLength", 0)), 12)


async def id_operations(client: AsyncTestClient[Any]) -> list[Operation]:
    document = (await client.get("/schema/openapi.json")).json()
    components = document.get("components", {}).get("schemas", {})
    found = []
    for operation_id, method, path in await operations(client):
        operation = document["paths"][path][method.lower()]
        parameters = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        if not parameters:
            continue
        if len(parameters) > 1 and operation_id not in UNSCOPED_OPERATIONS:
            raise AssertionError(f"{operation_id}: which of {parameters} names the object?")
        parameter = parameters[-1]
        content = operation.get("requestBody", {}).get("content", {})
        body = _example(content["application/json"]["schema"], components) if "application/json" in content else None
        found.append(Operation(operation_id, method, path, parameter, body))
    return found


async def test_every_operation_with_an_id_has_a_known_target(client: AsyncTestClient[Any]) -> None:
    unknown = [
        f"{op.operation_id} ({op.parameter})"
        for op in await id_operations(client)
        if op.operation_id not in UNSCOPED_OPERATIONS and finder_for(op.operation_id, op.parameter) is None
    ]
    assert unknown == [], "say how to find an object of another scope for these (PARAMETER_ENTITIES)"
    assert UNSCOPED_OPERATIONS.keys() <= {op.operation_id for op in await id_operations(client)}


# --- the world: objects in every scope, including a plant and an account nobody but admins reads


@dataclass(frozen=True)
class World:
    ids: dict[str, str]


async def _created(client: AsyncTestClient[Any], headers: dict[str, str], path: str, body: dict[str, Any]) -> str:
    response = await client.post(f"/api/v1/admin/{path}", headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: str = response.json()["id"]
    return created


async def _applied(device: Device, name: str, args: dict[str, Any]) -> None:
    [result] = (await device.push_ok(device.mutation(name, args)))["results"]
    assert result["status"] == "applied", result


@pytest.fixture(scope="module")
async def world(world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime) -> World:
    """The demo's loop (lot 018 under advisory) and the same again at a plant and account of nobody's."""
    client, runtime = world_client, world_runtime
    ids = await demo_ids(runtime)
    await lot_018_under_advisory(client, world_login, runtime, ids)
    admin_headers = await world_login("admin")
    admin, wang, gil = [Device(client, await world_login(u)) for u in ("admin", "wang.lei", "gil.workshop")]
    plant = await _created(client, admin_headers, "plants", {"code": "XX-OT", "name": "Other plant", "country": "PL"})
    await _created(client, admin_headers, "lines", {"plant_id": plant, "code": "L1"})
    batch = await _created(
        client,
        admin_headers,
        "batches",
        {
            "plant_id": plant,
            "lot_no": "XX-OT-L1-0001",
            "product_model_id": (await _plan(runtime)).product_model_id,
            "line": "L1",
            "produced_from": "2024-06-01T06:00:00Z",
            "produced_to": "2024-06-02T06:00:00Z",
            "qty": 1000,
        },
    )
    account = await _created(
        client,
        admin_headers,
        "accounts",
        {"code": "A-900", "name": "Nobody's account", "country": "PL", "tier": "vip", "region": "ZZ"},
    )
    contact = await _created(
        client,
        admin_headers,
        "contacts",
        {"account_id": account, "name": "Other contact", "consents": {"service_notices": True}},
    )
    shipment = await _created(
        client,
        admin_headers,
        "shipments",
        {"account_id": account, "number": "SH-9001", "shipped_at": "2024-06-03T06:00:00Z", "destination_region": "ZZ"},
    )
    await _created(client, admin_headers, "shipment-lines", {"shipment_id": shipment, "batch_id": batch, "qty": 400})
    ids |= {"XX-OT": plant, "XX-OT-L1-0001": batch, "A-900": account, "A-900-contact": contact}
    for lot, device in [("XX-OT-L1-0001", admin), ("CN-SZ-L2-2406-018", wang)]:
        await _applied(device, "inspection.submit", inspection(ids, lot, [10.0, 11.0], captured_at=CAPTURED))
        await _applied(
            device,
            "defect.report",
            {
                "id": new_id(),
                "batch_id": ids[lot],
                "defect_code": "CC-THIN",
                "severity": "major",
                "captured_at": CAPTURED,
            },
        )
    await _applied(gil, "case.open", {"id": new_id(), "title": "Flicker", "lot_no": "CN-SZ-L2-2406-018"})
    async with runtime.db.read_session() as session:
        ncs = list(await session.scalars(select(NonConformance)))
        threads = list(await session.scalars(select(Thread)))
        cases = list(await session.scalars(select(Case)))
    for nc in ncs:
        await _applied(admin, "capa.open", {"id": new_id(), "nc_ids": [nc.id]})
    for thread in threads:
        await _applied(admin, "message.post", {"id": new_id(), "thread_id": thread.id, "body": "Noted."})
        await _applied(
            admin,
            "message.post",
            {"id": new_id(), "thread_id": thread.id, "body": "Dear customer", "visibility": "customer"},
        )
    for number, case in enumerate(cases):
        photo = format(number, "064x")
        await _applied(admin, "attachment.link", {"entity": "case", "entity_id": case.id, "sha256": photo})
    # Remedies come from entitlement rules that the loop tests play; here one per case is enough.
    async with runtime.unit_of_work(actor="test", command="test.remedies") as session:
        for number, case in enumerate(cases):
            session.add(
                Remedy(
                    number=f"RMA-T{number}",
                    case_id=case.id,
                    account_id=case.account_id,
                    kind=RemedyKind.REPLACE_FAILED,
                    amount=Decimal("10.00"),
                )
            )
    await _created(
        client, admin_headers, "webhooks", {"url": "https://hooks.example/loopline", "event_types": ["case.*"]}
    )
    return World(ids)


async def _plan(runtime: Runtime) -> InspectionPlan:
    async with runtime.db.read_session() as session:
        plan = await session.scalar(select(InspectionPlan).where(InspectionPlan.code == "FINAL-HLD200"))
    assert plan is not None
    return plan


async def _principal(runtime: Runtime, role: str) -> Principal:
    async with runtime.db.read_session() as session:
        user = await session.scalar(select(User).where(User.username == ROLES[role]))
        assert user is not None
        return await principal_of(session, user, "")


async def _changes_by(runtime: Runtime, user_id: str) -> int:
    """Audited changes made by the user (their sign-ins aside)."""
    async with runtime.db.read_session() as session:
        count = await session.scalar(
            select(func.count()).where(col(AuditEvent.actor) == user_id, col(AuditEvent.entity) != "session")
        )
    return int(count or 0)


def _outcome(response: Any) -> tuple[int, str | None]:
    body = response.json() if response.content and "json" in response.headers.get("content-type", "") else {}
    return response.status_code, body.get("error", {}).get("code") if isinstance(body, dict) else None


def _allowed(access: Access, role: str) -> bool:
    return access in ("public", "signed_in") or role == "admin" or (access == "supervisor" and role == "supervisor")


@pytest.mark.parametrize("role", list(ROLES))
async def test_no_role_reaches_an_object_of_another_scope_through_any_operation(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, world: World, role: str
) -> None:
    headers = await world_login(ROLES[role])
    principal = await _principal(world_runtime, role)
    mismatches: list[str] = []
    aimed = 0
    for op in await id_operations(world_client):
        finder = finder_for(op.operation_id, op.parameter)
        if op.operation_id in UNSCOPED_OPERATIONS or finder is None:
            continue
        target = await finder(world_runtime, principal)
        if target is None:
            continue
        aimed += 1
        before = await _changes_by(world_runtime, principal.user_id)
        responses = [
            await world_client.request(
                op.method, op.path.replace(f"{{{op.parameter}}}", value), headers=headers, json=op.body
            )
            for value in (target, str(uuid.uuid4()) if op.parameter != "sha256" else "e" * 64)
        ]
        other, missing = (_outcome(r) for r in responses)
        expected = (404, "not_found") if _allowed(POLICY[op.operation_id], role) else (403, "forbidden")
        if (other, missing) != (expected, expected):
            mismatches.append(f"{op.method} {op.path}: other scope {other}, missing {missing}, expected {expected}")
        if await _changes_by(world_runtime, principal.user_id) != before:
            mismatches.append(f"{op.method} {op.path}: changed something")
    assert mismatches == []
    assert aimed > 0 or role == "admin"


# --- /sync/push: every registered mutation aimed at another scope


@dataclass(frozen=True)
class Target:
    """What a mutation is aimed at, and its args aimed at `target` (otherwise valid)."""

    model: type[ScopedEntity]
    args: Callable[[str, World, Principal], dict[str, Any]]


def _status(from_: str, to: str) -> Callable[[str, World, Principal], dict[str, Any]]:
    return lambda target, _w, _p: {"id": target, "from": from_, "to": to}


def _link_to(entity: str) -> Callable[[str, World, Principal], dict[str, Any]]:
    return lambda target, _w, _p: {"entity": entity, "entity_id": target, "sha256": "f" * 64}


MUTATION_TARGETS: dict[str, list[Target]] = {
    "inspection.submit": [
        Target(
            Batch,
            lambda target, w, _p: {
                **inspection(w.ids, "CN-SZ-L2-2406-018", [30.0], captured_at=CAPTURED),
                "batch_id": target,
            },
        )
    ],
    "defect.report": [
        Target(
            Batch,
            lambda target, _w, _p: {
                "id": new_id(),
                "batch_id": target,
                "defect_code": "CC-THIN",
                "severity": "minor",
                "captured_at": CAPTURED,
            },
        )
    ],
    "defect.update": [
        Target(Defect, lambda target, _w, _p: {"id": target, "fields": {"description": "x"}, "base_version": 1})
    ],
    "defect.set_status": [Target(Defect, _status("open", "contained"))],
    "nc.set_status": [Target(NonConformance, _status("open", "contained"))],
    "capa.open": [Target(NonConformance, lambda target, _w, _p: {"id": new_id(), "nc_ids": [target]})],
    "capa.verify": [Target(Capa, lambda target, _w, _p: {"id": target, "criterion": "x", "result": "passed"})],
    "quality_cost.record": [
        Target(
            NonConformance,
            lambda target, _w, _p: {
                "id": new_id(),
                "nc_id": target,
                "category": "internal_failure",
                "amount": "10.00",
                "incurred_at": CAPTURED,
            },
        )
    ],
    "case.set_status": [Target(Case, _status("new", "triaged"))],
    "case.assign": [Target(Case, lambda target, _w, p: {"id": target, "assignee_id": p.user_id})],
    "case.follow": [Target(Case, lambda target, _w, _p: {"id": target})],
    "advisory.approve": [Target(Advisory, lambda target, _w, _p: {"id": target})],
    "advisory.send": [Target(Advisory, lambda target, _w, _p: {"id": target})],
    "advisory.respond": [
        Target(AdvisoryRecipient, lambda target, _w, _p: {"recipient_id": target, "response": "acknowledge"})
    ],
    "remedy.decide": [Target(Remedy, lambda target, _w, _p: {"id": target, "decision": "approve"})],
    "remedy.execute": [Target(Remedy, lambda target, _w, _p: {"id": target})],
    "case.open": [
        Target(ENTITIES["account"], lambda target, _w, _p: {"id": new_id(), "account_id": target, "title": "x"})
    ],
    "message.post": [
        Target(
            Thread,
            lambda target, _w, _p: {"id": new_id(), "thread_id": target, "body": "x", "visibility": "customer"},
        )
    ],
    "message.edit": [Target(Message, lambda target, _w, _p: {"id": target, "body": "x"})],
    "message.delete": [Target(Message, lambda target, _w, _p: {"id": target})],
    "thread.read": [Target(Thread, lambda target, _w, _p: {"thread_id": target, "up_to_seq": 1})],
    "attachment.link": [Target(model, _link_to(entity)) for entity, model in LINKABLE.items()],
    # Only one's own row: anyone else's (here one the user cannot even read) is missing.
    "user.set_locale": [Target(User, lambda target, _w, _p: {"id": target, "locale": "zh-CN"})],
}


def test_every_mutation_has_a_known_target() -> None:
    assert MUTATIONS.keys() - MUTATION_TARGETS.keys() == set(), "say what these mutations are aimed at"
    assert MUTATION_TARGETS.keys() - MUTATIONS.keys() == set(), "targets of mutations that no longer exist"


@pytest.mark.parametrize("role", list(ROLES))
async def test_no_role_changes_an_object_of_another_scope_through_any_mutation(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, world: World, role: str
) -> None:
    device = Device(world_client, await world_login(ROLES[role]))
    principal = await _principal(world_runtime, role)
    mismatches: list[str] = []
    for name, targets in MUTATION_TARGETS.items():
        for target in targets:
            row = await _other_scope_row(world_runtime, target.model, principal)
            if row is None:
                continue
            before = await _changes_by(world_runtime, principal.user_id)
            aimed, missing = [
                await device.push_ok(device.mutation(name, target.args(entity_id, world, principal)))
                for entity_id in (row.id, str(uuid.uuid4()))
            ]
            [other_result], [missing_result] = aimed["results"], missing["results"]
            codes = [(r["status"], (r.get("error") or {}).get("code")) for r in (other_result, missing_result)]
            if codes[0][0] != "rejected" or codes[0] != codes[1]:
                mismatches.append(f"{name} on {target.model.__entity__}: other scope {codes[0]}, missing {codes[1]}")
            if await _changes_by(world_runtime, principal.user_id) != before:
                mismatches.append(f"{name} on {target.model.__entity__}: changed something")
    assert mismatches == []


async def test_every_mutation_target_exists_in_another_scope_for_someone(world_runtime: Runtime, world: World) -> None:
    """Guards the two tests above against passing by finding nothing to aim at."""
    principals = [await _principal(world_runtime, role) for role in ROLES if role != "admin"]
    models = {target.model for targets in MUTATION_TARGETS.values() for target in targets} | {Attachment}
    unexercised = [
        model.__entity__
        for model in models
        if all([await _other_scope_row(world_runtime, model, p) is None for p in principals])
    ]
    assert unexercised == [], "arrange objects of these kinds in a scope some role cannot read"
