"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import CheckConstraint, DateTime, MetaData, String
from sqlalchemy.types import TypeDecorator

# The largest value an INTEGER column holds on every supported database (PostgreSQL's int4).
MAX_INT = 2_147_483_647

# One naming convention so one Alembic history produces identical names on both dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def apply_naming_convention(metadata: MetaData) -> None:
    metadata.naming_convention = NAMING_CONVENTION


def as_utc(value: datetime | None) -> datetime | None:
    """Times are UTC: a naive time is taken as UTC, an offset is converted."""
    # None passes through: optional fields and partial updates carry this validator too.
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is outside the supported range") from exc


UTCTimestamp = Annotated[datetime, AfterValidator(as_utc)]


def to_cents(value: Decimal | None) -> Decimal | None:
    """Money is kept to the cent, in memory as in the database, so both read back alike."""
    if value is None:
        return None
    try:
        return value.quantize(CENT)
    except InvalidOperation as exc:
        raise ValueError("the amount has too many digits") from exc


CENT = Decimal("0.01")
Money = Annotated[Decimal, AfterValidator(to_cents)]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite keeps no zone, so we restore it on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_values(enum_cls: type[StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_cls)


def one_of(column: str, enum_cls: type[StrEnum]) -> CheckConstraint:
    """A CHECK constraint keeping a string column inside an enum (portable, unlike native enums)."""
    return CheckConstraint(f"{column} IN ({enum_values(enum_cls)})", name=f"{column}_valid")


class EnumString(TypeDecorator[StrEnum]):
    """A StrEnum stored as a plain string (checked by `one_of`) and read back as the enum."""

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[StrEnum], length: int = 24) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else self.enum_cls(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum_cls(value)
