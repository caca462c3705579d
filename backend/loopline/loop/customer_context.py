"""`GET /cases/{id}/context` as a customer sees it: an allow-list, never the staff view minus a few fields.

What stands behind a case for a customer is what the manufacturer tells them: the lot
and how much of it they received, the advisory once it is sent, the customer-visible
messages of the case's thread and the photos the customer's side attached. Inspections,
measurements, SPC signals, nonconformances, who inspected on which device, SLA targets,
assignees and internal flags are the manufacturer's records; a customer asking for them
directly gets 404, so the context never carries them either. Every field below is named
on purpose: a field added to a table reaches customers only when it is added here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.catalog.models import ProductModel, Severity
from loopline.core.access import Principal, Role
from loopline.customer.models import (
    Advisory,
    AdvisoryRecipient,
    AdvisoryStatus,
    Case,
    CaseOrigin,
    CaseStatus,
    RecipientState,
    Shipment,
    ShipmentLine,
)
from loopline.loop.trace import json_list_contains
from loopline.media.models import Attachment, AttachmentState
from loopline.people.models import User
from loopline.quality.models import Batch
from loopline.threads.models import Message, SubjectType, Thread

# An advisory is the customer's business once it has been sent to them, not while drafted.
PUBLISHED_ADVISORY = [AdvisoryStatus.SENT, AdvisoryStatus.CLOSED]


class CustomerCase(BaseModel):
    id: str
    number: str
    title: str
    description: str
    origin: CaseOrigin
    status: CaseStatus
    severity: Severity
    category_code: str | None
    lot_no_reported: str | None
    created_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolution: str


class CustomerProduct(BaseModel):
    sku: str
    name: str
    family: str


class ReceivedShipment(BaseModel):
    number: str
    shipped_at: datetime
    qty: int


class CustomerLot(BaseModel):
    lot_no: str
    # What the customer's account received of this lot; empty when it received none of it.
    received: list[ReceivedShipment]


class CustomerAdvisoryRecipient(BaseModel):
    id: str
    contact_id: str
    state: RecipientState
    sent_at: datetime | None
    responded_at: datetime | None


class CustomerAdvisory(BaseModel):
    id: str
    number: str
    severity: Severity
    summary: str
    status: AdvisoryStatus
    # The advisory's lots that this account received (the others are other customers' business).
    lot_nos: list[str]
    recipients: list[CustomerAdvisoryRecipient]


class CustomerMessage(BaseModel):
    id: str
    thread_seq: int
    author_id: str
    body: str
    created_at: datetime | None
    edited_at: datetime | None
    deleted_at: datetime | None


class CustomerAttachment(BaseModel):
    id: str
    sha256: str
    kind: str
    state: AttachmentState
    # The message it belongs to; None for a photo attached to the case itself.
    message_id: str | None


class CustomerCaseContext(BaseModel):
    case: CustomerCase
    product: CustomerProduct | None
    lot: CustomerLot | None
    advisories: list[CustomerAdvisory]
    messages: list[CustomerMessage]
    attachments: list[CustomerAttachment]


async def customer_case_context(session: AsyncSession, principal: Principal, case: Case) -> CustomerCaseContext:
    """The context of a case the customer may read (the caller checked), from allow-listed fields only."""
    batch = await session.get(Batch, case.batch_id) if case.batch_id else None
    model_id = case.product_model_id or (batch.product_model_id if batch else None)
    product = await session.get(ProductModel, model_id) if model_id else None
    received_lots = await _received_lot_nos(session, case.account_id)
    messages = await _customer_messages(session, principal, case)
    return CustomerCaseContext(
        case=CustomerCase.model_validate(case, from_attributes=True),
        product=CustomerProduct.model_validate(product, from_attributes=True) if product else None,
        lot=CustomerLot(lot_no=batch.lot_no, received=await _received(session, case.account_id, batch))
        if batch
        else None,
        advisories=await _published_advisories(session, case, batch, received_lots),
        messages=[CustomerMessage.model_validate(m, from_attributes=True) for m in messages],
        attachments=await _customer_attachments(session, case, [m.id for m in messages]),
    )


async def _received(session: AsyncSession, account_id: str, batch: Batch) -> list[ReceivedShipment]:
    rows = await session.execute(
        select(col(Shipment.number), col(Shipment.shipped_at), col(ShipmentLine.qty))
        .join(Shipment, col(Shipment.id) == ShipmentLine.shipment_id)
        .where(col(ShipmentLine.batch_id) == batch.id, col(ShipmentLine.account_id) == account_id)
        .order_by(col(Shipment.shipped_at))
    )
    return [ReceivedShipment(number=number, shipped_at=at, qty=qty) for number, at, qty in rows]


async def _received_lot_nos(session: AsyncSession, account_id: str) -> dict[str, str]:
    """Batch id → lot number of every lot the account received."""
    rows = await session.execute(
        select(col(Batch.id), col(Batch.lot_no))
        .join(ShipmentLine, col(ShipmentLine.batch_id) == Batch.id)
        .where(col(ShipmentLine.account_id) == account_id)
    )
    return {batch_id: lot_no for batch_id, lot_no in rows}


async def _published_advisories(
    session: AsyncSession, case: Case, batch: Batch | None, received_lots: dict[str, str]
) -> list[CustomerAdvisory]:
    """Sent advisories this case speaks to: the one it links, and those over its lot sent to its account."""
    speaks_to: list[ColumnElement[bool]] = [col(Advisory.id) == case.advisory_id] if case.advisory_id else []
    if batch is not None:
        speaks_to.append(json_list_contains(col(Advisory.batch_ids), batch.id))
    if not speaks_to:
        return []
    sent_to_account = select(col(AdvisoryRecipient.advisory_id)).where(
        col(AdvisoryRecipient.account_id) == case.account_id
    )
    advisories = await session.scalars(
        select(Advisory)
        .where(
            or_(*speaks_to),
            col(Advisory.status).in_(PUBLISHED_ADVISORY),
            col(Advisory.id).in_(sent_to_account),
        )
        .order_by(col(Advisory.number))
    )
    return [
        CustomerAdvisory(
            id=advisory.id,
            number=advisory.number,
            severity=advisory.severity,
            summary=advisory.summary,
            status=advisory.status,
            lot_nos=sorted(received_lots[b] for b in advisory.batch_ids if b in received_lots),
            recipients=[
                CustomerAdvisoryRecipient.model_validate(r, from_attributes=True)
                for r in await session.scalars(
                    select(AdvisoryRecipient)
                    .where(
                        col(AdvisoryRecipient.advisory_id) == advisory.id,
                        col(AdvisoryRecipient.account_id) == case.account_id,
                    )
                    .order_by(col(AdvisoryRecipient.id))
                )
            ],
        )
        for advisory in advisories
    ]


async def _customer_messages(session: AsyncSession, principal: Principal, case: Case) -> list[Message]:
    """The case thread's messages this customer may read: customer-visible ones, by the messages' own rule."""
    case_thread = select(col(Thread.id)).where(
        col(Thread.subject_type) == SubjectType.CASE, col(Thread.subject_id) == case.id
    )
    rows = await session.scalars(
        select(Message)
        .where(col(Message.thread_id).in_(case_thread), Message.read_filter(principal))
        .order_by(col(Message.thread_seq))
    )
    return list(rows)


async def _customer_attachments(session: AsyncSession, case: Case, message_ids: list[str]) -> list[CustomerAttachment]:
    """Photos of the customer-visible messages, and the photos the customer's side attached to the case.

    Staff may attach internal evidence to a case too; only what a portal user uploaded is theirs.
    """
    uploaded_by_customer = select(col(User.id)).where(col(User.role) == Role.CUSTOMER)
    rows = await session.scalars(
        select(Attachment)
        .where(
            or_(
                (col(Attachment.entity_type) == Message.__entity__) & col(Attachment.entity_id).in_(message_ids),
                (col(Attachment.entity_type) == Case.__entity__)
                & (col(Attachment.entity_id) == case.id)
                & col(Attachment.uploaded_by).in_(uploaded_by_customer),
            )
        )
        .order_by(col(Attachment.id))
    )
    return [
        CustomerAttachment(
            id=a.id,
            sha256=a.sha256,
            kind=a.kind,
            state=a.state,
            message_id=a.entity_id if a.entity_type == Message.__entity__ else None,
        )
        for a in rows
    ]
