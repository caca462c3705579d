"""Remedies: granting them to a case by the entitlement rules, and resolving the case once they are carried out.

Called when a recipient acknowledges an advisory (the account's inspection-deviation
case gets its remedy) and when a complaint links to an advisory. A case that has
remedies already gets no more: acknowledging twice, or a resent complaint, grants once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.catalog.models import ProductModel, Severity
from loopline.core.canonical import to_jsonable
from loopline.core.events import emit
from loopline.core.numbering import next_number
from loopline.customer.entitlements import CaseFacts, matching_rule, propose
from loopline.customer.models import (
    Account,
    Advisory,
    AdvisoryRecipient,
    Case,
    CaseStatus,
    EntitlementRule,
    Remedy,
    RemedyKind,
    RemedyStatus,
    ShipmentLine,
)
from loopline.loop.cases import resolve_case
from loopline.quality.models import CostCategory, NonConformance, QualityCost


async def grant_remedies(
    session: AsyncSession, case: Case, *, affected_qty: int, failed_qty: int, actor: str, now: datetime
) -> list[Remedy]:
    if await session.scalar(select(col(Remedy.id)).where(Remedy.case_id == case.id).limit(1)) is not None:
        return []
    account = await session.get(Account, case.account_id)
    product = await session.get(ProductModel, case.product_model_id) if case.product_model_id else None
    if account is None or product is None:
        return []
    facts = CaseFacts(
        tier=account.tier,
        severity=Severity(case.severity),
        defect_code=case.defect_code,
        has_advisory=case.advisory_id is not None,
        affected_qty=affected_qty,
        failed_qty=failed_qty,
        unit_cost=Decimal(product.unit_cost),
        granted=await _granted_for_advisory(session, case),
    )
    rule = matching_rule(await session.scalars(select(EntitlementRule)), facts)
    if rule is None:
        return []
    granted = []
    for proposal in propose(rule, facts):
        remedy = Remedy(
            account_id=case.account_id,
            number=await next_number(session, "RMA"),
            case_id=case.id,
            rule_id=rule.id,
            kind=proposal.kind,
            qty=proposal.qty,
            amount=proposal.amount,
            details=to_jsonable(
                {**proposal.details, "approver_id": None if proposal.auto_approved else rule.approver_id}
            ),
            status=RemedyStatus.APPROVED if proposal.auto_approved else RemedyStatus.PROPOSED,
        )
        session.add(remedy)
        await session.flush()
        granted.append(remedy)
        if proposal.auto_approved:
            await book_external_failure(session, remedy, case, now)
        for event in ("remedy.proposed", *(["remedy.approved"] if proposal.auto_approved else [])):
            emit(
                session,
                event,
                subject_type="remedy",
                subject_id=remedy.id,
                actor=actor,
                at=now,
                payload={
                    "number": remedy.number,
                    "case_id": case.id,
                    "rule": rule.code,
                    "kind": remedy.kind,
                    "amount": remedy.amount,
                },
            )
    return granted


# Written on a case when a person triaged or decided it: it was not handled by the rules alone.
HANDLED_BY_PERSON = "handled_by_person"
OPEN_CASE = [CaseStatus.NEW, CaseStatus.TRIAGED, CaseStatus.IN_PROGRESS, CaseStatus.AWAITING_CUSTOMER]


def mark_handled_by_person(case: Case) -> None:
    if HANDLED_BY_PERSON not in case.flags:
        case.flags = [*case.flags, HANDLED_BY_PERSON]


async def execute(session: AsyncSession, remedy: Remedy, *, actor: str, now: datetime) -> Case | None:
    """Record that an approved remedy was carried out; resolve its case when nothing else is owed.

    The case is `auto_handled` when no person triaged or decided it: the rules linked it,
    priced and approved the remedy, and fulfilment closed it.
    """
    remedy.status = RemedyStatus.EXECUTED
    await session.flush()
    emit(session, "remedy.executed", subject_type="remedy", subject_id=remedy.id, actor=actor, at=now)
    case = await session.get(Case, remedy.case_id)
    if case is None or case.status not in OPEN_CASE:
        return None
    statuses = set(await session.scalars(select(Remedy.status).where(Remedy.case_id == case.id)))
    if statuses - {RemedyStatus.EXECUTED, RemedyStatus.REJECTED}:
        return None
    await resolve_case(session, case, auto_handled=HANDLED_BY_PERSON not in case.flags, actor=actor, now=now)
    return case


async def book_external_failure(session: AsyncSession, remedy: Remedy, case: Case, now: datetime) -> None:
    """An approved remedy for a nonconformance's case is external-failure cost of that nonconformance."""
    if case.nc_id is None or remedy.amount == 0:
        return
    nc = await session.get(NonConformance, case.nc_id)
    if nc is None:
        return
    session.add(
        QualityCost(
            plant_id=nc.plant_id,
            nc_id=nc.id,
            ref=remedy.number,
            category=CostCategory.EXTERNAL_FAILURE,
            description=f"{remedy.kind} for {case.number}",
            amount=remedy.amount,
            currency=remedy.currency,
            incurred_at=now,
        )
    )
    await session.flush()


async def _granted_for_advisory(session: AsyncSession, case: Case) -> frozenset[RemedyKind]:
    """The remedy kinds this account was granted (and not refused) for the case's advisory, on any case."""
    if case.advisory_id is None:
        return frozenset()
    kinds = await session.scalars(
        select(col(Remedy.kind))
        .join(Case, col(Case.id) == Remedy.case_id)
        .where(
            Case.account_id == case.account_id,
            Case.advisory_id == case.advisory_id,
            col(Remedy.status) != RemedyStatus.REJECTED,
        )
        .distinct()
    )
    return frozenset(RemedyKind(kind) for kind in kinds)


async def on_acknowledgement(session: AsyncSession, recipient: AdvisoryRecipient, *, actor: str, now: datetime) -> None:
    """An account acknowledged an advisory: its case for that advisory is granted what it is owed."""
    advisory = await session.get(Advisory, recipient.advisory_id)
    if advisory is None:
        return
    for case in await session.scalars(
        select(Case).where(Case.advisory_id == advisory.id, Case.account_id == recipient.account_id)
    ):
        received = await session.scalar(
            select(func.coalesce(func.sum(ShipmentLine.qty), 0)).where(
                ShipmentLine.account_id == recipient.account_id, col(ShipmentLine.batch_id).in_(advisory.batch_ids)
            )
        )
        await grant_remedies(session, case, affected_qty=int(received or 0), failed_qty=0, actor=actor, now=now)
