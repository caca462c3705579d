"""What a customer portal user may see of each entity: one allow-list per entity, for every read path.

A customer reads through REST, `/sync/pull`, the live tail and the case context; each of
them shows a customer an entity only through its view here, never the staff shape minus
a few fields. A view names every field on purpose, so a column added to a table reaches
customers only when it is added here, and an entity without a view never reaches them.

Some rows are not the customer's business yet: a drafted advisory and its pending
recipients, a remedy still proposed, a photo staff attached to the case as evidence. Such
a row is shown as a `delete` in the log (the customer may hold an earlier state of it) and
left out of a snapshot; its later put that the customer may see arrives as usual.

Left out on purpose: SLA targets, assignees, flags, defect codes, nonconformance and batch
ids, tiers, account managers and SLA policies, an advisory's summary (written for staff:
it counts the accounts that received the lot) and affected quantity, a remedy's amount,
rule and approver, and a product's unit cost.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from loopline.catalog.models import ComplaintCategory, ProductModel, Severity
from loopline.core.access import Principal, Role, ScopedEntity
from loopline.core.errors import AppError, NotFound
from loopline.core.pagination import Page, equal_filters, get_readable
from loopline.customer.models import (
    Account,
    Advisory,
    AdvisoryRecipient,
    AdvisoryStatus,
    Case,
    CaseOrigin,
    CaseStatus,
    Contact,
    RecipientState,
    Remedy,
    RemedyKind,
    RemedyStatus,
    Shipment,
    ShipmentLine,
)
from loopline.media.models import Attachment, AttachmentState
from loopline.people.models import Membership, MembershipKind, User
from loopline.threads.models import Message, SubjectType, Thread, ThreadParticipant, Visibility
from loopline_sync.protocol import Change

M = TypeVar("M", bound=ScopedEntity)
V = TypeVar("V", bound="CustomerRow")


class CustomerRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    created_at: datetime | None
    updated_at: datetime | None


class CustomerAccount(CustomerRow):
    code: str
    name: str
    country: str


class CustomerContact(CustomerRow):
    account_id: str
    name: str
    email: str | None
    phone: str | None


class CustomerShipment(CustomerRow):
    account_id: str
    number: str
    shipped_at: datetime


class CustomerShipmentLine(CustomerRow):
    account_id: str
    shipment_id: str
    product_model_id: str
    qty: int


class CustomerCase(CustomerRow):
    account_id: str
    number: str
    title: str
    description: str
    contact_id: str | None
    origin: CaseOrigin
    status: CaseStatus
    severity: Severity
    product_model_id: str | None
    category_code: str | None
    lot_no_reported: str | None
    advisory_id: str | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolution: str


class CustomerAdvisory(CustomerRow):
    number: str
    severity: Severity
    status: AdvisoryStatus


class CustomerAdvisoryRecipient(CustomerRow):
    account_id: str
    advisory_id: str
    contact_id: str
    state: RecipientState
    sent_at: datetime | None
    responded_at: datetime | None


class CustomerRemedy(CustomerRow):
    account_id: str
    case_id: str
    number: str
    kind: RemedyKind
    qty: int
    status: RemedyStatus


class CustomerAttachment(CustomerRow):
    entity_type: str
    entity_id: str
    sha256: str
    kind: str
    state: AttachmentState
    reason_code: str | None
    reason: str | None


class CustomerProductModel(CustomerRow):
    sku: str
    name: str
    family: str


class CustomerComplaintCategory(CustomerRow):
    code: str
    labels: dict[str, Any]


class CustomerThread(CustomerRow):
    subject_type: SubjectType
    subject_id: str
    title: str


class CustomerThreadParticipant(CustomerRow):
    thread_id: str
    user_id: str
    reason: str
    read_seq: int
    muted: bool


class CustomerMessage(CustomerRow):
    thread_id: str
    thread_seq: int
    author_id: str
    visibility: Visibility
    body: str
    mentions: list[str]
    edited_at: datetime | None
    deleted_at: datetime | None


class CustomerUser(CustomerRow):
    username: str
    display_name: str
    email: str | None
    role: Role
    locale: str
    is_active: bool


class CustomerMembership(CustomerRow):
    user_id: str
    kind: MembershipKind
    ref: str


@dataclass(frozen=True)
class Published:
    """A row is the customer's once `field` holds one of `values`; one rule, in Python and in SQL."""

    field: str
    values: frozenset[str]

    def holds(self, data: dict[str, Any]) -> bool:
        return data.get(self.field) in self.values

    def where(self, model: type[ScopedEntity]) -> ColumnElement[bool]:
        return col(getattr(model, self.field)).in_(sorted(self.values))


PUBLISHED_ADVISORY = Published("status", frozenset({AdvisoryStatus.SENT, AdvisoryStatus.CLOSED}))
RECIPIENT_NOTIFIED = Published("state", frozenset(RecipientState) - {RecipientState.PENDING})
REMEDY_GRANTED = Published("status", frozenset({RemedyStatus.APPROVED, RemedyStatus.EXECUTED}))
CUSTOMER_MESSAGE = Published("visibility", frozenset({Visibility.CUSTOMER}))


@dataclass(frozen=True)
class CustomerView:
    model: type[CustomerRow]
    published: Published | None = None

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.model.model_fields)


