"""Threads over the real HTTP stack: participants, mentions, history, "my threads" and unread counts.

The app here runs on a frozen clock that the tests move on explicitly, so "last activity"
orders by times the test chose, never by how fast the machine is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlmodel import select

from loopline.app import create_app
from loopline.core.clock import FrozenClock
from loopline.core.entity import account_scope
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.threads.models import SubjectType, ThreadParticipant
from loopline.threads.service import join_thread, mentioned_usernames, open_thread
from tests.conftest import Headers, sign_in
from tests.sync_helpers import Device, new_id

LOT_018 = "CN-SZ-L2-2406-018"


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    # A minute behind: a token is never issued "in the future", and the access tokens stay valid for the module.
    return FrozenClock(datetime.now(UTC) - timedelta(minutes=1))


@pytest.fixture(scope="module")
async def api(world_settings: Settings, clock: FrozenClock) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(world_settings, clock=clock)) as test_client:
        yield test_client


class World:
    """This module's demo world: one signed-in session per user, ids by business key."""

    def __init__(self, api: AsyncTestClient[Any], runtime: Runtime, clock: FrozenClock) -> None:
        self.api = api
        self.runtime = runtime
        self.clock = clock
        self.ids: dict[str, str] = {}
        self._headers: dict[str, Headers] = {}

    async def headers(self, username: str) -> Headers:
        if username not in self._headers:
            tokens = await sign_in(self.api, username)
            self._headers[username] = {"Authorization": f"Bearer {tokens['access_token']}"}
        return self._headers[username]

    async def device(self, username: str) -> Device:
        return Device(self.api, await self.headers(username))

    async def get(self, username: str, path: str, **params: Any) -> Any:
        response = await self.api.get(f"/api/v1{path}", headers=await self.headers(username), params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def push(self, device: Device, *mutations: dict[str, Any]) -> list[dict[str, Any]]:
        """Push after moving the clock on, so every push happens at a later time than the one before."""
        self.clock.advance(timedelta(milliseconds=1))
        results: list[dict[str, Any]] = (await device.push_ok(*mutations))["results"]
        return results

    async def defect_thread(self, reporter: Device) -> tuple[str, str]:
        """A fresh defect on lot 018 (CN-SZ): its id and its thread's id."""
        defect_id = new_id()
        report = {
            "id": defect_id,
            "batch_id": self.ids[LOT_018],
            "defect_code": "CC-THIN",
            "severity": "minor",
            "captured_at": "2024-06-17T08:12:00Z",
        }
        [result] = await self.push(reporter, reporter.mutation("defect.report", report))
        assert result["status"] == "applied", result
        threads = await self.get("wang.lei", "/threads", subject_type="defect", subject_id=defect_id)
        return defect_id, threads["items"][0]["thread"]["id"]

    async def case_thread(self) -> str:
        """A thread of a (made-up) A-003 case with its service rep and its customer, as the loop rules will open it."""
        async with self.runtime.unit_of_work(actor="test") as session:
            thread_id = await open_thread(
                session,
                subject_type=SubjectType.CASE,
                subject_id=new_id(),
                subject_scope=account_scope(self.ids["A-003"]),
                title="Flicker",
                participants=[(self.ids["lucia.martin"], "account_manager"), (self.ids["gil.workshop"], "customer")],
            )
        return thread_id

    async def participants(self, thread_id: str) -> dict[str, str]:
        """Username → reason."""
        names = {user_id: name for name, user_id in self.ids.items()}
        async with self.runtime.db.read_session() as session:
            rows = await session.scalars(select(ThreadParticipant).where(ThreadParticipant.thread_id == thread_id))
            return {names[row.user_id]: row.reason for row in rows}


@pytest.fixture(scope="module")
async def world(api: AsyncTestClient[Any], world_runtime: Runtime, clock: FrozenClock) -> World:
    w = World(api, world_runtime, clock)
    for path, key in [("/batches", "lot_no"), ("/accounts", "code"), ("/admin/users", "username")]:
        w.ids.update({item[key]: item["id"] for item in (await w.get("admin", path, limit=500))["items"]})
    return w


def post(device: Device, thread_id: str, body: str, **extra: Any) -> dict[str, Any]:
    return device.mutation("message.post", {"id": new_id(), "thread_id": thread_id, "body": body, **extra})


async def summary(world: World, username: str, thread_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await world.get(username, f"/threads/{thread_id}")
    return found


async def history(world: World, username: str, thread_id: str, **params: Any) -> dict[str, Any]:
    page: dict[str, Any] = await world.get(username, f"/threads/{thread_id}/messages", **params)
    return page


async def mine(world: World, username: str, **params: Any) -> list[str]:
    """The ids of the user's threads, every page followed."""
    ids: list[str] = []
    cursor = None
    while True:
        page = await world.get(username, "/threads", mine="true", **params, **({"cursor": cursor} if cursor else {}))
        ids.extend(item["thread"]["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


# History


async def test_history_pages_newest_first_and_before_is_exclusive(world: World) -> None:
    wang = await world.device("wang.lei")
    _, thread_id = await world.defect_thread(wang)
    await world.push(wang, *(post(wang, thread_id, f"#{n}") for n in range(1, 6)))

    pages, before = [], None
    while True:
        page = await history(world, "wang.lei", thread_id, limit=2, **({"before": before} if before else {}))
        pages.append([(m["thread_seq"], m["body"]) for m in page["items"]])
        before = page["next_before"]
        if before is None:
            break
    assert pages == [[(5, "#5"), (4, "#4")], [(3, "#3"), (2, "#2")], [(1, "#1")]]

    everything = await history(world, "wang.lei", thread_id)
    assert [m["thread_seq"] for m in everything["items"]] == [5, 4, 3, 2, 1]
    assert everything["next_before"] is None
    assert (await history(world, "wang.lei", thread_id, before=1)) == {"items": [], "next_before": None}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"before": 0}, {"before": "x"}])
async def test_history_refuses_bad_paging(world: World, params: dict[str, Any]) -> None:
    wang = await world.device("wang.lei")
    response = await world.api.get(f"/api/v1/threads/{new_id()}/messages", headers=wang.headers, params=params)
    assert response.status_code == 400, response.text


async def test_history_of_a_thread_you_cannot_read_is_not_found(world: World) -> None:
    wang = await world.device("wang.lei")
    _, thread_id = await world.defect_thread(wang)
    for username, path_id in [("jana.novak", thread_id), ("gil.workshop", thread_id), ("wang.lei", new_id())]:
        response = await world.api.get(f"/api/v1/threads/{path_id}/messages", headers=await world.headers(username))
        assert response.status_code == 404, (username, response.text)
        assert response.json()["error"]["code"] == "not_found"


async def test_history_keeps_tombstones_and_shows_customers_only_customer_messages(world: World) -> None:
    thread_id = await world.case_thread()
    lucia = await world.device("lucia.martin")
    internal, public, withdrawn = (
        post(lucia, thread_id, "internal: check lot 018"),
        post(lucia, thread_id, "We are on it.", visibility="customer"),
        post(lucia, thread_id, "Wrong case, sorry", visibility="customer"),
    )
    await world.push(lucia, internal, public, withdrawn)
    await world.push(lucia, lucia.mutation("message.delete", {"id": withdrawn["args"]["id"]}))

    seen = {
        username: [(m["thread_seq"], m["body"], m["deleted_at"] is not None) for m in page["items"]]
        for username in ("lucia.martin", "gil.workshop")
        for page in [await history(world, username, thread_id)]
    }
    assert seen["lucia.martin"] == [(3, "", True), (2, "We are on it.", False), (1, "internal: check lot 018", False)]
    assert seen["gil.workshop"] == [(3, "", True), (2, "We are on it.", False)]


# Participants


async def test_the_reporter_and_the_line_supervisor_join_a_defects_thread(world: World) -> None:
    wang = await world.device("wang.lei")
    defect_id, thread_id = await world.defect_thread(wang)
    assert await world.participants(thread_id) == {"wang.lei": "reporter", "qa.manager": "supervisor"}
    assert thread_id in await mine(world, "wang.lei", subject_id=defect_id)


async def test_join_thread_brings_people_into_a_subjects_thread_once(world: World) -> None:
    wang = await world.device("wang.lei")
    defect_id, thread_id = await world.defect_thread(wang)
    assert await mine(world, "lena.fischer", subject_id=defect_id) == []
    for _ in range(2):
        async with world.runtime.unit_of_work(actor="test") as session:
            joined = await join_thread(
                session,
                SubjectType.DEFECT,
                defect_id,
                [(world.ids["lena.fischer"], "account_manager"), (world.ids["wang.lei"], "assignee")],
            )
        assert joined.id == thread_id
    # The first reason stays: wang reported the defect before he was assigned it.
    assert await world.participants(thread_id) == {
        "wang.lei": "reporter",
        "qa.manager": "supervisor",
        "lena.fischer": "account_manager",
    }
    assert await mine(world, "lena.fischer", subject_id=defect_id) == [thread_id]
    with pytest.raises(LookupError):
        async with world.runtime.unit_of_work(actor="test") as session:
            await join_thread(session, SubjectType.CASE, defect_id, [(world.ids["lena.fischer"], "assignee")])


# Mentions


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("@wang.lei please check", ["wang.lei"]),
        ("ask @wang.lei.", ["wang.lei"]),
        ("@Wang.Lei, @jana.novak: see (@qa.manager)!", ["wang.lei", "jana.novak", "qa.manager"]),
        ("@wang.lei and @wang.lei again", ["wang.lei"]),
        ("write to ops@wang.lei or @ alone or @@x", []),
        ("@lena.fischer's photo\n@marcus.reed?", ["lena.fischer", "marcus.reed"]),
    ],
)
def test_mentions_are_the_usernames_after_an_at_sign(body: str, names: list[str]) -> None:
    assert mentioned_usernames(body) == names


