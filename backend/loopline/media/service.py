"""Attachments: linking photo hashes to records (the bytes travel on their own queue).

Who may see a photo's bytes: a user who uploaded them (their `BlobUpload` is complete),
or who can read a record where the photo is `available`. Naming a hash proves neither,
so a link by anyone else stays `pending` until they send the bytes themselves, whether
or not the server holds them: the answer is the same either way, and the bytes stay
out of reach.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.media.models import Attachment, AttachmentState, Blob, BlobState, BlobUpload


def outcome(blob: Blob | None) -> tuple[AttachmentState, str | None, str | None]:
    """What an attachment of this content is: its state, and the reason code and message if rejected."""
    if blob is None:
        return AttachmentState.PENDING, None, None
    if blob.state is BlobState.COMPLETE:
        return AttachmentState.AVAILABLE, None, None
    return AttachmentState.REJECTED, blob.reason_code, blob.reason


def apply_outcome(attachment: Attachment, blob: Blob | None) -> None:
    attachment.state, attachment.reason_code, attachment.reason = outcome(blob)


async def shown_hashes(session: AsyncSession, principal: Principal, hashes: Iterable[str]) -> set[str]:
    """Those of the hashes the user can see on a record they read, where the photo is available."""
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    query = select(col(Attachment.sha256)).where(
        col(Attachment.sha256).in_(wanted),
        col(Attachment.state) == AttachmentState.AVAILABLE,
        Attachment.read_filter(principal),
    )
    return set(await session.scalars(query.distinct()))


async def uploaded_hashes(
    session: AsyncSession, user_id: str, hashes: Iterable[str], *, locked: bool = False
) -> set[str]:
    """Those of the hashes whose bytes this user uploaded (and that matched)."""
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    query = select(BlobUpload).where(col(BlobUpload.user_id) == user_id, col(BlobUpload.sha256).in_(wanted))
    uploads = await session.scalars(query.with_for_update() if locked else query)
    return {upload.sha256 for upload in uploads if upload.state is BlobState.COMPLETE}


async def may_see(session: AsyncSession, principal: Principal, sha256: str) -> bool:
    """Whether the user may see these bytes: they uploaded them, or read a record showing them."""
    return bool(
        await uploaded_hashes(session, principal.user_id, [sha256]) or await shown_hashes(session, principal, [sha256])
    )


async def link_photos(
    session: AsyncSession,
    principal: Principal,
    entity_type: str,
    entity_id: str,
    scope_key: str,
    hashes: Iterable[str],
) -> list[Attachment]:
    """Add-only: each (record, hash) pair exists once.

    A link by a user who may see the bytes takes their state at once (`available`, or
    `rejected` with the pipeline's reason). Any other link starts `pending` and follows
    when its user's own upload of the bytes completes (`BlobService`), which is the usual
    order: the photo queue does not wait for the mutation queue.
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
    # Locked, so that on PostgreSQL this user's upload completing meanwhile waits for this link, then settles it.
    entitled = await uploaded_hashes(session, principal.user_id, new, locked=True)
    entitled |= await shown_hashes(session, principal, set(new) - entitled)
    blobs = {b.sha256: b for b in await session.scalars(select(Blob).where(col(Blob.sha256).in_(entitled)))}
    created = []
    for h in new:
        attachment = Attachment(
            entity_type=entity_type,
            entity_id=entity_id,
            sha256=h,
            scope_key=scope_key,
            uploaded_by=principal.user_id,
        )
        apply_outcome(attachment, blobs.get(h))
        created.append(attachment)
    session.add_all(created)
    await session.flush()
    return [existing.get(h) or next(a for a in created if a.sha256 == h) for h in wanted]
