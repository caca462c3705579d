"""Quality reads: batches, inspections (with measurements), defects, nonconformances; batch admin."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from loopline.catalog.models import Severity
from loopline.core.access import Principal
from loopline.core.admin_crud import master_data_controller
from loopline.core.api import Cursor, IdFilter, Limit, PrincipalDep, RuntimeDep, SessionDep
from loopline.core.pagination import Page, equal_filters, get_readable, list_readable
from loopline.quality.models import (
    Batch,
    BatchStatus,
    Defect,
    DefectStatus,
    Inspection,
    InspectionKind,
    InspectionResult,
    Measurement,
    NcStatus,
    NonConformance,
)
from loopline.quality.mutations import InspectionSubmitArgs
from loopline.quality.reads import measurements_of
from loopline.syncing.commands import run_command


class BatchController(Controller):
    path = "/batches"
    tags = ["quality"]

    @get("/", operation_id="list_batches")
    async def list_batches(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        plant_id: IdFilter = None,
        product_model_id: IdFilter = None,
        lot_no: FromQuery[str | None] = None,
        line: FromQuery[str | None] = None,
        status: FromQuery[BatchStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Batch]:
        where = equal_filters(
            Batch, plant_id=plant_id, product_model_id=product_model_id, lot_no=lot_no, line=line, status=status
        )
        return await list_readable(session, Batch, principal, where=where, cursor=cursor, limit=limit)

    @get("/{batch_id:str}", operation_id="get_batch")
    async def get_batch(self, session: SessionDep, principal: PrincipalDep, batch_id: FromPath[str]) -> Batch:
        return await get_readable(session, Batch, principal, batch_id)


class InspectionDetail(BaseModel):
    inspection: Inspection
    measurements: list[Measurement]


async def inspection_detail(session: AsyncSession, principal: Principal, inspection_id: str) -> InspectionDetail:
    inspection = await get_readable(session, Inspection, principal, inspection_id)
    return InspectionDetail(inspection=inspection, measurements=await measurements_of(session, [inspection.id]))


class InspectionController(Controller):
    path = "/inspections"
    tags = ["quality"]

    @get("/", operation_id="list_inspections")
    async def list_inspections(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        plant_id: IdFilter = None,
        batch_id: IdFilter = None,
        inspector_id: IdFilter = None,
        kind: FromQuery[InspectionKind | None] = None,
        result: FromQuery[InspectionResult | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Inspection]:
        where = equal_filters(
            Inspection, plant_id=plant_id, batch_id=batch_id, inspector_id=inspector_id, kind=kind, result=result
        )
        return await list_readable(session, Inspection, principal, where=where, cursor=cursor, limit=limit)

    @get("/{inspection_id:str}", operation_id="get_inspection")
    async def get_inspection(
        self, session: SessionDep, principal: PrincipalDep, inspection_id: FromPath[str]
    ) -> InspectionDetail:
        return await inspection_detail(session, principal, inspection_id)

    @post("/", operation_id="submit_inspection", status_code=201)
    async def submit_inspection(
        self, runtime: RuntimeDep, principal: PrincipalDep, data: JSONBody[InspectionSubmitArgs]
    ) -> InspectionDetail:
        """`inspection.submit` over REST, for integrations: the same rules and transaction as a
        device's push. The id is the caller's; sending the same inspection again creates nothing."""
        await run_command(runtime, principal, "inspection.submit", data.model_dump(mode="json"))
        async with runtime.db.read_session() as session:
            return await inspection_detail(session, principal, data.id)


class DefectController(Controller):
    path = "/defects"
    tags = ["quality"]

    @get("/", operation_id="list_defects")
    async def list_defects(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        plant_id: IdFilter = None,
        batch_id: IdFilter = None,
        defect_code: FromQuery[str | None] = None,
        severity: FromQuery[Severity | None] = None,
        status: FromQuery[DefectStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Defect]:
        where = equal_filters(
            Defect, plant_id=plant_id, batch_id=batch_id, defect_code=defect_code, severity=severity, status=status
        )
        return await list_readable(session, Defect, principal, where=where, cursor=cursor, limit=limit)

    @get("/{defect_id:str}", operation_id="get_defect")
    async def get_defect(self, session: SessionDep, principal: PrincipalDep, defect_id: FromPath[str]) -> Defect:
        return await get_readable(session, Defect, principal, defect_id)


class NonConformanceController(Controller):
    path = "/nonconformances"
    tags = ["quality"]

    @get("/", operation_id="list_nonconformances")
    async def list_nonconformances(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        plant_id: IdFilter = None,
        number: FromQuery[str | None] = None,
        defect_code: FromQuery[str | None] = None,
        status: FromQuery[NcStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[NonConformance]:
        where = equal_filters(NonConformance, plant_id=plant_id, number=number, defect_code=defect_code, status=status)
        return await list_readable(session, NonConformance, principal, where=where, cursor=cursor, limit=limit)

    @get("/{nc_id:str}", operation_id="get_nonconformance")
    async def get_nonconformance(
        self, session: SessionDep, principal: PrincipalDep, nc_id: FromPath[str]
    ) -> NonConformance:
        return await get_readable(session, NonConformance, principal, nc_id)


controllers: list[type[Controller]] = [
    BatchController,
    InspectionController,
    DefectController,
    NonConformanceController,
    master_data_controller(Batch, "batches"),
]
