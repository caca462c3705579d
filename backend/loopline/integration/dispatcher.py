"""Webhook delivery: the domain-event outbox, sent to each subscriber with retries.

A round for one subscription:

1. a short write transaction takes the subscription's lease (so two server processes
   never send the same round), queues one `webhook_delivery` per new event it wants,
   moves its cursor past them, and reads the deliveries that are due, in event order;
2. with no transaction open, POSTs them one after another and stops at the first
   failure, so a receiver that is down gets one request per round rather than a burst,
   and one that hangs costs a single timeout;
3. a second short write transaction records every attempt, settles or reschedules its
   delivery and gives the lease back.

Rounds of different subscriptions run side by side, so one that fails or hangs never
holds up another. A failed delivery is tried again 10 s later, then after twice as long
each time up to an hour, and is given up (`failed`) 24 h after it was queued. Time comes
from the runtime's clock, so tests move a frozen clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import httpx
import orjson
from sqlalchemy import ColumnElement, exists, func, or_, select, true, update
from sqlmodel import col

from loopline import __version__
from loopline.core.canonical import to_jsonable
from loopline.core.db import table_of
from loopline.core.events import DomainEvent
from loopline.core.periodic import every
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.integration.destinations import AddressRefused, WebhookDestinations
from loopline.integration.egress import Resolver, system_resolver, webhook_client
from loopline.integration.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription

log = logging.getLogger("loopline.webhooks")

ACTOR = "system:webhooks"
USER_AGENT = f"Loopline-Webhooks/{__version__}"
FIRST_RETRY = timedelta(seconds=10)
LONGEST_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
# Deliveries one round sends at most, and new events it looks through for the ones wanted.
ROUND_SIZE = 100
SCAN_SIZE = 1000
# PostgreSQL hands out event ids before commit, so a lower id can commit after a higher
# one; the cursor waits this long at a gap before passing it (a rollback leaves a gap
# for good). SQLite assigns ids in commit order and never leaves one.
GAP_GRACE = timedelta(seconds=30)


def wanted_by(event_types: list[str]) -> ColumnElement[bool]:
    """The events a subscription asks for, as an SQL predicate on `domain_event`."""
    if not event_types or "*" in event_types:
        return true()
    column = col(DomainEvent.type)
    return or_(
        *(
            column.startswith(pattern.removesuffix("*"), autoescape=True)
            if pattern.endswith(".*")
            else column == pattern
            for pattern in event_types
        )
    )


def retry_delay(failed_attempts: int) -> timedelta:
    return min(FIRST_RETRY * 2 ** (failed_attempts - 1), LONGEST_RETRY)


def settled_through(cursor: int, events: Sequence[tuple[int, datetime]], horizon: datetime) -> int:
    """How far the cursor may move over `events` (in id order).

    It moves across every id that directly follows the one before, and across a gap only
    once the event after the gap occurred before `horizon`.
    """
    for event_id, occurred_at in events:
        if event_id != cursor + 1 and occurred_at > horizon:
            break
        cursor = event_id
    return cursor


def envelope(event: DomainEvent) -> bytes:
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "occurred_at": to_jsonable(event.occurred_at),
            "subject_type": event.subject_type,
            "subject_id": event.subject_id,
            "actor": event.actor,
            "payload": event.payload,
        }
    )


def signature(secret: str, body: bytes, at: datetime) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed too, so a replay can be refused."""
    timestamp = int(at.timestamp())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def new_client(settings: Settings, resolver: Resolver = system_resolver) -> httpx.AsyncClient:
    """The client deliveries are sent with; it reaches only the addresses the destination rules allow."""
    return webhook_client(
        WebhookDestinations.from_setting(settings.webhook_allowed_hosts),
        timeout_s=settings.webhook_timeout_s,
        user_agent=USER_AGENT,
        resolver=resolver,
    )


@dataclass(frozen=True)
class _Round:
    subscription_id: str
    url: str
    secret: str
    due: list[tuple[str, DomainEvent]]  # (delivery id, event), in event order


