"""`POST /sync/push` and `POST /sync/pull` (see shared/design/sync-protocol.md)."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from loopline.core.api import PrincipalDep, RuntimeDep
from loopline.core.input_guard import CHECKS_ITEMS_ITSELF
from loopline.syncing import pull as pull_service
from loopline.syncing import push as push_service
from loopline.syncing.push_input import PushRequestBody
from loopline_sync import MAX_PUSH_BYTES
from loopline_sync.protocol import PullRequest, PullResponse, PushRequest, PushResponse


class SyncController(Controller):
    path = "/sync"
    tags = ["sync"]

    @post(
        "/push",
        operation_id="sync_push",
        status_code=200,
        # A larger body is answered 413 unread, even if it holds one mutation: what the server
        # reads must be bounded. No client queues a mutation that alone exceeds the limit
        # (the engine's enqueue refuses it), so a 413 only ever asks for a smaller batch.
        request_max_body_size=MAX_PUSH_BYTES,
        # Only the envelope may refuse a push whole; each mutation's args are judged alone.
        request_class=PushRequestBody,
        opt={CHECKS_ITEMS_ITSELF: True},
    )
    async def push(self, runtime: RuntimeDep, principal: PrincipalDep, data: JSONBody[PushRequest]) -> PushResponse:
        return await push_service.push(runtime, principal, data)

    @post("/pull", operation_id="sync_pull", status_code=200)
    async def pull(self, runtime: RuntimeDep, principal: PrincipalDep, data: JSONBody[PullRequest]) -> PullResponse:
        return await pull_service.pull(runtime, principal, data)


controllers = [SyncController]
