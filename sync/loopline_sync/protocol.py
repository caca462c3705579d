"""The messages of `/sync/push` and `/sync/pull`, shared by the server and the client engine.

The shapes follow `shared/design/sync-protocol.md`; anything it leaves open is decided
(and documented) here, so both sides read one definition.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loopline_sync import MAX_PULL_LIMIT

_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_client_id(value: str) -> bool:
    """A client id is a UUID in its usual 8-4-4-4-12 form; the server refuses anything else."""
    return _UUID_TEXT.fullmatch(value) is not None


def _without_nul(value: str) -> str:
    # A mutation's id and name are stored with its outcome; PostgreSQL text cannot hold U+0000.
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether a JSON value nests more than `limit` levels (an object or list counts one, a scalar none).

    Mutation args may nest `MAX_ARGS_DEPTH` levels: the engine refuses deeper ones at
    enqueue, the server rejects them per mutation. Stops at the limit, so a cycle ends too.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


# Checked by the server before anything else of a request (see syncing/envelope.py).
ClientId = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"format": "uuid"})]
EnvelopeText = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_without_nul)]


class Mutation(BaseModel):
    """One intent from a device's outbox. `mid` is gapless per client, starting at 1.

    `mid`, `id`, `name` and `client_ts` are the envelope: a push with a malformed one is
    refused as a whole. `args` is the mutation's content, judged per mutation by the server
    (any JSON value arrives; what a handler cannot take is that mutation's rejection), so
    one bad mutation never stops the ones queued behind it.
    """

    model_config = ConfigDict(extra="forbid")

    mid: int = Field(ge=1, le=2**53)
    id: EnvelopeText
    name: EnvelopeText
    args: Any = Field(default_factory=dict)
    client_ts: datetime | None = None


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: ClientId
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

    client_id: ClientId
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