@dataclass(frozen=True)
class _Outcome:
    delivery_id: str
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(col(WebhookSubscription.leased_until).is_(None), col(WebhookSubscription.leased_until) <= now)


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        col(WebhookDelivery.status) == DeliveryStatus.PENDING,
        col(WebhookDelivery.next_attempt_at) <= now,
    ]


async def subscriptions_with_work(runtime: Runtime) -> list[str]:
    """Active subscriptions with events past their cursor or deliveries due, and no round under way.

    A read, so an idle server takes no write lock.
    """
    now = runtime.clock.now()
    newest = select(func.coalesce(func.max(DomainEvent.id), 0)).scalar_subquery()
    due = exists().where(col(WebhookDelivery.subscription_id) == col(WebhookSubscription.id), *_due(now))
    async with runtime.db.read_session() as session:
        found = await session.scalars(
            select(col(WebhookSubscription.id))
            .where(
                col(WebhookSubscription.active), _lease_free(now), or_(col(WebhookSubscription.cursor) < newest, due)
            )
            .order_by(col(WebhookSubscription.id))
        )
        return list(found)


async def _claim(runtime: Runtime, subscription_id: str) -> _Round | None:
    now = runtime.clock.now()
    # Long enough for a round of slow successes; a crashed process's lease runs out after it.
    lease = timedelta(seconds=runtime.settings.webhook_timeout_s * ROUND_SIZE)
    subscriptions = table_of(WebhookSubscription)
    async with runtime.unit_of_work(actor=ACTOR, command="webhooks.claim") as session:
        subscription = (
            await session.execute(
                update(subscriptions)
                .where(subscriptions.c.id == subscription_id, subscriptions.c.active, _lease_free(now))
                .values(leased_until=now + lease)
                .returning(subscriptions)
            )
        ).first()
        if subscription is None:
            return None
        # Stored events always have an id; the model types it optional only for before the insert.
        scanned = cast(
            Sequence[tuple[int, datetime, bool]],
            (
                await session.execute(
                    select(col(DomainEvent.id), col(DomainEvent.occurred_at), wanted_by(subscription.event_types))
                    .where(col(DomainEvent.id) > subscription.cursor)
                    .order_by(col(DomainEvent.id))
                    .limit(SCAN_SIZE)
                )
            ).all(),
        )
        cursor = settled_through(subscription.cursor, [(row[0], row[1]) for row in scanned], now - GAP_GRACE)
        session.add_all(
            WebhookDelivery(subscription_id=subscription_id, event_id=event_id, queued_at=now, next_attempt_at=now)
            for event_id, _, wanted in scanned
            if wanted and event_id <= cursor
        )
        due = (
            await session.execute(
                select(col(WebhookDelivery.id), DomainEvent)
                .join(DomainEvent, col(DomainEvent.id) == col(WebhookDelivery.event_id))
                .where(col(WebhookDelivery.subscription_id) == subscription_id, *_due(now))
                .order_by(col(WebhookDelivery.event_id))
                .limit(ROUND_SIZE)
            )
        ).all()
        # With nothing due the round ends here, and so does its lease.
        ended = {} if due else {"leased_until": None}
        await session.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id).values(cursor=cursor, **ended)
        )
    if not due:
        return None
    return _Round(subscription_id, subscription.url, subscription.secret, [(row[0], row[1]) for row in due])


async def _post(
    client: httpx.AsyncClient, work: _Round, delivery_id: str, event: DomainEvent, at: datetime
) -> _Outcome:
    body = envelope(event)
    headers = {
        "Content-Type": "application/json",
        "Loopline-Event-Id": str(event.id),
        "Loopline-Event-Type": event.type,
        "Loopline-Signature": signature(work.secret, body, at),
    }
    status_code, error = None, None
    started = time.perf_counter()
    try:
        # Streamed and closed unread: only the status matters, and a receiver's body could be any size.
        async with client.stream("POST", work.url, content=body, headers=headers) as response:
            status_code = response.status_code
    except AddressRefused as exc:
        error = f"{type(exc).__name__} {exc}"
    # Only the kind of failure: a message can quote what the other end sent (an HTTP parser
    # quotes a line it cannot read), and what a receiver answers stays with the receiver.
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    return _Outcome(delivery_id, at, status_code, error, round((time.perf_counter() - started) * 1000))


