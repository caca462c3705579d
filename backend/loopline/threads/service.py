"""Thread services: opening a subject's thread, participants, posting, editing, reading."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.db import table_of
from loopline.core.uow import UnitOfWork
from loopline.people.models import User
from loopline.threads.models import Message, SubjectType, Thread, ThreadCounter, ThreadParticipant, Visibility


async def open_thread(
    session: AsyncSession,
    *,
    subject_type: SubjectType,
    subject_id: str,
    subject_scope: str,
    title: str,
    participants: Iterable[tuple[str, str]],
) -> Thread:
    """The subject's one thread, created with its first participants (user id, reason)."""
    thread = Thread(subject_type=subject_type, subject_id=subject_id, subject_scope=subject_scope, title=title)
    session.add(thread)
    await session.flush()
    session.add(ThreadCounter(thread_id=thread.id))
    await add_participants(session, thread, participants)
    return thread


async def add_participants(session: AsyncSession, thread: Thread, participants: Iterable[tuple[str, str]]) -> None:
    await add_participants_to_threads(session, ((thread.id, user_id, reason) for user_id, reason in participants))


async def add_participants_to_threads(session: AsyncSession, participants: Iterable[tuple[str, str, str]]) -> None:
    """Add (thread id, user id, reason) participants that are not there yet; the first reason wins."""
    wanted: dict[tuple[str, str], str] = {}
    for thread_id, user_id, reason in participants:
        wanted.setdefault((thread_id, user_id), reason)
    if not wanted:
        return
    present = set(
        (
            await session.execute(
                select(ThreadParticipant.thread_id, ThreadParticipant.user_id).where(
                    col(ThreadParticipant.thread_id).in_({thread_id for thread_id, _ in wanted}),
                    col(ThreadParticipant.user_id).in_({user_id for _, user_id in wanted}),
                )
            )
        ).all()
    )
    session.add_all(
        ThreadParticipant(thread_id=thread_id, user_id=user_id, reason=reason)
        for (thread_id, user_id), reason in wanted.items()
        if (thread_id, user_id) not in present
    )
    await session.flush()


async def users_by_username(session: AsyncSession, usernames: Iterable[str]) -> list[User]:
    names = sorted(set(usernames))
    if not names:
        return []
    return list(await session.scalars(select(User).where(col(User.username).in_(names), col(User.is_active))))


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
    counters = table_of(ThreadCounter).c
    # Locking the counters reserves the numbers: concurrent posts to a thread never share one.
    # (SQLite holds the database's write lock already; FOR UPDATE is for PostgreSQL.)
    current = await uow.session.execute(
        select(counters.thread_id, counters.last_seq).where(counters.thread_id.in_(per_thread)).with_for_update()
    )
    next_seq = {thread_id: last_seq + 1 for thread_id, last_seq in current.all()}
    if uncounted := per_thread.keys() - next_seq.keys():
        raise LookupError(f"threads without a counter: {sorted(uncounted)}")
    await uow.session.execute(
        update(table_of(ThreadCounter)).where(counters.thread_id == bindparam("counter")),
        [
            {"counter": thread_id, "last_seq": next_seq[thread_id] + count - 1}
            for thread_id, count in per_thread.items()
        ],
    )
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
