"""Customer service: accounts, contacts, shipments, cases, advisories, entitlements, remedies."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, ColumnElement, Numeric, UniqueConstraint, exists, or_, select
from sqlmodel import Field, col

from loopline.catalog.models import Severity
from loopline.core.access import AccountScopedEntity, Principal, ScopedEntity, StaffCatalogEntity, member_of
from loopline.core.audit import PersonalData
from loopline.core.entity import account_scope, plant_scope
from loopline.core.types import MAX_INT, EnumString, Money, UTCDateTime, UTCTimestamp, one_of


class Tier(StrEnum):
    STANDARD = "standard"
    KEY = "key"
    VIP = "vip"


class Account(ScopedEntity, table=True):
    __entity__ = "account"
    __table_args__ = (one_of("tier", Tier),)

    code: str = Field(max_length=16, unique=True, min_length=1)
    name: str = Field(max_length=200, min_length=1)
    country: str = Field(max_length=2, min_length=2)
    tier: Tier = Field(sa_type=EnumString(Tier, 16))
    region: str = Field(max_length=16, index=True, min_length=1)
    market: str = Field(default="", max_length=64)
    account_manager_id: str | None = Field(default=None, foreign_key="user.id", index=True, max_length=36)
    # {"first_response_h": 2, "resolution_h": 24}
    sla_policy: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    def scope_keys(self) -> list[str]:
        return [account_scope(self.id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        return member_of(cls.id, principal.account_ids)


class Contact(AccountScopedEntity, PersonalData, table=True):
    """A person at a customer; erasure pseudonymizes them (`compliance/erasure.py`)."""

    __entity__ = "contact"
    __personal__: ClassVar[frozenset[str]] = frozenset({"name", "email", "phone"})

    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    # {"service_notices": true, "at": "...", "source": "..."}
    consents: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    pseudonymized_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)


class Shipment(AccountScopedEntity, table=True):
    __entity__ = "shipment"

    number: str = Field(max_length=32, unique=True, min_length=1)
    shipped_at: UTCTimestamp = Field(sa_type=UTCDateTime)
    destination_region: str = Field(max_length=16)


class ShipmentLine(AccountScopedEntity, table=True):
    __entity__ = "shipment_line"
    __table_args__ = (UniqueConstraint("shipment_id", "batch_id"),)

    shipment_id: str = Field(foreign_key="shipment.id", index=True, max_length=36)
    batch_id: str = Field(foreign_key="batch.id", index=True, max_length=36)
    product_model_id: str = Field(foreign_key="product_model.id", max_length=36)
    qty: int = Field(ge=1, le=MAX_INT)


class CaseOrigin(StrEnum):
    CUSTOMER = "customer"
    INSPECTION_DEVIATION = "inspection_deviation"
    ADVISORY = "advisory"
    INQUIRY = "inquiry"


class CaseStatus(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    AWAITING_CUSTOMER = "awaiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Case(AccountScopedEntity, table=True):
    __entity__ = "case"
    __tablename__ = "support_case"  # "case" is an SQL keyword
    __table_args__ = (
        one_of("origin", CaseOrigin),
        one_of("status", CaseStatus),
        one_of("severity", Severity),
    )

    number: str = Field(max_length=32, unique=True)
    title: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=8000)
    contact_id: str | None = Field(default=None, foreign_key="contact.id", max_length=36)
    origin: CaseOrigin = Field(sa_type=EnumString(CaseOrigin, 24))
    product_model_id: str | None = Field(default=None, foreign_key="product_model.id", max_length=36)
    batch_id: str | None = Field(default=None, foreign_key="batch.id", index=True, max_length=36)
    lot_no_reported: str | None = Field(default=None, max_length=64)
    category_code: str | None = Field(default=None, foreign_key="complaint_category.code", max_length=32)
    defect_code: str | None = Field(default=None, foreign_key="defect_code.code", max_length=32)
    nc_id: str | None = Field(default=None, foreign_key="nonconformance.id", index=True, max_length=36)
    advisory_id: str | None = Field(default=None, foreign_key="advisory.id", index=True, max_length=36)
    severity: Severity = Field(default=Severity.MINOR, sa_type=EnumString(Severity, 16))
    status: CaseStatus = Field(default=CaseStatus.NEW, sa_type=EnumString(CaseStatus, 24))
    assignee_id: str | None = Field(default=None, foreign_key="user.id", index=True, max_length=36)
    # Why the case was not linked (e.g. "lot_not_received"), shown to the service rep.
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sla_first_response_due: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    sla_resolution_due: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    first_response_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    auto_handled: bool = False
    # The answer given when the case was resolved (an inquiry answered from the trace, a fix).
    resolution: str = Field(default="", max_length=4000)


class AdvisoryStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENT = "sent"
    CLOSED = "closed"


class Advisory(ScopedEntity, table=True):
    """A notice to customers about affected lots; readable by its plant and by every recipient account."""

    __entity__ = "advisory"
    __table_args__ = (one_of("status", AdvisoryStatus), one_of("severity", Severity))
    # Which customers received an advisory is the manufacturer's business: the list stays out
    # of the change log, which every reader of a recipient account reads (customers too).
    __private__: ClassVar[frozenset[str]] = frozenset({"account_ids"})

    number: str = Field(max_length=32, unique=True)
    nc_id: str = Field(foreign_key="nonconformance.id", index=True, max_length=36)
    plant_id: str = Field(foreign_key="plant.id", index=True, max_length=36)
    batch_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    account_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    severity: Severity = Field(sa_type=EnumString(Severity, 16))
    affected_qty: int = Field(default=0, ge=0, le=MAX_INT)
    summary: str = Field(default="", max_length=8000)
    approved_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)
    status: AdvisoryStatus = Field(default=AdvisoryStatus.DRAFT, sa_type=EnumString(AdvisoryStatus, 16))

    def scope_keys(self) -> list[str]:
        return [plant_scope(self.plant_id), *(account_scope(a) for a in self.account_ids)]

    def seen_by(self, principal: Principal) -> Advisory:
        """The advisory as `principal` may see it: outside its plant, only their own accounts in it."""
        if principal.plant_ids is None or self.plant_id in principal.plant_ids:
            return self
        own = principal.account_ids or frozenset()
        return Advisory.model_validate({**self.model_dump(), "account_ids": [a for a in self.account_ids if a in own]})

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        recipient_account = exists(
            select(col(AdvisoryRecipient.id)).where(
                col(AdvisoryRecipient.advisory_id) == cls.id,
                member_of(AdvisoryRecipient.account_id, principal.account_ids),
            )
        )
        return or_(member_of(cls.plant_id, principal.plant_ids), recipient_account)


class RecipientState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class AdvisoryRecipient(AccountScopedEntity, table=True):
    __entity__ = "advisory_recipient"
    __table_args__ = (UniqueConstraint("advisory_id", "contact_id"), one_of("state", RecipientState))

    advisory_id: str = Field(foreign_key="advisory.id", index=True, max_length=36)
    contact_id: str = Field(foreign_key="contact.id", max_length=36)
    state: RecipientState = Field(default=RecipientState.PENDING, sa_type=EnumString(RecipientState, 16))
    sent_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    responded_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)


class RemedyKind(StrEnum):
    REPLACE_ALL = "replace_all"
    REPLACE_FAILED = "replace_failed"
    CREDIT_PCT = "credit_pct"
    EXPEDITE = "expedite"
    ONSITE = "onsite"
    INVESTIGATE = "investigate"


class EntitlementRule(StaffCatalogEntity, table=True):
    __entity__ = "entitlement_rule"
    __table_args__ = (one_of("remedy", RemedyKind),)

    code: str = Field(max_length=16, unique=True, min_length=1)
    description: str = Field(default="", max_length=400)
    priority: int = Field(default=100, ge=0, le=MAX_INT)
    tier: Tier | None = Field(default=None, sa_type=EnumString(Tier, 16))
    min_severity: Severity | None = Field(default=None, sa_type=EnumString(Severity, 16))
    requires_advisory: bool | None = None
    defect_codes: list[str] | None = Field(default=None, sa_column=Column(JSON))
    remedy: RemedyKind = Field(sa_type=EnumString(RemedyKind, 20))
    # Remedy parameters: {"credit_pct": 10, "freight": "air", "freight_per_unit": 2.4}
    terms: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cap_amount: Money | None = Field(default=None, sa_column=Column(Numeric(14, 2)), max_digits=14, decimal_places=2)
    approval_over: Money | None = Field(default=None, sa_column=Column(Numeric(14, 2)), max_digits=14, decimal_places=2)
    approver_id: str | None = Field(default=None, foreign_key="user.id", max_length=36)


class RemedyStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTED = "executed"
    REJECTED = "rejected"


class Remedy(AccountScopedEntity, table=True):
    __entity__ = "remedy"
    __table_args__ = (one_of("kind", RemedyKind), one_of("status", RemedyStatus))

    number: str = Field(max_length=32, unique=True)
    case_id: str = Field(foreign_key="support_case.id", index=True, max_length=36)
    rule_id: str | None = Field(default=None, foreign_key="entitlement_rule.id", max_length=36)
    kind: RemedyKind = Field(sa_type=EnumString(RemedyKind, 20))
    qty: int = Field(default=0, ge=0, le=MAX_INT)
    amount: Money = Field(sa_column=Column(Numeric(14, 2), nullable=False), max_digits=14, decimal_places=2)
    currency: str = Field(default="EUR", max_length=3)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: RemedyStatus = Field(default=RemedyStatus.PROPOSED, sa_type=EnumString(RemedyStatus, 16))
    approved_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)


CASE_TRANSITIONS: dict[str, set[str]] = {
    CaseStatus.NEW: {CaseStatus.TRIAGED, CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED},
    CaseStatus.TRIAGED: {CaseStatus.IN_PROGRESS, CaseStatus.AWAITING_CUSTOMER, CaseStatus.RESOLVED},
    CaseStatus.IN_PROGRESS: {CaseStatus.AWAITING_CUSTOMER, CaseStatus.RESOLVED},
    CaseStatus.AWAITING_CUSTOMER: {CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED},
    CaseStatus.RESOLVED: {CaseStatus.CLOSED, CaseStatus.IN_PROGRESS},
    CaseStatus.CLOSED: set(),
}
