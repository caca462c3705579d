"""The loop's spine: which customers received a batch, and what stands behind a case.

`forward_trace` follows Batch → ShipmentLine → Shipment → Account. It is the same
function the loop rules use to find affected accounts, so the view and the rules can
never disagree about who received a lot.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, String, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import col

from loopline.catalog.models import ProductModel
from loopline.core.access import Principal
from loopline.customer.models import Account, Case, Shipment, ShipmentLine
from loopline.media.models import Attachment
from loopline.quality.models import (
    Batch,
    CapabilitySnapshot,
    Inspection,
    InspectionResult,
    Measurement,
    NonConformance,
)
from loopline.quality.reads import measurements_of


class TracedShipment(BaseModel):
    shipment_id: str
    number: str
    shipped_at: datetime
    destination_region: str
    qty: int


class TracedAccount(BaseModel):
    account_id: str
    code: str
    name: str
    tier: str
    region: str
    account_manager_id: str | None
    qty: int
    shipments: list[TracedShipment]


class BatchTrace(BaseModel):
    batch: Batch
    shipped_qty: int
    unshipped_qty: int
    accounts: list[TracedAccount]
    # Units shipped to accounts the caller may not read: counted, not named.
    other_accounts_qty: int


async def forward_trace(session: AsyncSession, batch: Batch) -> list[TracedAccount]:
    """Every account that received `batch`, with quantities and shipments, largest first."""
    rows = await session.execute(
        select(Account, Shipment, col(ShipmentLine.qty))
        .join(Shipment, col(Shipment.id) == ShipmentLine.shipment_id)
        .join(Account, col(Account.id) == Shipment.account_id)
        .where(col(ShipmentLine.batch_id) == batch.id)
        .order_by(col(Account.code), col(Shipment.shipped_at))
    )
    accounts: dict[str, Account] = {}
    shipments: defaultdict[str, list[TracedShipment]] = defaultdict(list)
    for account, shipment, qty in rows:
        accounts[account.id] = account
        shipments[account.id].append(
            TracedShipment(
                shipment_id=shipment.id,
                number=shipment.number,
                shipped_at=shipment.shipped_at,
                destination_region=shipment.destination_region,
                qty=qty,
            )
        )
    traced = [
        TracedAccount(
            account_id=a.id,
            code=a.code,
            name=a.name,
            tier=a.tier,
            region=a.region,
            account_manager_id=a.account_manager_id,
            qty=sum(s.qty for s in shipments[a.id]),
            shipments=shipments[a.id],
        )
        for a in accounts.values()
    ]
    return sorted(traced, key=lambda t: (-t.qty, t.code))


async def batch_trace(session: AsyncSession, principal: Principal, batch: Batch) -> BatchTrace:
    traced = await forward_trace(session, batch)
    readable = principal.account_ids
    visible = [t for t in traced if readable is None or t.account_id in readable]
    shipped = sum(t.qty for t in traced)
    return BatchTrace(
        batch=batch,
        shipped_qty=shipped,
        unshipped_qty=max(batch.qty - shipped, 0),
        accounts=visible,
        other_accounts_qty=shipped - sum(t.qty for t in visible),
    )


class InspectionWithMeasurements(BaseModel):
    inspection: Inspection
    measurements: list[Measurement]


class CaseContext(BaseModel):
    case: Case
    batch: Batch | None
    product_model: ProductModel | None
    inspections: list[InspectionWithMeasurements]
    nonconformances: list[NonConformance]
    attachments: list[Attachment]
    # The line's latest capability per characteristic at a passing inspection up to the case's
    # opening: its control limits (mean ± 3 sigma), which reps cannot read from their read model.
    capability: list[CapabilitySnapshot] = []
    # Who received the lot, as the caller may know it (accounts out of scope only counted).
    trace: BatchTrace | None = None


def json_list_contains(column: Mapped[Any], value: str) -> ColumnElement[bool]:
    # JSON arrays of UUIDs: a quoted match on the JSON text is exact and works on every dialect.
    return cast(column, String).like(f'%"{value}"%')


async def case_context(session: AsyncSession, case: Case, principal: Principal | None = None) -> CaseContext:
    """What a service rep needs inside a case: its batch and that batch's quality evidence.

    Access comes from the case: a rep who may read the case sees its batch's evidence
    without needing the plant's scope. With `principal`, the batch's trace as they may see it.
    """
    batch = await session.get(Batch, case.batch_id) if case.batch_id else None
    model_id = case.product_model_id or (batch.product_model_id if batch else None)
    product_model = await session.get(ProductModel, model_id) if model_id else None
    inspections: list[Inspection] = []
    ncs: list[NonConformance] = []
    if batch is not None:
        inspections = list(
            await session.scalars(
                select(Inspection).where(col(Inspection.batch_id) == batch.id).order_by(col(Inspection.captured_at))
            )
        )
    nc_match: list[ColumnElement[bool]] = [col(NonConformance.id) == case.nc_id] if case.nc_id else []
    if batch is not None:
        nc_match.append(json_list_contains(col(NonConformance.batch_ids), batch.id))
    if nc_match:
        ncs = list(
            await session.scalars(select(NonConformance).where(or_(*nc_match)).order_by(col(NonConformance.number)))
        )
    measurements = await measurements_of(session, [i.id for i in inspections])
    by_inspection: defaultdict[str, list[Measurement]] = defaultdict(list)
    for m in measurements:
        by_inspection[m.inspection_id].append(m)
    referenced = [case.id, *(i.id for i in inspections), *(n.id for n in ncs), *(m.id for m in measurements)]
    attachments = list(
        await session.scalars(
            select(Attachment).where(col(Attachment.entity_id).in_(referenced)).order_by(col(Attachment.id))
        )
    )
    return CaseContext(
        case=case,
        batch=batch,
        product_model=product_model,
        inspections=[InspectionWithMeasurements(inspection=i, measurements=by_inspection[i.id]) for i in inspections],
        nonconformances=ncs,
        attachments=attachments,
        capability=await capability_before(session, batch, case.created_at) if batch is not None else [],
        trace=await batch_trace(session, principal, batch) if batch is not None and principal is not None else None,
    )


async def capability_before(session: AsyncSession, batch: Batch, until: datetime | None) -> list[CapabilitySnapshot]:
    """The newest snapshot per characteristic on the batch's line taken at a passing inspection.

    A snapshot taken at a failing inspection counts the deviation itself into its limits; the
    last one in control is the yardstick the deviation is judged against.
    """
    query = (
        select(CapabilitySnapshot)
        .join(Inspection, col(Inspection.id) == CapabilitySnapshot.inspection_id)
        .where(
            col(CapabilitySnapshot.plant_id) == batch.plant_id,
            col(CapabilitySnapshot.line) == batch.line,
            col(Inspection.result) == InspectionResult.PASS,
        )
    )
    if until is not None:
        query = query.where(col(CapabilitySnapshot.created_at) <= until)
    latest: dict[str, CapabilitySnapshot] = {}
    for snapshot in await session.scalars(query.order_by(col(CapabilitySnapshot.created_at))):
        latest[snapshot.characteristic_code] = snapshot
    return sorted(latest.values(), key=lambda s: s.characteristic_code)
