"""`/sync/push`: apply a device's ordered, idempotent mutation log.

One database transaction per request. For each mutation in order: an already applied
mid answers `duplicate` with the stored outcome; a gap fails the whole request (409)
with nothing applied; anything else is applied in a savepoint, or `rejected` with a code
when it can never succeed — and a rejection still advances `last_mid`, so one poison
mutation never blocks the queue. A transient database failure rolls everything back and
answers 503, leaving `last_mid` where it was.
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.errors import AppError, Conflict
from loopline.core.runtime import Runtime
from loopline.customer.mutations import mutations as customer_mutations
from loopline.media.mutations import mutations as media_mutations
from loopline.quality.mutations import mutations as quality_mutations
from loopline.syncing.meta import server_epoch
from loopline.syncing.models import AppliedMutation, SyncClient
from loopline.syncing.registry import Handler, MutationContext, MutationRejected
from loopline.syncing.upcast import upcast
from loopline.threads.mutations import mutations as thread_mutations
from loopline_sync import MAX_MUTATIONS_PER_PUSH, OLDEST_PUSH_SCHEMA_VERSION, SCHEMA_VERSION
from loopline_sync.protocol import ErrorBody, Mutation, MutationResult, PushRequest, PushResponse, ResultStatus

log = logging.getLogger("loopline.sync")

MUTATIONS: dict[str, Handler] = {**quality_mutations, **customer_mutations, **thread_mutations, **media_mutations}

RETRY_AFTER_S = 2


def unavailable() -> AppError:
    return AppError(
        "unavailable",
        "The server is busy; retry shortly.",
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def check_schema_version(version: int, *, oldest: int) -> None:
    if version < oldest:
        raise AppError(
            "client_too_old",
            "This app is too old for the server; update it.",
            status_code=426,
            details={"oldest_schema_version": oldest, "schema_version": SCHEMA_VERSION},
        )
    if version > SCHEMA_VERSION:
        raise AppError(
            "schema_version_unsupported",
            "The server does not know this schema version yet.",
            details={"schema_version": SCHEMA_VERSION},
        )


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
    elif client.user_id != principal.user_id:
        raise AppError("client_owned_by_other_user", "This device is bound to another user.", status_code=403)
    return client


def _result(
    mutation: Mutation, status: ResultStatus, version: int | None = None, error: ErrorBody | None = None
) -> MutationResult:
    return MutationResult(mid=mutation.mid, id=mutation.id, status=status, version=version, error=error)


async def _apply(ctx: MutationContext, mutation: Mutation) -> MutationResult:
    handler = MUTATIONS.get(mutation.name)
    try:
        async with ctx.uow.savepoint():
            if handler is None:
                raise MutationRejected(
                    "unknown_mutation", f"No mutation named {mutation.name!r}.", {"known": sorted(MUTATIONS)}
                )
            version = await handler(ctx, mutation.args)
        return _result(mutation, ResultStatus.APPLIED, version)
    except MutationRejected as exc:
        error = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
    except OperationalError:
        raise  # locked or unavailable database: transient, the whole push is retried
    except DBAPIError:
        error = ErrorBody(code="constraint_violation", message="The mutation conflicts with stored data.")
    except AppError as exc:
        error = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
    except Exception:
        # A defect of ours must not block the device's queue forever: record it and move on.
        log.exception("mutation %s (%s) failed", mutation.name, mutation.id)
        error = ErrorBody(code="internal_error", message="The server could not apply this mutation.")
    return _result(mutation, ResultStatus.REJECTED, error=error)


async def push(runtime: Runtime, principal: Principal, request: PushRequest) -> PushResponse:
    check_schema_version(request.schema_version, oldest=OLDEST_PUSH_SCHEMA_VERSION)
    if len(request.mutations) > MAX_MUTATIONS_PER_PUSH:
        raise AppError(
            "too_many_mutations",
            f"At most {MAX_MUTATIONS_PER_PUSH} mutations per push.",
            status_code=413,
            details={"max": MAX_MUTATIONS_PER_PUSH},
        )
    mutations = [upcast(m, request.schema_version) for m in request.mutations]
    now = runtime.clock.now()
    uow = runtime.unit_of_work(actor=principal.user_id, command="sync.push")
    try:
        async with uow as session:
            client = await bind_client(session, request.client_id, principal, now)
            epoch = await server_epoch(session)
            stored = {
                a.mid: a
                for a in await session.scalars(
                    select(AppliedMutation).where(
                        AppliedMutation.client_id == client.client_id,
                        col(AppliedMutation.mid).in_([m.mid for m in mutations if m.mid <= client.last_mid]),
                    )
                )
            }
            results: list[MutationResult] = []
            for mutation in mutations:
                if mutation.mid <= client.last_mid:
                    results.append(_duplicate(mutation, stored.get(mutation.mid)))
                    continue
                if mutation.mid > client.last_mid + 1:
                    raise Conflict(
                        "mutation_gap",
                        "Mutations are missing before this batch.",
                        {"expected_mid": client.last_mid + 1},
                    )
                ctx = MutationContext(
                    session=session,
                    uow=uow,
                    principal=principal,
                    client_id=client.client_id,
                    mutation_id=mutation.id,
                    now=now,
                    client_ts=mutation.client_ts,
                )
                result = await _apply(ctx, mutation)
                session.add(
                    AppliedMutation(
                        client_id=client.client_id,
                        mid=mutation.mid,
                        mutation_id=mutation.id,
                        name=mutation.name,
                        status=result.status,
                        result=result.model_dump(mode="json", exclude_none=True),
                        client_ts=mutation.client_ts,
                        applied_at=now,
                    )
                )
                client.last_mid = mutation.mid
                results.append(result)
            client.last_push_at = now
    except OperationalError as exc:
        raise unavailable() from exc
    if runtime.settings.injects("kill_after_push_commit"):
        # The crash test's window: committed, and the device never hears of it.
        os.kill(os.getpid(), signal.SIGKILL)
    return PushResponse(client_id=client.client_id, server_epoch=epoch, last_mid=client.last_mid, results=results)


def _duplicate(mutation: Mutation, stored: AppliedMutation | None) -> MutationResult:
    original: dict[str, Any] = stored.result if stored else {}
    return MutationResult(
        mid=mutation.mid,
        id=mutation.id,
        status=ResultStatus.DUPLICATE,
        version=original.get("version"),
        original_status=ResultStatus(stored.status) if stored else None,
    )
