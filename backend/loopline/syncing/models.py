"""Server-side sync bookkeeping: devices (clients), the mutations they applied, the epoch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from loopline.core.types import UTCDateTime


class SyncClient(SQLModel, table=True):
    """One device installation, bound to the user who first synced with it."""

    __tablename__ = "sync_client"

    client_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=36)
    last_mid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The scope sets recently served to this client, by their hash (as carried in cursors), so a
    # cursor from before a change of scopes can be answered with the difference.
    scope_sets: dict[str, list[str]] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_push_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_pull_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_pulled_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class AppliedMutation(SQLModel, table=True):
    """The stored outcome of every mutation a client sent, so a resend answers `duplicate` alike."""

    __tablename__ = "applied_mutation"

    client_id: str = Field(foreign_key="sync_client.client_id", primary_key=True, max_length=64)
    mid: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    mutation_id: str = Field(max_length=64)
    name: str = Field(max_length=64)
    status: str = Field(max_length=16)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    client_ts: datetime | None = Field(default=None, sa_type=UTCDateTime)
    applied_at: datetime = Field(sa_type=UTCDateTime)


class ServerMeta(SQLModel, table=True):
    """Small facts about this database: its epoch, the compaction horizon."""

    __tablename__ = "server_meta"

    key: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)
