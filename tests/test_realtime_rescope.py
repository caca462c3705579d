"""A live socket whose user joins threads: what it is sent equals what a fresh pull gives.

Joining a thread created since the server's log tail began is served from the tail
(`LogTail.state_of_new_threads`); joining an older thread goes through the pull service.
The tail's own rules are tested on it directly, the two paths against a real server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from loopline.core.db import Database
from loopline.core.settings import Settings
from loopline.core.uow import CommittedChange
from loopline.demo.loader import load_demo
from loopline.realtime.tail import LogTail, TailRow
from loopline.syncing.pull import CHAT_HISTORY
from tests.live_helpers import Live, User, new_id
from tests.support import demo_world, running_server

pytestmark = pytest.mark.timeout(120)

ReadModel = dict[tuple[str, str], tuple[int, dict[str, Any]]]


def applied(changes: list[dict[str, Any]], model: ReadModel | None = None) -> ReadModel:
    """A device's read model after applying `changes` in order (as the sync engine does)."""
    model = {} if model is None else model
    for change in changes:
        key = (change["entity"], change["id"])
        if change["op"] == "delete":
            model.pop(key, None)
        elif key not in model or model[key][0] <= change["version"]:
            model[key] = (change["version"], change["data"])
    return model


async def fresh_pull(user: User) -> ReadModel:
    """The user's state as a device that syncs from nothing sees it."""
    model: ReadModel = {}
    client_id, cursor = new_id(), None
    while True:
        response = await user.http.post(
            "/api/v1/sync/pull",
            headers=user.headers,
            json={"client_id": client_id, "schema_version": 1, "cursor": cursor, "limit": 500},
        )
        response.raise_for_status()
        page = response.json()
        applied(page["changes"], model)
        cursor = page["cursor"]
        if not page["has_more"]:
            return model


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_world(tmp_path_factory.mktemp("rescope")) as settings, running_server(settings) as base:
        yield base


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


async def synced(base: str, user: User) -> Live:
    """A socket past its initial sync."""
    live = await Live.open(base, user)
    while len((await live.frame())["changes"]) == 500:
        pass
    return live


async def test_a_socket_that_joins_a_new_thread_holds_what_a_fresh_pull_holds(
    live_server: str, http: httpx.AsyncClient
) -> None:
    wang, lena = await User.sign_in(http, "wang.lei"), await User.sign_in(http, "lena.fischer")
    rep = await synced(live_server, lena)
    thread_id = await wang.new_thread()
    before = await wang.post(thread_id, "edge of the part is thin")
    await wang.post(thread_id, "@lena.fischer your customer may be affected", mentions=["lena.fischer"])
    last = await wang.post(thread_id, "we are checking the lot", visibility="customer")
    await rep.until(lambda live: last in live.message_ids())

    assert before in rep.message_ids(), "the thread's history before the join"
    assert applied(rep.changes) == await fresh_pull(lena)
    # The socket's cursor names the scopes it was moved to: a resume continues from it, no reset.
    await rep.close()
    resumed = await Live.open(live_server, lena, client_id=rep.client_id, cursor=rep.cursor)
    after = await wang.post(thread_id, "lot is on hold")
    frame = await resumed.frame()
    assert frame["type"] == "changes"
    assert [(c["entity"], c["id"]) for c in frame["changes"]] == [("message", after)]
    await resumed.close()


@pytest.fixture(scope="module")
def played_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server started on the played demo: NC-0142's thread is older than its tail."""
    with demo_world(tmp_path_factory.mktemp("played"), loader=load_demo) as settings, running_server(settings) as base:
        yield base


async def test_a_socket_that_joins_a_thread_older_than_the_tail_holds_what_a_fresh_pull_holds(
    played_server: str,
) -> None:
    async with httpx.AsyncClient(base_url=played_server, timeout=30) as http:
        manager, kenji = await User.sign_in(http, "qa.manager"), await User.sign_in(http, "kenji.sato")
        rep = await synced(played_server, kenji)
        nc_thread = await nc_thread_id(manager)
        hello = await manager.post(nc_thread, "@kenji.sato joining you in", mentions=["kenji.sato"])
        await rep.until(lambda live: hello in live.message_ids())
        assert len(rep.messages()) > 1, "the thread's history before the join"
        assert applied(rep.changes) == await fresh_pull(kenji)
        await rep.close()


