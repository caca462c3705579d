"""The user directory reaches staff devices only as far as the people they work with."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.catalog.models import Plant
from loopline.core.runtime import Runtime
from loopline.people.models import Membership
from tests.conftest import Login
from tests.sync_helpers import Device

STAFF = ["wang.lei", "jana.novak", "lena.fischer", "marcus.reed", "lucia.martin", "kenji.sato", "diego.ruiz"]


def _usernames(device: Device) -> set[str]:
    return {data["username"] for (entity, _), (_, data) in device.read_model.items() if entity == "user"}


async def _synced(client: AsyncTestClient[Any], login: Login, username: str) -> Device:
    device = Device(client, await login(username))
    await device.pull_all()
    return device


async def test_staff_pull_the_people_they_work_with_and_nobody_the_whole_directory(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    pulled = {username: _usernames(await _synced(world_client, world_login, username)) for username in STAFF}

    # Colleagues in the plant; the supervisor of both plants; nobody of the other plant or of any account.
    assert pulled["wang.lei"] == {"wang.lei", "qa.manager"}
    assert pulled["jana.novak"] == {"jana.novak", "qa.manager"}
    # A rep gets their accounts' portal users; the other reps never do.
    assert "gil.workshop" in pulled["lucia.martin"]
    assert [who for who, names in pulled.items() if "gil.workshop" in names] == ["lucia.martin"]
    everybody = _usernames(await _synced(world_client, world_login, "admin"))
    assert all(names < everybody for names in pulled.values())


async def test_a_new_colleague_arrives_and_a_departed_one_is_deleted_without_a_reset(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    async with world_runtime.db.read_session() as session:
        suzhou = await session.scalar(select(Plant.id).where(Plant.code == "CN-SZ"))
    wang, lena = (
        await _synced(world_client, world_login, "wang.lei"),
        await _synced(world_client, world_login, "lena.fischer"),
    )
    admin = await world_login("admin")
    created = await world_client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={
            "username": "li.na",
            "password": "loopline-demo",
            "display_name": "Li Na",
            "email": "li.na@nordlicht.example",
            "role": "inspector",
            "memberships": [{"kind": "plant", "ref": suzhou}],
        },
    )
    assert created.status_code == 201, created.text
    page = await wang.pull_page()
    assert page["reset_required"] is False
    assert "li.na" in _usernames(wang)
    await lena.pull_all()
    assert "li.na" not in _usernames(lena)

    # No endpoint ends a membership yet; the write path is the same.
    async with world_runtime.unit_of_work(actor="test", command="test.leave_plant") as session:
        for membership in await session.scalars(select(Membership).where(Membership.user_id == created.json()["id"])):
            await session.delete(membership)
    page = await wang.pull_page()
    assert page["reset_required"] is False
    assert ("user", created.json()["id"]) in {(c["entity"], c["id"]) for c in page["changes"] if c["op"] == "delete"}
    assert "li.na" not in _usernames(wang)
