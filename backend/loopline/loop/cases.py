"""Opening a case, the one way every loop rule does it: numbered, timed, assigned, with its thread.

The SLA due times come from the account's policy (defaults where it says nothing), the
account manager is the assignee and joins the case's thread, and `case.created` tells
webhooks and notifications.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.entity import account_scope
from loopline.core.events import Emitted, emit, emit_all
from loopline.core.ids import new_id
from loopline.core.numbering import next_numbers
from loopline.core.uow import insert_entities
from loopline.customer.models import Account, Case, CaseStatus
from loopline.loop.sla import flag_breaches
from loopline.threads.models import SubjectType, Thread
from loopline.threads.service import ThreadOpening, open_threads

DEFAULT_SLA_HOURS = {"first_response_h": 8, "resolution_h": 72}


@dataclass(frozen=True)
class CaseOpening:
    """A case to open for `account`: its fields (origin, title, links) and who else joins its thread."""

    account: Account
    fields: dict[str, Any]
    participants: Sequence[tuple[str, str]] = ()


async def open_cases(
    session: AsyncSession, openings: Sequence[CaseOpening], *, actor: str, now: datetime
) -> list[dict[str, Any]]:
    """Open the cases, in order, set-based: a rule that opens one per affected account writes a
    handful of statements whatever the number of accounts. The cases' rows as written: loading
    hundreds of them back as objects would cost more than writing them."""
    if not openings:
        return []
    numbers = await next_numbers(session, "CS", len(openings))
    rows = [_case_row(opening, number, now) for opening, number in zip(openings, numbers, strict=True)]
    await insert_entities(session, Case, rows)
    await open_threads(
        session,
        [
            ThreadOpening(
                subject_type=SubjectType.CASE,
                subject_id=row["id"],
                subject_scope=account_scope(opening.account.id),
                title=f"{row['number']} {row.get('title', '')}",
                participants=[*opening.participants, *_manager_of(opening.account)],
            )
            for opening, row in zip(openings, rows, strict=True)
        ],
    )
    emit_all(
        session,
        [
            Emitted(
                "case.created",
                subject_type="case",
                subject_id=row["id"],
                actor=actor,
                at=now,
                payload={
                    "number": row["number"],
                    "account_id": row["account_id"],
                    "origin": row["origin"],
                    "nc_id": row.get("nc_id"),
                    "account_manager_id": row["assignee_id"],
                    "first_response_due": row["sla_first_response_due"],
                },
            )
            for row in rows
        ],
    )
    return rows


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
    [row] = await open_cases(session, [CaseOpening(account, fields, participants)], actor=actor, now=now)
    case = await session.get(Case, row["id"])
    assert case is not None
    return case


def _case_row(opening: CaseOpening, number: str, now: datetime) -> dict[str, Any]:
    account = opening.account
    policy = {**DEFAULT_SLA_HOURS, **account.sla_policy}
    return {
        "id": new_id(),
        **opening.fields,
        "account_id": account.id,
        "number": number,
        "status": CaseStatus.NEW,
        "assignee_id": account.account_manager_id,
        "sla_first_response_due": now + timedelta(hours=policy["first_response_h"]),
        "sla_resolution_due": now + timedelta(hours=policy["resolution_h"]),
    }


def _manager_of(account: Account) -> list[tuple[str, str]]:
    return [(account.account_manager_id, "account_manager")] if account.account_manager_id else []


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
