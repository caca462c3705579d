"""The live socket's uvicorn protocol (realtime/ws_protocol.py) behaves as uvicorn's own.

A real uvicorn server in this process serves a small ASGI app through `LiveSocketProtocol`,
so the tests can reach the protocol objects; real clients talk to it over TCP. The
Loopline tests of the live tail (test_realtime*.py) run through it too, in `loopline serve`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
import websockets
from click.testing import CliRunner
from uvicorn.protocols.utils import ClientDisconnected
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from loopline import cli
from loopline.realtime.ws_protocol import LIVE_SOCKET, LiveSocketProtocol, _Inbox, _Writable
from tests.support import free_port

pytestmark = pytest.mark.timeout(60)


@dataclass
class Listener:
    """Takes a handed-over socket: answers `heard <text>` at once, closes with 4002 on `close`."""

    socket: LiveSocketProtocol
    heard: list[str] = field(default_factory=list)
    disconnects: int = 0

    def received(self, text: str) -> None:
        self.heard.append(text)
        if text == "close":
            asyncio.get_running_loop().create_task(self.socket.close(4002, "listener closed"))
        else:
            assert self.socket.send_nowait(f"heard {text}".encode())

    def disconnected(self) -> None:
        self.disconnects += 1


@dataclass
class EchoApp:
    """Echoes text; `close` closes with 4001, `header` answers the `x-probe` request header,
    `send-later` sends `later` once `release` is set, `hand-over` hands the socket over to a
    `Listener` and returns (`hand-over-later`: once `release` is set). Records how each
    socket ended."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    disconnects: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message["code"])
                return
            text = message["text"]
            try:
                if text == "close":
                    await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
                elif text == "header":
                    await send({"type": "websocket.send", "text": dict(scope["headers"])[b"x-probe"].decode()})
                elif text == "send-later":
                    await self.release.wait()
                    await send({"type": "websocket.send", "text": "later"})
                elif text.startswith("hand-over"):
                    if text == "hand-over-later":
                        await self.release.wait()
                    socket: LiveSocketProtocol = scope["extensions"][LIVE_SOCKET]["socket"]
                    self.listeners.append(Listener(socket))
                    socket.hand_over(self.listeners[-1])
                    await send({"type": "websocket.send", "text": "handed over"})
                    return
                else:
                    await send({"type": "websocket.send", "text": f"echo {text}"})
            except Exception as exc:  # the peer went away while the app sent
                self.failures.append(type(exc).__name__)
                return


@dataclass
class Served:
    app: EchoApp
    server: uvicorn.Server
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/live"

    def protocols(self) -> list[LiveSocketProtocol]:
        return [p for p in self.server.server_state.connections if isinstance(p, LiveSocketProtocol)]

    async def only_protocol(self) -> LiveSocketProtocol:
        for _ in range(100):
            if len(found := self.protocols()) == 1:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected one live socket, found {len(self.protocols())}")


@contextlib.asynccontextmanager
async def serving(**config: Any) -> AsyncIterator[Served]:
    app = EchoApp()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, port=port, ws=LiveSocketProtocol, lifespan="off", log_level="warning", **config)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.02)
    try:
        yield Served(app, server, port)
    finally:
        server.should_exit = True
        await task


async def eventually(condition: Any, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def test_a_socket_is_served_end_to_end_and_keeps_no_handshake_after_accepting() -> None:
    async with (
        serving(ws_per_message_deflate=False) as served,
        websockets.connect(served.url, additional_headers={"X-Probe": "still here"}) as client,
    ):
        await client.send("hello")
        assert await client.recv() == "echo hello"
        protocol = await served.only_protocol()
        # The handshake is let go once accepted, and nothing went into an instance dict...
        assert not hasattr(protocol, "request")
        assert not hasattr(protocol, "response")
        assert vars(protocol) == {}
        # ...but the app still reads the request's headers from its scope.
        await client.send("header")
        assert await client.recv() == "still here"
        await client.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")  # type: ignore[union-attr]
    await eventually(lambda: served.app.disconnects == [4001])


async def test_a_client_close_reaches_the_app_with_its_code() -> None:
    async with serving() as served:
        async with websockets.connect(served.url) as client:
            await client.send("one")
            assert await client.recv() == "echo one"
            await client.close(code=4002, reason="leaving")
        await eventually(lambda: served.app.disconnects == [4002])
        await eventually(lambda: served.protocols() == [])


PING, CLOSE = 0x9, 0x8


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each frame in `data`: short, unmasked frames, as a server sends pings and closes."""
    frames = []
    while data:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        assert length < 126
        frames.append((opcode, data[2 : 2 + length]))
        data = data[2 + length :]
    return frames


async def test_a_peer_that_stops_answering_pings_is_dropped_and_one_that_answers_stays() -> None:
    async with (
        serving(ws_ping_interval=0.1, ws_ping_timeout=0.3) as served,
        websockets.connect(served.url, ping_interval=None) as answering,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0]
        # This peer never answers: pings arrive, then a close with 1011, then the server hangs up.
        received = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        frames = server_frames(received)
        assert frames[0][0] == PING
        assert frames[-1][0] == CLOSE
        assert struct.unpack("!H", frames[-1][1][:2]) == (1011,)
        await eventually(lambda: len(served.app.disconnects) == 1)
        # The client library answers the pings: after many intervals it is still served.
        await answering.send("still")
        assert await answering.recv() == "echo still"
        assert len(served.protocols()) == 1


async def echoed_once(served: Served, client: websockets.ClientConnection) -> LiveSocketProtocol:
    """The server's protocol of `client`, once a first message went both ways (the socket is open)."""
    await client.send("ping")
    assert await client.recv() == "echo ping"
    return await served.only_protocol()


async def test_a_send_waits_while_the_transport_is_full_and_goes_on_when_it_drains() -> None:
    async with serving() as served, websockets.connect(served.url) as client:
        protocol = await echoed_once(served, client)
        protocol.pause_writing()  # what the transport calls above its high-water mark
        served.app.release.set()
        await client.send("send-later")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.recv(), timeout=0.3)
        protocol.resume_writing()
        assert await asyncio.wait_for(client.recv(), timeout=5) == "later"


