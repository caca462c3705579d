"""Compaction of the change log: drop history no device needs any more, keep current state.

Rows older than the retention (at least 90 days, so tombstones reach offline devices)
that a newer row of the same entity and scope supersedes are deleted, and so are old
tombstones. The newest row of every live entity stays, so an initial sync still finds
everything. Cursors from before the new horizon answer `reset_required`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import col

from loopline.core.changelog import ChangeLog
from loopline.core.errors import AppError
from loopline.core.runtime import Runtime
from loopline.syncing.meta import COMPACTION_HORIZON, write_meta

MINIMUM_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class CompactionReport:
    horizon_seq: int
    superseded: int
    tombstones: int


async def compact(runtime: Runtime, retention: timedelta = MINIMUM_RETENTION) -> CompactionReport:
    if retention < MINIMUM_RETENTION:
        raise AppError(
            "retention_too_short",
            "Tombstones are kept at least 90 days.",
            details={"minimum_days": MINIMUM_RETENTION.days},
        )
    cutoff = runtime.clock.now() - retention
    uow = runtime.unit_of_work(actor="system:compaction", command="sync.compact")
    async with uow as session:
        horizon = await session.scalar(select(func.max(ChangeLog.seq)).where(col(ChangeLog.at) < cutoff)) or 0
        newer = aliased(ChangeLog)
        superseded = await session.execute(
            delete(ChangeLog).where(
                col(ChangeLog.seq) <= horizon,
                exists(
                    select(col(newer.seq)).where(
                        col(newer.entity) == ChangeLog.entity,
                        col(newer.entity_id) == ChangeLog.entity_id,
                        col(newer.scope_key) == ChangeLog.scope_key,
                        col(newer.seq) > ChangeLog.seq,
                    )
                ),
            )
        )
        tombstones = await session.execute(
            delete(ChangeLog).where(col(ChangeLog.seq) <= horizon, col(ChangeLog.op) == "delete")
        )
        await write_meta(session, COMPACTION_HORIZON, str(horizon))
        report = CompactionReport(horizon, superseded.rowcount, tombstones.rowcount)  # type: ignore[attr-defined]
        uow.audit(entity="change_log", entity_id=str(horizon), action="sync.compact", diff=report.__dict__)
    return report
