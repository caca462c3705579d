"""Thread services: opening a subject's thread, participants, posting, editing, reading."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Integer, String, Subquery, and_, case, func, insert, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from loopline.core.access import STAFF_ROLES, Principal
from loopline.core.db import table_of
from loopline.core.errors import AppError
from loopline.core.ids import new_id
from loopline.core.pagination import Page, decode_cursor, encode_cursor
from loopline.core.prepared import Prepared, numbered_parameters, numbered_values
from loopline.core.uow import UnitOfWork, insert_entities
from loopline.people.models import User
from loopline.threads.models import Message, SubjectType, Thread, ThreadCounter, ThreadParticipant, Visibility

MAX_MENTIONS = 50


@dataclass(frozen=True)
class ThreadOpening:
    """A subject's thread to open: its scope (the subject's own), title and first participants."""

    subject_type: SubjectType
    subject_id: str
    subject_scope: str
    title: str
    participants: Sequence[tuple[str, str]] = ()


async def open_threads(session: AsyncSession, openings: Sequence[ThreadOpening]) -> list[str]:
    """Each subject's one thread with its first (user id, reason) participants; the thread ids, in order.

    Set-based, so a rule that opens a case per affected account writes a few statements, not
    a few per account.
    """
    threads = await insert_entities(
        session,
        Thread,
        [
            {
                "id": new_id(),
                "subject_type": opening.subject_type,
                "subject_id": opening.subject_id,
                "subject_scope": opening.subject_scope,
                "title": opening.title,
            }
            for opening in openings
        ],
    )
    thread_ids = [thread["id"] for thread in threads]
    if thread_ids:
        await session.execute(
            insert(table_of(ThreadCounter)), [{"thread_id": thread_id, "last_seq": 0} for thread_id in thread_ids]
        )
    await add_participants_to_threads(
        session,
        (
            (thread_id, user_id, reason)
            for thread_id, opening in zip(thread_ids, openings, strict=True)
            for user_id, reason in opening.participants
        ),
    )
    return thread_ids


async def open_thread(
    session: AsyncSession,
    *,
    subject_type: SubjectType,
    subject_id: str,
    subject_scope: str,
    title: str,
    participants: Iterable[tuple[str, str]],
) -> str:
    """The subject's one thread, created with its first participants (user id, reason); its id."""
    opening = ThreadOpening(subject_type, subject_id, subject_scope, title, tuple(participants))
    [thread_id] = await open_threads(session, [opening])
    return thread_id


async def add_participants(session: AsyncSession, thread: Thread, participants: Iterable[tuple[str, str]]) -> None:
    await add_participants_to_threads(session, ((thread.id, user_id, reason) for user_id, reason in participants))


async def add_participants_to_threads(session: AsyncSession, participants: Iterable[tuple[str, str, str]]) -> None:
    """Add (thread id, user id, reason) participants that are not there yet; the first reason wins."""
    wanted: dict[tuple[str, str], str] = {}
    for thread_id, user_id, reason in participants:
        wanted.setdefault((thread_id, user_id), reason)
    if not wanted:
        return
    thread_ids = sorted({thread_id for thread_id, _ in wanted})
    user_ids = sorted({user_id for _, user_id in wanted})
    parameters = numbered_values("thread", thread_ids) | numbered_values("user", user_ids)
    present = set(await _participants_among(len(thread_ids), len(user_ids)).rows(session, parameters))
    await insert_entities(
        session,
        ThreadParticipant,
        [
            {"id": new_id(), "thread_id": thread_id, "user_id": user_id, "reason": reason}
            for (thread_id, user_id), reason in wanted.items()
            if (thread_id, user_id) not in present
        ],
    )


@functools.lru_cache(maxsize=64)
def _participants_among(threads: int, users: int) -> Prepared:
    """The (thread id, user id) participants among `threads` threads (`thread_<n>`) and `users`
    users (`user_<n>`). Built once per shape: a post checks whether its author takes part."""
    return Prepared(
        select(col(ThreadParticipant.thread_id), col(ThreadParticipant.user_id)).where(
            col(ThreadParticipant.thread_id).in_(numbered_parameters("thread", threads, String())),
            col(ThreadParticipant.user_id).in_(numbered_parameters("user", users, String())),
        )
    )


