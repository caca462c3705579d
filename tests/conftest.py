"""Shared fixtures: one demo world per test session, on SQLite or on PostgreSQL.

Set LOOPLINE_TEST_DATABASE_URL to a PostgreSQL URL to run everything there; every
fresh database is then created beside that one and dropped afterwards.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from loopline.app import create_app
from loopline.core.db import Database
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from tests.support import DEMO_PASSWORD, GENEROUS_LIMITS, FreshDatabase, demo_world

Headers = dict[str, str]
Login = Callable[[str], Awaitable[Headers]]
# A cached access token is replaced this long before it expires.
TOKEN_MARGIN_S = 60


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A migrated database holding the demo data, shared by tests that only read it."""
    with demo_world(tmp_path_factory.mktemp("demo")) as settings:
        yield settings


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[FreshDatabase]:
    """An empty migrated database of this test's own."""
    fresh = FreshDatabase.create(tmp_path, **GENEROUS_LIMITS)
    yield fresh
    fresh.drop()


@pytest.fixture(scope="session")
async def runtime(demo_settings: Settings) -> AsyncIterator[Runtime]:
    """Service-level access to the demo world, for arranging what no endpoint creates yet."""
    rt = Runtime(settings=demo_settings, db=Database.open(demo_settings))
    yield rt
    await rt.db.close()


@pytest.fixture(scope="session")
async def client(demo_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(demo_settings)) as test_client:
        yield test_client


async def sign_in(client: AsyncTestClient[Any], username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


@pytest.fixture(scope="session")
def login(client: AsyncTestClient[Any]) -> Login:
    """`await login("wang.lei")` → bearer headers (one session per user while its token lives).

    A slow run can outlast an access token's lifetime, so a token near its end is replaced.
    """
    cache: dict[str, tuple[Headers, float]] = {}

    async def headers_for(username: str) -> Headers:
        headers, renew_at = cache.get(username, ({}, 0.0))
        if time.monotonic() >= renew_at:
            tokens = await sign_in(client, username)
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            cache[username] = (headers, time.monotonic() + tokens["expires_in"] - TOKEN_MARGIN_S)
        return headers

    return headers_for


@pytest.fixture(scope="session")
async def demo_ids(client: AsyncTestClient[Any], login: Login) -> dict[str, str]:
    """Ids of demo records by their business key (plant, account, lot, shipment codes, usernames)."""
    admin = await login("admin")
    ids: dict[str, str] = {}
    for path, key in [
        ("/api/v1/plants", "code"),
        ("/api/v1/accounts", "code"),
        ("/api/v1/batches", "lot_no"),
        ("/api/v1/shipments", "number"),
        ("/api/v1/product-models", "sku"),
        ("/api/v1/admin/users", "username"),
    ]:
        response = await client.get(path, params={"limit": 500}, headers=admin)
        assert response.status_code == 200, response.text
        ids.update({item[key]: item["id"] for item in response.json()["items"]})
    return ids


# A demo world per test module, for tests that change it (the session world above stays as
# the read-only tests expect it).


@pytest.fixture(scope="module")
def world_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with demo_world(tmp_path_factory.mktemp("world")) as settings:
        yield settings


@pytest.fixture(scope="module")
async def world_client(world_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(world_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
async def world_runtime(world_settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings=world_settings, db=Database.open(world_settings))
    yield rt
    await rt.db.close()


@pytest.fixture(scope="module")
def world_login(world_client: AsyncTestClient[Any]) -> Login:
    """`await world_login("wang.lei")` → bearer headers of a new session in this module's world."""

    async def headers_for(username: str) -> Headers:
        return {"Authorization": f"Bearer {(await sign_in(world_client, username))['access_token']}"}

    return headers_for


@pytest.fixture(scope="session")
def sync_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The demo world once; sync simulations each work on a copy of it (see tests/sync_world.py)."""
    with demo_world(tmp_path_factory.mktemp("sync-template")) as settings:
        yield settings
