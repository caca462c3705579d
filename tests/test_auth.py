"""Sign-in, token expiry, refresh rotation with reuse detection, logout, rate limits."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
from litestar.testing import AsyncTestClient

from loopline.app import create_app
from loopline.core.access import Role
from loopline.core.auth import NotAuthenticated, VerifiedTokens, issue_access_token
from loopline.core.client_address import TrustedProxies
from loopline.core.clock import FrozenClock
from loopline.core.db import Database
from loopline.core.ratelimit import REDIS_PREFIX
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.people.service import create_user
from tests.conftest import sign_in
from tests.support import GENEROUS_LIMITS, FreshDatabase, running_server

REDIS_URL = os.environ.get("LOOPLINE_SCALEOUT_REDIS", "redis://127.0.0.1:6379/0")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_returns_a_short_lived_bearer_token_pair(client: AsyncTestClient[Any]) -> None:
    tokens = await sign_in(client, "wang.lei")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60
    me = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "wang.lei"
    assert me.json()["user"]["role"] == "inspector"
    assert "password_hash" not in me.text


async def test_wrong_password_and_unknown_user_look_the_same(client: AsyncTestClient[Any]) -> None:
    wrong = await client.post("/api/v1/auth/login", json={"username": "wang.lei", "password": "nope"})
    unknown = await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "invalid_credentials"


async def test_requests_without_a_valid_token_are_refused(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/api/v1/me")).json()["error"]["code"] == "not_authenticated"
    forged = jwt.encode({"sub": "x", "sid": "y", "exp": 4102444800, "aud": "loopline-api"}, "not-the-key-" * 4)
    response = await client.get("/api/v1/me", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_an_expired_access_token_is_refused_with_its_own_code(
    client: AsyncTestClient[Any], demo_settings: Settings
) -> None:
    tokens = await sign_in(client, "wang.lei")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    sixteen_minutes_ago = datetime.now(UTC) - timedelta(minutes=16)
    expired = issue_access_token(
        secret=demo_settings.secret_key,
        user_id=claims["sub"],
        session_id=claims["sid"],
        now=sixteen_minutes_ago,
        ttl_s=15 * 60,
    )
    response = await client.get("/api/v1/me", headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"
    # The session itself is alive: the refresh token still works.
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


def test_a_verified_token_is_refused_from_the_second_it_expires_and_a_forged_one_is_never_taken() -> None:
    secret = "a-secret-of-thirty-two-bytes-at-least"
    issued_at = datetime.now(UTC).replace(microsecond=0)
    token = issue_access_token(secret=secret, user_id="u1", session_id="s1", now=issued_at, ttl_s=60)
    now = [issued_at.timestamp()]
    tokens = VerifiedTokens(secret, now=lambda: now[0])
    assert tokens.claims(token)["sub"] == "u1"
    now[0] += 59
    assert tokens.claims(token)["sid"] == "s1"  # from the cache: the signature is not checked again
    now[0] += 1
    with pytest.raises(NotAuthenticated) as expired:
        tokens.claims(token)
    assert expired.value.code == "token_expired"
    other_key = issue_access_token(secret="x" * 40, user_id="u1", session_id="s1", now=issued_at, ttl_s=60)
    with pytest.raises(NotAuthenticated) as forged:
        tokens.claims(other_key)
    assert forged.value.code == "invalid_token"


async def test_refresh_rotates_and_reuse_of_an_old_token_ends_the_session(client: AsyncTestClient[Any]) -> None:
    first = await sign_in(client, "jana.novak")
    second = (await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = (await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()
    assert (await client.get("/api/v1/me", headers=bearer(third["access_token"]))).status_code == 200

    # An attacker replays the first (already rotated) token.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"

    # The whole family is revoked: the newest refresh token and the live access token stop working.
    latest = await client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert latest.status_code == 401
    assert latest.json()["error"]["code"] == "session_ended"
    me = await client.get("/api/v1/me", headers=bearer(third["access_token"]))
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "session_ended"

    # Other sessions of the same user are untouched.
    other = await sign_in(client, "jana.novak")
    assert (await client.get("/api/v1/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_logout_ends_the_session_at_once(client: AsyncTestClient[Any]) -> None:
    tokens = await sign_in(client, "kenji.sato")
    assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))).status_code == 401
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    assert refreshed.json()["error"]["code"] == "session_ended"


async def test_unknown_refresh_token_is_refused(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_refresh_token"


async def test_login_is_rate_limited_per_user_and_per_address(fresh_database: FreshDatabase) -> None:
    settings = Settings(
        **{**fresh_database.settings.__dict__, "login_attempts_per_user": 3, "login_attempts_per_address": 5}
    )
    clock = FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    runtime = Runtime(settings=settings, db=Database.open(settings), clock=clock)
    for name in ("ana", "ben"):
        await create_user(
            runtime, actor="test", username=name, password="correct-horse", display_name=name, role=Role.INSPECTOR
        )
    await runtime.db.close()

    async with AsyncTestClient(create_app(settings, clock=clock)) as api:

        async def attempt(username: str, password: str = "wrong-password") -> Any:
            return await api.post("/api/v1/auth/login", json={"username": username, "password": password})

        assert [(await attempt("ana")).status_code for _ in range(3)] == [401, 401, 401]
        blocked = await attempt("ana", "correct-horse")
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "rate_limited"
        assert int(blocked.headers["Retry-After"]) > 0

        # Another user from the same address still has attempts left, until the address limit.
        assert (await attempt("ben", "correct-horse")).status_code == 200
        assert (await attempt("ben")).status_code == 401
        per_address = await attempt("ben", "correct-horse")
        assert per_address.status_code == 429

        clock.advance(timedelta(seconds=settings.login_window_s + 1))
        assert (await attempt("ana", "correct-horse")).status_code == 200


def test_the_client_address_is_read_from_the_right_past_trusted_proxies_only() -> None:
    proxies = TrustedProxies.from_setting("10.0.0.5, fd00::/8,192.168.0.0/16")
    # A peer that is not a trusted proxy is the client, whatever its header says.
    assert proxies.client("203.0.113.9", ["1.1.1.1"]) == "203.0.113.9"
    # Behind trusted proxies: the right-most address that is not one; entries to its left are the client's own.
    assert proxies.client("10.0.0.5", ["6.6.6.6", " 198.51.100.7"]) == "198.51.100.7"
    assert proxies.client("10.0.0.5", ["6.6.6.6", "198.51.100.7", "192.168.3.4", "fd00::9"]) == "198.51.100.7"
    assert proxies.client("::ffff:10.0.0.5", ["2001:DB8::1"]) == "2001:db8::1"
    assert proxies.client("10.0.0.5", []) == "10.0.0.5"
    assert proxies.client("10.0.0.5", ["192.168.1.1"]) == "192.168.1.1"
    assert TrustedProxies.from_setting("").client("127.0.0.1", ["6.6.6.6"]) == "127.0.0.1"
    with pytest.raises(ValueError, match="LOOPLINE_TRUSTED_PROXIES"):
        TrustedProxies.from_setting("10.0.0.5,proxy.internal")


def attempts_from(base: str, forwarded_for: list[str]) -> list[int]:
    """A wrong password from each X-Forwarded-For value in turn, over real HTTP; the status codes."""
    return [
        httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": f"nobody-{n}", "password": "wrong-password"},
            headers={"X-Forwarded-For": value},
        ).status_code
        for n, value in enumerate(forwarded_for)
    ]


@pytest.mark.slow
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    fresh = FreshDatabase.create(tmp_path, **{**GENEROUS_LIMITS, "login_attempts_per_address": 3})
    try:
        # Nobody is trusted: made-up addresses are all the one peer, 127.0.0.1.
        with running_server(fresh.settings) as base:
            assert attempts_from(base, [f"198.51.100.{n}" for n in range(4)]) == [401, 401, 401, 429]
        # Behind a trusted proxy each client has its own allowance, and what a client writes
        # to the left of the proxy's entry does not change who it is.
        with running_server(fresh.settings, ("LOOPLINE_TRUSTED_PROXIES", "127.0.0.0/8")) as base:
            spoofing = [f"10.9.9.{n}, 198.51.100.1" for n in range(4)]
            assert attempts_from(base, spoofing) == [401, 401, 401, 429]
            assert attempts_from(base, ["198.51.100.2"]) == [401], "another client is not held up"
    finally:
        fresh.drop()


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping())
    except redis.RedisError:
        return False


async def test_with_redis_the_sign_in_counts_survive_a_restart(fresh_database: FreshDatabase) -> None:
    if not redis_reachable():
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    username = f"restart-{uuid.uuid4().hex[:8]}"
    settings = replace(fresh_database.settings, redis_url=REDIS_URL, login_attempts_per_user=2)
    clock = FrozenClock(datetime.now(UTC))

    async def attempt() -> int:
        async with AsyncTestClient(create_app(settings, clock=clock)) as api:
            response = await api.post("/api/v1/auth/login", json={"username": username, "password": "wrong"})
            return response.status_code

    try:
        # Each attempt in a server of its own: as if it restarted between them.
        assert [await attempt() for _ in range(3)] == [401, 401, 429]
        clock.advance(timedelta(seconds=settings.login_window_s + 1))
        assert await attempt() == 401
    finally:
        redis.Redis.from_url(REDIS_URL).delete(f"{REDIS_PREFIX}user:{username}", f"{REDIS_PREFIX}addr:testclient")
