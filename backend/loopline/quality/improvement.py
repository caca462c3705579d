"""Sync mutations that close the loop: CAPA with its effectiveness check, quality costs, and closing an NC.

A nonconformance closes only when a CAPA that covers it has passed its effectiveness check
and every case linked to it is resolved (loop rule 6); the refusal names what is missing.
Quality costs are recorded per nonconformance in the four cost-of-quality categories.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Role
from loopline.core.events import emit
from loopline.core.numbering import next_number
from loopline.core.types import Money, UTCTimestamp
from loopline.customer.models import Case, CaseStatus
from loopline.quality.models import Capa, CapaStatus, CostCategory, NcStatus, NonConformance, QualityCost
from loopline.syncing.registry import (
    Handler,
    MutationContext,
    MutationRejected,
    create_once,
    parse_args,
    readable,
    require,
)

QUALITY_ROLES = {Role.SUPERVISOR, Role.ADMIN, Role.INSPECTOR}
DONE_CASE = {CaseStatus.RESOLVED, CaseStatus.CLOSED}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CapaAction(_Args):
    description: str = Field(min_length=1, max_length=2000)
    owner_id: str | None = Field(default=None, max_length=36)
    due: UTCTimestamp | None = None
    status: Literal["open", "done"] = "open"


class CapaOpenArgs(_Args):
    id: str = Field(min_length=1, max_length=36)
    nc_ids: list[str] = Field(min_length=1, max_length=50)
    root_cause: str = Field(default="", max_length=8000)
    actions: list[CapaAction] = Field(default_factory=list, max_length=100)


class CapaVerifyArgs(_Args):
    id: str = Field(max_length=36)
    criterion: str = Field(min_length=1, max_length=2000)
    result: Literal["passed", "failed"]
    evidence: str = Field(default="", max_length=8000)


class QualityCostArgs(_Args):
    id: str = Field(min_length=1, max_length=36)
    nc_id: str = Field(max_length=36)
    category: CostCategory
    amount: Money = Field(ge=0, max_digits=14, decimal_places=2)
    description: str = Field(default="", max_length=400)
    ref: str = Field(default="", max_length=64)
    incurred_at: UTCTimestamp


async def open_capa(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(CapaOpenArgs, raw)
    require(ctx.principal.role in QUALITY_ROLES)
    ncs = [await readable(ctx, NonConformance, nc_id) for nc_id in dict.fromkeys(args.nc_ids)]
    existing = await ctx.session.get(Capa, args.id)
    if existing is not None:
        return existing.version
    capa = Capa(
        id=args.id,
        plant_id=ncs[0].plant_id,
        number=await next_number(ctx.session, "CAPA"),
        nc_ids=[nc.id for nc in ncs],
        root_cause=args.root_cause,
        actions=[action.model_dump(mode="json") for action in args.actions],
    )
    ctx.session.add(capa)
    await ctx.session.flush()
    _event(ctx, "capa.opened", capa, {"number": capa.number, "nc_ids": capa.nc_ids})
    return capa.version


async def verify_capa(ctx: MutationContext, raw: dict[str, Any]) -> int:
    """Record the effectiveness check: passed closes the CAPA, failed sends it back to implementing."""
    args = parse_args(CapaVerifyArgs, raw)
    require(ctx.principal.role in {Role.SUPERVISOR, Role.ADMIN}, "forbidden", "A supervisor verifies effectiveness.")
    capa = await readable(ctx, Capa, args.id)
    check = {"criterion": args.criterion, "result": args.result, "evidence": args.evidence}
    if capa.status == CapaStatus.CLOSED:
        if capa.effectiveness.get("result") == args.result:
            return capa.version
        raise MutationRejected("capa_closed", "The CAPA is closed.", {"current": capa.status})
    capa.effectiveness = {**check, "verified_by": ctx.principal.user_id, "verified_at": ctx.now.isoformat()}
    capa.status = CapaStatus.CLOSED if args.result == "passed" else CapaStatus.IMPLEMENTING
    await ctx.session.flush()
    _event(ctx, f"capa.effectiveness_{args.result}", capa, {"number": capa.number})
    return capa.version


async def record_quality_cost(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(QualityCostArgs, raw)
    require(ctx.principal.role in QUALITY_ROLES)
    nc = await readable(ctx, NonConformance, args.nc_id)
    cost, _ = await create_once(
        ctx,
        QualityCost(
            id=args.id,
            plant_id=nc.plant_id,
            nc_id=nc.id,
            ref=args.ref,
            category=args.category,
            description=args.description,
            amount=args.amount,
            incurred_at=args.incurred_at,
        ),
        {"nc_id": nc.id, "category": args.category.value, "amount": str(args.amount), "ref": args.ref},
    )
    return cost.version


async def closing_blockers(session: AsyncSession, nc: NonConformance) -> dict[str, Any]:
    """What still keeps a nonconformance open: unresolved cases, no verified CAPA. Empty when it may close."""
    open_cases = sorted(
        await session.scalars(select(Case.number).where(Case.nc_id == nc.id, col(Case.status).not_in(DONE_CASE)))
    )
    verified = any(
        nc.id in capa.nc_ids and capa.effectiveness.get("result") == "passed"
        for capa in await session.scalars(select(Capa).where(Capa.plant_id == nc.plant_id))
    )
    blockers: dict[str, Any] = {}
    if open_cases:
        blockers["open_cases"] = open_cases
    if not verified:
        blockers["capa"] = "no CAPA covering this nonconformance has passed its effectiveness check"
    return blockers


async def guard_nc_close(ctx: MutationContext, nc: NonConformance, to_status: str) -> None:
    if to_status != NcStatus.CLOSED:
        return
    blockers = await closing_blockers(ctx.session, nc)
    if blockers:
        raise MutationRejected("nc_not_closable", "The nonconformance cannot close yet.", blockers)


def _event(ctx: MutationContext, event_type: str, capa: Capa, payload: dict[str, Any]) -> None:
    emit(
        ctx.session,
        event_type,
        subject_type="capa",
        subject_id=capa.id,
        actor=ctx.principal.user_id,
        at=ctx.now,
        payload=payload,
    )


mutations: dict[str, Handler] = {
    "capa.open": open_capa,
    "capa.verify": verify_capa,
    "quality_cost.record": record_quality_cost,
}
