"""`GET /cases/{id}/context` as a customer sees it: an allow-list, never the staff view minus a few fields.

What stands behind a case for a customer is what the manufacturer tells them: the lot
and how much of it they received, the advisory once it is sent, the customer-visible
messages of the case's thread and the photos the customer's side attached. Inspections,
measurements, SPC signals, nonconformances, who inspected on which device, SLA targets,
assignees and internal flags are the manufacturer's records; a customer asking for them
directly gets 404, so the context never carries them either. Each record is shown in its
customer view (`customer/projections.py`), the same one the pull and the live tail use.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.catalog.models import ProductModel
from loopline.core.access import Principal
from loopline.customer.models import Advisory, AdvisoryRecipient, Case, Shipment, ShipmentLine
from loopline.customer.projections import (
    PUBLISHED_ADVISORY,
    CustomerAdvisory,
    CustomerAdvisoryRecipient,
    CustomerAttachment,
    CustomerCase,
    CustomerMessage,
    CustomerProductModel,
    customer_user_ids,
)
from loopline.loop.trace import json_list_contains
from loopline.media.models import Attachment
from loopline.quality.models import Batch
from loopline.threads.models import Message, SubjectType, Thread


class ReceivedShipment(BaseModel):
    number: str
    shipped_at: datetime
    qty: int


class CustomerLot(BaseModel):
    lot_no: str
    # What the customer's account received of this lot; empty when it received none of it.
    received: list[ReceivedShipment]


class CaseAdvisory(CustomerAdvisory):
    # The advisory's lots that this account received (the others are other customers' business).
    lot_nos: list[str]
    recipients: list[CustomerAdvisoryRecipient]


class CustomerCaseContext(BaseModel):
    case: CustomerCase
    product: CustomerProductModel | None
    lot: CustomerLot | None
    advisories: list[CaseAdvisory]
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
        case=CustomerCase.model_validate(case),
        product=CustomerProductModel.model_validate(product) if product else None,
        lot=CustomerLot(lot_no=batch.lot_no, received=await _received(session, case.account_id, batch))
        if batch
        else None,
        advisories=await _published_advisories(session, case, batch, received_lots),
        messages=[CustomerMessage.model_validate(m) for m in messages],
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
) -> list[CaseAdvisory]:
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
            PUBLISHED_ADVISORY.where(Advisory),
            col(Advisory.id).in_(sent_to_account),
        )
        .order_by(col(Advisory.number))
    )
    return [
        CaseAdvisory(
            **CustomerAdvisory.model_validate(advisory).model_dump(),
            lot_nos=sorted(received_lots[b] for b in advisory.batch_ids if b in received_lots),
            recipients=[
                CustomerAdvisoryRecipient.model_validate(r)
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
    uploaded_by_customer = customer_user_ids()
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
    return [CustomerAttachment.model_validate(a) for a in rows]