async def test_mentions_in_the_body_bring_staff_into_the_thread(world: World) -> None:
    wang = await world.device("wang.lei")
    _, thread_id = await world.defect_thread(wang)
    by_body = post(wang, thread_id, "@lena.fischer, please look. cc @Marcus.Reed. not @nobody.here, not @gil.workshop")
    explicit = post(wang, thread_id, "@diego.ruiz is not meant", mentions=["lucia.martin"])
    none_at_all = post(wang, thread_id, "@diego.ruiz is not meant either", mentions=[])
    await world.push(wang, by_body, explicit, none_at_all)

    page = await history(world, "wang.lei", thread_id)
    assert [m["mentions"] for m in reversed(page["items"])] == [["lena.fischer", "marcus.reed"], ["lucia.martin"], []]
    assert await world.participants(thread_id) == {
        "wang.lei": "reporter",
        "qa.manager": "supervisor",
        "lena.fischer": "mentioned",
        "marcus.reed": "mentioned",
        "lucia.martin": "mentioned",
    }
    assert (await history(world, "marcus.reed", thread_id))["items"][-1]["body"].startswith("@lena.fischer")


async def test_staff_who_read_a_thread_without_being_in_it_join_it_by_posting(world: World) -> None:
    wang, admin = await world.device("wang.lei"), await world.device("admin")
    _, thread_id = await world.defect_thread(wang)
    await world.push(admin, post(admin, thread_id, "admins read every thread"))
    await world.push(wang, post(wang, thread_id, "the reporter is in it already"))
    assert await world.participants(thread_id) == {
        "wang.lei": "reporter",
        "qa.manager": "supervisor",
        "admin": "author",
    }


