"""Webhook subscriptions as an admin manages them, and the delivery figures of data health.

A subscription receives the events that occur while it is active: it starts at the
newest event when it is made, and again when it is switched back on (deliveries queued
before it was switched off are still owed, and resume). Its secret is made
here and shown once, in the answer to its creation. Creating and changing a
subscription seal an audit event (never with the secret): where data leaves the company
is worth a tamper-evident record.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.core.errors import NotFound
from loopline.core.events import DomainEvent
from loopline.core.pagination import decode_cursor, encode_cursor
from loopline.core.runtime import Runtime
from loopline.integration.destinations import WebhookDestinations
from loopline.integration.dispatcher import wanted_by
from loopline.integration.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription

ENTITY = "webhook_subscription"
# Audited and shown: everything but the secret and the worker's bookkeeping.
SHOWN = ("url", "description", "event_types", "active")


class AttemptRead(BaseModel):
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRead(BaseModel):
    id: str
    event_id: int
    event_type: str
    status: DeliveryStatus
    queued_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    settled_at: datetime | None
    history: list[AttemptRead]


class WebhookSummary(BaseModel):
    since: datetime
    attempts: int
    successful_attempts: int
    # Of every attempt in the window, so a receiver that was down counts against it even
    # when each event got through later; None without attempts.
    success_rate: float | None
    delivered: int
    failed: int
    # Events still owed to active subscriptions: queued and not delivered yet, or not queued yet.
    outbox_depth: int


def checked_url(runtime: Runtime, url: str) -> str:
    """`url` if webhooks may be sent there (see destinations.py); a 400 with the reason otherwise."""
    return WebhookDestinations.from_setting(runtime.settings.webhook_allowed_hosts).checked_url(url)


def _shown(subscription: WebhookSubscription) -> dict[str, Any]:
    return {name: getattr(subscription, name) for name in SHOWN}


async def _newest_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(DomainEvent.id), 0))) or 0)


async def create_subscription(
    runtime: Runtime, *, actor: str, url: str, description: str, event_types: list[str], active: bool
) -> WebhookSubscription:
    uow = runtime.unit_of_work(actor=actor, command="admin.webhook.create")
    async with uow as session:
        subscription = WebhookSubscription(
            url=checked_url(runtime, url),
            description=description,
            event_types=event_types,
            active=active,
            secret=f"whsec_{secrets.token_urlsafe(32)}",
            created_at=runtime.clock.now(),
            cursor=await _newest_event_id(session),
        )
        session.add(subscription)
        uow.audit(entity=ENTITY, entity_id=subscription.id, action=f"{ENTITY}.create", diff=_shown(subscription))
    return subscription


async def update_subscription(
    runtime: Runtime, *, actor: str, subscription_id: str, changes: dict[str, Any]
) -> WebhookSubscription:
    uow = runtime.unit_of_work(actor=actor, command="admin.webhook.update")
    async with uow as session:
        subscription = await session.get(WebhookSubscription, subscription_id)
        if subscription is None:
            raise NotFound(ENTITY, subscription_id)
        if "url" in changes:
            checked_url(runtime, changes["url"])
        before = _shown(subscription)
        if changes.get("active") and not subscription.active:
            subscription.cursor = await _newest_event_id(session)
        for name, value in changes.items():
            setattr(subscription, name, value)
        after = _shown(subscription)
        diff = {name: [before[name], after[name]] for name in SHOWN if before[name] != after[name]}
        if diff:
            uow.audit(entity=ENTITY, entity_id=subscription_id, action=f"{ENTITY}.update", diff=diff)
    return subscription


async def _page(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]], id_column: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Rows of `stmt` in id order after the cursor, and the cursor of the next page."""
    if cursor:
        stmt = stmt.where(id_column > decode_cursor(cursor))
    rows = list((await session.execute(stmt.order_by(id_column).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1][0].id) if more else None


async def list_subscriptions(
    session: AsyncSession, cursor: str | None, limit: int
) -> tuple[list[WebhookSubscription], str | None]:
    rows, next_cursor = await _page(session, select(WebhookSubscription), col(WebhookSubscription.id), cursor, limit)
    return [row[0] for row in rows], next_cursor


async def get_subscription(session: AsyncSession, subscription_id: str) -> WebhookSubscription:
    subscription = await session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(ENTITY, subscription_id)
    return subscription


async def list_deliveries(
    session: AsyncSession, subscription_id: str, status: DeliveryStatus | None, cursor: str | None, limit: int
) -> tuple[list[DeliveryRead], str | None]:
    await get_subscription(session, subscription_id)
    stmt = (
        select(WebhookDelivery, col(DomainEvent.type))
        .join(DomainEvent, col(DomainEvent.id) == col(WebhookDelivery.event_id))
        .where(col(WebhookDelivery.subscription_id) == subscription_id)
    )
    if status is not None:
        stmt = stmt.where(col(WebhookDelivery.status) == status)
    rows, next_cursor = await _page(session, stmt, col(WebhookDelivery.id), cursor, limit)
    history: dict[str, list[AttemptRead]] = {}
    for attempt in await session.scalars(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_([delivery.id for delivery, _ in rows]))
        .order_by(col(WebhookAttempt.attempted_at), col(WebhookAttempt.id))
    ):
        history.setdefault(attempt.delivery_id, []).append(AttemptRead.model_validate(attempt, from_attributes=True))
    items = [
        DeliveryRead(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=event_type,
            status=delivery.status,
            queued_at=delivery.queued_at,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            settled_at=delivery.settled_at,
            history=history.get(delivery.id, []),
        )
        for delivery, event_type in rows
    ]
    return items, next_cursor


async def _outbox_depth(session: AsyncSession) -> int:
    active = list(await session.scalars(select(WebhookSubscription).where(col(WebhookSubscription.active))))
    queued = await session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(
            col(WebhookDelivery.subscription_id).in_([s.id for s in active]),
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
        )
    )
    depth = int(queued or 0)
    for subscription in active:
        not_queued = await session.scalar(
            select(func.count())
            .select_from(DomainEvent)
            .where(col(DomainEvent.id) > subscription.cursor, wanted_by(subscription.event_types))
        )
        depth += int(not_queued or 0)
    return depth


async def summary(session: AsyncSession, now: datetime, days: int) -> WebhookSummary:
    since = now - timedelta(days=days)
    attempts, successful = (
        await session.execute(
            select(func.count(), func.count().filter(col(WebhookAttempt.succeeded))).where(
                col(WebhookAttempt.attempted_at) >= since
            )
        )
    ).one()
    settled: dict[DeliveryStatus, int] = dict(
        (
            await session.execute(
                select(col(WebhookDelivery.status), func.count())
                .where(col(WebhookDelivery.settled_at) >= since)
                .group_by(col(WebhookDelivery.status))
            )
        ).all()
    )
    return WebhookSummary(
        since=since,
        attempts=attempts,
        successful_attempts=successful,
        success_rate=round(successful / attempts, 4) if attempts else None,
        delivered=settled.get(DeliveryStatus.DELIVERED, 0),
        failed=settled.get(DeliveryStatus.FAILED, 0),
        outbox_depth=await _outbox_depth(session),
    )
