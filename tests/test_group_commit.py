"""Group commit: pushes that wait for the writer share one transaction, and each stays its own.

Each test first occupies the writer with a request that waits for a signal, so the pushes
sent meanwhile queue up and form the next group, deterministically. The pushes go through
the push service itself (`syncing.push.push`), as the HTTP endpoint calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.audit import AuditEvent, verify_chain
from loopline.core.changelog import ChangeLog
from loopline.core.errors import AppError
from loopline.core.runtime import Runtime
from loopline.core.uow import UnitOfWork
from loopline.people.service import SYSTEM_ACTOR
from loopline.syncing.push import push
from loopline.threads.models import Message
from loopline_sync import SCHEMA_VERSION
from loopline_sync.protocol import PushRequest, PushResponse
from tests.conftest import Login
from tests.sync_helpers import Device, batch_of_lot_018, new_id, new_thread, principal_of_token


class HeldWriter:
    """Keeps the group commit's writer busy until released: what is sent meanwhile is one group."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.release = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HeldWriter:
        async def hold(_uow: UnitOfWork, _session: AsyncSession) -> None:
            await self.release.wait()

        self.task = asyncio.create_task(self.runtime.group_commit.run(SYSTEM_ACTOR, "test.hold", hold))
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release.set()
        assert self.task is not None
        await self.task


@contextlib.asynccontextmanager
async def statements_of(runtime: Runtime) -> AsyncIterator[list[str]]:
    """The SQL the writer runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = runtime.db.writer.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


class Poster:
    """One user's device, pushing through the service in the test's own runtime."""

    def __init__(self, runtime: Runtime, principal: Principal) -> None:
        self.runtime = runtime
        self.principal = principal
        self.client_id = new_id()
        self.mid = 0

    def send(self, name: str, args: dict[str, Any], *, skip_mids: int = 0) -> Awaitable[PushResponse]:
        self.mid += 1 + skip_mids
        mutation = {"mid": self.mid, "id": new_id(), "name": name, "args": args}
        request = PushRequest.model_validate(
            {"client_id": self.client_id, "schema_version": SCHEMA_VERSION, "mutations": [mutation]}
        )
        return push(self.runtime, self.principal, request)


async def poster(runtime: Runtime, login: Login, username: str) -> Poster:
    headers = await login(username)
    return Poster(runtime, await principal_of_token(runtime, headers["Authorization"].removeprefix("Bearer ")))


@pytest.fixture(scope="module")
async def thread_id(world_client: AsyncTestClient[Any], world_login: Login) -> str:
    """A defect's thread in which wang.lei mentioned jana.novak and lena.fischer: all three post there."""
    wang = Device(world_client, await world_login("wang.lei"))
    thread = await new_thread(world_client, wang, await batch_of_lot_018(world_client, wang.headers))
    body = "@jana.novak @lena.fischer please look"
    await wang.push_ok(wang.mutation("message.post", {"id": new_id(), "thread_id": thread, "body": body}))
    return thread


def post(thread_id: str, body: str, message_id: str | None = None) -> dict[str, Any]:
    return {"id": message_id or new_id(), "thread_id": thread_id, "body": body}


async def audit_of(runtime: Runtime, entity_id: str) -> list[AuditEvent]:
    async with runtime.db.read_session() as session:
        query = select(AuditEvent).where(AuditEvent.entity_id == entity_id).order_by(col(AuditEvent.seq))
        return list(await session.scalars(query))


async def log_of(runtime: Runtime, entity_id: str) -> list[ChangeLog]:
    async with runtime.db.read_session() as session:
        query = select(ChangeLog).where(ChangeLog.entity_id == entity_id).order_by(col(ChangeLog.seq))
        return list(await session.scalars(query))


async def message(runtime: Runtime, message_id: str) -> Message | None:
    async with runtime.db.read_session() as session:
        return await session.get(Message, message_id)


async def test_waiting_pushes_share_one_transaction_and_each_is_audited_as_its_user(
    world_runtime: Runtime, world_login: Login, thread_id: str
) -> None:
    wang, jana, lena = [
        await poster(world_runtime, world_login, name) for name in ("wang.lei", "jana.novak", "lena.fischer")
    ]
    ids = [new_id() for _ in range(3)]
    groups_before = world_runtime.group_commit.groups
    async with statements_of(world_runtime) as statements:
        async with HeldWriter(world_runtime):
            sent = [
                asyncio.ensure_future(
                    device.send("message.post", post(thread_id, f"from {device.principal.username}", i))
                )
                for device, i in zip((wang, jana, lena), ids, strict=True)
            ]
            gap = asyncio.ensure_future(lena.send("message.post", post(thread_id, "after a gap"), skip_mids=3))
            await asyncio.sleep(0.05)
            assert not any(task.done() for task in [*sent, gap])
        responses = await asyncio.gather(*sent)
    # The gap failed the group's first run: the second ran each push in a savepoint.
    assert len([sql for sql in statements if sql.startswith("SAVEPOINT")]) == 4
    with pytest.raises(AppError) as refused:
        await gap
    # The held request's group, then one group for all four pushes.
    assert world_runtime.group_commit.groups == groups_before + 2
    assert refused.value.code == "mutation_gap"
    assert [r.results[0].status for r in responses] == ["applied"] * 3

    messages = [await message(world_runtime, i) for i in ids]
    assert [m.author_id for m in messages if m] == [d.principal.user_id for d in (wang, jana, lena)]
    seqs = [m.thread_seq for m in messages if m]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    for device, message_id in zip((wang, jana, lena), ids, strict=True):
        [event] = await audit_of(world_runtime, message_id)
        assert (event.actor, event.command, event.action) == (device.principal.user_id, "sync.push", "message.insert")
        assert [row.op for row in await log_of(world_runtime, message_id)] == ["put"]
    async with world_runtime.db.read_session() as session:
        assert (await verify_chain(session)).ok


