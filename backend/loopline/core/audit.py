"""The audit chain: an append-only list of events, each sealed with SHA-256 over the
canonical JSON of the event and the previous event's hash.

Editing any row changes its hash; deleting or reordering rows breaks the link to the
previous hash. Deleting the newest rows cannot be seen from inside the chain, so
`verify` reports the head hash for the operator to anchor elsewhere (and checks it
against an anchor when given one).

Personal data never enters the chain, because a chain cannot forget. An entity that holds
a person's data mixes in `PersonalData` and names those fields in `__personal__`; the
chain records each such value as a commitment, HMAC-SHA256 keyed with a random salt that
lives only in the entity's own row. While the row keeps its salt, anyone holding the row
can show which value the chain recorded; erasure wipes the salt, and the commitments can
no longer be linked to any value (crypto-shredding), while every hash still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, cast

from sqlalchemy import JSON, BigInteger, Column, String, select
from sqlalchemy.ext.asyncio import AsyncScalarResult, AsyncSession
from sqlalchemy.orm import Mapped, attributes, declared_attr, mapped_column
from sqlmodel import Field, SQLModel, col

from loopline.core.canonical import canonical_json, to_jsonable
from loopline.core.entity import Entity
from loopline.core.types import UTCDateTime

GENESIS_HASH = "0" * 64
# What the chain records of a personal value when the row has no salt to commit it with (erased).
WITHHELD = "withheld"


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


async def chain_head(session: AsyncSession) -> tuple[int, str]:
    """The newest event's seq and hash; 0 and the genesis hash while the chain is empty."""
    last = (
        await session.execute(
            select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc()).limit(1)
        )
    ).first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


async def chain_events(
    session: AsyncSession, *, after_seq: int = 0, up_to: int | None = None
) -> AsyncScalarResult[AuditEvent]:
    """The events after `after_seq` (up to `up_to`) in seq order, read in batches, never all at once."""
    query = select(AuditEvent).where(col(AuditEvent.seq) > after_seq)
    if up_to is not None:
        query = query.where(col(AuditEvent.seq) <= up_to)
    return await session.stream_scalars(query.order_by(col(AuditEvent.seq)).execution_options(yield_per=1000))


def exported(event: AuditEvent) -> dict[str, Any]:
    """An event as evidence: `seal` over its sealed fields (as exported) and `prev_hash` gives `hash`."""
    return {**to_jsonable(sealed_fields(event)), "prev_hash": event.prev_hash, "hash": event.hash}


async def verify_chain(session: AsyncSession, *, expected_head: str | None = None) -> ChainReport:
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    async for event in await chain_events(session):
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


# --- personal data -------------------------------------------------------------------


def new_personal_salt() -> str:
    return secrets.token_hex(32)


class PersonalData(SQLModel):
    """Mixed into an entity that holds a person's data; `__personal__` names those fields.

    `personal_salt` keys the chain's commitments to the row's personal values. It is a
    mapped column and deliberately no model field, so no model dump, API schema, admin
    form or change-log row can carry it: whoever holds it can test guesses against the
    chain. Erasure wipes it (`wipe_personal_salt`).
    """

    __personal__: ClassVar[frozenset[str]]

    model_config = SQLModel.model_config.copy()
    model_config["ignored_types"] = (declared_attr,)  # the salt below is SQLAlchemy's, not pydantic's

    @declared_attr
    def personal_salt(cls) -> Mapped[str | None]:  # noqa: N805 (a declared_attr receives the class)
        return mapped_column(String(64), default=new_personal_salt, nullable=True)


def personal_entities() -> frozenset[str]:
    """The entity names of every model that holds a person's data."""
    models = [model for model in PersonalData.__subclasses__() if issubclass(model, Entity)]
    return frozenset(cast(type[Entity], model).__entity__ for model in models)


def wipe_personal_salt(entity: PersonalData) -> None:
    """Make the chain's commitments to `entity`'s personal values unlinkable, for good."""
    # Pydantic refuses attributes that are not fields; the ORM's own setter tracks the change.
    attributes.set_attribute(entity, "personal_salt", None)


def commitment(salt: str | None, field: str, value: Any) -> Any:
    """What the chain records of personal `field` holding `value` (plain JSON) in a row with `salt`."""
    if value is None:
        return None  # that a field is empty is no personal data
    if salt is None:
        return WITHHELD
    digest = hmac.new(bytes.fromhex(salt), canonical_json([field, value]), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


class AuditedChange(Protocol):
    """An entity change as the unit of work tracks it: the ORM object, or the row a set-based insert wrote."""

    model: type[Entity]
    op: str
    entity: Entity | None
    row: dict[str, Any] | None


def audit_diff(change: AuditedChange, diff: dict[str, Any] | None) -> dict[str, Any] | None:
    """The diff the chain records of `change`: `diff` with every personal value as its commitment.

    `diff` maps fields to values for an insert or a delete, and to [old, new] for an update.
    """
    model = change.model
    if diff is None or not issubclass(model, PersonalData):
        return diff
    if change.entity is not None:
        salt = cast(PersonalData, change.entity).personal_salt
    else:
        # A set-based insert writes no salt (the column default is not applied at the driver).
        assert change.row is not None
        salt = change.row.get("personal_salt")
    personal = model.__personal__
    if change.op == "update":
        return {
            name: [commitment(salt, name, value) for value in values] if name in personal else values
            for name, values in diff.items()
        }
    return {name: commitment(salt, name, value) if name in personal else value for name, value in diff.items()}
