"""The REST face of a sync mutation: one named mutation, applied outside any device's outbox.

Integrations (a MES, a test bench, a script) post records over plain HTTP; they get the
same handler, the same loop rules and the same transaction as a device's push. Ids are
the caller's, so a retried request is answered from what is stored instead of
creating anything twice. A rejection becomes an HTTP error with the mutation's code.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

from loopline.core.access import Principal
from loopline.core.errors import AppError
from loopline.core.runtime import Runtime
from loopline.syncing.push import apply_mutation, unavailable
from loopline.syncing.registry import MutationContext, MutationRejected

# The HTTP status of a rejection code; any other code is 422 (the request can never succeed as sent).
REJECTION_STATUS = {"not_found": 404, "forbidden": 403, "id_conflict": 409}


async def run_command(runtime: Runtime, principal: Principal, name: str, args: dict[str, Any]) -> int | None:
    """Apply mutation `name` with `args` in a transaction of its own; the entity's version."""
    uow = runtime.unit_of_work(actor=principal.user_id, command=f"api.{name}")
    try:
        async with uow as session:
            # No device: the session stands in for one, so records say which sign-in sent them.
            ctx = MutationContext(session, uow, principal, f"api:{principal.session_id}", runtime.clock.now())
            return await apply_mutation(ctx, name, args)
    except MutationRejected as rejection:
        raise AppError(
            rejection.code,
            rejection.message,
            status_code=REJECTION_STATUS.get(rejection.code, 422),
            details=rejection.details,
        ) from rejection
    except OperationalError as exc:
        raise unavailable() from exc