async def join_thread(
    session: AsyncSession, subject_type: SubjectType, subject_id: str, participants: Iterable[tuple[str, str]]
) -> Thread:
    """Bring (user id, reason) participants into a subject's thread, e.g. an assignee or an account manager.

    The way in for everyone who joins after the subject was opened: assignment, and the
    loop rules (the account managers of affected accounts, the supervisor on duty).
    Joining twice is a no-op. A subject without a thread is a defect of its caller.
    """
    thread = (
        await session.scalars(
            select(Thread).where(Thread.subject_type == subject_type, Thread.subject_id == subject_id)
        )
    ).one_or_none()
    if thread is None:
        raise LookupError(f"no thread for {subject_type} {subject_id}")
    await add_participants(session, thread, participants)
    return thread


# After "@": a username's characters, not preceded by one (so "x@wang.lei", an address, is no mention).
_MENTION = re.compile(r"(?<![\w.@-])@([a-z0-9][a-z0-9._-]*)", re.IGNORECASE)


def mentioned_usernames(body: str) -> list[str]:
    """The distinct `@username`s of a message body, first come first kept, at most `MAX_MENTIONS`.

    A dot ending the token ends the sentence, not the name ("ask @wang.lei." names `wang.lei`).
    """
    names = (match.group(1).rstrip(".").lower() for match in _MENTION.finditer(body))
    return list(dict.fromkeys(names))[:MAX_MENTIONS]


async def mentionable_users(session: AsyncSession, author: Principal, usernames: Iterable[str]) -> list[User]:
    """The active staff users among `usernames` that the author may bring into a thread.

    Customers mention nobody (the user directory is not theirs to probe), and nobody is
    mentioned into a thread as a customer: joining would open the thread to them.
    """
    names = sorted(set(usernames))
    if not names or not author.is_staff:
        return []
    query = select(User).where(col(User.username).in_(names), col(User.is_active), col(User.role).in_(STAFF_ROLES))
    return list(await session.scalars(query))


_counters = table_of(ThreadCounter).c


@functools.lru_cache(maxsize=64)
def _reserve_seqs(threads: int) -> Prepared:
    """Moves the counters of `threads` threads (`thread_<n>`) on by `count_<n>` each.

    Built once per number of threads: every post runs it, and building it costs more than
    running it."""
    # Typed: PostgreSQL cannot tell the type of a parameter that only a CASE returns.
    ids = numbered_parameters("thread", threads, String())
    counts = numbered_parameters("count", threads, Integer())
    added = case(*((_counters.thread_id == thread_id, count) for thread_id, count in zip(ids, counts, strict=True)))
    return Prepared(
        update(table_of(ThreadCounter))
        .where(_counters.thread_id.in_(ids))
        .values(last_seq=_counters.last_seq + added)
        .returning(_counters.thread_id, _counters.last_seq)
    )


@dataclass(frozen=True)
class MessageDraft:
    id: str
    thread_id: str
    author_id: str
    body: str
    visibility: Visibility
    mentions: list[str]


async def append_messages(uow: UnitOfWork, drafts: Sequence[MessageDraft]) -> list[int]:
    """Append messages in order and answer their `thread_seq`s, the display order everyone shares."""
    assert uow.session is not None
    per_thread = Counter(draft.thread_id for draft in drafts)
    if not per_thread:
        return []
    # One statement reserves the numbers: the row locks it takes (PostgreSQL; SQLite holds the
    # database's write lock already) mean concurrent posts to a thread never share one.
    parameters = numbered_values("thread", per_thread) | numbered_values("count", per_thread.values())
    reserved = await _reserve_seqs(len(per_thread)).rows(uow.session, parameters)
    next_seq = {thread_id: last_seq - per_thread[thread_id] + 1 for thread_id, last_seq in reserved}
    if uncounted := per_thread.keys() - next_seq.keys():
        raise LookupError(f"threads without a counter: {sorted(uncounted)}")
    rows, seqs = [], []
    for draft in drafts:
        seqs.append(next_seq[draft.thread_id])
        next_seq[draft.thread_id] += 1
        rows.append({**vars(draft), "thread_seq": seqs[-1]})
    await uow.insert_rows(Message, rows)
    return seqs


async def mark_read(session: AsyncSession, thread: Thread, user_id: str, up_to_seq: int, reason: str) -> int:
    """Move the user's read marker forward (never back); returns the marker."""
    participant = (
        await session.scalars(
            select(ThreadParticipant).where(
                ThreadParticipant.thread_id == thread.id, ThreadParticipant.user_id == user_id
            )
        )
    ).one_or_none()
    if participant is None:
        participant = ThreadParticipant(thread_id=thread.id, user_id=user_id, reason=reason)
        session.add(participant)
    last_seq = await session.scalar(select(ThreadCounter.last_seq).where(ThreadCounter.thread_id == thread.id))
    target = min(up_to_seq, last_seq or 0)
    participant.read_seq = max(participant.read_seq, target)
    await session.flush()
    return participant.read_seq


