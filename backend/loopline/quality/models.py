"""Quality: batches, inspections and measurements, defects, nonconformances, CAPA, quality cost.

Rows carry their plant (`plant_id`) even where it could be derived through the batch,
so that the plant scope is one indexed column on every table that needs it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import FiniteFloat, model_validator
from sqlalchemy import JSON, Column, Numeric, UniqueConstraint
from sqlmodel import Field

from loopline.catalog.models import Severity
from loopline.core.access import PlantScopedEntity
from loopline.core.types import MAX_INT, EnumString, Money, UTCDateTime, UTCTimestamp, one_of


class BatchStatus(StrEnum):
    IN_PRODUCTION = "in_production"
    RELEASED = "released"
    ON_HOLD = "on_hold"
    UNDER_ADVISORY = "under_advisory"
    RECALLED = "recalled"
    SCRAPPED = "scrapped"


class Batch(PlantScopedEntity, table=True):
    __entity__ = "batch"
    __table_args__ = (one_of("status", BatchStatus),)

    lot_no: str = Field(max_length=64, unique=True, min_length=1)
    product_model_id: str = Field(foreign_key="product_model.id", index=True, max_length=36)
    line: str = Field(max_length=16, min_length=1)
    produced_from: UTCTimestamp = Field(sa_type=UTCDateTime)
    produced_to: UTCTimestamp = Field(sa_type=UTCDateTime)
    qty: int = Field(ge=0, le=MAX_INT)
    status: BatchStatus = Field(default=BatchStatus.IN_PRODUCTION, sa_type=EnumString(BatchStatus, 16))

    @model_validator(mode="after")
    def _production_ends_after_it_starts(self) -> Batch:
        if self.produced_to < self.produced_from:
            raise ValueError("produced_to is before produced_from")
        return self


class InspectionKind(StrEnum):
    INCOMING = "incoming"
    IN_PROCESS = "in_process"
    FINAL = "final"
    AUDIT = "audit"
    FIELD_RETURN = "field_return"


class InspectionResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"


class Inspection(PlantScopedEntity, table=True):
    __entity__ = "inspection"
    __table_args__ = (one_of("kind", InspectionKind), one_of("result", InspectionResult))

    number: str | None = Field(default=None, max_length=32, unique=True)
    batch_id: str = Field(foreign_key="batch.id", index=True, max_length=36)
    plan_id: str = Field(foreign_key="inspection_plan.id", index=True, max_length=36)
    plan_version: int = Field(ge=1, le=MAX_INT)
    kind: InspectionKind = Field(sa_type=EnumString(InspectionKind, 16))
    inspector_id: str = Field(foreign_key="user.id", index=True, max_length=36)
    device_id: str | None = Field(default=None, max_length=64)
    captured_at: UTCTimestamp = Field(sa_type=UTCDateTime)
    received_at: UTCTimestamp = Field(sa_type=UTCDateTime)
    result: InspectionResult = Field(sa_type=EnumString(InspectionResult, 8))
    notes: str = Field(default="", max_length=4000)


class Measurement(PlantScopedEntity, table=True):
    __entity__ = "measurement"
    __table_args__ = (UniqueConstraint("inspection_id", "characteristic_code", "sample_index"),)

    inspection_id: str = Field(foreign_key="inspection.id", index=True, max_length=36)
    characteristic_code: str = Field(max_length=16)
    sample_index: int = Field(default=0, ge=0, le=MAX_INT)
    value: FiniteFloat
    out_of_spec: bool = False
    spc_signals: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class DefectStatus(StrEnum):
    OPEN = "open"
    CONTAINED = "contained"
    CLOSED = "closed"


class Defect(PlantScopedEntity, table=True):
    __entity__ = "defect"
    __table_args__ = (one_of("status", DefectStatus), one_of("severity", Severity))

    batch_id: str | None = Field(default=None, foreign_key="batch.id", index=True, max_length=36)
    inspection_id: str | None = Field(default=None, foreign_key="inspection.id", index=True, max_length=36)
    defect_code: str = Field(foreign_key="defect_code.code", max_length=32)
    severity: Severity = Field(sa_type=EnumString(Severity, 16))
    qty_affected: int = Field(default=1, ge=0, le=MAX_INT)
    description: str = Field(default="", max_length=4000)
    reporter_id: str = Field(foreign_key="user.id", max_length=36)
    captured_at: UTCTimestamp = Field(sa_type=UTCDateTime)
    status: DefectStatus = Field(default=DefectStatus.OPEN, sa_type=EnumString(DefectStatus, 16))


class NcSource(StrEnum):
    INSPECTION = "inspection"
    DEFECT = "defect"
    COMPLAINT = "complaint"
    SPC = "spc"


class Disposition(StrEnum):
    HOLD = "hold"
    REWORK = "rework"
    SCRAP = "scrap"
    USE_AS_IS = "use_as_is"
    RETURN_TO_VENDOR = "return_to_vendor"


class NcStatus(StrEnum):
    OPEN = "open"
    CONTAINED = "contained"
    INVESTIGATING = "investigating"
    DISPOSITIONED = "dispositioned"
    CLOSED = "closed"


class NonConformance(PlantScopedEntity, table=True):
    __entity__ = "nonconformance"
    __table_args__ = (
        one_of("source", NcSource),
        one_of("status", NcStatus),
        one_of("severity", Severity),
    )

    number: str = Field(max_length=32, unique=True)
    source: NcSource = Field(sa_type=EnumString(NcSource, 16))
    source_ref: str = Field(max_length=64)
    batch_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    defect_code: str = Field(foreign_key="defect_code.code", max_length=32)
    severity: Severity = Field(sa_type=EnumString(Severity, 16))
    containment: str = Field(default="", max_length=4000)
    disposition: Disposition | None = Field(default=None, sa_type=EnumString(Disposition, 24))
    status: NcStatus = Field(default=NcStatus.OPEN, sa_type=EnumString(NcStatus, 16))


class CapaStatus(StrEnum):
    OPEN = "open"
    IMPLEMENTING = "implementing"
    VERIFYING = "verifying"
    CLOSED = "closed"


class Capa(PlantScopedEntity, table=True):
    __entity__ = "capa"
    __table_args__ = (one_of("status", CapaStatus),)

    number: str = Field(max_length=32, unique=True)
    nc_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    root_cause: str = Field(default="", max_length=8000)
    # [{"description", "owner_id", "due", "status"}]
    actions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # {"criterion", "due", "result": null | "passed" | "failed", "evidence"}
    effectiveness: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: CapaStatus = Field(default=CapaStatus.OPEN, sa_type=EnumString(CapaStatus, 16))


class CostCategory(StrEnum):
    PREVENTION = "prevention"
    APPRAISAL = "appraisal"
    INTERNAL_FAILURE = "internal_failure"
    EXTERNAL_FAILURE = "external_failure"


class QualityCost(PlantScopedEntity, table=True):
    __entity__ = "quality_cost"
    __table_args__ = (one_of("category", CostCategory),)

    nc_id: str = Field(foreign_key="nonconformance.id", index=True, max_length=36)
    ref: str = Field(default="", max_length=64)
    category: CostCategory = Field(sa_type=EnumString(CostCategory, 20))
    description: str = Field(default="", max_length=400)
    amount: Money = Field(sa_column=Column(Numeric(14, 2), nullable=False), max_digits=14, decimal_places=2)
    currency: str = Field(default="EUR", max_length=3, min_length=3)
    incurred_at: UTCTimestamp = Field(sa_type=UTCDateTime)


class DefectConflict(PlantScopedEntity, table=True):
    """Two offline edits of the same defect field: the later arrival won; a supervisor reviews."""

    __entity__ = "defect_conflict"

    defect_id: str = Field(foreign_key="defect.id", index=True, max_length=36)
    field: str = Field(max_length=40)
    base_version: int = Field(ge=0, le=MAX_INT)
    # [{"user_id", "value", "version"}]: the overwritten edit first, the winning edit second.
    edits: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reviewed_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)
    reviewed_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)


class WatchStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class QualityWatch(PlantScopedEntity, table=True):
    """An SPC signal inside the spec limits: a task for the line's supervisor; no customer hears of it."""

    __entity__ = "quality_watch"
    __table_args__ = (one_of("status", WatchStatus),)

    number: str = Field(max_length=32, unique=True)
    line: str = Field(max_length=16)
    characteristic_code: str = Field(max_length=16)
    batch_id: str = Field(foreign_key="batch.id", index=True, max_length=36)
    inspection_id: str = Field(foreign_key="inspection.id", max_length=36)
    rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    assignee_id: str | None = Field(default=None, foreign_key="user.id", index=True, max_length=36)
    status: WatchStatus = Field(default=WatchStatus.OPEN, sa_type=EnumString(WatchStatus, 16))


