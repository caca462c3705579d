"""The base of every domain table that the change log and the audit chain follow.

An `Entity` is anything a device may read through sync. Each subclass names itself on
the wire (`__entity__`), says which scope its rows live in (`scope_keys`), and lists
columns that must never leave the server (`__private__`). Versions and timestamps are
maintained by the unit of work, never by hand.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy.orm import declared_attr
from sqlmodel import Field, SQLModel

from loopline.core.canonical import jsonable_fields
from loopline.core.ids import new_id
from loopline.core.types import MAX_INT, UTCDateTime, UTCTimestamp, apply_naming_convention

apply_naming_convention(SQLModel.metadata)

GLOBAL_SCOPE = "global"
STAFF_SCOPE = "staff"


def plant_scope(plant_id: str) -> str:
    return f"plant:{plant_id}"


def account_scope(account_id: str) -> str:
    return f"account:{account_id}"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


def person_scope(user_id: str) -> str:
    """A user's directory card (name, e-mail): read by the people who work with them, not by all staff."""
    return f"person:{user_id}"


def thread_scope(thread_id: str) -> str:
    return f"thread:{thread_id}"


def customer_thread_scope(thread_id: str) -> str:
    """The customer-visible part of a thread; internal messages never carry this key."""
    return f"thread:{thread_id}:customer"


class Entity(SQLModel):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    version: int = Field(default=1, ge=1, le=MAX_INT)
    created_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime, nullable=False)
    updated_at: UTCTimestamp | None = Field(default=None, sa_type=UTCDateTime, nullable=False)

    __entity__: ClassVar[str]
    __private__: ClassVar[frozenset[str]] = frozenset()

    @declared_attr.directive
    @classmethod
    def __tablename__(cls) -> str:
        return cls.__entity__

    def scope_keys(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must say which scope its rows belong to")

    def public_data(self) -> dict[str, Any]:
        """The entity as devices and the API see it: the shape of change-log `data`."""
        private = self.__private__
        return jsonable_fields((name, getattr(self, name)) for name in type(self).model_fields if name not in private)
