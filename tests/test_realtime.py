"""The live tail over real WebSockets against a real server process (see shared/design/realtime.md).

Litestar's in-process WebSocket test client does not deliver channel messages (litestar
issue #4200), so every test here talks to `loopline serve` on a free port — except those
of one connection's send queue, which need no server: a stand-in socket shows what it sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import update
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from loopline.app import create_app
from loopline.core.access import Principal, Role
from loopline.core.db import Database, table_of
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.realtime.connection import Connection
from loopline.realtime.frames import CLOSE_PROTOCOL_ERROR, CLOSE_TOO_SLOW
from loopline.realtime.models import WsTicket
from loopline.realtime.sessions import FrameListener
from loopline.threads.service import add_participants_to_threads
from tests.live_helpers import Live, StalledSocket, User, new_id
from tests.support import demo_world, free_port, running_server

pytestmark = pytest.mark.timeout(120)

ALLOWED_ORIGIN = "https://loopline.example"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    with demo_world(tmp_path_factory.mktemp("live")) as settings, running_server(settings) as base:
        yield base, settings


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that pauses before a socket's first frame, gives up on slow sockets quickly and
    accepts sockets from one web origin only (clients that send no Origin, like the tests', pass)."""
    with (
        demo_world(tmp_path_factory.mktemp("tight")) as settings,
        running_server(
            settings,
            ("LOOPLINE_FAULT_INJECTION", "ws_pause_before_first_frame"),
            ("LOOPLINE_WS_QUEUE_LIMIT", "8"),
            ("LOOPLINE_WS_SEND_TIMEOUT_S", "2"),
            ("LOOPLINE_WS_ALLOWED_ORIGINS", ALLOWED_ORIGIN),
        ) as base,
    ):
        yield base


