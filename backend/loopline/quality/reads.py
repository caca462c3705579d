"""Reads of quality records that more than one module serves (the inspection view, the case context)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.quality.models import Measurement


async def measurements_of(session: AsyncSession, inspection_ids: list[str]) -> list[Measurement]:
    if not inspection_ids:
        return []
    rows = await session.scalars(
        select(Measurement)
        .where(col(Measurement.inspection_id).in_(inspection_ids))
        .order_by(col(Measurement.inspection_id), col(Measurement.characteristic_code), col(Measurement.sample_index))
    )
    return list(rows)
