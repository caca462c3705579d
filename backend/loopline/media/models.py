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
    """A record's photo by hash. Lives in its record's scope.

    A hash is no capability: an attachment turns `available` only once the user who linked
    it has shown they hold the bytes, by uploading them or by seeing them through another
    record (see `service.link_photos`). Until then it is `pending`, exactly as when the
    bytes have not arrived, so a link never tells whether the server holds a hash.
    """

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
    """The content behind a hash, once its bytes arrived: server bookkeeping, never synced.

    A row exists once some upload of the hash completed: `complete` when the image passed
    validation (its original is immutable evidence; the columns record what it is), or
    `rejected` when the pipeline refused it. Devices learn the outcome from the
    attachments that reference it. Uploads on their way are `BlobUpload`s.
    """

    __tablename__ = "blob"
    __table_args__ = (one_of("state", BlobState),)

    sha256: str = Field(primary_key=True, max_length=64, min_length=64)
    size: int = Field(ge=0)
    # As decoded once validated; as declared by the uploader if the image was refused.
    mime: str = Field(max_length=40)
    state: BlobState = Field(sa_type=EnumString(BlobState, 16))
    reason_code: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=400)
    format: str | None = Field(default=None, max_length=16)
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    # From the image's own metadata (EXIF), when it has any.
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    device: str | None = Field(default=None, max_length=200)
    # Whose bytes became the original.
    uploaded_by: str | None = Field(default=None, foreign_key="user.id", max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BlobUpload(SQLModel, table=True):
    """One user's upload of a hash: `partial` while the bytes come, `complete` once they matched.

    Each user sends the bytes of a hash on their own, even when the server holds them
    already: only bytes that match prove a user holds the photo, and a `complete` upload is
    that proof. So nobody can claim another's upload (with a wrong size, say) or append to
    it. `rejected` means the bytes sent did not match the hash; the right ones may follow.
    """

    __tablename__ = "blob_upload"
    __table_args__ = (
        one_of("state", BlobState),
        # The sweep looks for uploads past their expiry.
        Index("ix_blob_upload_state_created_at", "state", "created_at"),
    )

    sha256: str = Field(primary_key=True, max_length=64, min_length=64)
    user_id: str = Field(primary_key=True, foreign_key="user.id", max_length=36)
    size: int = Field(ge=0)
    mime: str = Field(max_length=40)
    state: BlobState = Field(default=BlobState.PARTIAL, sa_type=EnumString(BlobState, 16))
    created_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