async def test_the_app_writes_at_once_only_while_the_socket_is_open_and_takes_writes() -> None:
    async with serving() as served:
        client = await websockets.connect(served.url)
        protocol = await echoed_once(served, client)
        send_now = protocol.send_nowait
        assert send_now(b"at once")
        assert await asyncio.wait_for(client.recv(), timeout=5) == "at once"
        protocol.pause_writing()
        assert not send_now(b"never written")
        protocol.resume_writing()
        assert send_now(b"after the drain")
        assert await asyncio.wait_for(client.recv(), timeout=5) == "after the drain"
        await client.close()
        await eventually(lambda: not send_now(b"after the close"))


async def test_a_send_waiting_for_room_is_released_when_the_peer_goes_away() -> None:
    async with serving() as served:
        client = await websockets.connect(served.url)
        protocol = await echoed_once(served, client)
        protocol.pause_writing()
        served.app.release.set()
        await client.send("send-later")
        await asyncio.sleep(0.1)
        client.transport.abort()
        await eventually(lambda: served.app.failures == ["ClientDisconnected"])
        with contextlib.suppress(ConnectionClosedError):
            await client.close()


async def test_a_handed_over_socket_stays_open_without_the_app_and_its_frames_go_to_the_listener() -> None:
    async with serving() as served, websockets.connect(served.url) as client:
        protocol = await echoed_once(served, client)
        await client.send("hand-over")
        assert await client.recv() == "handed over"
        await eventually(lambda: not protocol.tasks)  # the app's call has returned
        assert protocol.scope == {"type": "websocket", "client": protocol.scope["client"]}
        for text in ("one", "two", "three"):
            await client.send(text)
        assert [await client.recv() for _ in range(3)] == ["heard one", "heard two", "heard three"]
        [listener] = served.app.listeners
        await client.close()
        await eventually(lambda: listener.disconnects == 1)
        assert served.app.disconnects == []  # the app no longer hears of the socket
    assert listener.disconnects == 1


async def test_frames_that_arrive_before_the_hand_over_reach_the_listener_first_and_in_order() -> None:
    async with serving() as served, websockets.connect(served.url) as client:
        protocol = await echoed_once(served, client)
        await client.send("hand-over-later")
        for text in ("a", "b", "c", "d"):
            await client.send(text)
        await asyncio.sleep(0.1)
        assert protocol.read_paused  # uvicorn's backpressure: the app has not read yet
        served.app.release.set()
        # The hand-over delivers what waited before the app goes on to its own frame.
        answers = [await client.recv() for _ in range(5)]
        assert answers == ["heard a", "heard b", "heard c", "heard d", "handed over"]
        assert not protocol.read_paused
        await client.send("e")
        assert await client.recv() == "heard e"


async def test_a_handed_over_socket_closes_from_the_server_and_its_listener_hears_it_once() -> None:
    async with serving() as served, websockets.connect(served.url) as client:
        protocol = await echoed_once(served, client)
        await client.send("hand-over")
        assert await client.recv() == "handed over"
        await client.send("close")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(client.recv(), timeout=5)
        assert client.close_code == 4002
        [listener] = served.app.listeners
        await eventually(lambda: protocol.disconnected)
        assert listener.disconnects == 1


async def test_send_text_waits_for_room_and_fails_once_the_socket_is_closed() -> None:
    async with serving() as served:
        client = await websockets.connect(served.url)
        protocol = await echoed_once(served, client)
        protocol.pause_writing()
        waiting = asyncio.create_task(protocol.send_text(b"after the drain"))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        protocol.resume_writing()
        await asyncio.wait_for(waiting, timeout=5)
        assert await asyncio.wait_for(client.recv(), timeout=5) == "after the drain"
        await client.close()
        await eventually(lambda: protocol.disconnected)
        with pytest.raises(ClientDisconnected):
            await asyncio.wait_for(protocol.send_text(b"too late"), timeout=5)


async def test_the_inbox_passes_a_wake_up_on_when_its_getter_was_cancelled() -> None:
    inbox = _Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"type": "websocket.receive", "text": "one"})
    first.cancel()  # woken, then cancelled before it ran: the message must not be lost
    assert await second == {"type": "websocket.receive", "text": "one"}
    assert first.cancelled()
    assert inbox.empty()


async def test_the_inbox_hands_out_messages_in_order() -> None:
    inbox = _Inbox()
    inbox.put_nowait({"type": "websocket.connect"})
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    assert inbox.empty()


async def test_writable_releases_every_waiter_and_forgets_a_cancelled_one() -> None:
    writable = _Writable()
    await asyncio.wait_for(writable.wait(), timeout=1)  # set: no waiting
    writable.clear()
    waiters = [asyncio.create_task(writable.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters[1:])
    writable.set()
    await asyncio.gather(*waiters[1:])
    assert writable._set
    assert writable._waiters is None


def test_loopline_serve_uses_the_live_socket_protocol(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    result = CliRunner().invoke(cli.main, ["--data-dir", str(tmp_path), "serve"])
    assert result.exit_code == 0, result.output
    assert seen["ws"] is LiveSocketProtocol
