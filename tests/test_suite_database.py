"""Which database the suite ran on; CI reads this to prove the PostgreSQL run happened."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.script import ScriptDirectory
from litestar.testing import AsyncTestClient

from loopline.core.migrate import alembic_config
from tests.support import TEST_DATABASE_URL


async def test_suite_database_dialect(
    client: AsyncTestClient[Any], record_property: Callable[[str, Any], None]
) -> None:
    health = (await client.get("/api/v1/health")).json()
    dialect = health["database"]["dialect"]
    record_property("dialect", dialect)
    assert dialect == ("postgresql" if TEST_DATABASE_URL.startswith("postgresql") else "sqlite")
    assert health["database"]["revision"] == ScriptDirectory.from_config(alembic_config("")).get_current_head()
