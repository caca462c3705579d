"""The sync protocol's server rules, spoken over real HTTP against the real database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.changelog import ChangeLog
from loopline.core.clock import FrozenClock
from loopline.core.db import Database
from loopline.core.entity import account_scope
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.customer.models import Account
from loopline.people.models import Membership, MembershipKind
from loopline.quality.models import DefectConflict
from loopline.syncing.compaction import compact
from loopline.threads.models import Message, SubjectType
from loopline.threads.service import open_thread
from tests.conftest import Login
from tests.support import cli
from tests.sync_helpers import Device, new_id, principal_of_token, server_state

LOT_018 = "CN-SZ-L2-2406-018"


@pytest.fixture(scope="module")
async def ids(world_client: AsyncTestClient[Any], world_login: Login) -> dict[str, str]:
    admin = await world_login("admin")
    found: dict[str, str] = {}
    for path, key in [
        ("/api/v1/batches", "lot_no"),
        ("/api/v1/inspection-plans", "code"),
        ("/api/v1/plants", "code"),
        ("/api/v1/admin/users", "username"),
    ]:
        items = (await world_client.get(path, headers=admin, params={"limit": 500})).json()["items"]
        found.update({item[key]: item["id"] for item in items})
    return found


async def device(client: AsyncTestClient[Any], login: Login, username: str) -> Device:
    return Device(client, await login(username))


async def principal_of(runtime: Runtime, device: Device) -> Principal:
    return await principal_of_token(runtime, device.headers["Authorization"].split()[1])


def report_defect(ids: dict[str, str], defect_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": defect_id,
        "batch_id": ids[LOT_018],
        "defect_code": "CC-THIN",
        "severity": "major",
        "description": "thin coating at the connector edge",
        "qty_affected": 2,
        "captured_at": "2024-06-17T08:12:00Z",
        **extra,
    }


async def defect_thread(client: AsyncTestClient[Any], headers: dict[str, str], defect_id: str) -> str:
    threads = (
        await client.get("/api/v1/threads", headers=headers, params={"subject_type": "defect", "subject_id": defect_id})
    ).json()["items"]
    thread_id: str = threads[0]["thread"]["id"]
    return thread_id


async def test_the_same_push_three_times_applies_once(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    defect_id = new_id()
    report = wang.mutation("defect.report", report_defect(ids, defect_id))
    await wang.push_ok(report)
    thread_id = await defect_thread(world_client, wang.headers, defect_id)
    batch = [report, wang.mutation("message.post", {"id": new_id(), "thread_id": thread_id, "body": "photo attached"})]
    # The device never saw the answers (dropped after the commit) and sends the same batch again.
    responses = [await wang.push_ok(*batch) for _ in range(3)]
    assert [r["last_mid"] for r in responses] == [2, 2, 2]
    assert [[r["status"] for r in response["results"]] for response in responses] == [
        ["duplicate", "applied"],
        ["duplicate", "duplicate"],
        ["duplicate", "duplicate"],
    ]
    assert {response["results"][1]["version"] for response in responses} == {1}
    assert responses[2]["results"][1]["original_status"] == "applied"
    async with world_runtime.db.read_session() as session:
        posted = (await session.scalars(select(Message).where(Message.thread_id == thread_id))).all()
    assert [m.thread_seq for m in posted] == [1]


async def test_a_gap_fails_the_whole_push_and_names_the_expected_mid(
    world_client: AsyncTestClient[Any], world_login: Login, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    for mid in (1, 2, 3, 4):
        await wang.push_ok(wang.mutation("defect.report", report_defect(ids, new_id()), mid=mid))
    gap = await wang.push([wang.mutation("defect.report", report_defect(ids, new_id()), mid=m) for m in (6, 7, 8)])
    assert gap.status_code == 409
    assert gap.json()["error"] == {
        "code": "mutation_gap",
        "message": gap.json()["error"]["message"],
        "details": {"expected_mid": 5},
    }
    recovered = await wang.push_ok(
        *[wang.mutation("defect.report", report_defect(ids, new_id()), mid=m) for m in (5, 6, 7, 8)]
    )
    assert recovered["last_mid"] == 8
    assert {r["status"] for r in recovered["results"]} == {"applied"}


async def test_a_poison_mutation_is_rejected_and_the_rest_of_the_push_applies(
    world_client: AsyncTestClient[Any], world_login: Login, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    poison = wang.mutation("defect.report", report_defect(ids, new_id(), defect_code="NO-SUCH-CODE"))
    valid = [wang.mutation("defect.report", report_defect(ids, new_id())) for _ in range(10)]
    response = await wang.push_ok(poison, *valid)
    assert response["last_mid"] == 11
    assert response["results"][0]["status"] == "rejected"
    assert response["results"][0]["error"]["code"] == "unknown_defect_code"
    assert [r["status"] for r in response["results"][1:]] == ["applied"] * 10


async def test_oversized_pushes_get_413(
    world_client: AsyncTestClient[Any], world_login: Login, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    too_many = await wang.push(
        [wang.mutation("thread.read", {"thread_id": "x", "up_to_seq": 0}, mid=m) for m in range(1, 502)]
    )
    assert too_many.status_code == 413
    too_big = await wang.push(
        [
            wang.mutation("defect.report", report_defect(ids, new_id(), description="x" * 4000), mid=m)
            for m in range(1, 300)
        ]
    )
    assert too_big.status_code == 413


async def test_a_device_belongs_to_its_first_user(world_client: AsyncTestClient[Any], world_login: Login) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    await wang.pull_page()
    jana = Device(world_client, await world_login("jana.novak"))
    jana.client_id = wang.client_id
    for attempt in (
        await jana.push([]),
        await jana.client.post(
            "/api/v1/sync/pull",
            headers=jana.headers,
            json={"client_id": wang.client_id, "schema_version": 1, "cursor": None, "limit": 10},
        ),
    ):
        assert attempt.status_code == 403
        assert attempt.json()["error"]["code"] == "client_owned_by_other_user"
    assert (await wang.push([])).status_code == 200


async def test_status_commands_apply_once_and_reject_stale_transitions(
    world_client: AsyncTestClient[Any], world_login: Login, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    qa = await device(world_client, world_login, "qa.manager")
    defect_id = new_id()
    await wang.push_ok(wang.mutation("defect.report", report_defect(ids, defect_id)))
    contain = {"id": defect_id, "from": "open", "to": "contained"}
    first = await wang.push_ok(wang.mutation("defect.set_status", contain))
    again = await qa.push_ok(qa.mutation("defect.set_status", contain))
    stale = await qa.push_ok(qa.mutation("defect.set_status", {"id": defect_id, "from": "open", "to": "closed"}))
    assert first["results"][0]["status"] == again["results"][0]["status"] == "applied"
    assert first["results"][0]["version"] == again["results"][0]["version"] == 2
    assert stale["results"][0]["status"] == "rejected"
    assert stale["results"][0]["error"]["code"] == "stale_transition"
    assert stale["results"][0]["error"]["details"] == {"current": "contained"}
    for d in (wang, qa):
        await d.pull_all()
    assert wang.read_model[("defect", defect_id)] == qa.read_model[("defect", defect_id)]
    assert wang.read_model[("defect", defect_id)][1]["status"] == "contained"


async def test_offline_edits_of_one_defect_merge_per_field_and_record_a_conflict(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    qa = await device(world_client, world_login, "qa.manager")
    defect_id = new_id()
    await wang.push_ok(wang.mutation("defect.report", report_defect(ids, defect_id)))
    # Both edit offline from version 1: different fields, then the same field.
    await wang.push_ok(
        wang.mutation(
            "defect.update", {"id": defect_id, "fields": {"qty_affected": 4, "description": "wang"}, "base_version": 1}
        )
    )
    merged = await qa.push_ok(
        qa.mutation(
            "defect.update",
            {"id": defect_id, "fields": {"severity": "critical", "description": "qa"}, "base_version": 1},
        )
    )
    assert merged["results"][0]["status"] == "applied"
    for d in (wang, qa):
        await d.pull_all()
    state = wang.read_model[("defect", defect_id)][1]
    assert (state["qty_affected"], state["severity"], state["description"]) == (4, "critical", "qa")
    assert wang.read_model[("defect", defect_id)] == qa.read_model[("defect", defect_id)]
    async with world_runtime.db.read_session() as session:
        conflicts = (await session.scalars(select(DefectConflict).where(DefectConflict.defect_id == defect_id))).all()
    assert [(c.field, c.base_version) for c in conflicts] == [("description", 1)]
    users = ids["wang.lei"], ids["qa.manager"]
    assert [(e["user_id"], e["value"]) for e in conflicts[0].edits] == [(users[0], "wang"), (users[1], "qa")]


async def test_customers_never_receive_internal_messages(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:

    async with world_runtime.unit_of_work(actor="test") as session:
        account = (await session.scalars(select(Account).where(Account.code == "A-003"))).one()
        gil_id = (
            await session.scalars(
                select(Membership.user_id).where(
                    Membership.ref == account.id, Membership.kind == MembershipKind.ACCOUNT
                )
            )
        ).all()
        thread_id = await open_thread(
            session,
            subject_type=SubjectType.CASE,
            subject_id=new_id(),
            subject_scope=account_scope(account.id),
            title="Flicker",
            participants=[(u, "customer") for u in gil_id],
        )
    lucia = await device(world_client, world_login, "lucia.martin")
    gil = await device(world_client, world_login, "gil.workshop")
    await lucia.push_ok(
        lucia.mutation(
            "message.post",
            {"id": new_id(), "thread_id": thread_id, "body": "internal: check lot 018", "visibility": "internal"},
        ),
        lucia.mutation(
            "message.post", {"id": new_id(), "thread_id": thread_id, "body": "We are on it.", "visibility": "customer"}
        ),
    )
    await gil.pull_all()
    bodies = [data["body"] for (entity, _), (_, data) in gil.read_model.items() if entity == "message"]
    assert bodies == ["We are on it."]
    assert await server_state(world_runtime, await principal_of(world_runtime, gil)) == gil.read_model


async def test_pull_scopes_lost_scopes_and_resumed_pages(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    jana = await device(world_client, world_login, "jana.novak")
    await wang.pull_all(limit=7)
    plants = {data["plant_id"] for (entity, _), (_, data) in wang.read_model.items() if entity == "batch"}
    assert plants == {ids["CN-SZ"]}
    assert await server_state(world_runtime, await principal_of(world_runtime, wang)) == wang.read_model

    # Writes land between pages of a pull; the resumed pull ends equal to the server's state.
    await jana.pull_page(limit=5)
    for _ in range(3):
        await wang.push_ok(wang.mutation("defect.report", report_defect(ids, new_id())))
        await jana.pull_page(limit=5)
    await jana.pull_all(limit=5)
    assert await server_state(world_runtime, await principal_of(world_runtime, jana)) == jana.read_model
    shop_floor = {"batch", "inspection", "measurement", "defect", "nonconformance"}
    assert not any(
        entity in shop_floor and data["plant_id"] == ids["CN-SZ"] for (entity, _), (_, data) in jana.read_model.items()
    )

    # Wang loses CN-SZ: what he could read only through it arrives as deletes.
    async with world_runtime.unit_of_work(actor="test") as session:
        membership = (
            await session.scalars(
                select(Membership).where(Membership.user_id == ids["wang.lei"], Membership.ref == ids["CN-SZ"])
            )
        ).one()
        await session.delete(membership)
    await wang.pull_all()
    assert not any(entity in {"batch", "inspection", "defect"} for entity, _ in wang.read_model)
    assert await server_state(world_runtime, await principal_of(world_runtime, wang)) == wang.read_model

    # Regaining it cannot be sent as a diff of the log: the device rebuilds, keeping its outbox.
    async with world_runtime.unit_of_work(actor="test") as session:
        session.add(Membership(user_id=ids["wang.lei"], kind=MembershipKind.PLANT, ref=ids["CN-SZ"]))
    assert (await wang.pull_page())["reset_required"] is True
    await wang.pull_all()
    assert await server_state(world_runtime, await principal_of(world_runtime, wang)) == wang.read_model


async def test_new_epoch_resets_and_old_clients_are_told(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, world_settings: Settings
) -> None:
    wang = await device(world_client, world_login, "jana.novak")
    await wang.pull_all()
    # The operator restored a backup and starts a new epoch.
    assert "sync epoch is now" in cli(world_settings, "sync", "new-epoch").stdout
    page = await wang.pull_page()
    assert page["reset_required"] is True
    await wang.pull_all()
    assert await server_state(world_runtime, await principal_of(world_runtime, wang)) == wang.read_model

    too_old = await wang.client.post(
        "/api/v1/sync/pull", headers=wang.headers, json={"client_id": wang.client_id, "schema_version": 0, "limit": 10}
    )
    assert (too_old.status_code, too_old.json()["error"]["code"]) == (426, "client_too_old")


async def test_pushes_of_the_previous_schema_are_upcast(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    defect_id = new_id()
    args = report_defect(ids, defect_id)
    args["qty"] = args.pop("qty_affected")
    response = await wang.push([wang.mutation("defect.report", args)], schema_version=0)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "applied", response.text
    thread_id = await defect_thread(world_client, wang.headers, defect_id)
    old_shape = {"id": new_id(), "thread_id": thread_id, "text": "v0 text"}
    upcast = await wang.push([wang.mutation("message.post", old_shape)], schema_version=0)
    assert upcast.json()["results"][0]["status"] == "applied", upcast.text
    current = await wang.push([wang.mutation("message.post", {**old_shape, "id": new_id()})], schema_version=1)
    assert current.json()["results"][0]["error"]["code"] == "validation_error"
    async with world_runtime.db.read_session() as session:
        bodies = (
            await session.scalars(
                select(Message.body).where(Message.thread_id == thread_id).order_by(col(Message.thread_seq))
            )
        ).all()
    assert list(bodies) == ["v0 text"]


async def test_an_initial_sync_carries_the_newest_200_messages_of_a_thread(
    world_client: AsyncTestClient[Any], world_login: Login, ids: dict[str, str]
) -> None:
    wang = await device(world_client, world_login, "wang.lei")
    defect_id = new_id()
    await wang.push_ok(wang.mutation("defect.report", report_defect(ids, defect_id)))
    thread_id = await defect_thread(world_client, wang.headers, defect_id)
    posts = [
        wang.mutation("message.post", {"id": new_id(), "thread_id": thread_id, "body": f"#{n}"}) for n in range(205)
    ]
    await wang.push_ok(*posts)
    tablet = await device(world_client, world_login, "wang.lei")
    await tablet.pull_all(limit=97)
    seqs = sorted(
        data["thread_seq"]
        for (entity, _), (_, data) in tablet.read_model.items()
        if entity == "message" and data["thread_id"] == thread_id
    )
    assert seqs == list(range(6, 206))


async def test_compaction_keeps_current_state_and_resets_cursors_behind_it(
    world_client: AsyncTestClient[Any],
    world_login: Login,
    world_runtime: Runtime,
    world_settings: Settings,
    ids: dict[str, str],
) -> None:

    wang = await device(world_client, world_login, "wang.lei")
    defect_id = new_id()
    await wang.push_ok(wang.mutation("defect.report", report_defect(ids, defect_id)))
    await wang.pull_all()  # this device is now behind what compaction will remove
    for n in range(1, 4):
        await wang.push_ok(
            wang.mutation("defect.update", {"id": defect_id, "fields": {"qty_affected": 10 + n}, "base_version": n})
        )
    async with world_runtime.db.read_session() as session:
        rows_before = await session.scalar(select(func.count()).select_from(ChangeLog))

    later = Runtime(
        settings=world_settings,
        db=Database.open(world_settings),
        clock=FrozenClock(world_runtime.clock.now() + timedelta(days=91)),
    )
    report = await compact(later)
    await later.db.close()
    assert report.superseded >= 3
    async with world_runtime.db.read_session() as session:
        rows_after = await session.scalar(select(func.count()).select_from(ChangeLog))
    assert rows_after is not None
    assert rows_before is not None
    assert rows_after < rows_before

    assert (await wang.pull_page())["reset_required"] is True
    await wang.pull_all()
    assert wang.read_model[("defect", defect_id)][1]["qty_affected"] == 13
    assert await server_state(world_runtime, await principal_of(world_runtime, wang)) == wang.read_model
    fresh = await device(world_client, world_login, "qa.manager")
    await fresh.pull_all()
    assert await server_state(world_runtime, await principal_of(world_runtime, fresh)) == fresh.read_model
