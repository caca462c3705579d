"""The realtime tables: single-use WebSocket tickets (nothing else of the live tail is stored)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from loopline.core.types import UTCDateTime


class WsTicket(SQLModel, table=True):
    __tablename__ = "ws_ticket"

    ticket_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="user.id", max_length=36)
    session_id: str = Field(max_length=36)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