async def test_customers_mention_nobody(world: World) -> None:
    thread_id = await world.case_thread()
    gil = await world.device("gil.workshop")
    [result] = await world.push(gil, post(gil, thread_id, "@kenji.sato @lucia.martin help", visibility="customer"))
    assert result["status"] == "applied", result
    assert (await history(world, "gil.workshop", thread_id))["items"][0]["mentions"] == []
    assert await world.participants(thread_id) == {"lucia.martin": "account_manager", "gil.workshop": "customer"}


async def test_the_mentions_of_a_run_of_posts_are_looked_up_in_one_query(world: World) -> None:
    wang = await world.device("wang.lei")
    _, thread_id = await world.defect_thread(wang)
    lookups: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "username IN" in statement:
            lookups.append(statement)

    engine = world.api.app.state.runtime.db.writer.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await world.push(wang, *(post(wang, thread_id, f"@{name} look") for name in ("lena.fischer", "marcus.reed")))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(lookups) == 1
    assert {"lena.fischer", "marcus.reed"} <= set(await world.participants(thread_id))


# My threads


async def test_my_threads_are_ordered_by_last_activity_and_page_by_cursor(world: World) -> None:
    wang = await world.device("wang.lei")
    defects, threads = zip(*[await world.defect_thread(wang) for _ in range(5)], strict=True)
    first, second, third, quiet, quieter = threads
    for thread_id in (first, second, third):
        await world.push(wang, post(wang, thread_id, "@kenji.sato have a look"))
    async with world.runtime.unit_of_work(actor="test") as session:
        for defect_id in defects[3:]:
            await join_thread(session, SubjectType.DEFECT, defect_id, [(world.ids["kenji.sato"], "account_manager")])
    await world.push(wang, post(wang, first, "news on the first"))

    def of_these(ids: list[str]) -> list[str]:
        return [thread_id for thread_id in ids if thread_id in threads]

    by_activity = [first, third, second, quieter, quiet]
    for limit in (1, 2, 50):
        assert of_these(await mine(world, "kenji.sato", limit=limit)) == by_activity
    plain = await world.get("kenji.sato", "/threads", limit=500)
    assert of_these([item["thread"]["id"] for item in plain["items"]]) == list(threads)  # creation order


