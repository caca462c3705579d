"""Catalog reads (`/plants`, `/product-models`, `/inspection-plans`, …) and their admin endpoints."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import FromPath, FromQuery
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.catalog.models import (
    Characteristic,
    ComplaintCategory,
    DefectCategoryMap,
    DefectCode,
    InspectionPlan,
    Line,
    PlanStatus,
    Plant,
    ProductModel,
)
from loopline.core.admin_crud import master_data_controller
from loopline.core.api import Cursor, IdFilter, Limit, PrincipalDep, SessionDep
from loopline.core.pagination import Page, equal_filters, get_readable, list_readable
from loopline.core.time_zones import require_known_time_zone
from loopline.customer.projections import (
    CustomerComplaintCategory,
    CustomerProductModel,
    filters_for,
    page_shown_to,
    shown_to,
)


class PlantController(Controller):
    path = "/plants"
    tags = ["catalog"]

    @get("/", operation_id="list_plants")
    async def list_plants(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        code: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Plant]:
        return await list_readable(
            session, Plant, principal, where=equal_filters(Plant, code=code), cursor=cursor, limit=limit
        )

    @get("/{plant_id:str}", operation_id="get_plant")
    async def get_plant(self, session: SessionDep, principal: PrincipalDep, plant_id: FromPath[str]) -> Plant:
        return await get_readable(session, Plant, principal, plant_id)

    @get("/{plant_id:str}/lines", operation_id="list_plant_lines")
    async def list_lines(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        plant_id: FromPath[str],
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Line]:
        await get_readable(session, Plant, principal, plant_id)
        return await list_readable(
            session, Line, principal, where=equal_filters(Line, plant_id=plant_id), cursor=cursor, limit=limit
        )


class ProductModelController(Controller):
    path = "/product-models"
    tags = ["catalog"]

    @get("/", operation_id="list_product_models")
    async def list_product_models(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        sku: FromQuery[str | None] = None,
        family: FromQuery[str | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[ProductModel] | Page[CustomerProductModel]:
        where = filters_for(principal, ProductModel, sku=sku, family=family)
        page = await list_readable(session, ProductModel, principal, where=where, cursor=cursor, limit=limit)
        return page_shown_to(principal, page, CustomerProductModel)

    @get("/{product_model_id:str}", operation_id="get_product_model")
    async def get_product_model(
        self, session: SessionDep, principal: PrincipalDep, product_model_id: FromPath[str]
    ) -> ProductModel | CustomerProductModel:
        model = await get_readable(session, ProductModel, principal, product_model_id)
        return shown_to(principal, model, CustomerProductModel)


class InspectionPlanDetail(BaseModel):
    plan: InspectionPlan
    characteristics: list[Characteristic]


class InspectionPlanController(Controller):
    path = "/inspection-plans"
    tags = ["catalog"]

    @get("/", operation_id="list_inspection_plans")
    async def list_plans(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        product_model_id: IdFilter = None,
        code: FromQuery[str | None] = None,
        status: FromQuery[PlanStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[InspectionPlan]:
        where = equal_filters(InspectionPlan, product_model_id=product_model_id, code=code, status=status)
        return await list_readable(session, InspectionPlan, principal, where=where, cursor=cursor, limit=limit)

    @get("/{plan_id:str}", operation_id="get_inspection_plan")
    async def get_plan(
        self, session: SessionDep, principal: PrincipalDep, plan_id: FromPath[str]
    ) -> InspectionPlanDetail:
        plan = await get_readable(session, InspectionPlan, principal, plan_id)
        characteristics = await session.scalars(
            select(Characteristic).where(col(Characteristic.plan_id) == plan.id).order_by(col(Characteristic.code))
        )
        return InspectionPlanDetail(plan=plan, characteristics=list(characteristics))


class ReferenceDataController(Controller):
    """Small code lists a client loads whole."""

    path = "/"
    tags = ["catalog"]

    @get("/defect-codes", operation_id="list_defect_codes")
    async def list_defect_codes(
        self, session: SessionDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 500
    ) -> Page[DefectCode]:
        return await list_readable(session, DefectCode, principal, cursor=cursor, limit=limit)

    @get("/complaint-categories", operation_id="list_complaint_categories")
    async def list_complaint_categories(
        self, session: SessionDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 500
    ) -> Page[ComplaintCategory] | Page[CustomerComplaintCategory]:
        page = await list_readable(session, ComplaintCategory, principal, cursor=cursor, limit=limit)
        return page_shown_to(principal, page, CustomerComplaintCategory)

    @get("/defect-category-map", operation_id="list_defect_category_map")
    async def list_category_map(
        self, session: SessionDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 500
    ) -> Page[DefectCategoryMap]:
        return await list_readable(session, DefectCategoryMap, principal, cursor=cursor, limit=limit)


async def _plant_in_a_known_time_zone(_session: AsyncSession, values: dict[str, Any]) -> dict[str, Any]:
    require_known_time_zone(values["tz"])
    return values


controllers: list[type[Controller]] = [
    PlantController,
    ProductModelController,
    InspectionPlanController,
    ReferenceDataController,
    master_data_controller(Plant, "plants", derive=_plant_in_a_known_time_zone),
    master_data_controller(Line, "lines"),
    master_data_controller(ProductModel, "product-models"),
    master_data_controller(InspectionPlan, "inspection-plans"),
    master_data_controller(Characteristic, "characteristics"),
    master_data_controller(DefectCode, "defect-codes"),
    master_data_controller(ComplaintCategory, "complaint-categories"),
    master_data_controller(DefectCategoryMap, "defect-category-map"),
]
