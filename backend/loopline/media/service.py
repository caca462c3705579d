"""Attachments: linking photo hashes to records (the bytes travel on their own queue)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.media.models import Attachment, AttachmentState, Blob, BlobState


def outcome(blob: Blob | None) -> tuple[AttachmentState, str | None, str | None]:
    """What an attachment of this blob is: its state, and the reason code and message if rejected."""
    if blob is None or blob.state is BlobState.PARTIAL:
        return AttachmentState.PENDING, None, None
    if blob.state is BlobState.COMPLETE:
        return AttachmentState.AVAILABLE, None, None
    return AttachmentState.REJECTED, blob.reason_code, blob.reason


def apply_outcome(attachment: Attachment, blob: Blob | None) -> None:
    attachment.state, attachment.reason_code, attachment.reason = outcome(blob)


async def link_photos(
    session: AsyncSession,
    entity_type: str,
    entity_id: str,
    scope_key: str,
    hashes: Iterable[str],
    uploaded_by: str | None,
) -> list[Attachment]:
    """Add-only: each (record, hash) pair exists once.

    A new link starts `pending`, or already `available` (or `rejected`) when the bytes
    arrived before the record did, which is common: the photo queue does not wait for
    the mutation queue.
    """
    wanted = [h.lower() for h in dict.fromkeys(hashes)]
    if not wanted:
        return []
    existing = {
        a.sha256: a
        for a in await session.scalars(
            select(Attachment).where(Attachment.entity_type == entity_type, Attachment.entity_id == entity_id)
        )
    }
    new = [h for h in wanted if h not in existing]
    # Locked, so that on PostgreSQL a blob completing meanwhile waits for this link, then sees it.
    blobs = (
        {b.sha256: b for b in await session.scalars(select(Blob).where(col(Blob.sha256).in_(new)).with_for_update())}
        if new
        else {}
    )
    created = []
    for h in new:
        attachment = Attachment(
            entity_type=entity_type, entity_id=entity_id, sha256=h, scope_key=scope_key, uploaded_by=uploaded_by
        )
        apply_outcome(attachment, blobs.get(h))
        created.append(attachment)
    session.add_all(created)
    await session.flush()
    return [existing.get(h) or next(a for a in created if a.sha256 == h) for h in wanted]
