"""Customer-service reads: accounts, contacts, shipments, cases, advisories; their admin endpoints."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import FromPath, FromQuery
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.catalog.models import Severity
from loopline.core.admin_crud import master_data_controller
from loopline.core.api import Cursor, IdFilter, Limit, PrincipalDep, SessionDep
from loopline.core.errors import AppError
from loopline.core.pagination import Page, equal_filters, get_readable, list_readable
from loopline.customer.models import (
    Account,
    Advisory,
    AdvisoryRecipient,
    AdvisoryStatus,
    Case,
    CaseOrigin,
    CaseStatus,
    Contact,
    EntitlementRule,
    Shipment,
    ShipmentLine,
    Tier,
)
from loopline.quality.models import Batch


class AccountController(Controller):
    path = "/accounts"
    tags = ["service"]

    @get("/", operation_id="list_accounts")
    async def list_accounts(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        code: FromQuery[str | None] = None,
        tier: FromQuery[Tier | None] = None,
        region: FromQuery[str | None] = None,
        account_manager_id: IdFilter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Account]:
        where = equal_filters(Account, code=code, tier=tier, region=region, account_manager_id=account_manager_id)
        return await list_readable(session, Account, principal, where=where, cursor=cursor, limit=limit)

    @get("/{account_id:str}", operation_id="get_account")
    async def get_account(self, session: SessionDep, principal: PrincipalDep, account_id: FromPath[str]) -> Account:
        return await get_readable(session, Account, principal, account_id)


class ContactController(Controller):
    path = "/contacts"
    tags = ["service"]

    @get("/", operation_id="list_contacts")
    async def list_contacts(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        account_id: IdFilter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Contact]:
        return await list_readable(
            session, Contact, principal, where=equal_filters(Contact, account_id=account_id), cursor=cursor, limit=limit
        )

    @get("/{contact_id:str}", operation_id="get_contact")
    async def get_contact(self, session: SessionDep, principal: PrincipalDep, contact_id: FromPath[str]) -> Contact:
        return await get_readable(session, Contact, principal, contact_id)


class ShipmentDetail(BaseModel):
    shipment: Shipment
    lines: list[ShipmentLine]


class ShipmentController(Controller):
    path = "/shipments"
    tags = ["service"]

    @get("/", operation_id="list_shipments")
    async def list_shipments(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        account_id: IdFilter = None,
        number: FromQuery[str | None] = None,
        batch_id: IdFilter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Shipment]:
        where = equal_filters(Shipment, account_id=account_id, number=number)
        if batch_id is not None:
            where.append(
                col(Shipment.id).in_(
                    select(col(ShipmentLine.shipment_id)).where(col(ShipmentLine.batch_id) == batch_id)
                )
            )
        return await list_readable(session, Shipment, principal, where=where, cursor=cursor, limit=limit)

    @get("/{shipment_id:str}", operation_id="get_shipment")
    async def get_shipment(
        self, session: SessionDep, principal: PrincipalDep, shipment_id: FromPath[str]
    ) -> ShipmentDetail:
        shipment = await get_readable(session, Shipment, principal, shipment_id)
        lines = await session.scalars(select(ShipmentLine).where(col(ShipmentLine.shipment_id) == shipment.id))
        return ShipmentDetail(shipment=shipment, lines=list(lines))


class CaseController(Controller):
    path = "/cases"
    tags = ["service"]

    @get("/", operation_id="list_cases")
    async def list_cases(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        account_id: IdFilter = None,
        number: FromQuery[str | None] = None,
        status: FromQuery[CaseStatus | None] = None,
        origin: FromQuery[CaseOrigin | None] = None,
        batch_id: IdFilter = None,
        nc_id: IdFilter = None,
        assignee_id: IdFilter = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Case]:
        where = equal_filters(
            Case,
            account_id=account_id,
            number=number,
            status=status,
            origin=origin,
            batch_id=batch_id,
            nc_id=nc_id,
            assignee_id=assignee_id,
        )
        return await list_readable(session, Case, principal, where=where, cursor=cursor, limit=limit)

    @get("/{case_id:str}", operation_id="get_case")
    async def get_case(self, session: SessionDep, principal: PrincipalDep, case_id: FromPath[str]) -> Case:
        return await get_readable(session, Case, principal, case_id)


class AdvisoryDetail(BaseModel):
    advisory: Advisory
    recipients: list[AdvisoryRecipient]


class AdvisoryController(Controller):
    path = "/advisories"
    tags = ["service"]

    @get("/", operation_id="list_advisories")
    async def list_advisories(
        self,
        session: SessionDep,
        principal: PrincipalDep,
        nc_id: IdFilter = None,
        number: FromQuery[str | None] = None,
        status: FromQuery[AdvisoryStatus | None] = None,
        severity: FromQuery[Severity | None] = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> Page[Advisory]:
        where = equal_filters(Advisory, nc_id=nc_id, number=number, status=status, severity=severity)
        page = await list_readable(session, Advisory, principal, where=where, cursor=cursor, limit=limit)
        return page.model_copy(update={"items": [advisory.seen_by(principal) for advisory in page.items]})

    @get("/{advisory_id:str}", operation_id="get_advisory")
    async def get_advisory(
        self, session: SessionDep, principal: PrincipalDep, advisory_id: FromPath[str]
    ) -> AdvisoryDetail:
        advisory = await get_readable(session, Advisory, principal, advisory_id)
        recipients = await session.scalars(
            select(AdvisoryRecipient).where(
                col(AdvisoryRecipient.advisory_id) == advisory.id, AdvisoryRecipient.read_filter(principal)
            )
        )
        return AdvisoryDetail(advisory=advisory.seen_by(principal), recipients=list(recipients))


class EntitlementRuleController(Controller):
    path = "/entitlement-rules"
    tags = ["service"]

    @get("/", operation_id="list_entitlement_rules")
    async def list_rules(
        self, session: SessionDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 50
    ) -> Page[EntitlementRule]:
        return await list_readable(session, EntitlementRule, principal, cursor=cursor, limit=limit)


async def _shipment_line_links(session: AsyncSession, values: dict[str, Any]) -> dict[str, Any]:
    """A shipment line belongs to its shipment's account and carries its batch's product model."""
    shipment = await session.get(Shipment, values.get("shipment_id"))
    batch = await session.get(Batch, values.get("batch_id"))
    if shipment is None or batch is None:
        raise AppError(
            "unknown_reference",
            "The shipment or the batch does not exist.",
            details={"shipment_id": values.get("shipment_id"), "batch_id": values.get("batch_id")},
        )
    return {**values, "account_id": shipment.account_id, "product_model_id": batch.product_model_id}


controllers: list[type[Controller]] = [
    AccountController,
    ContactController,
    ShipmentController,
    CaseController,
    AdvisoryController,
    EntitlementRuleController,
    master_data_controller(Account, "accounts"),
    master_data_controller(Contact, "contacts"),
    master_data_controller(Shipment, "shipments"),
    master_data_controller(
        ShipmentLine,
        "shipment-lines",
        derive=_shipment_line_links,
        derived_fields=frozenset({"account_id", "product_model_id"}),
    ),
    master_data_controller(EntitlementRule, "entitlement-rules"),
]
