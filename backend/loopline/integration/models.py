"""Webhook subscriptions, one delivery per subscription and event, and every attempt at it.

These are server bookkeeping, not entities: no device reads them through sync (a
subscription holds its signing secret), so they stay out of the change log. Changes to
subscriptions are sealed on the audit chain explicitly (see `integration/webhooks.py`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from loopline.core.ids import new_id
from loopline.core.types import EnumString, UTCDateTime, one_of

# The type of `domain_event.id`, so the reference matches it on both databases.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    # Exact types ("case.created") or prefixes ("case.*"); empty or "*" means every event.
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=100)
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    # The newest domain_event id already queued for this subscription (or passed over as
    # not wanted); it starts at the newest event when the subscription is made or re-activated.
    cursor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # While set and in the future, one worker (of possibly several processes) owns the subscription's round.
    leased_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        one_of("status", DeliveryStatus),
        # A round reads a subscription's pending deliveries in event order.
        Index("ix_webhook_delivery_subscription_id_status_event_id", "subscription_id", "status", "event_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    subscription_id: str = Field(foreign_key="webhook_subscription.id", max_length=36)
    event_id: int = Field(sa_column=Column(EventId, ForeignKey("domain_event.id"), nullable=False))
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=EnumString(DeliveryStatus, 16))
    queued_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    # When the next attempt is due; None once delivered or given up.
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    delivery_id: str = Field(foreign_key="webhook_delivery.id", max_length=36, index=True)
    # The summary counts attempts over a recent window.
    attempted_at: datetime = Field(sa_type=UTCDateTime, index=True)
    succeeded: bool
    # The receiver's answer, or None when there was none (`error` says why).
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int
