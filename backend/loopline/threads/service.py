"""Thread services: opening a subject's thread, participants, posting, editing, reading."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

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
    wanted = {user_id: reason for user_id, reason in participants}
    if not wanted:
        return
    present = set(
        await session.scalars(
            select(ThreadParticipant.user_id).where(
                ThreadParticipant.thread_id == thread.id, col(ThreadParticipant.user_id).in_(wanted)
            )
        )
    )
    session.add_all(
        ThreadParticipant(thread_id=thread.id, user_id=user_id, reason=reason)
        for user_id, reason in wanted.items()
        if user_id not in present
    )
    await session.flush()


async def users_by_username(session: AsyncSession, usernames: Iterable[str]) -> list[User]:
    names = sorted(set(usernames))
    if not names:
        return []
    return list(await session.scalars(select(User).where(col(User.username).in_(names), col(User.is_active))))


async def append_message(
    session: AsyncSession,
    thread: Thread,
    *,
    message_id: str,
    author_id: str,
    body: str,
    visibility: Visibility,
    mentions: list[str],
) -> Message:
    """Append a message; the server's `thread_seq` is the display order everyone shares."""
    # One atomic increment: concurrent posts to a thread never get the same number.
    thread_seq = await session.scalar(
        update(ThreadCounter)
        .where(col(ThreadCounter.thread_id) == thread.id)
        .values(last_seq=col(ThreadCounter.last_seq) + 1)
        .returning(col(ThreadCounter.last_seq))
    )
    if thread_seq is None:
        raise LookupError(f"thread {thread.id} has no counter")
    message = Message(
        id=message_id,
        thread_id=thread.id,
        thread_seq=thread_seq,
        author_id=author_id,
        body=body,
        visibility=visibility,
        mentions=mentions,
    )
    session.add(message)
    await session.flush()
    return message


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
