"""Loop rule 1: an out-of-spec measurement becomes customer action in the same transaction.

When an inspection is stored with measurements outside their limits (shared/design/
domain.md, "Loop rules"), this opens — or joins — a nonconformance for the batch and the
defect code, puts the batch on hold, follows the batch to every account that received it,
opens one case per affected account with SLA due times from the account's policy, brings
each account manager into the nonconformance's thread, and drafts an advisory to the
affected accounts' consented contacts. Each step emits its domain event.

It runs inside the unit of work that stores the inspection, and only when the inspection
was new: a failure anywhere leaves none of it, and a resend creates nothing twice. A
second failing inspection of the same batch and defect code joins the open
nonconformance instead of opening another, and accounts that already have a case for it
get no second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.catalog.models import Characteristic, DefectCode, Line, Severity
from loopline.core.entity import plant_scope
from loopline.core.events import emit
from loopline.core.ids import new_id
from loopline.core.numbering import next_number
from loopline.core.uow import insert_entities
from loopline.customer.models import (
    Account,
    Advisory,
    AdvisoryRecipient,
    AdvisoryStatus,
    Case,
    CaseOrigin,
    Contact,
)
from loopline.loop.cases import CaseOpening, open_cases
from loopline.loop.trace import TracedAccount, forward_trace
from loopline.quality.models import Batch, BatchStatus, Inspection, NcSource, NcStatus, NonConformance
from loopline.threads.models import SubjectType
from loopline.threads.service import join_thread, open_thread

SEVERITY_ORDER = [Severity.MINOR, Severity.MAJOR, Severity.CRITICAL]
# Batches in these states are put on hold; later states (advisory, recall, scrap) already say more.
HOLDABLE = {BatchStatus.IN_PRODUCTION, BatchStatus.RELEASED}
OPEN_NC = [NcStatus.OPEN, NcStatus.CONTAINED, NcStatus.INVESTIGATING, NcStatus.DISPOSITIONED]


@dataclass(frozen=True)
class RuleContext:
    session: AsyncSession
    actor: str
    now: datetime


@dataclass(frozen=True)
class OutOfSpecOutcome:
    nonconformance: NonConformance
    opened: bool
    case_numbers: list[str]
    advisory: Advisory | None


async def respond_to_out_of_spec(
    ctx: RuleContext, inspection: Inspection, batch: Batch, failing: list[Characteristic]
) -> OutOfSpecOutcome | None:
    """Apply rule 1 for a newly stored inspection; None when no failing characteristic names a defect code."""
    codes = [c.defect_code_on_fail for c in failing if c.defect_code_on_fail]
    if not codes:
        emit(
            ctx.session,
            "inspection.out_of_spec_unclassified",
            subject_type="inspection",
            subject_id=inspection.id,
            actor=ctx.actor,
            at=ctx.now,
            payload={"characteristics": sorted(c.code for c in failing)},
        )
        return None
    defect_codes = {
        d.code: d for d in await ctx.session.scalars(select(DefectCode).where(col(DefectCode.code).in_(codes)))
    }
    severity = max((defect_codes[code].severity for code in codes), key=SEVERITY_ORDER.index)
    nc, opened = await _nonconformance(ctx, inspection, batch, codes[0], severity)
    await _hold(ctx, batch)
    traced = await forward_trace(ctx.session, batch)
    cases = await _cases(ctx, nc, batch, traced)
    managers = sorted({t.account_manager_id for t in traced if t.account_manager_id})
    await join_thread(
        ctx.session, SubjectType.NONCONFORMANCE, nc.id, [(manager, "account_manager") for manager in managers]
    )
    advisory = await _draft_advisory(ctx, nc, batch, traced) if opened and traced else None
    return OutOfSpecOutcome(nc, opened, [case["number"] for case in cases], advisory)


async def _nonconformance(
    ctx: RuleContext, inspection: Inspection, batch: Batch, defect_code: str, severity: Severity
) -> tuple[NonConformance, bool]:
    """The open nonconformance of this batch and defect code, or a new one with its thread."""
    for candidate in await ctx.session.scalars(
        select(NonConformance).where(
            NonConformance.defect_code == defect_code,
            col(NonConformance.status).in_(OPEN_NC),
            NonConformance.plant_id == batch.plant_id,
        )
    ):
        if batch.id in candidate.batch_ids:
            return candidate, False
    nc = NonConformance(
        plant_id=batch.plant_id,
        number=await next_number(ctx.session, "NC"),
        source=NcSource.INSPECTION,
        source_ref=inspection.number or inspection.id,
        batch_ids=[batch.id],
        defect_code=defect_code,
        severity=severity,
    )
    ctx.session.add(nc)
    await ctx.session.flush()
    supervisor = await ctx.session.scalar(
        select(Line.supervisor_id).where(Line.plant_id == batch.plant_id, Line.code == batch.line)
    )
    await open_thread(
        ctx.session,
        subject_type=SubjectType.NONCONFORMANCE,
        subject_id=nc.id,
        subject_scope=plant_scope(batch.plant_id),
        title=f"{nc.number} {defect_code} on {batch.lot_no}",
        participants=[(inspection.inspector_id, "reporter"), *([(supervisor, "supervisor")] if supervisor else [])],
    )
    emit(
        ctx.session,
        "nc.created",
        subject_type="nonconformance",
        subject_id=nc.id,
        actor=ctx.actor,
        at=ctx.now,
        payload={"number": nc.number, "batch_id": batch.id, "defect_code": defect_code, "severity": severity},
    )
    return nc, True


async def _hold(ctx: RuleContext, batch: Batch) -> None:
    if batch.status not in HOLDABLE:
        return
    batch.status = BatchStatus.ON_HOLD
    await ctx.session.flush()
    emit(
        ctx.session,
        "batch.held",
        subject_type="batch",
        subject_id=batch.id,
        actor=ctx.actor,
        at=ctx.now,
        payload={"lot_no": batch.lot_no},
    )


async def _cases(
    ctx: RuleContext, nc: NonConformance, batch: Batch, traced: list[TracedAccount]
) -> list[dict[str, Any]]:
    """One case per affected account that has none for this nonconformance yet; their rows."""
    existing = set(await ctx.session.scalars(select(Case.account_id).where(Case.nc_id == nc.id)))
    accounts = {
        a.id: a
        for a in await ctx.session.scalars(select(Account).where(col(Account.id).in_([t.account_id for t in traced])))
    }
    openings = [
        CaseOpening(
            accounts[affected.account_id],
            {
                "title": f"{nc.defect_code} on lot {batch.lot_no}: {affected.qty} units received",
                "origin": CaseOrigin.INSPECTION_DEVIATION,
                "product_model_id": batch.product_model_id,
                "batch_id": batch.id,
                "defect_code": nc.defect_code,
                "nc_id": nc.id,
                "severity": nc.severity,
            },
        )
        for affected in traced
        if affected.account_id not in existing
    ]
    return await open_cases(ctx.session, openings, actor=ctx.actor, now=ctx.now)


async def _draft_advisory(ctx: RuleContext, nc: NonConformance, batch: Batch, traced: list[TracedAccount]) -> Advisory:
    account_ids = [t.account_id for t in traced]
    advisory = Advisory(
        number=await next_number(ctx.session, "ADV"),
        nc_id=nc.id,
        plant_id=batch.plant_id,
        batch_ids=[batch.id],
        account_ids=account_ids,
        severity=nc.severity,
        affected_qty=sum(t.qty for t in traced),
        summary=f"{nc.defect_code} found on lot {batch.lot_no}; {len(traced)} accounts received it.",
        status=AdvisoryStatus.DRAFT,
    )
    ctx.session.add(advisory)
    await ctx.session.flush()
    contacts = list(
        await ctx.session.scalars(
            select(Contact).where(col(Contact.account_id).in_(account_ids), col(Contact.pseudonymized_at).is_(None))
        )
    )
    consented = [c for c in contacts if c.consents.get("service_notices") is True]
    await insert_entities(
        ctx.session,
        AdvisoryRecipient,
        [
            {"id": new_id(), "advisory_id": advisory.id, "account_id": contact.account_id, "contact_id": contact.id}
            for contact in consented
        ],
    )
    managers = sorted({t.account_manager_id for t in traced if t.account_manager_id})
    await open_thread(
        ctx.session,
        subject_type=SubjectType.ADVISORY,
        subject_id=advisory.id,
        subject_scope=plant_scope(batch.plant_id),
        title=f"{advisory.number} {nc.defect_code} on {batch.lot_no}",
        participants=[(manager, "account_manager") for manager in managers],
    )
    emit(
        ctx.session,
        "advisory.drafted",
        subject_type="advisory",
        subject_id=advisory.id,
        actor=ctx.actor,
        at=ctx.now,
        payload={
            "number": advisory.number,
            "nc_id": nc.id,
            "accounts": len(account_ids),
            "recipients": len(consented),
            "affected_qty": advisory.affected_qty,
        },
    )
    return advisory
