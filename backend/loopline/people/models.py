"""People: users, their memberships (plants, accounts, regions) and login sessions."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from sqlalchemy import ColumnElement, CompoundSelect, UniqueConstraint, literal, select, true, union
from sqlmodel import Field, SQLModel, col

from loopline.core.access import Principal, Role, ScopedEntity, member_of
from loopline.core.audit import PersonalData
from loopline.core.entity import person_scope, user_scope
from loopline.core.types import EnumString, UTCDateTime, UTCTimestamp, one_of
from loopline.customer.models import Account
from loopline.threads.models import Thread, ThreadParticipant


class User(ScopedEntity, PersonalData, table=True):
    __entity__ = "user"
    __private__: ClassVar[frozenset[str]] = frozenset({"password_hash"})
    __personal__: ClassVar[frozenset[str]] = frozenset({"username", "display_name", "email"})
    __table_args__ = (one_of("role", Role),)

    username: str = Field(max_length=64, unique=True, regex=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    display_name: str = Field(max_length=120)
    email: str | None = Field(default=None, max_length=254)
    role: Role = Field(sa_type=EnumString(Role, 16))
    # The language the user chose in the app ("en", "zh-CN"); empty until they choose one, and
    # until then each of their devices follows its browser's language.
    locale: str = Field(default="", max_length=8)
    is_active: bool = Field(default=True)
    password_hash: str = Field(max_length=255)

    def scope_keys(self) -> list[str]:
        return [user_scope(self.id), person_scope(self.id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        # Nobody but an admin reads the whole directory: staff read the people they work with
        # (for mentions, assignment and names in threads), a customer only themself.
        if principal.is_admin:
            return true()
        if not principal.is_staff:
            return col(cls.id) == principal.user_id
        return col(cls.id).in_(colleague_ids(principal))


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


def colleague_ids(principal: Principal) -> CompoundSelect:
    """The users a staff member works with, themself included; the same rule for REST reads and sync scopes.

    Colleagues are the members of their plants and accounts (a service rep's accounts bring
    that account's portal users), the managers of their accounts, and the participants of
    the threads they may read.
    """
    plant_members = select(col(Membership.user_id)).where(
        col(Membership.kind) == MembershipKind.PLANT, member_of(Membership.ref, principal.plant_ids)
    )
    account_members = select(col(Membership.user_id)).where(
        col(Membership.kind) == MembershipKind.ACCOUNT, member_of(Membership.ref, principal.account_ids)
    )
    managers = select(col(Account.account_manager_id)).where(
        member_of(Account.id, principal.account_ids), col(Account.account_manager_id).is_not(None)
    )
    readable_threads = select(col(Thread.id)).where(Thread.read_filter(principal))
    co_participants = select(col(ThreadParticipant.user_id)).where(
        col(ThreadParticipant.thread_id).in_(readable_threads)
    )
    return union(select(literal(principal.user_id)), plant_members, account_members, managers, co_participants)