@pytest.fixture
async def http(live_server: tuple[str, Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server[0], timeout=30) as client:
        yield client


async def thread_with(http: httpx.AsyncClient, author: User, *usernames: str) -> str:
    """A new defect thread of `author`'s, with the mentioned (staff) users joined."""
    thread_id = await author.new_thread()
    await author.post(thread_id, "joining you in", mentions=list(usernames))
    return thread_id


async def customer_joins(settings: Settings, thread_id: str, customer: User) -> None:
    """Customers join the threads of their cases; no endpoint opens one yet, so arrange it directly."""
    me = await customer.user_id()
    runtime = Runtime(settings=settings, db=Database.open(settings))
    async with runtime.unit_of_work(actor="test", command="test.join") as session:
        await add_participants_to_threads(session, [(thread_id, me, "customer")])
    await runtime.db.close()


async def test_a_message_reaches_every_participant_and_an_internal_one_never_a_customer(
    live_server: tuple[str, Settings], http: httpx.AsyncClient
) -> None:
    base, settings = live_server
    wang, lena, gil = [await User.sign_in(http, name) for name in ("wang.lei", "lena.fischer", "gil.workshop")]
    thread_id = await thread_with(http, wang, "lena.fischer")
    await customer_joins(settings, thread_id, gil)
    rep, customer = await Live.open(base, lena), await Live.open(base, gil)
    internal = await wang.post(thread_id, "the coating is thin at the edge")
    public = await wang.post(thread_id, "we are checking your lot", visibility="customer")
    await rep.until(lambda live: public in live.message_ids())
    await customer.until(lambda live: public in live.message_ids())
    assert internal in rep.message_ids()
    # The customer's frames are in commit order, so the internal message would have come first.
    assert internal not in customer.message_ids()
    assert {m["visibility"] for m in customer.messages()} == {"customer"}
    await rep.close()
    await customer.close()


async def test_a_socket_killed_mid_burst_resumes_from_its_cursor_with_every_message_once_in_order(
    live_server: tuple[str, Settings], http: httpx.AsyncClient
) -> None:
    base, _ = live_server
    wang, lena = await User.sign_in(http, "wang.lei"), await User.sign_in(http, "lena.fischer")
    thread_id = await thread_with(http, wang, "lena.fischer")
    first = await Live.open(base, lena)
    await first.until(lambda live: live.cursor is not None)
    already = set(first.message_ids())

    async def burst() -> list[str]:
        posted: list[str] = []
        for batch in range(20):
            ids = [f"{thread_id[:8]}-{batch}-{n}" for n in range(10)]
            await wang.push(*[("message.post", {"id": i, "thread_id": thread_id, "body": f"reading {i}"}) for i in ids])
            posted.extend(ids)
        return posted

    posting = asyncio.create_task(burst())
    await first.until(lambda live: len(set(live.message_ids()) - already) >= 60)
    first.socket.transport.abort()  # no close frame: as if the tablet lost its network
    second = await Live.open(base, lena, client_id=first.client_id, cursor=first.cursor)
    posted = await posting
    await second.until(lambda live: set(posted) <= already | set(first.message_ids()) | set(live.message_ids()))
    received = [m for m in first.messages() + second.messages() if m["id"] in set(posted)]
    assert sorted(m["id"] for m in received) == sorted(posted)  # each exactly once
    assert [m["thread_seq"] for m in received] == sorted(m["thread_seq"] for m in received)
    await second.close()


async def test_a_message_committed_between_hello_and_the_first_frame_is_delivered(tight_server: str) -> None:
    async with httpx.AsyncClient(base_url=tight_server, timeout=30) as http:
        wang, lena = await User.sign_in(http, "wang.lei"), await User.sign_in(http, "lena.fischer")
        thread_id = await thread_with(http, wang, "lena.fischer")
        live = await Live.open(tight_server, lena)
        # The server has subscribed and read the log, then waits two seconds before its first frame.
        await asyncio.sleep(0.3)
        racing = await wang.post(thread_id, "committed inside the window")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(live.socket.recv(), 0.05)  # still inside the window: nothing sent yet
        await live.until(lambda live: racing in live.message_ids())
        assert live.message_ids().count(racing) == 1
        await live.close()


async def test_a_socket_that_stops_reading_is_closed_with_4008_and_the_others_get_everything(
    tight_server: str,
) -> None:
    async with httpx.AsyncClient(base_url=tight_server, timeout=30) as http:
        wang = await User.sign_in(http, "wang.lei")
        lena, marcus = await User.sign_in(http, "lena.fischer"), await User.sign_in(http, "marcus.reed")
        thread_id = await thread_with(http, wang, "lena.fischer", "marcus.reed")
        fast = await Live.open(tight_server, lena)
        stalled = StalledSocket(tight_server, await marcus.ticket(), client_id=new_id())
        await fast.until(lambda live: live.cursor is not None)
        big = "x" * 16_000
        posted: list[str] = []
        for batch in range(100):
            ids = [f"{thread_id[:8]}-{batch}-{n}" for n in range(5)]
            await wang.push(*[("message.post", {"id": i, "thread_id": thread_id, "body": big}) for i in ids])
            posted.extend(ids)
            # The healthy tablet keeps up (it reads each burst before the next), however busy this machine is;
            # only the stalled one falls behind.
            await fast.until(lambda live: set(posted) <= set(live.message_ids()), timeout_s=60)
        assert await asyncio.to_thread(stalled.close_code) == 4008
        await fast.close()


@pytest.mark.parametrize("problem", ["missing", "forged", "reused", "expired", "signed_out"])
async def test_a_bad_ticket_refuses_the_upgrade(
    live_server: tuple[str, Settings], http: httpx.AsyncClient, problem: str
) -> None:
    base, settings = live_server
    jana = await User.sign_in(http, "jana.novak")
    ticket = await jana.ticket()
    if problem == "reused":
        used = await websockets.connect(f"{base.replace('http', 'ws')}/api/v1/ws?ticket={ticket}")
        await used.close()
    elif problem == "expired":
        runtime = Runtime(settings=settings, db=Database.open(settings))
        tickets = table_of(WsTicket)
        async with runtime.unit_of_work(actor="test") as session:
            await session.execute(update(tickets).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        await runtime.db.close()
    elif problem == "signed_out":
        await http.post("/api/v1/auth/logout", headers=jana.headers)
    query = {"missing": "", "forged": "?ticket=forged-ticket-0123456789"}.get(problem, f"?ticket={ticket}")
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{base.replace('http', 'ws')}/api/v1/ws{query}")
    assert refused.value.response.status_code == 403


async def test_a_foreign_origin_refuses_the_upgrade_and_the_allowed_one_connects(tight_server: str) -> None:
    async with httpx.AsyncClient(base_url=tight_server, timeout=30) as http:
        lena = await User.sign_in(http, "lena.fischer")
        url = tight_server.replace("http", "ws") + "/api/v1/ws?ticket="
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url + await lena.ticket(), origin=Origin("https://elsewhere.example"))
        assert refused.value.response.status_code == 403
        allowed = await websockets.connect(url + await lena.ticket(), origin=Origin(ALLOWED_ORIGIN))
        await allowed.close()


def saw(live: Live, **expected: Any) -> bool:
    return any(all(signal.get(k) == v for k, v in expected.items()) for signal in live.signals)


async def test_typing_reaches_staff_in_the_thread_and_presence_follows_the_socket(
    live_server: tuple[str, Settings], http: httpx.AsyncClient
) -> None:
    base, settings = live_server
    wang, rep_user, gil = [await User.sign_in(http, name) for name in ("wang.lei", "kenji.sato", "gil.workshop")]
    thread_id = await thread_with(http, wang, "kenji.sato")
    await customer_joins(settings, thread_id, gil)
    watcher, customer = await Live.open(base, wang), await Live.open(base, gil)
    for live in (watcher, customer):
        await live.until(lambda live: live.cursor is not None)
    rep = await Live.open(base, rep_user)
    await rep.until(lambda live: live.cursor is not None)

    rep_id = await rep_user.user_id()
    await watcher.until(lambda live: saw(live, type="presence", user_id=rep_id, state="active"))
    await rep.send(type="typing", thread_id=thread_id, state="start")
    await watcher.until(lambda live: saw(live, type="typing", user_id=rep_id, state="start"))
    await rep.send(type="presence", state="idle")
    await watcher.until(lambda live: saw(live, type="presence", user_id=rep_id, state="idle"))
    # The customer heard of neither: staff typing and presence stay inside the company.
    await customer.send(type="typing", thread_id=thread_id, state="start")
    await rep.until(lambda live: saw(live, type="typing", state="start"))
    assert not saw(customer, user_id=rep_id)
    # A socket that opens now is told who is present among the people it shares threads with.
    late = await Live.open(base, wang)
    await late.until(lambda live: saw(live, type="presence", user_id=rep_id, state="idle"))
    for live in (watcher, customer, rep, late):
        await live.close()


@pytest.fixture(scope="module")
def plain_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with demo_world(tmp_path_factory.mktemp("plain")) as settings:
        yield settings


async def test_under_a_server_without_the_hand_over_the_handler_serves_the_socket_itself(
    plain_world: Settings,
) -> None:
    """Any ASGI server: here uvicorn's own WebSocket protocol, which offers no `LIVE_SOCKET`."""
    app = create_app(plain_world)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, ws="websockets-sansio", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the server did not start"
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            wang, lena = await User.sign_in(http, "wang.lei"), await User.sign_in(http, "lena.fischer")
            thread_id = await thread_with(http, wang, "lena.fischer")
            watcher, rep = await Live.open(base, wang), await Live.open(base, lena)
            for live in (watcher, rep):
                await live.until(lambda live: live.cursor is not None)
            posted = await wang.post(thread_id, "served without the hand-over")
            await rep.until(lambda live: posted in live.message_ids())
            await rep.send(type="typing", thread_id=thread_id, state="start")
            await watcher.until(lambda live: saw(live, type="typing", state="start"))
            await rep.send(type="no such frame")
            await rep.until(lambda live: any(s.get("error", {}).get("code") == "bad_frame" for s in live.signals))
            hub = app.state.hub
            assert len(hub.connections()) == 2
            await rep.close()
            for _ in range(250):
                if len(hub.connections()) == 1:
                    break
                await asyncio.sleep(0.02)
            assert len(hub.connections()) == 1
            await watcher.close()
    finally:
        server.should_exit = True
        await serving


class StandInSocket:
    """What a connection sends and how it closes; `gate` cleared makes every send stall.

    With `nowait`, it writes at once, as `loopline serve`'s sockets do, while `gate` is set
    and `nowait_room` holds."""

    def __init__(self, *, nowait: bool = False) -> None:
        self.sent: list[bytes] = []
        self.written_at_once: list[bytes] = []
        self.closed_with: tuple[int, str] | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False
        self.nowait_room = True
        self.nowait = nowait

    def send_nowait(self, data: bytes) -> bool:
        if not (self.nowait and self.gate.is_set() and self.nowait_room):
            return False
        self.sent.append(data)
        self.written_at_once.append(data)
        return True

    async def send_text(self, data: bytes) -> None:
        await self.gate.wait()
        if self.fail:
            raise OSError("the peer went away")
        self.sent.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def connection_on(socket: StandInSocket, *, queue_limit: int = 4, send_timeout_s: float = 5.0) -> Connection:
    principal = Principal("u1", "wang.lei", Role.INSPECTOR, "s1", frozenset(), frozenset())
    return Connection(
        socket=cast(Any, socket),
        principal=principal,
        client_id="c1",
        schema_version=1,
        epoch="",
        queue_limit=queue_limit,
        send_timeout_s=send_timeout_s,
    )


async def send_pages(connection: Connection, count: int) -> None:
    for n in range(count):
        await connection.send_paced(b"%d" % n)


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_go_out_in_order_and_an_idle_connection_keeps_no_sender() -> None:
    socket = StandInSocket()
    connection = connection_on(socket)
    for n in range(3):
        connection.enqueue(b"%d" % n)
    await settled()
    connection.enqueue(b"3")
    await settled()
    assert socket.sent == [b"0", b"1", b"2", b"3"]
    assert connection._sender is None


async def test_frames_are_written_at_once_while_the_socket_takes_them_and_queued_behind_a_waiting_one() -> None:
    socket = StandInSocket(nowait=True)
    connection = connection_on(socket)
    connection.enqueue(b"0")
    assert socket.sent == [b"0"]  # written before the event loop ran once: no sender task
    assert connection._sender is None
    socket.nowait_room = False  # the transport is above its high-water mark
    connection.enqueue(b"1")
    socket.nowait_room = True
    connection.enqueue(b"2")  # must not overtake the queued one
    assert socket.sent == [b"0"]
    await settled()
    connection.enqueue(b"3")
    assert socket.sent == [b"0", b"1", b"2", b"3"]
    assert socket.written_at_once == [b"0", b"3"]
    assert connection._sender is None


async def test_a_full_queue_closes_the_socket_with_4008_and_drops_what_waits() -> None:
    socket = StandInSocket()
    socket.gate.clear()
    connection = connection_on(socket, queue_limit=2)
    connection.enqueue(b"in flight")
    await settled()
    connection.enqueue(b"queued")
    connection.enqueue(b"queued")
    await settled()
    assert socket.closed_with is None
    connection.enqueue(b"one too many")
    await settled()
    assert socket.closed_with == (CLOSE_TOO_SLOW, "too slow")
    socket.gate.set()
    await settled()
    assert socket.sent == []


async def test_a_send_that_stalls_past_the_timeout_closes_with_4008() -> None:
    socket = StandInSocket()
    socket.gate.clear()
    connection = connection_on(socket, send_timeout_s=0.05)
    connection.enqueue(b"stuck")
    await asyncio.sleep(0.2)
    assert socket.closed_with == (CLOSE_TOO_SLOW, "too slow")
    assert connection.closed
    assert connection._sender is None


async def catching_up_on_a_stalled_socket(
    queue_limit: int, pages: int
) -> tuple[StandInSocket, Connection, asyncio.Task[None]]:
    """A connection whose socket takes nothing, and a catch-up of `pages` frames under way on it."""
    socket = StandInSocket()
    socket.gate.clear()
    connection = connection_on(socket, queue_limit=queue_limit)
    catching_up = asyncio.create_task(send_pages(connection, pages))
    await settled()
    return socket, connection, catching_up


async def test_catch_up_waits_for_room_instead_of_closing_and_keeps_the_order() -> None:
    socket, _, pages = await catching_up_on_a_stalled_socket(queue_limit=2, pages=6)
    assert not pages.done()
    assert socket.closed_with is None
    socket.gate.set()
    await asyncio.wait_for(pages, 1)
    await settled()
    assert socket.sent == [b"%d" % n for n in range(6)]
    assert socket.closed_with is None


async def test_closing_releases_catch_up_waiting_for_room() -> None:
    socket, connection, pages = await catching_up_on_a_stalled_socket(queue_limit=1, pages=4)
    connection.close(1000, "")
    await asyncio.wait_for(pages, 1)
    await settled()
    assert socket.closed_with == (1000, "")
    assert socket.sent == []


async def test_a_frame_that_fails_in_handling_closes_its_socket_and_leaves_the_server_reading() -> None:
    class FailingHub:
        def acked(self, connection: Connection, seq: int) -> None:
            raise RuntimeError("a defect")

    socket = StandInSocket()
    connection = connection_on(socket)
    listener = FrameListener(cast(Any, FailingHub()), connection)
    listener.received(json.dumps({"type": "ack", "cursor": connection.cursor()}))  # must not raise
    await settled()
    assert socket.closed_with == (CLOSE_PROTOCOL_ERROR, "internal error")


async def test_after_a_failed_send_nothing_more_is_tried() -> None:
    socket = StandInSocket()
    socket.fail = True
    connection = connection_on(socket)
    connection.enqueue(b"lost")
    await settled()
    socket.fail = False
    connection.enqueue(b"never")
    await settled()
    assert socket.sent == []
    assert connection.closed
    assert connection._sender is None
