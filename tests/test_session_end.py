"""Every way a login session ends ends all of it within a second: REST, refresh, and every
live socket of it (closed with 4401), on the process that ended it and on another one.

The other process hears of it through Redis. Its check of its sockets' sessions is slowed
to a minute here, so only that news can close a socket in time; the last test shows the
check closing a socket of a session whose end nobody announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed

from loopline.core.db import Database, table_of
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.people.models import RefreshToken
from loopline.realtime.frames import CLOSE_SESSION_ENDED
from tests.live_helpers import Live, User
from tests.scaleout import POSTGRES, REDIS, require_scaleout_services
from tests.support import DEMO_PASSWORD, demo_world, running_server

pytestmark = pytest.mark.timeout(300)

ENDED_WITHIN_S = 1.0
NEW_PASSWORD = "a-brand-new-password"
# Only the news of an ending may close a socket within the tests' second, not the periodic check.
SLOW_SESSION_CHECK = ("LOOPLINE_WS_SESSION_CHECK_INTERVAL_S", "60")


@dataclass
class Servers:
    settings: Settings
    ending: str  # the process a session is ended through
    watching: str  # the process its socket is open on


@pytest.fixture(scope="module", params=["one process", "two processes"])
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    data_dir = tmp_path_factory.mktemp("session-end")
    if request.param == "one process":
        with demo_world(data_dir) as settings, running_server(settings, SLOW_SESSION_CHECK) as only:
            yield Servers(settings, only, only)
        return
    require_scaleout_services()
    env = [("LOOPLINE_REDIS_URL", REDIS), SLOW_SESSION_CHECK]
    with (
        demo_world(data_dir, server_url=POSTGRES) as settings,
        running_server(settings, *env) as first,
        running_server(settings, *env) as second,
    ):
        yield Servers(settings, first, second)


def answer(response: httpx.Response) -> tuple[int, str | None]:
    """The status and error code of a response (None when it is no error)."""
    return response.status_code, response.json().get("error", {}).get("code")


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def sign_in(http: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    response = await http.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


@dataclass
class Scene:
    """A session about to end, its socket, and who is around: all on `Servers`."""

    ending: httpx.AsyncClient
    watching: httpx.AsyncClient
    admin: dict[str, Any]
    victim_id: str
    victim_name: str
    victim_account: str  # the account a customer victim belongs to
    # The victim's newest tokens: those that must stop working.
    victim: dict[str, Any]
    # Sessions that must keep working after the ending.
    kept: list[dict[str, Any]] = field(default_factory=list)


async def logout(scene: Scene) -> None:
    response = await scene.ending.post("/api/v1/auth/logout", headers=bearer(scene.victim))
    assert response.status_code == 204, response.text


async def refresh_token_reuse(scene: Scene) -> None:
    copied = scene.victim["refresh_token"]
    rotated = await scene.ending.post("/api/v1/auth/refresh", json={"refresh_token": copied})
    assert rotated.status_code == 200, rotated.text
    scene.victim = rotated.json()
    replayed = await scene.ending.post("/api/v1/auth/refresh", json={"refresh_token": copied})
    assert answer(replayed) == (401, "refresh_token_reused")


async def _patch_victim(scene: Scene, by: dict[str, Any], **changes: Any) -> None:
    response = await scene.ending.patch(f"/api/v1/admin/users/{scene.victim_id}", json=changes, headers=bearer(by))
    assert response.status_code == 200, response.text


async def deactivation(scene: Scene) -> None:
    await _patch_victim(scene, scene.admin, is_active=False)


async def password_reset(scene: Scene) -> None:
    """An administrator sets someone else's password."""
    await _patch_victim(scene, scene.admin, password=NEW_PASSWORD)


async def password_change(scene: Scene) -> None:
    """Administrators change their own password: their other sessions end, the acting one stays."""
    acting = await sign_in(scene.ending, scene.victim_name)
    await _patch_victim(scene, acting, password=NEW_PASSWORD)
    scene.kept.append(acting)


async def erasure(scene: Scene) -> None:
    """The contact behind a customer's portal login is erased, which closes the login."""
    contacts = await scene.ending.get(
        "/api/v1/contacts", params={"account_id": scene.victim_account}, headers=bearer(scene.admin)
    )
    [contact] = [c for c in contacts.json()["items"] if c["email"] == email_of(scene.victim_name)]
    erased = await scene.ending.post(
        f"/api/v1/compliance/contacts/{contact['id']}/erasure",
        json={"reason": "the contact asked"},
        headers=bearer(scene.admin),
    )
    assert erased.status_code == 200, erased.text


@dataclass(frozen=True)
class Way:
    end: Callable[[Scene], Awaitable[None]]
    victim_role: str = "inspector"


