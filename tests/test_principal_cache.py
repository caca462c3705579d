"""The principal cache: requests skip the session check, yet logout and role or membership changes count at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from loopline.app import PRINCIPAL_CACHE_TTL_S, PRINCIPAL_TABLES, create_app
from loopline.core.access import Principal, Role
from loopline.core.auth import PrincipalCache
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.people import service as people_service
from loopline.people.models import Membership, MembershipKind, User
from tests.conftest import sign_in
from tests.support import DEMO_PASSWORD, FreshDatabase


@pytest.fixture
async def runtime(fresh_database: FreshDatabase) -> AsyncIterator[Runtime]:
    """Writes from an engine of its own, as a command or another part of the process would."""
    rt = Runtime(settings=fresh_database.settings, db=Database.open(fresh_database.settings))
    for username, role in [("pc.inspector", Role.INSPECTOR), ("pc.admin", Role.ADMIN)]:
        await people_service.create_user(
            rt,
            actor="test",
            username=username,
            password=DEMO_PASSWORD,
            display_name=username,
            role=role,
            memberships=[(MembershipKind.PLANT, "P1")] if role is Role.INSPECTOR else [],
        )
    yield rt
    await rt.db.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(runtime.settings)) as test_client:
        yield test_client


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_logout_ends_the_session_for_the_next_request(client: AsyncTestClient[Any]) -> None:
    tokens = await sign_in(client, "pc.inspector")
    for _ in range(2):  # the second answer comes from the cache
        assert (await client.get("/api/v1/me", headers=bearer(tokens))).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens))).status_code == 204
    after = await client.get("/api/v1/me", headers=bearer(tokens))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "session_ended"


async def test_a_deactivated_user_is_refused_at_the_next_request(client: AsyncTestClient[Any]) -> None:
    user = await sign_in(client, "pc.inspector")
    admin = await sign_in(client, "pc.admin")
    me = await client.get("/api/v1/me", headers=bearer(user))
    user_id = me.json()["user"]["id"]
    patched = await client.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False}, headers=bearer(admin))
    assert patched.status_code == 200
    after = await client.get("/api/v1/me", headers=bearer(user))
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "session_ended"


async def test_membership_and_role_changes_count_at_the_next_request(
    client: AsyncTestClient[Any], runtime: Runtime
) -> None:
    tokens = await sign_in(client, "pc.inspector")
    me = (await client.get("/api/v1/me", headers=bearer(tokens))).json()
    assert me["plant_ids"] == ["P1"]
    assert (await client.get("/api/v1/admin/users", headers=bearer(tokens))).status_code == 403

    async with runtime.unit_of_work(actor="test", command="test.membership") as session:
        session.add(Membership(user_id=me["user"]["id"], kind=MembershipKind.PLANT, ref="P2"))
    assert (await client.get("/api/v1/me", headers=bearer(tokens))).json()["plant_ids"] == ["P1", "P2"]

    async with runtime.unit_of_work(actor="test", command="test.role") as session:
        user = await session.get(User, me["user"]["id"])
        assert user is not None
        user.role = Role.ADMIN
    assert (await client.get("/api/v1/admin/users", headers=bearer(tokens))).status_code == 200


async def test_the_cache_answers_until_a_principal_table_is_written(runtime: Runtime) -> None:
    """Without this, the tests above would pass with no cache at all."""
    cache = PrincipalCache(runtime.clock, tables=PRINCIPAL_TABLES, ttl_s=PRINCIPAL_CACHE_TTL_S)
    pair = await people_service.login(runtime, username="pc.inspector", password=DEMO_PASSWORD, address="test")
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    loads: list[Principal | None] = []

    async def load() -> Principal | None:
        loads.append(await people_service.load_principal(runtime, claims))
        return loads[-1]

    first = await cache.resolve(claims, load)
    assert first is not None
    assert await cache.resolve(claims, load) == first
    assert len(loads) == 1

    # A write elsewhere (the audit chain only) leaves the principals alone.
    uow = runtime.unit_of_work(actor="test", command="test.unrelated")
    async with uow:
        uow.audit(entity="test", entity_id="x", action="test.unrelated")
    await cache.resolve(claims, load)
    assert len(loads) == 1

    async with runtime.unit_of_work(actor="test", command="test.membership") as session:
        session.add(Membership(user_id=first.user_id, kind=MembershipKind.PLANT, ref="P3"))
    again = await cache.resolve(claims, load)
    assert len(loads) == 2
    assert again is not None
    assert again.plant_ids == frozenset({"P1", "P3"})