async def test_an_entity_changed_by_two_pushes_of_a_group_gets_both_versions_audited(
    world_runtime: Runtime, world_login: Login, thread_id: str
) -> None:
    wang = await poster(world_runtime, world_login, "wang.lei")
    wang_again = await poster(world_runtime, world_login, "wang.lei")
    message_id = new_id()
    await wang.send("message.post", post(thread_id, "first", message_id))
    logged_before = len(await log_of(world_runtime, message_id))
    async with statements_of(world_runtime) as statements:
        async with HeldWriter(world_runtime):
            first = asyncio.ensure_future(wang.send("message.edit", {"id": message_id, "body": "second"}))
            second = asyncio.ensure_future(wang_again.send("message.edit", {"id": message_id, "body": "third"}))
            await asyncio.sleep(0.05)
        versions = [(await first).results[0].version, (await second).results[0].version]
    assert versions == [2, 3]
    # Nobody failed: the group ran once, without a savepoint per push (an edit takes one of its own).
    assert len([sql for sql in statements if sql.startswith("SAVEPOINT")]) == 2
    edits = [e for e in await audit_of(world_runtime, message_id) if e.action == "message.update"]
    assert [e.diff["body"] for e in edits if e.diff] == [["first", "second"], ["second", "third"]]
    # The log keeps one row per entity and scope per transaction: the newest.
    [row] = (await log_of(world_runtime, message_id))[logged_before:]
    assert (row.version, row.data and row.data["body"]) == (3, "third")


async def test_a_request_that_fails_in_a_group_is_undone_alone(
    world_runtime: Runtime, world_login: Login, thread_id: str
) -> None:
    jana = await poster(world_runtime, world_login, "jana.novak")
    marker = new_id()

    never_kept = new_id()

    async def writes_then_fails(uow: UnitOfWork, _session: AsyncSession) -> None:
        uow.audit(entity="test", entity_id=marker, action="test.written")
        row = {"id": never_kept, "thread_id": thread_id, "author_id": jana.principal.user_id, "body": "never kept"}
        await uow.insert_rows(Message, [{**row, "thread_seq": 1_000_000}])
        raise ValueError("a defect")

    message_id = new_id()
    async with HeldWriter(world_runtime):
        failing = asyncio.ensure_future(world_runtime.group_commit.run(SYSTEM_ACTOR, "test.fail", writes_then_fails))
        kept = asyncio.ensure_future(jana.send("message.post", post(thread_id, "kept", message_id)))
        await asyncio.sleep(0.05)
    with pytest.raises(ValueError, match="a defect"):
        await failing
    assert (await kept).results[0].status == "applied"
    assert await message(world_runtime, message_id) is not None
    assert await message(world_runtime, never_kept) is None
    assert await audit_of(world_runtime, marker) == []


async def test_a_transient_failure_fails_the_whole_group_and_writes_nothing(
    world_runtime: Runtime, world_login: Login, thread_id: str
) -> None:
    lena = await poster(world_runtime, world_login, "lena.fischer")

    async def locked(_uow: UnitOfWork, _session: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    message_id = new_id()
    async with HeldWriter(world_runtime):
        sent = asyncio.ensure_future(lena.send("message.post", post(thread_id, "lost with its group", message_id)))
        failing = asyncio.ensure_future(world_runtime.group_commit.run(SYSTEM_ACTOR, "test.locked", locked))
        await asyncio.sleep(0.05)
    with pytest.raises(AppError) as unavailable:
        await sent
    with pytest.raises(OperationalError):
        await failing
    assert (unavailable.value.code, unavailable.value.status_code) == ("unavailable", 503)
    assert await message(world_runtime, message_id) is None
    # The device retries with the same mid, and it applies.
    lena.mid -= 1
    assert (await lena.send("message.post", post(thread_id, "lost with its group", message_id))).results[0].status == (
        "applied"
    )


async def test_a_caller_that_goes_away_still_has_its_push_written(
    world_runtime: Runtime, world_login: Login, thread_id: str
) -> None:
    wang = await poster(world_runtime, world_login, "wang.lei")
    message_id = new_id()
    async with HeldWriter(world_runtime):
        sent = asyncio.ensure_future(wang.send("message.post", post(thread_id, "sent, then hung up", message_id)))
        await asyncio.sleep(0.05)
        sent.cancel()

    async def nothing(_uow: UnitOfWork, _session: AsyncSession) -> None:
        return None

    # Groups commit in order: once a later request is answered, the cancelled one's group has committed.
    await world_runtime.group_commit.run(SYSTEM_ACTOR, "test.after", nothing)
    assert sent.cancelled()
    assert await message(world_runtime, message_id) is not None


async def test_a_resend_in_the_same_group_answers_with_the_outcome_of_the_first(
    world_runtime: Runtime, world_login: Login, thread_id: str
) -> None:
    """A device that retries while its first push still waits: the retry is a duplicate of it."""
    jana = await poster(world_runtime, world_login, "jana.novak")
    message_id = new_id()
    async with HeldWriter(world_runtime):
        first = asyncio.ensure_future(jana.send("message.post", post(thread_id, "once", message_id)))
        jana.mid -= 1
        resent = asyncio.ensure_future(jana.send("message.post", post(thread_id, "once", message_id)))
        await asyncio.sleep(0.05)
    [applied], [duplicate] = (await first).results, (await resent).results
    assert (applied.status, applied.version) == ("applied", 1)
    assert (duplicate.status, duplicate.original_status, duplicate.version) == ("duplicate", "applied", 1)
