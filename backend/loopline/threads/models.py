"""Threads: one conversation per defect, nonconformance, case and advisory."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Column, ColumnElement, UniqueConstraint, and_, exists, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import Field, SQLModel, col

from loopline.core.access import Principal, Role, ScopedEntity, member_of
from loopline.core.entity import customer_thread_scope, thread_scope, user_scope
from loopline.core.types import MAX_INT, EnumString, UTCDateTime, UTCTimestamp, one_of


class SubjectType(StrEnum):
    DEFECT = "defect"
    NONCONFORMANCE = "nonconformance"
    CASE = "case"
    ADVISORY = "advisory"


class Thread(ScopedEntity, table=True):
    __entity__ = "thread"
    __table_args__ = (UniqueConstraint("subject_type", "subject_id"), one_of("subject_type", SubjectType))

    subject_type: SubjectType = Field(sa_type=EnumString(SubjectType, 16))
    subject_id: str = Field(max_length=36)
    # The subject's own scope ("plant:…", "account:…"): supervisors read threads of their scopes.
    subject_scope: str = Field(max_length=80, index=True)
    title: str = Field(default="", max_length=300)

    def scope_keys(self) -> list[str]:
        return [thread_scope(self.id), customer_thread_scope(self.id)]

    @staticmethod
    def read_as_participant_only(principal: Principal) -> bool:
        """Whether `read_filter` lets this user read a thread only by being its participant."""
        return not (principal.is_admin or principal.role is Role.SUPERVISOR)

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        if principal.is_admin:
            return true()
        member = _MEMBER
        participant = exists(
            select(col(member.id)).where(col(member.thread_id) == cls.id, col(member.user_id) == principal.user_id)
        )
        if principal.role is Role.SUPERVISOR:
            return or_(participant, member_of(cls.subject_scope, principal.scope_keys()))
        return participant


class ThreadCounter(SQLModel, table=True):
    """A thread's last message number: server bookkeeping, kept out of the change log.

    Devices see the order on the messages (`thread_seq`); syncing a counter that moves
    with every message would double the log for nothing.
    """

    __tablename__ = "thread_counter"

    thread_id: str = Field(primary_key=True, foreign_key="thread.id", max_length=36)
    last_seq: int = Field(default=0, ge=0)


class ThreadParticipant(ScopedEntity, table=True):
    __entity__ = "thread_participant"
    __table_args__ = (UniqueConstraint("thread_id", "user_id"),)

    thread_id: str = Field(foreign_key="thread.id", index=True, max_length=36)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=36)
    reason: str = Field(default="", max_length=32)
    read_seq: int = Field(default=0, ge=0, le=MAX_INT)
    muted: bool = False

    def scope_keys(self) -> list[str]:
        return [thread_scope(self.thread_id), user_scope(self.user_id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        if principal.is_admin:
            return true()
        own = col(cls.user_id) == principal.user_id
        if not principal.is_staff:
            return own
        # Staff see who else takes part in the threads they can read.
        return or_(
            own, exists(select(col(Thread.id)).where(col(Thread.id) == cls.thread_id, Thread.read_filter(principal)))
        )


# An alias, so the subquery never correlates with a ThreadParticipant of the outer query. Made
# once: building an alias costs about a millisecond, and every thread-scoped read asks for it.
_MEMBER = aliased(ThreadParticipant)


class Visibility(StrEnum):
    INTERNAL = "internal"
    CUSTOMER = "customer"


class Message(ScopedEntity, table=True):
    __entity__ = "message"
    __table_args__ = (UniqueConstraint("thread_id", "thread_seq"), one_of("visibility", Visibility))

    thread_id: str = Field(foreign_key="thread.id", index=True, max_length=36)
    thread_seq: int = Field(ge=1, le=MAX_INT)
    author_id: str = Field(foreign_key="user.id", max_length=36)
    visibility: Visibility = Field(default=Visibility.INTERNAL, sa_type=EnumString(Visibility, 16))
    body: str = Field(default="", max_length=20000)
    mentions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    edited_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)

    def scope_keys(self) -> list[str]:
        if self.visibility == Visibility.CUSTOMER:
            return [customer_thread_scope(self.thread_id)]
        return [thread_scope(self.thread_id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        thread_readable = exists(
            select(col(Thread.id)).where(col(Thread.id) == cls.thread_id, Thread.read_filter(principal))
        )
        if principal.is_staff:
            return thread_readable
        return and_(thread_readable, col(cls.visibility) == Visibility.CUSTOMER)
