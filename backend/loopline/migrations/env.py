"""Alembic environment: runs the migration history on SQLite or PostgreSQL.

Batch mode keeps ALTERs portable to SQLite. The URL comes from the Alembic config that
`loopline db upgrade` builds from the settings, never from the environment directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from loopline.core.types import EnumString
from loopline.models import metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Enum columns are plain strings in the schema (their CHECK constraints hold the values)."""
    if type_ == "type" and isinstance(obj, EnumString):
        return f"sa.String(length={obj.impl.length})"
    return False


def _configure(**options: Any) -> None:
    context.configure(target_metadata=metadata, render_as_batch=True, render_item=_render_item, **options)


def _run(connection: Connection) -> None:
    _configure(connection=connection, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    _configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
