"""`user.set_locale`: a user's chosen language is kept on their row and reaches their other devices."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import Login
from tests.sync_helpers import Device


async def _me(client: AsyncTestClient[Any], headers: dict[str, str]) -> dict[str, Any]:
    me: dict[str, Any] = (await client.get("/api/v1/me", headers=headers)).json()["user"]
    return me


async def _results(device: Device, *mutations: dict[str, Any]) -> list[tuple[str, str | None]]:
    body = await device.push_ok(*mutations)
    return [(r["status"], (r.get("error") or {}).get("code")) for r in body["results"]]


async def test_a_user_sets_their_language_and_their_other_device_pulls_it(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    headers = await world_login("wang.lei")
    me = await _me(world_client, headers)
    assert me["locale"] == "", "no language is chosen until the user chooses one"
    tablet, phone = Device(world_client, headers), Device(world_client, await world_login("wang.lei"))
    await phone.pull_all()

    assert await _results(tablet, tablet.mutation("user.set_locale", {"id": me["id"], "locale": "zh-CN"})) == [
        ("applied", None)
    ]
    assert (await _me(world_client, headers))["locale"] == "zh-CN"
    await phone.pull_all()
    assert phone.read_model[("user", me["id"])][1]["locale"] == "zh-CN"
    # The same choice again changes nothing (a resend after a lost answer, or a second tap).
    version = phone.read_model[("user", me["id"])][0]
    assert await _results(tablet, tablet.mutation("user.set_locale", {"id": me["id"], "locale": "zh-CN"})) == [
        ("applied", None)
    ]
    await phone.pull_all()
    assert phone.read_model[("user", me["id"])][0] == version


async def test_a_customer_sets_their_own_language_too(world_client: AsyncTestClient[Any], world_login: Login) -> None:
    headers = await world_login("gil.workshop")
    me = await _me(world_client, headers)
    device = Device(world_client, headers)
    assert await _results(device, device.mutation("user.set_locale", {"id": me["id"], "locale": "en"})) == [
        ("applied", None)
    ]
    assert (await _me(world_client, headers))["locale"] == "en"


async def test_nobody_sets_a_colleagues_language_or_one_the_app_does_not_speak(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    supervisor = await _me(world_client, await world_login("qa.manager"))
    wang = Device(world_client, await world_login("wang.lei"))
    me = await _me(world_client, wang.headers)
    before = supervisor["locale"]
    assert await _results(
        wang,
        # A colleague wang.lei reads (they share a plant), but whose row is not his to change.
        wang.mutation("user.set_locale", {"id": supervisor["id"], "locale": "zh-CN"}),
        wang.mutation("user.set_locale", {"id": me["id"], "locale": "fr"}),
        wang.mutation("user.set_locale", {"id": me["id"], "locale": "en", "role": "admin"}),
    ) == [("rejected", "forbidden"), ("rejected", "validation_error"), ("rejected", "validation_error")]
    assert (await _me(world_client, await world_login("qa.manager")))["locale"] == before
