"""The change-log scopes one user reads: their role's scopes, the threads they take part in, and,
for staff, the directory cards of the people they work with."""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal, Role, member_of
from loopline.core.changelog import ChangeLog
from loopline.core.entity import customer_thread_scope, person_scope, thread_scope
from loopline.people.models import colleague_ids
from loopline.threads.models import Thread, ThreadParticipant


async def readable_scopes(session: AsyncSession, principal: Principal) -> frozenset[str] | None:
    """None means every scope (admins)."""
    base = principal.scope_keys()
    if base is None:
        return None
    thread_ids = set(
        await session.scalars(select(ThreadParticipant.thread_id).where(ThreadParticipant.user_id == principal.user_id))
    )
    if principal.role is Role.SUPERVISOR:
        thread_ids |= set(await session.scalars(select(Thread.id).where(member_of(Thread.subject_scope, base))))
    keys = set(base)
    for thread_id in thread_ids:
        keys.add(customer_thread_scope(thread_id))
        if principal.is_staff:
            keys.add(thread_scope(thread_id))
    if principal.is_staff:
        keys.update(person_scope(user_id) for user_id in await session.scalars(colleague_ids(principal)))
    return frozenset(keys)


def in_scopes(scopes: frozenset[str] | None, scope_key: SQLColumnExpression[str] | None = None) -> ColumnElement[bool]:
    """`scope_key IN (…)` on the change log (or on the expression given), or true for all scopes."""
    if scopes is None:
        return true()
    return (col(ChangeLog.scope_key) if scope_key is None else scope_key).in_(sorted(scopes))
