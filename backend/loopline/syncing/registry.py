"""How a mutation is applied: the context handlers get, their errors, shared helpers.

Each domain registers handlers for its mutation names (`quality.mutations`,
`threads.mutations`, …). A handler validates its args, checks permissions with the
server's authority, writes through the unit of work's session, and returns the version
of the entity it wrote. A `MutationRejected` is a permanent failure: the push records it
and moves on; anything transient propagates and fails the whole push with 503.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal, ScopedEntity
from loopline.core.prepared import Prepared, numbered_parameters, numbered_values
from loopline.core.uow import UnitOfWork

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=ScopedEntity)


class MutationRejected(Exception):
    """The mutation can never succeed as sent; it is answered `rejected` with this code."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


@dataclass
class MutationContext:
    """What every mutation of one push shares: the transaction, the user, the device, the time."""

    session: AsyncSession
    uow: UnitOfWork
    principal: Principal
    client_id: str
    now: datetime
    # False on a push's first, optimistic attempt (see `BatchHandler`): a batch handler may then
    # leave a check to the database's constraints, since any failure is applied again carefully.
    careful: bool = True


Handler = Callable[[MutationContext, dict[str, Any]], Awaitable[int | None]]

# A version (or None) when applied; the rejection when it can never be.
Outcome = int | None | MutationRejected


@dataclass(frozen=True)
class BatchHandler:
    """Applies a run of consecutive mutations of one name set-based, for the high-volume ones.

    `apply` decides every rejection before it writes anything and then writes the rest
    with a handful of statements, so a run needs no savepoint, and a round trip per
    statement kind instead of per mutation. It answers one outcome per args, in order; a
    run of one is the single-mutation path. Should it raise, the push is undone and
    applied again one mutation at a time (see syncing/push.py), with `ctx.careful` set.
    """

    apply: Callable[[MutationContext, list[dict[str, Any]]], Awaitable[list[Outcome]]]


def parse_args(schema: type[M], args: dict[str, Any]) -> M:
    try:
        return schema.model_validate(args)
    except ValidationError as exc:
        fields = [{"loc": list(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise MutationRejected("validation_error", "The mutation's args are not valid.", {"fields": fields}) from exc


async def readable_ids(ctx: MutationContext, model: type[ScopedEntity], entity_ids: Iterable[str]) -> set[str]:
    """Those of the ids whose entity this user may read, in one query."""
    wanted = sorted(set(entity_ids))
    if not wanted:
        return set()
    query = _readable_ids_query(model, ctx.principal, len(wanted))
    rows = await query.rows(ctx.session, numbered_values("id", wanted))
    return {entity_id for (entity_id,) in rows}


@functools.lru_cache(maxsize=256)
def _readable_ids_query(model: type[ScopedEntity], principal: Principal, count: int) -> Prepared:
    """Which of `count` ids (`id_<n>`) the principal may read. Built once per user session and
    number of ids: every post checks its thread, and building the access filter costs more
    than running it."""
    ids = numbered_parameters("id", count, String())
    return Prepared(select(col(model.id)).where(col(model.id).in_(ids), model.read_filter(principal)))


def not_found(model: type[ScopedEntity], entity_id: str | None) -> MutationRejected:
    return MutationRejected(
        "not_found",
        f"No {model.__entity__} {entity_id!r} that you can read.",
        {"entity": model.__entity__, "id": entity_id},
    )


async def readable(ctx: MutationContext, model: type[E], entity_id: str | None) -> E:
    """The entity if this user may read it; otherwise the mutation is rejected as not found."""
    row = None
    if entity_id is not None:
        query = select(model).where(model.id == entity_id, model.read_filter(ctx.principal))
        row = (await ctx.session.scalars(query)).one_or_none()
    if row is None:
        raise not_found(model, entity_id)
    return row


def require(condition: bool, code: str = "forbidden", message: str = "Your role may not do this.") -> None:
    if not condition:
        raise MutationRejected(code, message)


async def check_same_content(ctx: MutationContext, existing: ScopedEntity, compare: dict[str, Any]) -> None:
    """A create whose id exists is a no-op when the content is the same, else `id_conflict`.

    Only a user who may read the existing record learns how it differs (see `id_taken`).
    """
    if existing.id not in await readable_ids(ctx, type(existing), [existing.id]):
        raise id_taken()
    rejection = content_conflict(existing.id, existing.public_data(), compare)
    if rejection is not None:
        raise rejection


def id_taken() -> MutationRejected:
    """The answer to a create whose id belongs to a record this user cannot read.

    Ids are made by clients, so such a clash is a bug or a probe: it is told that the id is
    taken and nothing else — not which fields differ, not even whether the content matches,
    whatever it sent — so it cannot read a record field by field through the rejections.
    """
    return MutationRejected("id_conflict", "This id is already in use.")


def content_conflict(entity_id: str, stored: dict[str, Any], compare: dict[str, Any]) -> MutationRejected | None:
    """For a user who may read the stored record: None if the create is the same, else which fields differ."""
    differing = sorted(name for name, value in compare.items() if stored.get(name) != value)
    if not differing:
        return None
    return MutationRejected(
        "id_conflict", "An entity with this id exists with other content.", {"id": entity_id, "fields": differing}
    )


async def create_once(ctx: MutationContext, entity: E, compare: dict[str, Any]) -> tuple[E, bool]:
    """Insert `entity` unless its id exists (see `check_same_content`); returns the row and whether it is new."""
    existing = await ctx.session.get(type(entity), entity.id)
    if existing is not None:
        await check_same_content(ctx, existing, compare)
        return existing, False
    ctx.session.add(entity)
    await ctx.session.flush()
    return entity, True


def status_command(current: str, from_status: str, to_status: str, allowed: dict[str, set[str]]) -> bool:
    """The shared rule of `*.set_status`: returns whether the status must change.

    `from == current` applies (if the lifecycle allows it); `current == to` is already
    done; anything else is a stale transition, rejected with the current status.
    """
    if current == to_status:
        return False
    if current != from_status:
        raise MutationRejected(
            "stale_transition", f"The status is {current!r}, not {from_status!r}.", {"current": current}
        )
    if to_status not in allowed.get(current, set()):
        raise MutationRejected(
            "invalid_transition",
            f"{current!r} cannot become {to_status!r}.",
            {"current": current, "allowed": sorted(allowed.get(current, set()))},
        )
    return True
