"""The messages of `/sync/push` and `/sync/pull`, shared by the server and the client engine.

The shapes follow `shared/design/sync-protocol.md`; anything it leaves open is decided
(and documented) here, so both sides read one definition.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopline_sync import MAX_PULL_LIMIT

ClientId = str


class Mutation(BaseModel):
    """One intent from a device's outbox. `mid` is gapless per client, starting at 1."""

    model_config = ConfigDict(extra="forbid")

    mid: int = Field(ge=1, le=2**53)
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)
    client_ts: datetime | None = None


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: ClientId = Field(min_length=1, max_length=64)
    schema_version: int = Field(ge=0, le=1000)
    # More than MAX_MUTATIONS_PER_PUSH is answered 413 (so the client halves its batch), not 400.
    mutations: list[Mutation]


class ResultStatus(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


class ErrorBody(BaseModel):
    code: str
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class MutationResult(BaseModel):
    mid: int
    id: str
    status: ResultStatus
    version: int | None = None
    error: ErrorBody | None = None
    # For `duplicate`: what the first delivery answered (`applied` or `rejected`).
    original_status: ResultStatus | None = None


class PushResponse(BaseModel):
    client_id: ClientId
    server_epoch: str
    last_mid: int
    results: list[MutationResult]


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: ClientId = Field(min_length=1, max_length=64)
    schema_version: int = Field(ge=0, le=1000)
    cursor: str | None = Field(default=None, max_length=1000)
    limit: int = Field(default=MAX_PULL_LIMIT, ge=1, le=MAX_PULL_LIMIT)


class Change(BaseModel):
    seq: int
    entity: str
    id: str
    op: Literal["put", "delete"]
    version: int
    data: dict[str, Any] | None = None


class PullResponse(BaseModel):
    cursor: str
    last_mid: int
    has_more: bool
    reset_required: bool
    changes: list[Change]
