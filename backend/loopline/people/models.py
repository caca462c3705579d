"""People: users, their memberships (plants, accounts, regions) and login sessions."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from sqlalchemy import ColumnElement, UniqueConstraint, true
from sqlmodel import Field, SQLModel, col

from loopline.core.access import Principal, Role, ScopedEntity
from loopline.core.audit import PersonalData
from loopline.core.entity import STAFF_SCOPE, user_scope
from loopline.core.types import EnumString, UTCDateTime, UTCTimestamp, one_of


class User(ScopedEntity, PersonalData, table=True):
    __entity__ = "user"
    __private__: ClassVar[frozenset[str]] = frozenset({"password_hash"})
    __personal__: ClassVar[frozenset[str]] = frozenset({"username", "display_name", "email"})
    __table_args__ = (one_of("role", Role),)

    username: str = Field(max_length=64, unique=True, regex=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    display_name: str = Field(max_length=120)
    email: str | None = Field(default=None, max_length=254)
    role: Role = Field(sa_type=EnumString(Role, 16))
    locale: str = Field(default="en", max_length=8)
    is_active: bool = Field(default=True)
    password_hash: str = Field(max_length=255)

    def scope_keys(self) -> list[str]:
        return [user_scope(self.id), STAFF_SCOPE]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        # Staff see the directory (for mentions and assignment); a customer sees themself.
        return true() if principal.is_staff else col(cls.id) == principal.user_id


class MembershipKind(StrEnum):
    PLANT = "plant"
    ACCOUNT = "account"
    REGION = "region"


class Membership(ScopedEntity, table=True):
    """What a user belongs to: plants (inspectors, supervisors), accounts (reps, customers), regions."""

    __entity__ = "membership"
    __table_args__ = (UniqueConstraint("user_id", "kind", "ref"), one_of("kind", MembershipKind))

    user_id: str = Field(foreign_key="user.id", index=True, max_length=36)
    kind: MembershipKind = Field(sa_type=EnumString(MembershipKind, 16))
    ref: str = Field(max_length=36)

    def scope_keys(self) -> list[str]:
        return [user_scope(self.user_id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        return true() if principal.is_admin else col(cls.user_id) == principal.user_id


class RefreshToken(SQLModel, table=True):
    """One refresh token; a login session is the family of tokens rotated from one login."""

    __tablename__ = "refresh_token"

    id: str = Field(primary_key=True, max_length=36)
    family_id: str = Field(index=True, max_length=36)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=36)
    token_hash: str = Field(unique=True, max_length=64)
    issued_at: UTCTimestamp = Field(sa_type=UTCDateTime)
    expires_at: UTCTimestamp = Field(sa_type=UTCDateTime)
    used_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime)
