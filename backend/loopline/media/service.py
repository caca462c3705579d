"""Attachments: linking photo hashes to records (the bytes travel on their own queue)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from loopline.media.models import Attachment


async def link_photos(
    session: AsyncSession,
    entity_type: str,
    entity_id: str,
    scope_key: str,
    hashes: Iterable[str],
    uploaded_by: str | None,
) -> list[Attachment]:
    """Add-only: each (record, hash) pair exists once; a new link starts `pending`."""
    wanted = [h.lower() for h in dict.fromkeys(hashes)]
    if not wanted:
        return []
    existing = {
        a.sha256: a
        for a in await session.scalars(
            select(Attachment).where(Attachment.entity_type == entity_type, Attachment.entity_id == entity_id)
        )
    }
    created = [
        Attachment(entity_type=entity_type, entity_id=entity_id, sha256=h, scope_key=scope_key, uploaded_by=uploaded_by)
        for h in wanted
        if h not in existing
    ]
    session.add_all(created)
    await session.flush()
    return [existing.get(h) or next(a for a in created if a.sha256 == h) for h in wanted]
