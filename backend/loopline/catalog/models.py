"""Catalog: plants and lines, product models, inspection plans, defect codes, complaint categories."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import FiniteFloat
from sqlalchemy import JSON, Column, Numeric, UniqueConstraint
from sqlmodel import Field

from loopline.core.access import GlobalCatalogEntity, StaffCatalogEntity
from loopline.core.types import MAX_INT, EnumString, Money, one_of


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Plant(StaffCatalogEntity, table=True):
    __entity__ = "plant"

    code: str = Field(max_length=16, unique=True, min_length=1)
    name: str = Field(max_length=120, min_length=1)
    country: str = Field(max_length=2, min_length=2)
    tz: str = Field(max_length=64, default="UTC")


class Line(StaffCatalogEntity, table=True):
    __entity__ = "line"
    __table_args__ = (UniqueConstraint("plant_id", "code"),)

    plant_id: str = Field(foreign_key="plant.id", index=True, max_length=36)
    code: str = Field(max_length=16, min_length=1)
    name: str = Field(max_length=120, default="")
    supervisor_id: str | None = Field(default=None, foreign_key="user.id", max_length=36)


class ProductModel(GlobalCatalogEntity, table=True):
    __entity__ = "product_model"

    sku: str = Field(max_length=32, unique=True, min_length=1)
    name: str = Field(max_length=200, min_length=1)
    family: str = Field(max_length=64, default="")
    unit_cost: Money = Field(sa_column=Column(Numeric(12, 2), nullable=False), ge=0, max_digits=12, decimal_places=2)


class PlanStatus(StrEnum):
    DRAFT = "draft"
    RELEASED = "released"
    OBSOLETE = "obsolete"


class InspectionPlan(StaffCatalogEntity, table=True):
    __entity__ = "inspection_plan"
    __table_args__ = (UniqueConstraint("code", "plan_version"), one_of("status", PlanStatus))

    code: str = Field(max_length=40, min_length=1)
    product_model_id: str = Field(foreign_key="product_model.id", index=True, max_length=36)
    plan_version: int = Field(ge=1, le=MAX_INT)
    status: PlanStatus = Field(default=PlanStatus.DRAFT, sa_type=EnumString(PlanStatus, 16))


class DefectCode(StaffCatalogEntity, table=True):
    __entity__ = "defect_code"
    __table_args__ = (one_of("severity", Severity),)

    code: str = Field(max_length=32, unique=True, min_length=1)
    name: str = Field(max_length=200, min_length=1)
    severity: Severity = Field(sa_type=EnumString(Severity, 16))


class Characteristic(StaffCatalogEntity, table=True):
    __entity__ = "characteristic"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)

    plan_id: str = Field(foreign_key="inspection_plan.id", index=True, max_length=36)
    code: str = Field(max_length=16, min_length=1)
    name: str = Field(max_length=200, min_length=1)
    unit: str = Field(max_length=16, default="")
    nominal: FiniteFloat | None = Field(default=None)
    lsl: FiniteFloat | None = Field(default=None)
    usl: FiniteFloat | None = Field(default=None)
    sample_n: int = Field(default=1, ge=1, le=1000)
    spc_rules: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cpk_target: FiniteFloat | None = Field(default=None, ge=0)
    defect_code_on_fail: str | None = Field(default=None, foreign_key="defect_code.code", max_length=32)


class ComplaintCategory(GlobalCatalogEntity, table=True):
    __entity__ = "complaint_category"

    code: str = Field(max_length=32, unique=True, min_length=1)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DefectCategoryMap(StaffCatalogEntity, table=True):
    __entity__ = "defect_category_map"
    __table_args__ = (UniqueConstraint("defect_code", "category_code"),)

    defect_code: str = Field(foreign_key="defect_code.code", index=True, max_length=32)
    category_code: str = Field(foreign_key="complaint_category.code", index=True, max_length=32)
