"""`/admin/webhooks`: subscriptions, their deliveries and the delivery figures (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import FromQuery, JSONBody, QueryParameter
from pydantic import BaseModel, Field, StringConstraints

from loopline.core.api import Cursor, IdPath, Limit, PrincipalDep, RuntimeDep, SessionDep
from loopline.core.auth import admin_only
from loopline.core.pagination import Page
from loopline.integration import webhooks
from loopline.integration.models import DeliveryStatus, WebhookSubscription
from loopline.integration.webhooks import DeliveryRead, WebhookSummary

# An exact type ("case.created"), a prefix ("case.*") or "*".
EventType = Annotated[
    str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$", max_length=64)
]
Url = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000),
    Field(
        description="An absolute http(s) URL without credentials, at a public address unless "
        "LOOPLINE_WEBHOOK_ALLOWED_HOSTS names its host (400 `invalid_url` or `address_not_allowed`)."
    ),
]
Description = Annotated[str, StringConstraints(max_length=500)]
EventTypes = Annotated[list[EventType], Field(max_length=50)]
SummaryDays = Annotated[int, QueryParameter(ge=1, le=90, description="The window of the figures, in days.")]


class WebhookCreate(BaseModel):
    url: Url
    description: Description = ""
    event_types: EventTypes = Field(default_factory=list, description='Exact types or prefixes ("case.*"); empty: all.')
    active: bool = True


class WebhookPatch(BaseModel):
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    active: bool | None = None


class WebhookRead(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Signs every delivery (`Loopline-Signature`); shown only here, once.")


def _read(subscription: WebhookSubscription) -> WebhookRead:
    return WebhookRead.model_validate(subscription, from_attributes=True)


class WebhookAdminController(Controller):
    path = "/admin/webhooks"
    tags = ["admin"]
    guards = [admin_only]

    @post("/", operation_id="admin_create_webhook", status_code=201)
    async def create(
        self, runtime: RuntimeDep, principal: PrincipalDep, data: JSONBody[WebhookCreate]
    ) -> WebhookCreated:
        subscription = await webhooks.create_subscription(runtime, actor=principal.user_id, **data.model_dump())
        return WebhookCreated.model_validate(subscription, from_attributes=True)

    @get("/", operation_id="admin_list_webhooks")
    async def list_subscriptions(
        self, session: SessionDep, cursor: Cursor = None, limit: Limit = 50
    ) -> Page[WebhookRead]:
        items, next_cursor = await webhooks.list_subscriptions(session, cursor, limit)
        return Page[WebhookRead](items=[_read(s) for s in items], next_cursor=next_cursor)

    @get("/summary", operation_id="admin_get_webhook_summary")
    async def summary(self, runtime: RuntimeDep, session: SessionDep, days: SummaryDays = 7) -> WebhookSummary:
        """Delivery success over the last `days` and the outbox depth: the webhook figures of data health."""
        return await webhooks.summary(session, runtime.clock.now(), days)

    @get("/{subscription_id:str}", operation_id="admin_get_webhook")
    async def get_subscription(self, session: SessionDep, subscription_id: IdPath) -> WebhookRead:
        return _read(await webhooks.get_subscription(session, subscription_id))

    @patch("/{subscription_id:str}", operation_id="admin_update_webhook")
    async def update(
        self, runtime: RuntimeDep, principal: PrincipalDep, data: JSONBody[WebhookPatch], subscription_id: IdPath
    ) -> WebhookRead:
        subscription = await webhooks.update_subscription(
            runtime,
            actor=principal.user_id,
            subscription_id=subscription_id,
            changes=data.model_dump(exclude_none=True),
        )
        return _read(subscription)

    @get("/{subscription_id:str}/deliveries", operation_id="admin_list_webhook_deliveries")
    async def deliveries(
        self,
        session: SessionDep,
        subscription_id: IdPath,
        status: FromQuery[DeliveryStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[DeliveryRead]:
        """Each event queued for the subscription, with every attempt at it; `status=failed` lists what was given up."""
        items, next_cursor = await webhooks.list_deliveries(session, subscription_id, status, cursor, limit)
        return Page[DeliveryRead](items=items, next_cursor=next_cursor)


controllers = [WebhookAdminController]
