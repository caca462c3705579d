"""The migration history and the models describe the same schema, on either database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from loopline.models import metadata
from tests.support import FreshDatabase


async def test_migrations_leave_nothing_for_autogenerate(fresh_database: FreshDatabase) -> None:
    engine = create_async_engine(fresh_database.settings.resolved_database_url)

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