class CapabilitySnapshot(PlantScopedEntity, table=True):
    """A characteristic's capability on a line after an inspection, beside its target (Ppk-style: overall sigma)."""

    __entity__ = "capability_snapshot"

    line: str = Field(max_length=16)
    characteristic_code: str = Field(max_length=16)
    inspection_id: str = Field(foreign_key="inspection.id", index=True, max_length=36)
    subgroups: int = Field(ge=0, le=MAX_INT)
    n: int = Field(ge=0, le=MAX_INT)
    mean: float | None = None
    sigma: float | None = None
    cp: float | None = None
    cpk: float | None = None
    cpk_target: float | None = None
    meets_target: bool | None = None


DEFECT_TRANSITIONS: dict[str, set[str]] = {
    DefectStatus.OPEN: {DefectStatus.CONTAINED, DefectStatus.CLOSED},
    DefectStatus.CONTAINED: {DefectStatus.OPEN, DefectStatus.CLOSED},
    DefectStatus.CLOSED: {DefectStatus.OPEN},
}

NC_TRANSITIONS: dict[str, set[str]] = {
    NcStatus.OPEN: {NcStatus.CONTAINED, NcStatus.INVESTIGATING},
    NcStatus.CONTAINED: {NcStatus.INVESTIGATING},
    NcStatus.INVESTIGATING: {NcStatus.DISPOSITIONED},
    NcStatus.DISPOSITIONED: {NcStatus.CLOSED, NcStatus.INVESTIGATING},
    NcStatus.CLOSED: set(),
}
