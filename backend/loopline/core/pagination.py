"""Cursor pagination over scoped reads: ``{"items": [...], "next_cursor": ...}``.

Items are ordered by id (UUIDv7, so creation order); the cursor is the last id seen,
wrapped so that clients treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.core.access import Principal, ScopedEntity
from loopline.core.errors import AppError, NotFound

T = TypeVar("T")
E = TypeVar("E", bound=ScopedEntity)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(value, str):
            raise TypeError
        return value
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise AppError("invalid_cursor", "The cursor is not one this server issued.") from exc


def equal_filters(model: type[Any], **values: Any) -> list[ColumnElement[bool]]:
    """`column == value` for every filter the caller actually gave."""
    return [getattr(model, name) == value for name, value in values.items() if value is not None]


async def list_readable(
    session: AsyncSession,
    model: type[E],
    principal: Principal,
    *,
    where: list[ColumnElement[bool]] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[E]:
    stmt = select(model).where(model.read_filter(principal), *(where or []))
    if cursor:
        stmt = stmt.where(col(model.id) > decode_cursor(cursor))
    rows = list((await session.scalars(stmt.order_by(col(model.id)).limit(limit + 1))).all())
    more = len(rows) > limit
    items = rows[:limit]
    return Page[model](items=items, next_cursor=encode_cursor(items[-1].id) if more else None)  # type: ignore[valid-type]


async def get_readable(session: AsyncSession, model: type[E], principal: Principal, entity_id: str) -> E:
    """One entity by id, or 404 — the same answer whether it does not exist or is out of scope."""
    row = (
        await session.scalars(select(model).where(col(model.id) == entity_id, model.read_filter(principal)))
    ).one_or_none()
    if row is None:
        raise NotFound(model.__entity__, entity_id)
    return row