def tombstone(message: Message, now: datetime) -> None:
    message.body = ""
    message.mentions = []
    message.deleted_at = now


class ThreadSummary(BaseModel):
    thread: Thread
    unread_count: int
    read_seq: int
    last_message: Message | None


def _newest_visible(principal: Principal, thread_ids: Iterable[str] | SelectOfScalar[str]) -> Subquery:
    """(thread_id, seq): the newest message of each thread that this user may see (tombstones included)."""
    return (
        select(col(Message.thread_id), func.max(col(Message.thread_seq)).label("seq"))
        .where(col(Message.thread_id).in_(thread_ids), Message.read_filter(principal))
        .group_by(col(Message.thread_id))
        .subquery()
    )


async def summarize(session: AsyncSession, principal: Principal, threads: list[Thread]) -> list[ThreadSummary]:
    """Unread counts and last visible messages for a page of threads, in three queries.

    Unread are the visible messages after the user's `read_seq` that someone else wrote
    and nobody deleted.
    """
    ids = [t.id for t in threads]
    if not ids:
        return []
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
                    Message.read_filter(principal),
                )
                .group_by(col(Message.thread_id))
            )
        ).all()
    )
    newest = _newest_visible(principal, ids)
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


async def list_my_threads(
    session: AsyncSession,
    principal: Principal,
    *,
    where: list[ColumnElement[bool]],
    cursor: str | None,
    limit: int,
) -> Page[Thread]:
    """The threads the user takes part in, by last activity: newest visible message first.

    Threads without a message (visible to the user) come last, newest thread first. The
    cursor holds the last thread's (activity, id); a thread that gets a message while a
    client pages moves to the front, where the client's next refresh of page one finds it.
    """
    mine = select(col(ThreadParticipant.thread_id)).where(col(ThreadParticipant.user_id) == principal.user_id)
    newest = _newest_visible(principal, mine)
    last = aliased(Message)
    activity = col(last.created_at)
    stmt = (
        select(Thread, activity)
        .outerjoin(newest, newest.c.thread_id == Thread.id)
        .outerjoin(last, and_(col(last.thread_id) == newest.c.thread_id, col(last.thread_seq) == newest.c.seq))
        .where(col(Thread.id).in_(mine), Thread.read_filter(principal), *where)
    )
    if cursor:
        after_activity, after_id = _decode_activity_cursor(cursor)
        older = col(Thread.id) < after_id
        if after_activity is None:
            stmt = stmt.where(activity.is_(None), older)
        else:
            stmt = stmt.where(
                or_(activity < after_activity, and_(activity == after_activity, older), activity.is_(None))
            )
    stmt = stmt.order_by(activity.desc().nulls_last(), col(Thread.id).desc()).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_activity_cursor(rows[-1][1], rows[-1][0].id) if more else None
    return Page[Thread](items=[thread for thread, _ in rows], next_cursor=next_cursor)


def _encode_activity_cursor(activity: datetime | None, thread_id: str) -> str:
    return encode_cursor(json.dumps([activity.isoformat() if activity else None, thread_id]))


def _decode_activity_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        activity, thread_id = json.loads(decode_cursor(cursor))
        if not isinstance(thread_id, str):
            raise TypeError
        return (datetime.fromisoformat(activity) if activity is not None else None), thread_id
    except (ValueError, TypeError) as exc:
        raise AppError("invalid_cursor", "The cursor is not one this server issued.") from exc


class MessagePage(BaseModel):
    """Messages newest first; `next_before` (null on the oldest page) is the `before` of the next, older page."""

    items: list[Message]
    next_before: int | None


async def message_history(
    session: AsyncSession, principal: Principal, thread: Thread, *, before: int | None, limit: int
) -> MessagePage:
    """A page of the thread's visible messages, newest first, strictly before `thread_seq` `before`.

    Deleted messages stay in the history as tombstones (empty body, `deleted_at` set), so a
    client holding the original learns to remove it.
    """
    stmt = select(Message).where(col(Message.thread_id) == thread.id, Message.read_filter(principal))
    if before is not None:
        stmt = stmt.where(col(Message.thread_seq) < before)
    rows = list(await session.scalars(stmt.order_by(col(Message.thread_seq).desc()).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    return MessagePage(items=items, next_before=items[-1].thread_seq if more else None)
