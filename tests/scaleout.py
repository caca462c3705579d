"""The services two server processes share when scaled out: PostgreSQL and Redis.

Tests that need them skip when they are not reachable, unless `LOOPLINE_REQUIRE_SCALEOUT=1`
(as `.ci/run` sets it), which turns a skip into a failure.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
import redis

POSTGRES = os.environ.get("LOOPLINE_SCALEOUT_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("LOOPLINE_SCALEOUT_REDIS", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("LOOPLINE_REQUIRE_SCALEOUT") == "1"


def missing_service() -> str | None:
    async def postgres() -> None:
        connection = await asyncpg.connect(POSTGRES.replace("+asyncpg", ""), timeout=5)
        await connection.close()

    try:
        asyncio.run(postgres())
    except (OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {POSTGRES} is not reachable: {exc}"
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS} is not reachable: {exc}"
    return None


def require_scaleout_services() -> None:
    """Skip the test (fail it under `LOOPLINE_REQUIRE_SCALEOUT=1`) unless PostgreSQL and Redis answer."""
    reason = missing_service()
    if reason is not None:
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
