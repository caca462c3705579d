"""Input that would be stored and then mislead: unknown time zones, customers in plants."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Login


def _refused(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "Europe/Berlin ", "../../etc/passwd", "", "CET+1"])
async def test_a_plant_in_an_unknown_time_zone_is_refused_on_create_and_on_change(
    world_client: AsyncTestClient[Any], world_login: Login, tz: str
) -> None:
    admin = await world_login("admin")
    code = "TZ-REFUSED"
    create = await world_client.post(
        "/api/v1/admin/plants", headers=admin, json={"code": code, "name": "Zoned", "country": "DE", "tz": tz}
    )
    assert _refused(create, "unknown_time_zone")["details"] == {"field": "tz", "value": tz}
    plants = (await world_client.get("/api/v1/plants", headers=admin, params={"limit": 500})).json()["items"]
    assert code not in {p["code"] for p in plants}

    suzhou = next(p for p in plants if p["code"] == "CN-SZ")
    change = await world_client.patch(f"/api/v1/admin/plants/{suzhou['id']}", headers=admin, json={"tz": tz})
    _refused(change, "unknown_time_zone")
    after = (await world_client.get(f"/api/v1/plants/{suzhou['id']}", headers=admin)).json()
    assert (after["tz"], after["version"]) == (suzhou["tz"], suzhou["version"])


async def test_a_known_time_zone_is_kept(world_client: AsyncTestClient[Any], world_login: Login) -> None:
    admin = await world_login("admin")
    created = await world_client.post(
        "/api/v1/admin/plants",
        headers=admin,
        json={"code": "TZ-OK", "name": "Zoned", "country": "CZ", "tz": "Europe/Prague"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["tz"] == "Europe/Prague"


@pytest.mark.parametrize("kind", ["plant", "region"])
async def test_a_customer_user_belongs_to_accounts_only(
    world_client: AsyncTestClient[Any], world_login: Login, kind: str
) -> None:
    admin = await world_login("admin")
    plants = (await world_client.get("/api/v1/plants", headers=admin)).json()["items"]
    accounts = (await world_client.get("/api/v1/accounts", headers=admin)).json()["items"]
    ref = plants[0]["id"] if kind == "plant" else "EU"
    username = f"portal.{kind}"
    response = await world_client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={
            "username": username,
            "password": "loopline-demo",
            "display_name": "Portal user",
            "role": "customer",
            "memberships": [{"kind": "account", "ref": accounts[0]["id"]}, {"kind": kind, "ref": ref}],
        },
    )
    assert _refused(response, "invalid_membership")["details"] == {"role": "customer", "kinds": [kind]}
    users = (await world_client.get("/api/v1/admin/users", headers=admin, params={"limit": 500})).json()["items"]
    assert username not in {u["username"] for u in users}