CUSTOMER_VIEWS: dict[type[ScopedEntity], CustomerView] = {
    Account: CustomerView(CustomerAccount),
    Contact: CustomerView(CustomerContact),
    Shipment: CustomerView(CustomerShipment),
    ShipmentLine: CustomerView(CustomerShipmentLine),
    Case: CustomerView(CustomerCase),
    Advisory: CustomerView(CustomerAdvisory, PUBLISHED_ADVISORY),
    AdvisoryRecipient: CustomerView(CustomerAdvisoryRecipient, RECIPIENT_NOTIFIED),
    Remedy: CustomerView(CustomerRemedy, REMEDY_GRANTED),
    Attachment: CustomerView(CustomerAttachment),
    ProductModel: CustomerView(CustomerProductModel),
    ComplaintCategory: CustomerView(CustomerComplaintCategory),
    Thread: CustomerView(CustomerThread),
    ThreadParticipant: CustomerView(CustomerThreadParticipant),
    Message: CustomerView(CustomerMessage, CUSTOMER_MESSAGE),
    User: CustomerView(CustomerUser),
    Membership: CustomerView(CustomerMembership),
}
_BY_ENTITY: dict[str, CustomerView] = {model.__entity__: view for model, view in CUSTOMER_VIEWS.items()}


def attachment_is_customers(data: dict[str, Any], customer_users: Container[str]) -> bool:
    """A message's photos go with the message; on a case, only what the customer's side attached is theirs.

    Staff attach internal evidence to cases too, in the same scope as the case."""
    if data.get("entity_type") == Message.__entity__:
        return True
    return data.get("entity_type") == Case.__entity__ and data.get("uploaded_by") in customer_users


def _shown(entity: str, data: dict[str, Any], customer_users: Container[str]) -> bool:
    view = _BY_ENTITY[entity]
    if view.published is not None and not view.published.holds(data):
        return False
    return entity != Attachment.__entity__ or attachment_is_customers(data, customer_users)


def for_customer(change: Change, customer_users: Container[str]) -> Change | None:
    """The change as a customer receives it: its allow-listed fields, a `delete` for a row not
    theirs (yet), or None for an entity customers never receive.

    `customer_users` holds at least the uploaders of the photos among such changes who are
    customer portal users."""
    view = _BY_ENTITY.get(change.entity)
    if view is None:
        return None
    if change.op == "delete":
        return change
    data = change.data or {}
    if not _shown(change.entity, data, customer_users):
        return Change.model_construct(
            seq=change.seq, entity=change.entity, id=change.id, op="delete", version=change.version, data=None
        )
    fields = view.fields
    return Change.model_construct(
        seq=change.seq,
        entity=change.entity,
        id=change.id,
        op=change.op,
        version=change.version,
        data={name: value for name, value in data.items() if name in fields},
    )


def customer_user_ids() -> SelectOfScalar[str]:
    """Every customer portal user's id, as a query."""
    return select(col(User.id)).where(col(User.role) == Role.CUSTOMER)


async def uploaders_who_are_customers(session: AsyncSession, changes: Iterable[Change]) -> frozenset[str]:
    """The customer portal users among the uploaders of the case photos in `changes` (one query, if any)."""
    uploaders = {
        uploader
        for c in changes
        if c.entity == Attachment.__entity__
        and c.data
        and c.data.get("entity_type") == Case.__entity__
        and (uploader := c.data.get("uploaded_by"))
    }
    if not uploaders:
        return frozenset()
    return frozenset(await session.scalars(customer_user_ids().where(col(User.id).in_(sorted(uploaders)))))


async def changes_for_customer(session: AsyncSession, changes: list[Change], *, snapshot: bool) -> list[Change]:
    """A page of changes as a customer receives it; a snapshot (current state) holds no deletes."""
    customer_users = await uploaders_who_are_customers(session, changes)
    shown = [projected for change in changes if (projected := for_customer(change, customer_users)) is not None]
    return [c for c in shown if c.op == "put"] if snapshot else shown


# -- REST reads -----------------------------------------------------------------------------


def shown_to(principal: Principal, row: M, view: type[V]) -> M | V:
    """The row in the shape its reader may see: `view` is its entity's customer view."""
    return row if principal.is_staff else view.model_validate(row)


def page_shown_to(principal: Principal, page: Page[M], view: type[V]) -> Page[M] | Page[V]:
    if principal.is_staff:
        return page
    return Page[view](items=[view.model_validate(row) for row in page.items], next_cursor=page.next_cursor)  # type: ignore[valid-type]


def published_to(principal: Principal, model: type[ScopedEntity]) -> ColumnElement[bool]:
    """The SQL form of a view's publication rule for a customer reader (true for staff)."""
    published = CUSTOMER_VIEWS[model].published
    if principal.is_staff or published is None:
        return true()
    return published.where(model)


async def get_shown(session: AsyncSession, model: type[M], principal: Principal, entity_id: str) -> M:
    """`get_readable`, and 404 for a customer when the row is not published to them yet (a draft)."""
    row = await get_readable(session, model, principal, entity_id)
    published = CUSTOMER_VIEWS[model].published
    if not principal.is_staff and published is not None and not published.holds(row.model_dump()):
        raise NotFound(model.__entity__, entity_id)
    return row


def filters_for(principal: Principal, model: type[ScopedEntity], **values: Any) -> list[ColumnElement[bool]]:
    """`equal_filters` and the publication rule; a customer may not filter by a field they
    may not see, since which rows match would tell it."""
    given = {name for name, value in values.items() if value is not None}
    hidden = sorted(given - CUSTOMER_VIEWS[model].fields) if not principal.is_staff else []
    if hidden:
        raise AppError(
            "filter_not_allowed",
            f"A {model.__entity__} cannot be filtered by {', '.join(hidden)}.",
            details={"entity": model.__entity__, "filters": hidden},
        )
    return [*equal_filters(model, **values), published_to(principal, model)]
