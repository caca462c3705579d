"""`GET /batches/{id}/trace` and `GET /cases/{id}/context`: the two views of the loop's spine."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from loopline.core.api import PrincipalDep, SessionDep
from loopline.core.pagination import get_readable
from loopline.customer.models import Case
from loopline.loop.customer_context import CustomerCaseContext, customer_case_context
from loopline.loop.trace import BatchTrace, CaseContext, batch_trace, case_context
from loopline.quality.models import Batch


class LoopViewController(Controller):
    path = "/"
    tags = ["loop"]

    @get("/batches/{batch_id:str}/trace", operation_id="trace_batch")
    async def trace(self, session: SessionDep, principal: PrincipalDep, batch_id: FromPath[str]) -> BatchTrace:
        batch = await get_readable(session, Batch, principal, batch_id)
        return await batch_trace(session, principal, batch)

    @get("/cases/{case_id:str}/context", operation_id="get_case_context")
    async def context(
        self, session: SessionDep, principal: PrincipalDep, case_id: FromPath[str]
    ) -> CaseContext | CustomerCaseContext:
        """Staff see the case's quality evidence; a customer sees what is published to them."""
        case = await get_readable(session, Case, principal, case_id)
        if principal.is_staff:
            return await case_context(session, case, principal)
        return await customer_case_context(session, principal, case)


controllers = [LoopViewController]