def _settle(delivery: WebhookDelivery, outcome: _Outcome) -> None:
    delivery.attempts += 1
    if outcome.succeeded:
        delivery.status, delivery.settled_at, delivery.next_attempt_at = DeliveryStatus.DELIVERED, outcome.at, None
        return
    retry_at = outcome.at + retry_delay(delivery.attempts)
    if retry_at - delivery.queued_at <= GIVE_UP_AFTER:
        delivery.next_attempt_at = retry_at
        return
    delivery.status, delivery.settled_at, delivery.next_attempt_at = DeliveryStatus.FAILED, outcome.at, None
    log.warning("webhook delivery %s given up after %d attempts", delivery.id, delivery.attempts)


async def _record(runtime: Runtime, subscription_id: str, outcomes: list[_Outcome]) -> None:
    subscriptions = table_of(WebhookSubscription)
    async with runtime.unit_of_work(actor=ACTOR, command="webhooks.record") as session:
        deliveries = {
            delivery.id: delivery
            for delivery in await session.scalars(
                select(WebhookDelivery).where(col(WebhookDelivery.id).in_([o.delivery_id for o in outcomes]))
            )
        }
        for outcome in outcomes:
            _settle(deliveries[outcome.delivery_id], outcome)
            session.add(
                WebhookAttempt(
                    delivery_id=outcome.delivery_id,
                    attempted_at=outcome.at,
                    succeeded=outcome.succeeded,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
        await session.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id).values(leased_until=None)
        )


async def deliver_round(runtime: Runtime, client: httpx.AsyncClient, subscription_id: str) -> int:
    """One round for one subscription; the number of attempts made."""
    work = await _claim(runtime, subscription_id)
    if work is None:
        return 0
    outcomes: list[_Outcome] = []
    try:
        for delivery_id, event in work.due:
            outcome = await _post(client, work, delivery_id, event, runtime.clock.now())
            outcomes.append(outcome)
            if not outcome.succeeded:
                break
    finally:
        # Also when shutdown cancels the round: what was sent is recorded, so it is not sent again.
        await _record(runtime, subscription_id, outcomes)
    return len(outcomes)


async def deliver_due(runtime: Runtime, client: httpx.AsyncClient) -> int:
    """A round for every subscription with work, side by side; the number of attempts made."""
    made = await asyncio.gather(
        *(deliver_round(runtime, client, subscription_id) for subscription_id in await subscriptions_with_work(runtime))
    )
    return sum(made)


def _round_ended(rounds: dict[str, asyncio.Task[int]], subscription_id: str, task: asyncio.Task[int]) -> None:
    rounds.pop(subscription_id, None)
    if not task.cancelled() and task.exception() is not None:
        log.error("webhook round for subscription %s failed", subscription_id, exc_info=task.exception())


async def _start_rounds(runtime: Runtime, client: httpx.AsyncClient, rounds: dict[str, asyncio.Task[int]]) -> None:
    # Each subscription's round is a task of its own: a new round starts for every
    # subscription whose last one has ended, so a slow receiver only delays itself.
    for subscription_id in await subscriptions_with_work(runtime):
        if subscription_id not in rounds:
            task = asyncio.create_task(deliver_round(runtime, client, subscription_id))
            rounds[subscription_id] = task
            task.add_done_callback(functools.partial(_round_ended, rounds, subscription_id))


@asynccontextmanager
async def worker(runtime: Runtime) -> AsyncIterator[None]:
    """Deliver on a timer while the server runs (`webhook_interval_s`; 0: never)."""
    interval_s = runtime.settings.webhook_interval_s
    if interval_s <= 0:
        yield
        return
    rounds: dict[str, asyncio.Task[int]] = {}
    async with new_client(runtime.settings) as client:
        start_rounds = functools.partial(_start_rounds, runtime, client, rounds)
        try:
            async with every(interval_s, start_rounds, what="webhook worker"):
                yield
        finally:
            running = list(rounds.values())
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