WAYS = {
    "logout": Way(logout),
    "refresh-token reuse": Way(refresh_token_reuse),
    "deactivation": Way(deactivation),
    "password change": Way(password_change, "admin"),  # only administrators set their own password
    "password reset": Way(password_reset),
    "erasure": Way(erasure, "customer"),
}


def email_of(username: str) -> str:
    return f"{username}@example.test"


async def new_victim(http: httpx.AsyncClient, admin: dict[str, Any], role: str, account_id: str) -> tuple[str, str]:
    """A new user of `role` (a customer of `account_id`, with a contact of their own there); their id and name."""
    username = f"victim-{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {"username": username, "password": DEMO_PASSWORD, "display_name": username, "role": role}
    if role == "customer":
        body |= {"email": email_of(username), "memberships": [{"kind": "account", "ref": account_id}]}
        contact = {"account_id": account_id, "name": username, "email": email_of(username)}
        created_contact = await http.post("/api/v1/admin/contacts", json=contact, headers=bearer(admin))
        assert created_contact.status_code == 201, created_contact.text
    created = await http.post("/api/v1/admin/users", json=body, headers=bearer(admin))
    assert created.status_code == 201, created.text
    return created.json()["id"], username


async def closed_with(live: Live, within_s: float) -> int | None:
    """The close code the server ended the socket with, waiting `within_s` at most."""
    async with asyncio.timeout(within_s):
        with contextlib.suppress(ConnectionClosed):
            while True:
                await live.socket.recv()
    return live.socket.close_code


@pytest.mark.parametrize("way", WAYS)
async def test_every_way_a_session_ends_ends_rest_refresh_and_its_sockets_within_a_second(
    servers: Servers, way: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=servers.ending, timeout=30) as ending,
        httpx.AsyncClient(base_url=servers.watching, timeout=30) as watching,
    ):
        admin = await sign_in(ending, "admin")
        accounts = await ending.get("/api/v1/accounts", params={"limit": 100}, headers=bearer(admin))
        account_id = next(a["id"] for a in accounts.json()["items"] if a["code"] == "A-003")
        victim_id, victim_name = await new_victim(ending, admin, WAYS[way].victim_role, account_id)
        victim = await sign_in(ending, victim_name)
        scene = Scene(ending, watching, admin, victim_id, victim_name, account_id, victim)
        wang = await User.sign_in(ending, "wang.lei")
        thread_id = await wang.new_thread()
        await wang.post(thread_id, "joining you in", mentions=["lena.fischer"])
        victim_socket = await Live.open(servers.watching, User(watching, bearer(victim)))
        bystander = await Live.open(servers.watching, await User.sign_in(watching, "lena.fischer"))
        await victim_socket.until(lambda live: live.cursor is not None)
        before = await wang.post(thread_id, "before the session ends")
        await bystander.until(lambda live: before in live.message_ids())

        await WAYS[way].end(scene)

        assert await closed_with(victim_socket, ENDED_WITHIN_S) == CLOSE_SESSION_ENDED
        for http in (ending, watching):
            me = await http.get("/api/v1/me", headers=bearer(scene.victim))
            assert answer(me) == (401, "session_ended")
        refreshed = await ending.post("/api/v1/auth/refresh", json={"refresh_token": scene.victim["refresh_token"]})
        assert answer(refreshed) == (401, "session_ended")

        # Nobody else is affected: another user's socket stays open and gets what follows.
        after = await wang.post(thread_id, "after the session ended")
        await bystander.until(lambda live: after in live.message_ids())
        assert bystander.socket.close_code is None
        for kept in scene.kept:
            assert (await ending.get("/api/v1/me", headers=bearer(kept))).status_code == 200
        await bystander.close()


@pytest.fixture(scope="module")
def quickly_checking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    with (
        demo_world(tmp_path_factory.mktemp("session-check")) as settings,
        running_server(settings, ("LOOPLINE_WS_SESSION_CHECK_INTERVAL_S", "0.5")) as base,
    ):
        yield settings, base


async def test_a_socket_whose_session_ended_unannounced_closes_at_the_next_check(
    quickly_checking_server: tuple[Settings, str],
) -> None:
    settings, base = quickly_checking_server
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        tokens = await sign_in(http, "jana.novak")
        live = await Live.open(base, User(http, bearer(tokens)))
        await live.until(lambda live: live.cursor is not None)
        # Revoked behind the server's back (as if the news were lost): no process is told.
        session_id = jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]
        runtime = Runtime(settings=settings, db=Database.open(settings))
        try:
            async with runtime.unit_of_work(actor="test", command="test.revoke_unannounced") as session:
                tokens_table = table_of(RefreshToken)
                await session.execute(
                    update(tokens_table)
                    .where(tokens_table.c.family_id == session_id)
                    .values(revoked_at=datetime.now(UTC))
                )
        finally:
            await runtime.db.close()
        assert await closed_with(live, 0.5 + ENDED_WITHIN_S) == CLOSE_SESSION_ENDED
