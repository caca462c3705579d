"""Attachments (a record's photo by hash) and blobs (the server's bookkeeping of the bytes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import ColumnElement, Index, UniqueConstraint, and_, exists, or_, select, true
from sqlmodel import Field, SQLModel, col

from loopline.core.access import Principal, ScopedEntity, member_of
from loopline.core.types import EnumString, UTCDateTime, one_of
from loopline.threads.models import Message

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
        # The sweep looks for attachments still pending after the grace period.
        Index("ix_attachment_state_created_at", "state", "created_at"),
    )

    entity_type: str = Field(max_length=40)
    entity_id: str = Field(max_length=36, index=True)
    sha256: str = Field(max_length=64, min_length=64, index=True)
    kind: str = Field(default="photo", max_length=16)
    state: AttachmentState = Field(default=AttachmentState.PENDING, sa_type=EnumString(AttachmentState, 16))
    # Why it is rejected or missing: a stable code for devices to translate, and a message in English.
    reason_code: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=400)
    # The scope of the record it is attached to, copied so that reads need no join.
    scope_key: str = Field(max_length=80, index=True)
    uploaded_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)

    def scope_keys(self) -> list[str]:
        return [self.scope_key]

    @classmethod
    def read_filter(cls, principal: Principal) -> ColumnElement[bool]:
        keys = principal.scope_keys()
        if keys is None:
            return true()
        # A message's photos live in its thread's scope, which follows participation rather
        # than membership, so they are readable exactly when the message is.
        on_readable_message = and_(
            col(cls.entity_type) == Message.__entity__,
            exists(select(col(Message.id)).where(col(Message.id) == cls.entity_id, Message.read_filter(principal))),
        )
        return or_(member_of(cls.scope_key, keys), on_readable_message)


class BlobState(StrEnum):
    PARTIAL = "partial"
    COMPLETE = "complete"
    REJECTED = "rejected"


class Blob(SQLModel, table=True):
    """The bytes behind a hash, as the server knows them: server bookkeeping, never synced.

    Devices learn a blob's outcome from the attachments that reference it. While an upload
    is `partial`, the bytes received so far live in the blob store, which alone knows the
    offset. A `complete` blob's original is immutable evidence; the columns below record
    what it is.
    """

    __tablename__ = "blob"
    __table_args__ = (
        one_of("state", BlobState),
        # The sweep looks for partial uploads past their expiry.
        Index("ix_blob_state_created_at", "state", "created_at"),
    )

    sha256: str = Field(primary_key=True, max_length=64, min_length=64)
    size: int = Field(ge=0)
    # As declared by the uploader until the image is validated, then as decoded.
    mime: str = Field(max_length=40)
    state: BlobState = Field(default=BlobState.PARTIAL, sa_type=EnumString(BlobState, 16))
    reason_code: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=400)
    format: str | None = Field(default=None, max_length=16)
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    # From the image's own metadata (EXIF), when it has any.
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    device: str | None = Field(default=None, max_length=200)
    uploaded_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