async def test_my_threads_leave_out_threads_i_only_may_read(world: World) -> None:
    case_thread = await world.case_thread()
    assert (await summary(world, "qa.manager", case_thread))["thread"]["id"] == case_thread
    assert case_thread not in await mine(world, "qa.manager", subject_type="case")
    assert (await summary(world, "admin", case_thread))["thread"]["id"] == case_thread
    assert case_thread not in await mine(world, "admin", subject_type="case")
    assert case_thread in await mine(world, "lucia.martin", subject_type="case")


async def test_a_customers_activity_is_the_newest_message_they_may_see(world: World) -> None:
    older, newer = await world.case_thread(), await world.case_thread()
    lucia = await world.device("lucia.martin")
    await world.push(lucia, post(lucia, older, "Hello", visibility="customer"))
    await world.push(lucia, post(lucia, newer, "Hello", visibility="customer"))
    await world.push(lucia, post(lucia, older, "internal note"))

    def of_these(ids: list[str]) -> list[str]:
        return [thread_id for thread_id in ids if thread_id in {older, newer}]

    assert of_these(await mine(world, "lucia.martin", subject_type="case")) == [older, newer]
    assert of_these(await mine(world, "gil.workshop", subject_type="case")) == [newer, older]
    listed = (await world.get("gil.workshop", "/threads", mine="true", subject_type="case"))["items"]
    last = {item["thread"]["id"]: item["last_message"] for item in listed}
    assert (last[older]["body"], last[newer]["body"]) == ("Hello", "Hello")


async def test_my_threads_refuse_a_cursor_of_the_plain_listing(world: World) -> None:
    wang = await world.device("wang.lei")
    plain = await world.get("wang.lei", "/threads", limit=1)
    response = await world.api.get(
        "/api/v1/threads", headers=wang.headers, params={"mine": "true", "cursor": plain["next_cursor"]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


# Unread counts


async def test_unread_counts_others_visible_living_messages_after_read_seq(world: World) -> None:
    wang, lena = await world.device("wang.lei"), await world.device("lena.fischer")
    _, thread_id = await world.defect_thread(wang)
    first, second = post(wang, thread_id, "@lena.fischer one"), post(wang, thread_id, "two")
    await world.push(wang, first, second)

    async def unread(username: str) -> tuple[int, int]:
        found = await summary(world, username, thread_id)
        return found["unread_count"], found["read_seq"]

    assert await unread("lena.fischer") == (2, 0)
    assert await unread("wang.lei") == (0, 0)  # his own messages
    await world.push(lena, lena.mutation("thread.read", {"thread_id": thread_id, "up_to_seq": 1}))
    assert await unread("lena.fischer") == (1, 1)
    await world.push(wang, wang.mutation("message.delete", {"id": second["args"]["id"]}))
    assert await unread("lena.fischer") == (0, 1)  # the tombstone
    await world.push(lena, post(lena, thread_id, "three"))
    assert await unread("lena.fischer") == (0, 1)
    assert await unread("wang.lei") == (1, 0)
    await world.push(wang, wang.mutation("thread.read", {"thread_id": thread_id, "up_to_seq": 99}))
    await world.push(wang, wang.mutation("thread.read", {"thread_id": thread_id, "up_to_seq": 1}))
    assert await unread("wang.lei") == (0, 3)  # up to the last message, and never back
    mine_listed = await world.get("lena.fischer", "/threads", mine="true", limit=1)
    assert mine_listed["items"][0]["thread"]["id"] == thread_id
    assert mine_listed["items"][0]["last_message"]["body"] == "three"


async def test_a_customers_unread_count_ignores_internal_messages(world: World) -> None:
    thread_id = await world.case_thread()
    lucia = await world.device("lucia.martin")
    gil = await world.device("gil.workshop")
    await world.push(
        lucia,
        post(lucia, thread_id, "internal: check lot 018"),
        post(lucia, thread_id, "We are on it.", visibility="customer"),
        post(lucia, thread_id, "internal: escalate"),
    )
    gil_view = await summary(world, "gil.workshop", thread_id)
    assert (gil_view["unread_count"], gil_view["last_message"]["body"]) == (1, "We are on it.")
    assert (await summary(world, "lucia.martin", thread_id))["unread_count"] == 0
    await world.push(gil, gil.mutation("thread.read", {"thread_id": thread_id, "up_to_seq": 2}))
    assert (await summary(world, "gil.workshop", thread_id))["unread_count"] == 0
