"""Sync mutations of the quality domain: inspections, defects, their status commands."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat
from sqlmodel import col, select

from loopline.catalog.models import Characteristic, DefectCode, InspectionPlan, Line, Severity
from loopline.core.access import Role
from loopline.core.audit import AuditEvent
from loopline.core.changelog import ChangeLog
from loopline.core.entity import plant_scope
from loopline.core.events import emit
from loopline.core.types import MAX_INT, UTCTimestamp
from loopline.loop.out_of_spec import RuleContext, respond_to_out_of_spec
from loopline.loop.spc_watch import watch_line
from loopline.media.models import Sha256Hex
from loopline.media.service import link_photos
from loopline.quality.improvement import guard_nc_close
from loopline.quality.models import (
    DEFECT_TRANSITIONS,
    NC_TRANSITIONS,
    Batch,
    Defect,
    DefectConflict,
    Inspection,
    InspectionKind,
    InspectionResult,
    Measurement,
    NonConformance,
)
from loopline.syncing.registry import (
    Handler,
    MutationContext,
    MutationRejected,
    create_once,
    parse_args,
    readable,
    require,
    status_command,
)
from loopline.threads.models import SubjectType
from loopline.threads.service import open_thread

SHOP_FLOOR_ROLES = {Role.INSPECTOR, Role.SUPERVISOR, Role.ADMIN}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeasurementArgs(_Args):
    characteristic: str = Field(min_length=1, max_length=16)
    value: FiniteFloat
    photo_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=20)


class InspectionSubmitArgs(_Args):
    id: str = Field(min_length=1, max_length=36)
    batch_id: str = Field(max_length=36)
    plan_id: str = Field(max_length=36)
    kind: InspectionKind
    captured_at: UTCTimestamp
    measurements: list[MeasurementArgs] = Field(max_length=1000)
    notes: str = Field(default="", max_length=4000)
    number: str | None = Field(default=None, max_length=32)
    photo_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=50)


def out_of_spec(value: float, characteristic: Characteristic) -> bool:
    return (characteristic.lsl is not None and value < characteristic.lsl) or (
        characteristic.usl is not None and value > characteristic.usl
    )


async def submit_inspection(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(InspectionSubmitArgs, raw)
    require(ctx.principal.role in SHOP_FLOOR_ROLES)
    batch = await readable(ctx, Batch, args.batch_id)
    plan = await readable(ctx, InspectionPlan, args.plan_id)
    require(
        plan.product_model_id == batch.product_model_id,
        "plan_mismatch",
        "The plan is for another product model than the batch.",
    )
    characteristics = {
        c.code: c for c in await ctx.session.scalars(select(Characteristic).where(Characteristic.plan_id == plan.id))
    }
    unknown = sorted({m.characteristic for m in args.measurements} - characteristics.keys())
    if unknown:
        raise MutationRejected(
            "unknown_characteristic", "The plan has no such characteristic.", {"characteristics": unknown}
        )
    flags = [out_of_spec(m.value, characteristics[m.characteristic]) for m in args.measurements]
    inspection = Inspection(
        id=args.id,
        plant_id=batch.plant_id,
        number=args.number,
        batch_id=batch.id,
        plan_id=plan.id,
        plan_version=plan.plan_version,
        kind=args.kind,
        inspector_id=ctx.principal.user_id,
        device_id=ctx.client_id,
        captured_at=args.captured_at,
        received_at=ctx.now,
        result=InspectionResult.FAIL if any(flags) else InspectionResult.PASS,
        notes=args.notes,
    )
    stored, created = await create_once(
        ctx,
        inspection,
        {
            "batch_id": batch.id,
            "plan_id": plan.id,
            "kind": args.kind.value,
            "notes": args.notes,
        },
    )
    if created:
        rows: defaultdict[str, list[Measurement]] = defaultdict(list)
        for measurement, flagged in zip(args.measurements, flags, strict=True):
            row = Measurement(
                plant_id=batch.plant_id,
                inspection_id=inspection.id,
                characteristic_code=measurement.characteristic,
                sample_index=len(rows[measurement.characteristic]),
                value=measurement.value,
                out_of_spec=flagged,
            )
            rows[measurement.characteristic].append(row)
            ctx.session.add(row)
            await ctx.session.flush()
            await link_photos(
                ctx.session, ctx.principal, "measurement", row.id, plant_scope(batch.plant_id), measurement.photo_hashes
            )
        await link_photos(
            ctx.session, ctx.principal, "inspection", inspection.id, plant_scope(batch.plant_id), args.photo_hashes
        )
        for code, measured in rows.items():
            await watch_line(
                ctx.session,
                actor=ctx.principal.user_id,
                inspection=inspection,
                batch=batch,
                characteristic=characteristics[code],
                measurements=measured,
            )
        failing = [characteristics[code] for code, measured in rows.items() if any(m.out_of_spec for m in measured)]
        if failing:
            await _out_of_spec(ctx, inspection, batch, failing)
    return stored.version


async def _out_of_spec(
    ctx: MutationContext, inspection: Inspection, batch: Batch, failing: list[Characteristic]
) -> None:
    outcome = await respond_to_out_of_spec(
        RuleContext(session=ctx.session, actor=ctx.principal.user_id, now=ctx.now), inspection, batch, failing
    )
    ctx.uow.audit(
        entity="inspection",
        entity_id=inspection.id,
        action="rule.out_of_spec",
        diff={
            "characteristics": [c.code for c in failing],
            "nonconformance": outcome.nonconformance.number if outcome else None,
            "opened": outcome.opened if outcome else False,
            "cases": outcome.case_numbers if outcome else [],
            "advisory": outcome.advisory.number if outcome and outcome.advisory else None,
        },
    )


async def require_defect_code(ctx: MutationContext, code: str) -> None:
    if await ctx.session.scalar(select(DefectCode.id).where(DefectCode.code == code)) is None:
        raise MutationRejected("unknown_defect_code", f"No defect code {code!r}.")


class DefectReportArgs(_Args):
    id: str = Field(min_length=1, max_length=36)
    batch_id: str | None = Field(default=None, max_length=36)
    inspection_id: str | None = Field(default=None, max_length=36)
    defect_code: str = Field(max_length=32)
    severity: Severity
    qty_affected: int = Field(default=1, ge=0, le=MAX_INT)
    description: str = Field(default="", max_length=4000)
    photo_hashes: list[Sha256Hex] = Field(default_factory=list, max_length=50)
    captured_at: UTCTimestamp


async def report_defect(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(DefectReportArgs, raw)
    require(ctx.principal.role in SHOP_FLOOR_ROLES)
    batch_id: str | None = args.batch_id
    if args.inspection_id is not None:
        batch_id = batch_id or (await readable(ctx, Inspection, args.inspection_id)).batch_id
    require(batch_id is not None, "validation_error", "A defect names its batch or its inspection.")
    batch = await readable(ctx, Batch, batch_id)
    await require_defect_code(ctx, args.defect_code)
    defect = Defect(
        id=args.id,
        plant_id=batch.plant_id,
        batch_id=batch.id,
        inspection_id=args.inspection_id,
        defect_code=args.defect_code,
        severity=args.severity,
        qty_affected=args.qty_affected,
        description=args.description,
        reporter_id=ctx.principal.user_id,
        captured_at=args.captured_at,
    )
    stored, created = await create_once(
        ctx,
        defect,
        {
            "batch_id": batch.id,
            "defect_code": args.defect_code,
            "severity": args.severity.value,
            "qty_affected": args.qty_affected,
            "description": args.description,
        },
    )
    if created:
        supervisor = await ctx.session.scalar(
            select(Line.supervisor_id).where(Line.plant_id == batch.plant_id, Line.code == batch.line)
        )
        participants = [(ctx.principal.user_id, "reporter")]
        if supervisor:
            participants.append((supervisor, "supervisor"))
        await open_thread(
            ctx.session,
            subject_type=SubjectType.DEFECT,
            subject_id=defect.id,
            subject_scope=plant_scope(batch.plant_id),
            title=f"{args.defect_code} on {batch.lot_no}",
            participants=participants,
        )
        await link_photos(
            ctx.session, ctx.principal, "defect", defect.id, plant_scope(batch.plant_id), args.photo_hashes
        )
    return stored.version


class DefectFields(_Args):
    description: str | None = Field(default=None, max_length=4000)
    qty_affected: int | None = Field(default=None, ge=0, le=MAX_INT)
    severity: Severity | None = None
    defect_code: str | None = Field(default=None, max_length=32)


class DefectUpdateArgs(_Args):
    id: str = Field(max_length=36)
    fields: DefectFields
    base_version: int = Field(ge=1, le=MAX_INT)


async def _data_at_version(ctx: MutationContext, defect_id: str, version: int) -> dict[str, Any] | None:
    return await ctx.session.scalar(
        select(ChangeLog.data)
        .where(
            ChangeLog.entity == "defect",
            ChangeLog.entity_id == defect_id,
            ChangeLog.version == version,
            ChangeLog.op == "put",
        )
        .limit(1)
    )


async def _last_editor(ctx: MutationContext, defect_id: str, field: str) -> str | None:
    events = await ctx.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity == "defect", AuditEvent.entity_id == defect_id)
        .order_by(col(AuditEvent.seq).desc())
    )
    for event in events:
        if event.diff and field in event.diff:
            return event.actor
    return None


async def update_defect(ctx: MutationContext, raw: dict[str, Any]) -> int:
    """Per-field last writer wins in arrival order; a field changed since `base_version` is a conflict."""
    args = parse_args(DefectUpdateArgs, raw)
    require(ctx.principal.is_staff)
    defect = await readable(ctx, Defect, args.id)
    changes = args.fields.model_dump(exclude_unset=True, mode="json")
    if "defect_code" in changes:
        await require_defect_code(ctx, changes["defect_code"])
    base = await _data_at_version(ctx, defect.id, args.base_version) if args.base_version < defect.version else None
    current = defect.public_data()
    for field, value in changes.items():
        if value is None or current.get(field) == value:
            continue
        if base is not None and base.get(field) != current.get(field):
            ctx.session.add(
                DefectConflict(
                    plant_id=defect.plant_id,
                    defect_id=defect.id,
                    field=field,
                    base_version=args.base_version,
                    edits=[
                        {
                            "user_id": await _last_editor(ctx, defect.id, field),
                            "value": current.get(field),
                            "version": defect.version,
                        },
                        {"user_id": ctx.principal.user_id, "value": value, "version": defect.version + 1},
                    ],
                )
            )
        setattr(defect, field, value)
    await ctx.session.flush()
    return defect.version


class StatusArgs(_Args):
    id: str = Field(max_length=36)
    from_: str = Field(alias="from", max_length=24)
    to: str = Field(max_length=24)


async def set_defect_status(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(StatusArgs, raw)
    require(ctx.principal.is_staff)
    defect = await readable(ctx, Defect, args.id)
    if status_command(defect.status, args.from_, args.to, DEFECT_TRANSITIONS):
        defect.status = args.to  # type: ignore[assignment]
        await ctx.session.flush()
    return defect.version


async def set_nc_status(ctx: MutationContext, raw: dict[str, Any]) -> int:
    args = parse_args(StatusArgs, raw)
    require(ctx.principal.role in {Role.SUPERVISOR, Role.ADMIN, Role.INSPECTOR})
    nc = await readable(ctx, NonConformance, args.id)
    if status_command(nc.status, args.from_, args.to, NC_TRANSITIONS):
        await guard_nc_close(ctx, nc, args.to)
        nc.status = args.to  # type: ignore[assignment]
        await ctx.session.flush()
        emit(
            ctx.session,
            f"nc.{nc.status}",
            subject_type="nonconformance",
            subject_id=nc.id,
            actor=ctx.principal.user_id,
            at=ctx.now,
            payload={"number": nc.number, "from": args.from_},
        )
    return nc.version


mutations: dict[str, Handler] = {
    "inspection.submit": submit_inspection,
    "defect.report": report_defect,
    "defect.update": update_defect,
    "defect.set_status": set_defect_status,
    "nc.set_status": set_nc_status,
}
