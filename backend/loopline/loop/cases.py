"""Opening a case, the one way every loop rule does it: numbered, timed, assigned, with its thread.

The SLA due times come from the account's policy (defaults where it says nothing), the
account manager is the assignee and joins the case's thread, and `case.created` tells
webhooks and notifications.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.entity import account_scope
from loopline.core.events import emit
from loopline.core.numbering import next_number
from loopline.customer.models import Account, Case, CaseStatus
from loopline.loop.sla import flag_breaches
from loopline.threads.models import SubjectType, Thread
from loopline.threads.service import open_thread

DEFAULT_SLA_HOURS = {"first_response_h": 8, "resolution_h": 72}


async def open_case(
    session: AsyncSession,
    account: Account,
    *,
    actor: str,
    now: datetime,
    participants: list[tuple[str, str]],
    **fields: Any,
) -> Case:
    """A new case of `account` with `fields` (origin, title, links); `participants` join its thread too."""
    policy = {**DEFAULT_SLA_HOURS, **account.sla_policy}
    case = Case(
        account_id=account.id,
        number=await next_number(session, "CS"),
        status=CaseStatus.NEW,
        assignee_id=account.account_manager_id,
        sla_first_response_due=now + timedelta(hours=policy["first_response_h"]),
        sla_resolution_due=now + timedelta(hours=policy["resolution_h"]),
        **fields,
    )
    session.add(case)
    await session.flush()
    manager = [(account.account_manager_id, "account_manager")] if account.account_manager_id else []
    await open_thread(
        session,
        subject_type=SubjectType.CASE,
        subject_id=case.id,
        subject_scope=account_scope(account.id),
        title=f"{case.number} {case.title}",
        participants=[*participants, *manager],
    )
    emit(
        session,
        "case.created",
        subject_type="case",
        subject_id=case.id,
        actor=actor,
        at=now,
        payload={
            "number": case.number,
            "account_id": account.id,
            "origin": case.origin,
            "nc_id": case.nc_id,
            "account_manager_id": account.account_manager_id,
            "first_response_due": case.sla_first_response_due,
        },
    )
    return case


async def resolve_case(session: AsyncSession, case: Case, *, auto_handled: bool, actor: str, now: datetime) -> None:
    """Resolve a case, by a person or by the rules (an inquiry answered, a remedy fulfilled).

    Resolving answers the customer, so it is the first response when none came before.
    """
    case.status = CaseStatus.RESOLVED
    case.resolved_at = now
    case.first_response_at = case.first_response_at or now
    case.auto_handled = auto_handled
    flag_breaches(session, case, actor=actor, now=now)
    await session.flush()
    emit(
        session,
        "case.resolved",
        subject_type="case",
        subject_id=case.id,
        actor=actor,
        at=now,
        payload={"number": case.number, "auto_handled": auto_handled},
    )


async def answer_by_reply(session: AsyncSession, thread_ids: set[str], *, now: datetime) -> list[Case]:
    """A staff message the customer can read, in a case's thread, is the case's first response."""
    answered = list(
        await session.scalars(
            select(Case)
            .join(Thread, and_(col(Thread.subject_type) == SubjectType.CASE, col(Thread.subject_id) == Case.id))
            .where(col(Thread.id).in_(thread_ids), col(Case.first_response_at).is_(None))
        )
    )
    for case in answered:
        case.first_response_at = now
    await session.flush()
    return answered
