"""Thread reads: my threads with unread counts and last message, one thread by id."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath, FromQuery
from pydantic import BaseModel
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.core.access import Principal
from loopline.core.api import Cursor, IdFilter, Limit, PrincipalDep, SessionDep
from loopline.core.pagination import Page, equal_filters, get_readable, list_readable
from loopline.threads.models import Message, SubjectType, Thread, ThreadParticipant


class ThreadSummary(BaseModel):
    thread: Thread
    unread_count: int
    read_seq: int
    last_message: Message | None


async def summarize(session: AsyncSession, principal: Principal, threads: list[Thread]) -> list[ThreadSummary]:
    """Unread counts and last visible messages for a page of threads, in three queries."""
    ids = [t.id for t in threads]
    if not ids:
        return []
    visible = Message.read_filter(principal)
    read_seqs: dict[str, int] = dict(
        (
            await session.execute(
                select(col(ThreadParticipant.thread_id), col(ThreadParticipant.read_seq)).where(
                    col(ThreadParticipant.thread_id).in_(ids),
                    col(ThreadParticipant.user_id) == principal.user_id,
                )
            )
        ).all()
    )
    unread: dict[str, int] = dict(
        (
            await session.execute(
                select(col(Message.thread_id), func.count())
                .outerjoin(
                    ThreadParticipant,
                    and_(
                        col(ThreadParticipant.thread_id) == Message.thread_id,
                        col(ThreadParticipant.user_id) == principal.user_id,
                    ),
                )
                .where(
                    col(Message.thread_id).in_(ids),
                    col(Message.thread_seq) > func.coalesce(ThreadParticipant.read_seq, 0),
                    col(Message.deleted_at).is_(None),
                    col(Message.author_id) != principal.user_id,
                    visible,
                )
                .group_by(col(Message.thread_id))
            )
        ).all()
    )
    newest = (
        select(col(Message.thread_id), func.max(col(Message.thread_seq)).label("seq"))
        .where(col(Message.thread_id).in_(ids), visible)
        .group_by(col(Message.thread_id))
        .subquery()
    )
    last = {
        m.thread_id: m
        for m in await session.scalars(
            select(Message).join(
                newest, and_(col(Message.thread_id) == newest.c.thread_id, col(Message.thread_seq) == newest.c.seq)
            )
        )
    }
    return [
        ThreadSummary(
            thread=t, unread_count=unread.get(t.id, 0), read_seq=read_seqs.get(t.id, 0), last_message=last.get(t.id)
        )
        for t in threads
    ]


class ThreadController(Controller):
    path = "/threads"
    tags = ["threads"]

    @get("/", operation_id="list_threads")
    async def list_threads(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        subject_type: FromQuery[SubjectType | None] = None,
        subject_id: IdFilter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[ThreadSummary]:
        page = await list_readable(
            session,
            Thread,
            principal,
            where=equal_filters(Thread, subject_type=subject_type, subject_id=subject_id),
            cursor=cursor,
            limit=limit,
        )
        return Page[ThreadSummary](items=await summarize(session, principal, page.items), next_cursor=page.next_cursor)

    @get("/{thread_id:str}", operation_id="get_thread")
    async def get_thread(self, session: SessionDep, principal: PrincipalDep, thread_id: FromPath[str]) -> ThreadSummary:
        thread = await get_readable(session, Thread, principal, thread_id)
        return (await summarize(session, principal, [thread]))[0]


controllers = [ThreadController]
