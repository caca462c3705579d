"""The server epoch and the compaction horizon, kept in `server_meta`.

The epoch names this database's history. Restoring a backup rewinds the change log, so
after a restore the operator runs `loopline sync new-epoch`: every device then rebuilds
its read model (keeping its outbox) instead of trusting a cursor from a lost future.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from loopline.core.db import table_of
from loopline.core.ids import new_id
from loopline.syncing.models import ServerMeta

EPOCH = "epoch"
COMPACTION_HORIZON = "compaction_horizon_seq"


_meta = table_of(ServerMeta).c
# Built once, and read with Core: an ORM `get` ran a query every time anyway (the identity
# map holds objects weakly) and cost about three times as much.
_VALUE_OF = select(_meta.value).where(_meta.key == bindparam("key"))
# The epoch as a column of another query (a push reads it with the device's row).
STORED_EPOCH = select(_meta.value).where(_meta.key == EPOCH).scalar_subquery()


async def read_meta(session: AsyncSession, key: str) -> str | None:
    value: str | None = await session.scalar(_VALUE_OF, {"key": key})
    return value


async def server_epoch(session: AsyncSession) -> str:
    """The epoch, created on first use (inside the caller's write transaction)."""
    epoch = await read_meta(session, EPOCH)
    if epoch is None:
        epoch = new_id()
        session.add(ServerMeta(key=EPOCH, value=epoch))
        await session.flush()
    return epoch


async def write_meta(session: AsyncSession, key: str, value: str) -> None:
    await session.merge(ServerMeta(key=key, value=value))
    await session.flush()


async def new_epoch(session: AsyncSession) -> str:
    epoch = new_id()
    await write_meta(session, EPOCH, epoch)
    return epoch


async def compaction_horizon(session: AsyncSession) -> int:
    return int(await read_meta(session, COMPACTION_HORIZON) or 0)
