"""Domain events: the outbox that webhooks and notifications read (`nc.created`, `case.created`, …).

An event is written in the transaction of the change it describes, so it exists exactly
when the change committed: a rule that rolls back leaves no event behind, and a crash
after the commit loses none. Delivery (webhooks, push) reads the outbox in `id` order and
marks what it delivered; nothing here knows who listens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from loopline.core.canonical import to_jsonable
from loopline.core.types import UTCDateTime


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
    session.add(
        DomainEvent(
            type=event_type,
            subject_type=subject_type,
            subject_id=subject_id,
            payload=to_jsonable(payload or {}),
            actor=actor,
            occurred_at=at,
        )
    )
