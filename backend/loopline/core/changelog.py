"""The change log: the one ordered record of every change devices may read.

`seq` is assigned by the unit of work in commit order; a row per changed entity and
scope key. `/sync/pull`, the WebSocket live tail and REST reads all agree with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from loopline.core.types import UTCDateTime


class ChangeLog(SQLModel, table=True):
    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_scope_key_seq", "scope_key", "seq"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    scope_key: str = Field(max_length=80)
    entity: str = Field(max_length=40)
    entity_id: str = Field(max_length=36, index=True)
    op: str = Field(max_length=8)
    version: int
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    at: datetime = Field(sa_type=UTCDateTime)
