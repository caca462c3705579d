"""Attachments: references from records to content-addressed blobs (photos)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import ColumnElement, UniqueConstraint, true
from sqlmodel import Field

from loopline.core.access import Principal, ScopedEntity, member_of
from loopline.core.types import EnumString, one_of

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]


class AttachmentState(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    REJECTED = "rejected"
    MISSING = "missing"


class Attachment(ScopedEntity, table=True):
    """A record's photo by hash; `pending` until the bytes arrive. Lives in its record's scope."""

    __entity__ = "attachment"
    __table_args__ = (
        UniqueConstraint("entity_type", "entity_id", "sha256"),
        one_of("state", AttachmentState),
    )

    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=36, index=True)
    sha256: str = Field(max_length=64, min_length=64, index=True)
    kind: str = Field(default="photo", max_length=16)
    state: AttachmentState = Field(default=AttachmentState.PENDING, sa_type=EnumString(AttachmentState, 16))
    reason: str | None = Field(default=None, max_length=400)
    # The scope of the record it is attached to, copied so that reads need no join.
    scope_key: str = Field(max_length=80, index=True)
    uploaded_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)

    def scope_keys(self) -> list[str]:
        return [self.scope_key]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        keys = principal.scope_keys()
        return true() if keys is None else member_of(cls.scope_key, keys)
