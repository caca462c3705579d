"""What every controller shares: dependencies, paging parameters and the admin CRUD factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from loopline.core.access import Principal
from loopline.core.runtime import Runtime

# Handler parameters carry explicit markers (Litestar 3 drops inferring them).
# The dependencies below are injected by parameter name: `runtime: RuntimeDep`,
# `principal: PrincipalDep` and `session: SessionDep` (a read-only session).
RuntimeDep = NamedDependency[Runtime]
PrincipalDep = NamedDependency[Principal]
SessionDep = NamedDependency[AsyncSession]

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (1 to 500).")]
Cursor = Annotated[str | None, QueryParameter(max_length=200, description="`next_cursor` of the previous page.")]
IdFilter = Annotated[str | None, QueryParameter(max_length=36)]
IdPath = Annotated[str, PathParameter(max_length=36)]


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def provide_principal(request: Request[Principal, Any, Any], runtime: RuntimeDep) -> Principal:
    # `runtime` only orders this after it: Litestar resolves the dependencies of one level
    # together in a task group, which costs a request more than the two lookups (litestar#4563).
    del runtime
    return request.user


async def provide_read_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.db.read_session() as session:
        yield session


dependencies: dict[str, Provide] = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "session": Provide(provide_read_session),
}

Derive = Callable[[AsyncSession, dict[str, Any]], Awaitable[dict[str, Any]]]