async def nc_thread_id(user: User) -> str:
    threads = await user.http.get("/api/v1/threads", headers=user.headers, params={"subject_type": "nonconformance"})
    threads.raise_for_status()
    thread_id: str = threads.json()["items"][0]["thread"]["id"]
    return thread_id


# -- the tail's rules -------------------------------------------------------------------


def row(seq: int, scope: str, entity: str, entity_id: str, *, op: str = "put", version: int = 1) -> CommittedChange:
    return CommittedChange(seq, scope, entity, entity_id, op, version, None if op == "delete" else {"id": entity_id})


def seqs(rows: list[TailRow] | None) -> list[int] | None:
    return None if rows is None else [r.seq for r in rows]


@pytest.fixture
def tail(tmp_path_factory: pytest.TempPathFactory) -> LogTail:
    settings = Settings.from_env(env={}, data_dir=tmp_path_factory.mktemp("tail"))
    # The tail reads the database only to fetch; these tests feed it committed rows.
    return LogTail(Database.open(settings), capacity=50)


def test_the_tail_sends_a_new_threads_newest_puts_up_to_the_seq(tail: LogTail) -> None:
    assert tail.extend([row(1, "plant:p", "defect", "d1")]) is not None
    tail.extend(
        [
            row(2, "thread:t", "thread", "t"),
            row(3, "thread:t:customer", "thread", "t"),
            row(4, "thread:t", "thread_participant", "p1"),
            row(5, "thread:t", "message", "m1"),
            row(6, "thread:t", "message", "m1", version=2),
            row(7, "thread:t", "message", "m2"),
            row(8, "thread:t", "message", "m2", op="delete", version=2),
            row(9, "thread:t", "message", "m3"),
        ]
    )
    assert seqs(tail.state_of_new_threads(frozenset({"thread:t"}), up_to=8)) == [2, 4, 6]
    both = frozenset({"thread:t", "thread:t:customer"})
    assert seqs(tail.state_of_new_threads(both, up_to=9)) == [3, 4, 6, 9]


def test_the_tail_declines_what_it_does_not_hold_whole(tail: LogTail) -> None:
    tail.extend([row(1, "thread:t", "thread", "t"), row(2, "thread:t", "thread", "t", version=2)])
    tail.extend([row(3, "thread:u", "thread", "u", version=2)])  # created before the tail began
    assert tail.state_of_new_threads(frozenset({"thread:u"}), up_to=3) is None
    assert tail.state_of_new_threads(frozenset({"account:a"}), up_to=3) is None
    assert seqs(tail.state_of_new_threads(frozenset({"thread:t"}), up_to=3)) == [2]
    # Once the thread's first row leaves the tail, so may its other rows.
    tail.extend([row(seq, "plant:p", "defect", f"d{seq}") for seq in range(4, 60)])
    assert tail.state_of_new_threads(frozenset({"thread:t"}), up_to=59) is None


def test_the_tail_declines_a_thread_with_more_messages_than_a_pull_sends(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = Settings.from_env(env={}, data_dir=tmp_path_factory.mktemp("chatty"))
    tail = LogTail(Database.open(settings), capacity=CHAT_HISTORY + 10)
    messages = [row(seq, "thread:t", "message", f"m{seq}") for seq in range(2, CHAT_HISTORY + 2)]
    tail.extend([row(1, "thread:t", "thread", "t"), *messages])
    assert len(tail.state_of_new_threads(frozenset({"thread:t"}), up_to=CHAT_HISTORY + 1) or []) == CHAT_HISTORY + 1
    tail.extend([row(CHAT_HISTORY + 2, "thread:t", "message", "one-more")])
    assert tail.state_of_new_threads(frozenset({"thread:t"}), up_to=CHAT_HISTORY + 2) is None


def test_rows_taken_from_the_tail_stay_valid_while_it_grows(tail: LogTail) -> None:
    """Catch-up awaits its sends between taking rows and sending the last of them."""
    tail.extend([row(1, "plant:p", "defect", "d1")])
    taken = tail.after(0)
    tail.extend([row(2, "plant:p", "defect", "d2")])
    assert seqs(taken) == [1]
