"""Set-based pushes: a run of `message.post` is checked per message and written in a few statements.

These pin down what the batch path must keep from the one-at-a-time path: per-message
rejections, resends that compare content, an edit in the same push, the fallback when a
run fails as a whole, and duplicates inside one request.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import delete
from sqlmodel import col, select

from loopline.core.changelog import ChangeLog
from loopline.core.runtime import Runtime
from loopline.threads.models import Message, ThreadCounter
from tests.conftest import Login
from tests.sync_helpers import Device, batch_of_lot_018, new_id, new_thread, principal_of_token, server_state


@pytest.fixture(scope="module")
async def batch_id(world_client: AsyncTestClient[Any], world_login: Login) -> str:
    return await batch_of_lot_018(world_client, await world_login("admin"))


def post(wang: Device, thread_id: str, message_id: str, body: str, **extra: Any) -> dict[str, Any]:
    return wang.mutation("message.post", {"id": message_id, "thread_id": thread_id, "body": body, **extra})


async def messages_of(runtime: Runtime, thread_id: str) -> list[Message]:
    async with runtime.db.read_session() as session:
        query = select(Message).where(Message.thread_id == thread_id).order_by(col(Message.thread_seq))
        return list(await session.scalars(query))


async def test_a_run_of_posts_is_judged_per_message(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, batch_id: str
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    thread_id = await new_thread(world_client, wang, batch_id)
    first, second = new_id(), new_id()
    response = await wang.push_ok(
        post(wang, thread_id, first, "first"),
        post(wang, new_id(), new_id(), "to a thread that does not exist"),
        wang.mutation("message.post", {"id": new_id(), "thread_id": thread_id}),
        post(wang, thread_id, first, "first"),
        post(wang, thread_id, first, "first, rewritten"),
        post(wang, thread_id, second, "second", mentions=["lena.fischer", "nobody.here"]),
    )
    results = response["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "applied", "rejected", "applied"]
    assert [(r.get("error") or {}).get("code") for r in results] == [
        None,
        "not_found",
        "validation_error",
        None,
        "id_conflict",
        None,
    ]
    assert results[4]["error"]["details"]["fields"] == ["body"]
    assert {r["version"] for r in results if r["status"] == "applied"} == {1}
    posted = await messages_of(world_runtime, thread_id)
    assert [(m.id, m.thread_seq, m.body) for m in posted] == [(first, 1, "first"), (second, 2, "second")]
    assert posted[1].mentions == ["lena.fischer"]
    principal = await principal_of_token(world_runtime, wang.headers["Authorization"].split()[1])
    await wang.pull_all()
    assert wang.read_model == await server_state(world_runtime, principal)


async def test_a_message_posted_and_edited_in_one_push_is_logged_as_edited(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, batch_id: str
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    thread_id = await new_thread(world_client, wang, batch_id)
    message_id = new_id()
    await wang.push_ok(
        post(wang, thread_id, message_id, "draft"),
        wang.mutation("message.edit", {"id": message_id, "body": "final"}),
        post(wang, thread_id, new_id(), "after the edit"),
    )
    async with world_runtime.db.read_session() as session:
        logged = list(await session.scalars(select(ChangeLog).where(ChangeLog.entity_id == message_id)))
    assert [(row.op, row.version) for row in logged] == [("put", 1)]
    assert logged[0].data is not None
    assert logged[0].data["body"] == "final"
    assert [m.body for m in await messages_of(world_runtime, thread_id)] == ["final", "after the edit"]


async def test_a_run_that_fails_as_a_whole_is_retried_one_at_a_time(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, batch_id: str
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    healthy = await new_thread(world_client, wang, batch_id)
    broken = await new_thread(world_client, wang, batch_id)
    # A thread without its counter cannot number a message: the set-based write fails for the whole run.
    async with world_runtime.unit_of_work(actor="test") as session:
        await session.execute(delete(ThreadCounter).where(col(ThreadCounter.thread_id) == broken))
    response = await wang.push_ok(
        post(wang, healthy, new_id(), "one"),
        post(wang, broken, new_id(), "lost"),
        post(wang, healthy, new_id(), "two"),
    )
    assert [r["status"] for r in response["results"]] == ["applied", "rejected", "applied"]
    assert response["results"][1]["error"]["code"] == "internal_error"
    assert [(m.thread_seq, m.body) for m in await messages_of(world_runtime, healthy)] == [(1, "one"), (2, "two")]
    assert await messages_of(world_runtime, broken) == []


async def test_a_mid_repeated_inside_one_push_answers_duplicate(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, batch_id: str
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    thread_id = await new_thread(world_client, wang, batch_id)
    hello, again = post(wang, thread_id, new_id(), "hello"), post(wang, thread_id, new_id(), "again")
    response = await wang.push_ok(hello, again, hello)
    assert response["last_mid"] == again["mid"]
    assert [r["status"] for r in response["results"]] == ["applied", "applied", "duplicate"]
    assert response["results"][2]["original_status"] == "applied"
    assert response["results"][2]["version"] == 1
    assert len(await messages_of(world_runtime, thread_id)) == 2


async def test_a_message_id_used_by_an_earlier_push_is_compared_not_posted_again(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, batch_id: str
) -> None:
    """The first attempt takes ids to be new; the insert of a used one fails, and the careful pass compares."""
    wang = Device(world_client, await world_login("wang.lei"))
    thread_id = await new_thread(world_client, wang, batch_id)
    message_id = new_id()
    await wang.push_ok(post(wang, thread_id, message_id, "hello"))
    response = await wang.push_ok(
        post(wang, thread_id, message_id, "hello"),
        post(wang, thread_id, message_id, "hello, changed"),
        post(wang, thread_id, new_id(), "next"),
    )
    assert [r["status"] for r in response["results"]] == ["applied", "rejected", "applied"]
    assert response["results"][0]["version"] == 1
    assert response["results"][1]["error"]["code"] == "id_conflict"
    assert [(m.thread_seq, m.body) for m in await messages_of(world_runtime, thread_id)] == [(1, "hello"), (2, "next")]
