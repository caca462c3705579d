"""Domain events: the outbox that webhooks and notifications read (`nc.created`, `case.created`, …).

An event is written in the transaction of the change it describes, so it exists exactly
when the change committed: a rule that rolls back leaves no event behind, and a crash
after the commit loses none. Delivery (webhooks, push) reads the outbox in `id` order and
marks what it delivered; nothing here knows who listens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from loopline.core.canonical import to_jsonable
from loopline.core.db import table_of
from loopline.core.types import UTCDateTime
from loopline.core.uow import stage_rows


class DomainEvent(SQLModel, table=True):
    __tablename__ = "domain_event"

    # SQLite only auto-increments an INTEGER primary key.
    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    type: str = Field(max_length=64, index=True)
    subject_type: str = Field(max_length=40)
    subject_id: str = Field(max_length=36, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    actor: str = Field(max_length=80)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


@dataclass(frozen=True)
class Emitted:
    """An event to write: what happened to which subject, who did it and when."""

    type: str
    subject_type: str
    subject_id: str
    actor: str
    at: datetime
    payload: dict[str, Any] | None = None


def emit(
    session: AsyncSession,
    event_type: str,
    *,
    subject_type: str,
    subject_id: str,
    actor: str,
    at: datetime,
    payload: dict[str, Any] | None = None,
) -> None:
    emit_all(session, [Emitted(event_type, subject_type, subject_id, actor, at, payload)])


def emit_all(session: AsyncSession, events: Iterable[Emitted]) -> None:
    """Write the events in the session's transaction: all of them with one statement, at commit."""
    stage_rows(
        session,
        table_of(DomainEvent),
        [
            {
                "type": event.type,
                "subject_type": event.subject_type,
                "subject_id": event.subject_id,
                "payload": to_jsonable(event.payload or {}),
                "actor": event.actor,
                "occurred_at": event.at,
            }
            for event in events
        ],
    )
