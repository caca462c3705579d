"""Loop rules 3 and 5: a complaint finds its batch and evidence by itself; an inquiry is answered by the trace.

A complaint that names a lot is checked against the account's shipments: a lot the
account received becomes the case's batch; one it never received (or that does not
exist) is flagged on the case, not linked. The complaint category maps to candidate
defect codes; if the received lot has an open nonconformance with one of them, the case
links to it, and to its advisory once that has gone out. Then the entitlement rules
decide: the account's remedy under an advisory, an investigation without one.

An inquiry ("are we affected?") compares the lots the account received with the lots of
advisories that went out: not affected is answered and resolved at once, with no one's
help (`auto_handled`); affected is linked to the advisory for the account manager.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.catalog.models import DefectCategoryMap
from loopline.core.events import emit
from loopline.customer.models import (
    Account,
    Advisory,
    AdvisoryStatus,
    Case,
    CaseOrigin,
    ShipmentLine,
)
from loopline.loop.cases import open_case, resolve_case
from loopline.loop.out_of_spec import OPEN_NC
from loopline.loop.remedies import grant_remedies
from loopline.quality.models import Batch, NonConformance

ISSUED = [AdvisoryStatus.SENT, AdvisoryStatus.CLOSED]


@dataclass(frozen=True)
class Complaint:
    id: str
    account: Account
    origin: CaseOrigin  # customer (a complaint) or inquiry
    title: str
    description: str
    contact_id: str | None
    lot_no: str | None
    category_code: str | None
    qty_affected: int
    qty_failed: int


async def open_complaint(session: AsyncSession, complaint: Complaint, *, actor: str, now: datetime) -> Case:
    case = await open_case(
        session,
        complaint.account,
        actor=actor,
        now=now,
        participants=[(actor, "author")],
        id=complaint.id,
        title=complaint.title,
        description=complaint.description,
        contact_id=complaint.contact_id,
        origin=complaint.origin,
        lot_no_reported=complaint.lot_no,
        category_code=complaint.category_code,
    )
    if complaint.origin == CaseOrigin.INQUIRY:
        await _answer_inquiry(session, case, actor=actor, now=now)
    else:
        await _link(session, case, complaint, actor=actor, now=now)
    await session.flush()
    return case


async def _received_batches(session: AsyncSession, account_id: str) -> dict[str, Batch]:
    received = select(ShipmentLine.batch_id).where(ShipmentLine.account_id == account_id)
    return {b.id: b for b in await session.scalars(select(Batch).where(col(Batch.id).in_(received)))}


async def _link(session: AsyncSession, case: Case, complaint: Complaint, *, actor: str, now: datetime) -> None:
    if complaint.lot_no is None:
        return
    received = {b.lot_no: b for b in (await _received_batches(session, case.account_id)).values()}
    batch = received.get(complaint.lot_no)
    if batch is None:
        # Flagged for the service rep: a typo, or a lot this customer got from someone else.
        case.flags = [*case.flags, "lot_not_received"]
        emit(session, "case.lot_not_received", subject_type="case", subject_id=case.id, actor=actor, at=now)
        return
    case.batch_id = batch.id
    case.product_model_id = batch.product_model_id
    codes = (
        list(
            await session.scalars(
                select(DefectCategoryMap.defect_code).where(DefectCategoryMap.category_code == complaint.category_code)
            )
        )
        if complaint.category_code
        else []
    )
    nc = next(
        (
            nc
            for nc in await session.scalars(
                select(NonConformance).where(
                    col(NonConformance.defect_code).in_(codes), col(NonConformance.status).in_(OPEN_NC)
                )
            )
            if batch.id in nc.batch_ids
        ),
        None,
    )
    if nc is None:
        case.defect_code = codes[0] if len(codes) == 1 else None
        await _grant(session, case, complaint, actor=actor, now=now)
        return
    case.nc_id, case.defect_code, case.severity = nc.id, nc.defect_code, nc.severity
    advisory = await session.scalar(select(Advisory).where(Advisory.nc_id == nc.id, col(Advisory.status).in_(ISSUED)))
    if advisory is not None:
        case.advisory_id = advisory.id
    await session.flush()
    emit(
        session,
        "case.linked",
        subject_type="case",
        subject_id=case.id,
        actor=actor,
        at=now,
        payload={"nc_id": nc.id, "advisory_id": case.advisory_id, "batch_id": batch.id},
    )
    await _grant(session, case, complaint, actor=actor, now=now)


async def _grant(session: AsyncSession, case: Case, complaint: Complaint, *, actor: str, now: datetime) -> None:
    """The entitlement rules decide: a remedy under an advisory, an investigation without one."""
    await session.flush()
    await grant_remedies(
        session, case, affected_qty=complaint.qty_affected, failed_qty=complaint.qty_failed, actor=actor, now=now
    )


async def _answer_inquiry(session: AsyncSession, case: Case, *, actor: str, now: datetime) -> None:
    received = await _received_batches(session, case.account_id)
    advised = [
        a
        for a in await session.scalars(select(Advisory).where(col(Advisory.status).in_(ISSUED)))
        if set(a.batch_ids) & received.keys()
    ]
    lots = ", ".join(sorted(b.lot_no for b in received.values())) or "none"
    if advised:
        case.advisory_id, case.nc_id = advised[0].id, advised[0].nc_id
        case.resolution = f"Affected: advisory {', '.join(a.number for a in advised)} covers lots you received."
        return
    case.resolution = f"Not affected: you received lots {lots}; none is under an advisory."
    await resolve_case(session, case, auto_handled=True, actor=actor, now=now)
