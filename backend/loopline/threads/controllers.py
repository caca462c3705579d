"""Thread reads: my threads with unread counts and last message, one thread, a thread's history."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, FromQuery, QueryParameter

from loopline.core.api import Cursor, IdFilter, IdPath, Limit, PrincipalDep, SessionDep
from loopline.core.pagination import Page, equal_filters, get_readable, list_readable
from loopline.core.types import MAX_INT
from loopline.threads.models import SubjectType, Thread
from loopline.threads.service import MessagePage, ThreadSummary, list_my_threads, message_history, summarize

Mine = Annotated[
    bool,
    QueryParameter(
        description="Only threads you take part in, by last activity (newest visible message first, "
        "threads without messages last); otherwise every readable thread in creation order."
    ),
]
Before = Annotated[
    int | None,
    QueryParameter(ge=1, le=MAX_INT, description="`next_before` of the previous page; absent: from the newest."),
]
MessageLimit = Annotated[int, QueryParameter(ge=1, le=200, description="Page size (1 to 200).")]


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
        mine: Mine = False,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[ThreadSummary]:
        where = equal_filters(Thread, subject_type=subject_type, subject_id=subject_id)
        if mine:
            page = await list_my_threads(session, principal, where=where, cursor=cursor, limit=limit)
        else:
            page = await list_readable(session, Thread, principal, where=where, cursor=cursor, limit=limit)
        return Page[ThreadSummary](items=await summarize(session, principal, page.items), next_cursor=page.next_cursor)

    @get("/{thread_id:str}", operation_id="get_thread")
    async def get_thread(self, session: SessionDep, principal: PrincipalDep, thread_id: FromPath[str]) -> ThreadSummary:
        thread = await get_readable(session, Thread, principal, thread_id)
        return (await summarize(session, principal, [thread]))[0]

    @get("/{thread_id:str}/messages", operation_id="list_thread_messages")
    async def list_messages(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        thread_id: IdPath,
        before: Before = None,
        limit: MessageLimit = 50,
    ) -> MessagePage:
        thread = await get_readable(session, Thread, principal, thread_id)
        return await message_history(session, principal, thread, before=before, limit=limit)


controllers = [ThreadController]
