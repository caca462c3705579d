"""The audit chain: an append-only list of events, each sealed with SHA-256 over the
canonical JSON of the event and the previous event's hash.

Editing any row changes its hash; deleting or reordering rows breaks the link to the
previous hash. Deleting the newest rows cannot be seen from inside the chain, so
`verify` reports the head hash for the operator to anchor elsewhere (and checks it
against an anchor when given one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from loopline.core.canonical import canonical_json
from loopline.core.types import UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(max_length=80)
    command: str | None = Field(default=None, max_length=80)
    entity: str = Field(max_length=40)
    entity_id: str = Field(max_length=80)
    action: str = Field(max_length=80)
    diff: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


def seal(fields: dict[str, Any], prev_hash: str) -> str:
    """The hash of one event: SHA-256 over the previous hash and the event's canonical JSON."""
    return hashlib.sha256(prev_hash.encode() + canonical_json(fields)).hexdigest()


def sealed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "actor": event.actor,
        "command": event.command,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "action": event.action,
        "diff": event.diff,
    }


@dataclass(frozen=True)
class ChainReport:
    events: int
    head_hash: str
    first_broken_seq: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


async def verify_chain(session: AsyncSession, *, expected_head: str | None = None) -> ChainReport:
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    result = await session.stream_scalars(
        select(AuditEvent).order_by(col(AuditEvent.seq)).execution_options(yield_per=1000)
    )
    async for event in result:
        if event.seq != expected_seq:
            return ChainReport(count, prev_hash, expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != prev_hash:
            return ChainReport(count, prev_hash, event.seq, "link to the previous event is broken")
        if seal(sealed_fields(event), prev_hash) != event.hash:
            return ChainReport(count, prev_hash, event.seq, "event content does not match its hash")
        prev_hash = event.hash
        expected_seq += 1
        count += 1
    if expected_head is not None and expected_head != prev_hash:
        return ChainReport(count, prev_hash, expected_seq, "head differs from the anchored head")
    return ChainReport(count, prev_hash, None, None)
