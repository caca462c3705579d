"""Who is asking, and what they may read.

A `Principal` is resolved once per request from the access token. Read rules live with
the entities (`ScopedEntity.read_filter`) as SQL predicates, so a list, a lookup by id
and a filter all go through the same rule, and change-log scope keys say the same thing
as the predicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, false, true
from sqlmodel import Field

from loopline.core.entity import (
    GLOBAL_SCOPE,
    STAFF_SCOPE,
    Entity,
    account_scope,
    plant_scope,
    user_scope,
)


class Role(StrEnum):
    INSPECTOR = "inspector"
    SERVICE_REP = "service_rep"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.INSPECTOR, Role.SERVICE_REP, Role.SUPERVISOR, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: Role
    session_id: str
    # None means "every one" (admins); otherwise the ids this user may read.
    plant_ids: frozenset[str] | None
    account_ids: frozenset[str] | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def scope_keys(self) -> frozenset[str] | None:
        """The change-log scopes this user reads (None: all). Threads are added by participation."""
        if self.plant_ids is None or self.account_ids is None:
            return None
        keys = {GLOBAL_SCOPE, user_scope(self.user_id)}
        if self.is_staff:
            keys.add(STAFF_SCOPE)
        keys.update(plant_scope(p) for p in self.plant_ids)
        keys.update(account_scope(a) for a in self.account_ids)
        return frozenset(keys)


def member_of(column: Any, allowed: frozenset[str] | None) -> ColumnElement[bool]:
    if allowed is None:
        return true()
    if not allowed:
        return false()
    return column.in_(sorted(allowed))


class ScopedEntity(Entity):
    """An entity with a read rule; the subclasses below cover the common homes of data."""

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        raise NotImplementedError


class GlobalCatalogEntity(ScopedEntity):
    """Catalog data every signed-in user may read (product models, complaint categories)."""

    def scope_keys(self) -> list[str]:
        return [GLOBAL_SCOPE]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        return true()


class StaffCatalogEntity(ScopedEntity):
    """Internal catalog data (plants, plans, defect codes): staff only, never customers."""

    def scope_keys(self) -> list[str]:
        return [STAFF_SCOPE]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        return true() if principal.is_staff else false()


class PlantScopedEntity(ScopedEntity):
    plant_id: str = Field(foreign_key="plant.id", index=True, max_length=36)

    def scope_keys(self) -> list[str]:
        return [plant_scope(self.plant_id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        return member_of(cls.plant_id, principal.plant_ids)


class AccountScopedEntity(ScopedEntity):
    account_id: str = Field(foreign_key="account.id", index=True, max_length=36)

    def scope_keys(self) -> list[str]:
        return [account_scope(self.account_id)]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        return member_of(cls.account_id, principal.account_ids)
