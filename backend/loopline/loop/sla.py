"""SLA timers: cases past their first-response or resolution due time raise a breach, once.

The sweep runs on a timer in the server (and as `loopline cases sweep`). A breach is
written on the case itself (`flags`: `first_response_breached`, `resolution_breached`),
so devices and the supervisor view see it through the change log, and so a second sweep,
or a second server process, never reports it twice. A case resolved after its due time
is flagged when it is resolved.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.events import emit
from loopline.core.periodic import every
from loopline.core.runtime import Runtime
from loopline.customer.models import Case, CaseStatus

OPEN = [CaseStatus.NEW, CaseStatus.TRIAGED, CaseStatus.IN_PROGRESS, CaseStatus.AWAITING_CUSTOMER]
FIRST_RESPONSE, RESOLUTION = "first_response_breached", "resolution_breached"


def breaches(case: Case, now: datetime) -> list[str]:
    """The breaches the case has at `now` that it is not flagged for yet."""
    found = []
    if case.first_response_at is None and case.sla_first_response_due and case.sla_first_response_due < now:
        found.append(FIRST_RESPONSE)
    resolved_or_now = case.resolved_at or now
    if case.sla_resolution_due and case.sla_resolution_due < resolved_or_now:
        found.append(RESOLUTION)
    return [breach for breach in found if breach not in case.flags]


def flag_breaches(session: AsyncSession, case: Case, *, actor: str, now: datetime) -> list[str]:
    new = breaches(case, now)
    if new:
        case.flags = [*case.flags, *new]
        for breach in new:
            emit(
                session,
                "case.sla_breached",
                subject_type="case",
                subject_id=case.id,
                actor=actor,
                at=now,
                payload={"number": case.number, "breach": breach, "account_id": case.account_id},
            )
    return new


async def sweep(runtime: Runtime) -> int:
    """Flag every open case past a due time; the number of breaches raised."""
    now = runtime.clock.now()
    raised = 0
    async with runtime.unit_of_work(actor="system", command="sla.sweep") as session:
        overdue = await session.scalars(
            select(Case).where(
                col(Case.status).in_(OPEN),
                (col(Case.sla_first_response_due) < now) | (col(Case.sla_resolution_due) < now),
            )
        )
        for case in overdue:
            raised += len(flag_breaches(session, case, actor="system", now=now))
    return raised


def timer(runtime: Runtime, interval_s: float) -> contextlib.AbstractAsyncContextManager[None]:
    """Run `sweep` every `interval_s` while the server runs (0: never)."""
    return every(interval_s, functools.partial(sweep, runtime), what="SLA sweep")
