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
from loopline.core.pagination import Page, get_readable, list_readable
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
from loopline.customer.projections import (
    CustomerAccount,
    CustomerAdvisory,
    CustomerAdvisoryRecipient,
    CustomerCase,
    CustomerContact,
    CustomerShipment,
    CustomerShipmentLine,
    filters_for,
    get_shown,
    page_shown_to,
    published_to,
    shown_to,
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
    ) -> Page[Account] | Page[CustomerAccount]:
        where = filters_for(
            principal, Account, code=code, tier=tier, region=region, account_manager_id=account_manager_id
        )
        page = await list_readable(session, Account, principal, where=where, cursor=cursor, limit=limit)
        return page_shown_to(principal, page, CustomerAccount)

    @get("/{account_id:str}", operation_id="get_account")
    async def get_account(
        self, session: SessionDep, principal: PrincipalDep, account_id: FromPath[str]
    ) -> Account | CustomerAccount:
        return shown_to(principal, await get_readable(session, Account, principal, account_id), CustomerAccount)


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
    ) -> Page[Contact] | Page[CustomerContact]:
        where = filters_for(principal, Contact, account_id=account_id)
        page = await list_readable(session, Contact, principal, where=where, cursor=cursor, limit=limit)
        return page_shown_to(principal, page, CustomerContact)

    @get("/{contact_id:str}", operation_id="get_contact")
    async def get_contact(
        self, session: SessionDep, principal: PrincipalDep, contact_id: FromPath[str]
    ) -> Contact | CustomerContact:
        return shown_to(principal, await get_readable(session, Contact, principal, contact_id), CustomerContact)


class ShipmentDetail(BaseModel):
    shipment: Shipment | CustomerShipment
    lines: list[ShipmentLine] | list[CustomerShipmentLine]


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
    ) -> Page[Shipment] | Page[CustomerShipment]:
        where = filters_for(principal, Shipment, account_id=account_id, number=number)
        if batch_id is not None:
            # Refused to a customer, as their lines show no batch: the filter would name it.
            filters_for(principal, ShipmentLine, batch_id=batch_id)
            where.append(
                col(Shipment.id).in_(
                    select(col(ShipmentLine.shipment_id)).where(col(ShipmentLine.batch_id) == batch_id)
                )
            )
        page = await list_readable(session, Shipment, principal, where=where, cursor=cursor, limit=limit)
        return page_shown_to(principal, page, CustomerShipment)

    @get("/{shipment_id:str}", operation_id="get_shipment")
    async def get_shipment(
        self, session: SessionDep, principal: PrincipalDep, shipment_id: FromPath[str]
    ) -> ShipmentDetail:
        shipment = await get_readable(session, Shipment, principal, shipment_id)
        lines = await session.scalars(select(ShipmentLine).where(col(ShipmentLine.shipment_id) == shipment.id))
        return ShipmentDetail(
            shipment=shown_to(principal, shipment, CustomerShipment),
            lines=[shown_to(principal, line, CustomerShipmentLine) for line in lines],
        )


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
    ) -> Page[Case] | Page[CustomerCase]:
        where = filters_for(
            principal,
            Case,
            account_id=account_id,
            number=number,
            status=status,
            origin=origin,
            batch_id=batch_id,
            nc_id=nc_id,
            assignee_id=assignee_id,
        )
        page = await list_readable(session, Case, principal, where=where, cursor=cursor, limit=limit)
        return page_shown_to(principal, page, CustomerCase)

    @get("/{case_id:str}", operation_id="get_case")
    async def get_case(
        self, session: SessionDep, principal: PrincipalDep, case_id: FromPath[str]
    ) -> Case | CustomerCase:
        return shown_to(principal, await get_readable(session, Case, principal, case_id), CustomerCase)


class AdvisoryDetail(BaseModel):
    advisory: Advisory | CustomerAdvisory
    recipients: list[AdvisoryRecipient] | list[CustomerAdvisoryRecipient]


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
    ) -> Page[Advisory] | Page[CustomerAdvisory]:
        where = filters_for(principal, Advisory, nc_id=nc_id, number=number, status=status, severity=severity)
        page = await list_readable(session, Advisory, principal, where=where, cursor=cursor, limit=limit)
        seen = page.model_copy(update={"items": [advisory.seen_by(principal) for advisory in page.items]})
        return page_shown_to(principal, seen, CustomerAdvisory)

    @get("/{advisory_id:str}", operation_id="get_advisory")
    async def get_advisory(
        self, session: SessionDep, principal: PrincipalDep, advisory_id: FromPath[str]
    ) -> AdvisoryDetail:
        advisory = await get_shown(session, Advisory, principal, advisory_id)
        recipients = await session.scalars(
            select(AdvisoryRecipient).where(
                col(AdvisoryRecipient.advisory_id) == advisory.id,
                AdvisoryRecipient.read_filter(principal),
                published_to(principal, AdvisoryRecipient),
            )
        )
        return AdvisoryDetail(
            advisory=shown_to(principal, advisory.seen_by(principal), CustomerAdvisory),
            recipients=[shown_to(principal, r, CustomerAdvisoryRecipient) for r in recipients],
        )


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
