"""`/sync/push`: apply a device's ordered, idempotent mutation log.

One database transaction per request, shared with the requests that wait beside it (a
group commit, each request in its own savepoint: see core/group_commit.py). For each
mutation in order: an already applied mid answers `duplicate` with the stored outcome; a
gap fails the whole request (409) with nothing applied; anything else is applied in a
savepoint, or `rejected` with a code when it can never succeed — and a rejection still
advances `last_mid`, so one poison mutation never blocks the queue. Args no handler could
take (a NUL, a number beyond 64 bits: see syncing/push_input.py) are rejected before any
handler runs; only a malformed envelope refuses the whole request. A transient database
failure rolls everything back and answers 503, leaving `last_mid` where it was.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.db import table_of
from loopline.core.errors import AppError, Conflict
from loopline.core.group_commit import Job
from loopline.core.prepared import Prepared
from loopline.core.runtime import Runtime
from loopline.core.uow import UnitOfWork, stage_rows
from loopline.customer.mutations import mutations as customer_mutations
from loopline.loop.mutations import mutations as loop_mutations
from loopline.media.mutations import mutations as media_mutations
from loopline.people.mutations import mutations as people_mutations
from loopline.quality.improvement import mutations as improvement_mutations
from loopline.quality.mutations import mutations as quality_mutations
from loopline.syncing.envelope import check_client_id, check_schema_version
from loopline.syncing.meta import STORED_EPOCH, server_epoch
from loopline.syncing.models import AppliedMutation, SyncClient
from loopline.syncing.push_input import args_problem
from loopline.syncing.registry import BatchHandler, Handler, MutationContext, MutationRejected
from loopline.syncing.upcast import upcast
from loopline.threads.mutations import mutations as thread_mutations
from loopline_sync import MAX_MUTATIONS_PER_PUSH, OLDEST_PUSH_SCHEMA_VERSION
from loopline_sync.protocol import ErrorBody, Mutation, MutationResult, PushRequest, PushResponse, ResultStatus

log = logging.getLogger("loopline.sync")

MUTATIONS: dict[str, Handler | BatchHandler] = {
    **quality_mutations,
    **improvement_mutations,
    **customer_mutations,
    **loop_mutations,
    **thread_mutations,
    **media_mutations,
    **people_mutations,
}

RETRY_AFTER_S = 2


def unavailable() -> AppError:
    return AppError(
        "unavailable",
        "The server is busy; retry shortly.",
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _check_owner(owner_id: str, principal: Principal) -> None:
    if owner_id != principal.user_id:
        raise AppError("client_owned_by_other_user", "This device is bound to another user.", status_code=403)


async def bind_client(session: AsyncSession, client_id: str, principal: Principal, now: datetime) -> SyncClient:
    """The client row, locked for this transaction; the first request binds it to its user."""
    query = select(SyncClient).where(SyncClient.client_id == client_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    client = (await session.scalars(query)).one_or_none()
    if client is None:
        client = SyncClient(client_id=client_id, user_id=principal.user_id, created_at=now)
        session.add(client)
        await session.flush()
    else:
        _check_owner(client.user_id, principal)
    return client


_clients = table_of(SyncClient).c
# Statements every push runs, built once: building one costs more than SQLite running it.
_claim = select(_clients.user_id, _clients.last_mid, STORED_EPOCH.label("epoch")).where(
    _clients.client_id == bindparam("client_id")
)
_CLAIM = Prepared(_claim)
_CLAIM_LOCKED = Prepared(_claim.with_for_update())
_NEW_CLIENT = insert(table_of(SyncClient)).values(scope_sets={})
_RECORD_PUSH = Prepared(
    update(table_of(SyncClient))
    .where(_clients.client_id == bindparam("client"))
    .values(last_mid=bindparam("last_mid"), last_push_at=bindparam("now"))
)


async def _claim_client(session: AsyncSession, client_id: str, principal: Principal, now: datetime) -> tuple[int, str]:
    """`bind_client` for a push: the client's `last_mid` and the server epoch, with Core
    statements rather than an ORM object.

    Every push pays for this; a loaded, tracked and flushed `SyncClient` costs several
    times the two statements.
    """
    locked = session.get_bind().dialect.name == "postgresql"
    rows = await (_CLAIM_LOCKED if locked else _CLAIM).rows(session, {"client_id": client_id})
    if not rows:
        await session.execute(_NEW_CLIENT, {"client_id": client_id, "user_id": principal.user_id, "created_at": now})
        return 0, await server_epoch(session)
    [(user_id, last_mid, epoch)] = rows
    _check_owner(user_id, principal)
    return int(last_mid), epoch or await server_epoch(session)


def _result(
    mutation: Mutation, status: ResultStatus, version: int | None = None, error: ErrorBody | None = None
) -> MutationResult:
    return MutationResult(mid=mutation.mid, id=mutation.id, status=status, version=version, error=error)


def _rejected(mutation: Mutation, rejection: MutationRejected | AppError) -> MutationResult:
    error = ErrorBody(code=rejection.code, message=rejection.message, details=rejection.details)
    return _result(mutation, ResultStatus.REJECTED, error=error)


async def apply_mutation(ctx: MutationContext, name: str, args: dict[str, Any]) -> int | None:
    """One mutation through its handler (a batch handler as a run of one); raises its rejection."""
    handler = MUTATIONS.get(name)
    if handler is None:
        raise MutationRejected("unknown_mutation", f"No mutation named {name!r}.", {"known": sorted(MUTATIONS)})
    if not isinstance(handler, BatchHandler):
        return await handler(ctx, args)
    [outcome] = await handler.apply(ctx, [args])
    if isinstance(outcome, MutationRejected):
        raise outcome
    return outcome


async def _apply_one(ctx: MutationContext, mutation: Mutation) -> MutationResult:
    try:
        async with ctx.uow.savepoint():
            version = await apply_mutation(ctx, mutation.name, mutation.args)
        return _result(mutation, ResultStatus.APPLIED, version)
    except (MutationRejected, AppError) as exc:
        return _rejected(mutation, exc)
    except OperationalError:
        raise  # locked or unavailable database: transient, the whole push is retried
    except DBAPIError:
        error = ErrorBody(code="constraint_violation", message="The mutation conflicts with stored data.")
    except Exception:
        # A defect of ours must not block the device's queue forever: record it and move on.
        log.exception("mutation %s (%s) failed", mutation.name, mutation.id)
        error = ErrorBody(code="internal_error", message="The server could not apply this mutation.")
    return _result(mutation, ResultStatus.REJECTED, error=error)


# The rejections of mutations whose args no handler may see, by the mutation object's id().
Unfit = dict[int, MutationRejected]


async def _apply_run(ctx: MutationContext, run: list[Mutation], unfit: Unfit) -> list[MutationResult]:
    """Apply consecutive mutations of one name: set-based when the name has a batch handler.

    A batch handler decides every rejection before it writes, so its run needs no savepoint:
    should it raise instead, the whole push is undone and applied again `careful`ly, one
    mutation at a time, each in its own savepoint, where the culprit alone is rejected.
    """
    if id(run[0]) in unfit:
        return [_rejected(mutation, unfit[id(mutation)]) for mutation in run]
    handler = MUTATIONS.get(run[0].name)
    if ctx.careful or not isinstance(handler, BatchHandler):
        return [await _apply_one(ctx, mutation) for mutation in run]
    outcomes = await handler.apply(ctx, [mutation.args for mutation in run])
    return [
        _rejected(mutation, outcome)
        if isinstance(outcome, MutationRejected)
        else _result(mutation, ResultStatus.APPLIED, outcome)
        for mutation, outcome in zip(run, outcomes, strict=True)
    ]


def _runs(mutations: list[Mutation], unfit: Unfit) -> Iterator[list[Mutation]]:
    """Maximal runs of consecutive mutations with the same name and the same fitness."""
    for _, run in groupby(mutations, key=lambda mutation: (mutation.name, id(mutation) in unfit)):
        yield list(run)


async def _stored_outcomes(
    uow: UnitOfWork, session: AsyncSession, client_id: str, mids: list[int]
) -> dict[int, AppliedMutation]:
    if not mids:
        return {}
    # The device's earlier push may be in this group, its outcomes still staged.
    await uow.write_staged()
    query = select(AppliedMutation).where(AppliedMutation.client_id == client_id, col(AppliedMutation.mid).in_(mids))
    return {applied.mid: applied for applied in await session.scalars(query)}


async def push(runtime: Runtime, principal: Principal, request: PushRequest) -> PushResponse:
    """Apply a push; it shares its transaction with the pushes that wait beside it (a group commit)."""
    check_client_id(request.client_id)
    check_schema_version(request.schema_version, oldest=OLDEST_PUSH_SCHEMA_VERSION)
    if len(request.mutations) > MAX_MUTATIONS_PER_PUSH:
        raise AppError(
            "too_many_mutations",
            f"At most {MAX_MUTATIONS_PER_PUSH} mutations per push.",
            status_code=413,
            details={"max": MAX_MUTATIONS_PER_PUSH},
        )
    mutations = [upcast(m, request.schema_version) for m in request.mutations]
    # Screened before the transaction: pure CPU, kept out of the writer's turn.
    unfit = {id(m): problem for m in mutations if (problem := args_problem(m.args)) is not None}

    def applying(*, careful: bool) -> Job[PushResponse]:
        async def apply(uow: UnitOfWork, session: AsyncSession) -> PushResponse:
            now = runtime.clock.now()
            return await _apply_push(uow, session, principal, request.client_id, mutations, unfit, now, careful=careful)

        return apply

    try:
        try:
            response = await runtime.group_commit.run(principal.user_id, "sync.push", applying(careful=False))
        except (AppError, OperationalError):
            raise
        except Exception:
            log.info("push from %s applied again one mutation at a time", request.client_id, exc_info=True)
            response = await runtime.group_commit.run(principal.user_id, "sync.push", applying(careful=True))
    except OperationalError as exc:
        raise unavailable() from exc
    if runtime.settings.injects("kill_after_push_commit"):
        # The crash test's window: committed, and the device never hears of it.
        os.kill(os.getpid(), signal.SIGKILL)
    return response


async def _apply_push(
    uow: UnitOfWork,
    session: AsyncSession,
    principal: Principal,
    client_id: str,
    mutations: list[Mutation],
    unfit: Unfit,
    now: datetime,
    *,
    careful: bool,
) -> PushResponse:
    last_mid, epoch = await _claim_client(session, client_id, principal, now)
    new = _new_mutations(mutations, last_mid)
    new_mids = {mutation.mid for mutation in new}
    stored = await _stored_outcomes(uow, session, client_id, [m.mid for m in mutations if m.mid not in new_mids])
    ctx = MutationContext(session, uow, principal, client_id, now, careful=careful)
    applied = [result for run in _runs(new, unfit) for result in await _apply_run(ctx, run, unfit)]
    if applied:
        stage_rows(session, table_of(AppliedMutation), _applied_rows(client_id, new, applied, now))
        last_mid = new[-1].mid
    await _RECORD_PUSH.rows(session, {"client": client_id, "last_mid": last_mid, "now": now})
    return PushResponse(
        client_id=client_id,
        server_epoch=epoch,
        last_mid=last_mid,
        results=_in_request_order(mutations, new, applied, stored),
    )


def _new_mutations(mutations: list[Mutation], last_mid: int) -> list[Mutation]:
    """The mutations to apply, in order: each next mid once; a gap refuses the whole push.

    A mid at or below the running `last_mid` is a duplicate, wherever it stands.
    """
    new = []
    for mutation in mutations:
        if mutation.mid > last_mid + 1:
            raise Conflict("mutation_gap", "Mutations are missing before this batch.", {"expected_mid": last_mid + 1})
        if mutation.mid == last_mid + 1:
            new.append(mutation)
            last_mid = mutation.mid
    return new


def _in_request_order(
    mutations: list[Mutation], new: list[Mutation], applied: list[MutationResult], stored: dict[int, AppliedMutation]
) -> list[MutationResult]:
    """One result per mutation sent: the new ones' outcomes, and `duplicate` for every other."""
    fresh = {id(mutation): result for mutation, result in zip(new, applied, strict=True)}
    by_mid = {result.mid: result for result in applied}
    return [
        fresh.get(id(mutation)) or _duplicate(mutation, stored.get(mutation.mid), by_mid.get(mutation.mid))
        for mutation in mutations
    ]


def _applied_rows(
    client_id: str, mutations: list[Mutation], results: list[MutationResult], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "client_id": client_id,
            "mid": mutation.mid,
            "mutation_id": mutation.id,
            "name": mutation.name,
            "status": result.status,
            "result": result.model_dump(mode="json", exclude_none=True),
            "client_ts": mutation.client_ts,
            "applied_at": now,
        }
        for mutation, result in zip(mutations, results, strict=True)
    ]


def _duplicate(mutation: Mutation, stored: AppliedMutation | None, earlier: MutationResult | None) -> MutationResult:
    """A resend answers with the outcome of the first time (stored, or earlier in this request)."""
    version, status = None, None
    if earlier is not None:
        version, status = earlier.version, earlier.status
    elif stored is not None:
        version, status = stored.result.get("version"), ResultStatus(stored.status)
    return MutationResult(
        mid=mutation.mid, id=mutation.id, status=ResultStatus.DUPLICATE, version=version, original_status=status
    )
