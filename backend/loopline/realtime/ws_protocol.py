"""uvicorn's sans-I/O WebSocket protocol, holding less per socket (`loopline serve` uses it).

A server keeps thousands of live sockets open, nearly all of them idle, and each holds its
uvicorn protocol object for as long as it stays open (issue 5: under 30 KB of server memory
per idle socket). uvicorn's `WebSocketsSansIOProtocol` keeps, per socket, more than it needs
once the socket is open:

- an `asyncio.Queue` for received messages and an `asyncio.Event` for write backpressure:
  four deques between them (the queue's three and its own `Event`'s), each allocating a
  64-slot block up front, for a queue that holds a message or two at most;
- the handshake request and response with their parsed headers, needed only until the
  socket is accepted (`websockets` even keeps the request as a local of its parser, which
  lives as long as the socket);
- some forty instance attributes, more than an instance dict shares its keys for, so every
  socket carries a whole dict of its own.

`LiveSocketProtocol` changes only where that state lives, not what uvicorn does with it:
uvicorn's code still runs the handshake, the close handshake, the keepalive pings and the
read and write backpressure. Its queue and event become `_Inbox` and `_Writable`, which
offer the few methods uvicorn calls on them; the handshake's headers are let go once
accepted; the attributes live in slots.

It also offers the app, as an ASGI extension (`LIVE_SOCKET` in the scope's `extensions`),
two things uvicorn does not:

- writing a text frame without awaiting, when the socket can take it at once
  (`send_nowait`). The live tail sends each message to every participant's socket,
  thousands a second; through ASGI's `send` each of those is a coroutine in a task of its
  own, which costs several times the write;
- taking the socket over (`hand_over`): received frames and the disconnect then go to a
  listener as they arrive, and the app's ASGI call returns while the socket stays open.
  Under ASGI an open socket is an app call waiting in `receive()`, at the bottom of a
  stack of some fourteen coroutines (server, middleware, router, handler), with their
  frames, closures and the task that runs them: about half of what an idle socket cost.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol, cast

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent, WebSocketScope
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.http11 import Request

# The scope's `extensions` key under which `socket` is the `LiveSocketProtocol`.
LIVE_SOCKET = "loopline.live_socket"


class SocketListener(Protocol):
    """Who takes a handed-over socket's received frames and its end."""

    def received(self, text: str) -> None: ...

    def disconnected(self) -> None: ...


class _Inbox:
    """The received messages waiting for the app: what uvicorn uses of `asyncio.Queue`
    (`put_nowait`, `get`, `empty`), on lists. Unbounded, as uvicorn's queue is: reading from
    the transport pauses while a message waits, which bounds it.

    Once a listener is set, messages go to it as they are put, and none waits."""

    __slots__ = ("_getters", "_listener", "_messages")

    def __init__(self) -> None:
        self._messages: list[ASGIReceiveEvent] = []
        self._getters: list[asyncio.Future[None]] = []
        self._listener: SocketListener | None = None

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def listen(self, listener: SocketListener) -> None:
        """Hand `listener` the messages waiting, then every message as it is put."""
        self._listener = listener
        waiting, self._messages = self._messages, []
        for message in waiting:
            self._deliver(message)

    def empty(self) -> bool:
        return not self._messages

    def put_nowait(self, message: ASGIReceiveEvent) -> None:
        if self._listener is not None:
            self._deliver(message)
            return
        self._messages.append(message)
        self._wake_one()

    def _deliver(self, message: ASGIReceiveEvent) -> None:
        listener = self._listener
        if listener is None:  # disconnected already: uvicorn may report the end twice
            return
        if message["type"] == "websocket.receive":
            # A binary frame is none of the live tail's: the listener sees it as an empty, bad text.
            listener.received(message.get("text") or "")
        elif message["type"] == "websocket.disconnect":
            self._listener = None
            listener.disconnected()

    async def get(self) -> ASGIReceiveEvent:
        # As `asyncio.Queue.get`: a getter cancelled after it was woken passes the wake-up on.
        while not self._messages:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._messages and not getter.cancelled():
                    self._wake_one()
                raise
        return self._messages.pop(0)

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class _Writable:
    """Whether the transport takes more writes: what uvicorn uses of `asyncio.Event` (`set`,
    `clear`, `wait`), with waiters only while its write buffer is full."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)


class LiveSocketProtocol(WebSocketsSansIOProtocol):
    # Every attribute uvicorn's protocol sets, so that none goes into an instance dict
    # (tests/test_realtime_ws_protocol.py fails when a new uvicorn sets one more).
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "curr_msg_data_type",
        "default_headers",
        "disconnected",
        "frames",
        "handshake_complete",
        "handshake_initiated",
        "inbox",
        "initial_response",
        "last_ping_rtt",
        "logger",
        "loop",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
        "transport",
        "writable",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn calls only the methods these two offer.
        self.inbox = _Inbox()
        self.queue = cast("asyncio.Queue[ASGIReceiveEvent]", self.inbox)
        self.writable = cast(asyncio.Event, _Writable())

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope has its own copy of the headers; `websockets`' parser keeps the request.
        event.headers.clear()
        del self.request
        self.scope["extensions"][LIVE_SOCKET] = {"socket": self}

    # -- for the app, through the `LIVE_SOCKET` extension ------------------------------

    def send_nowait(self, text: bytes) -> bool:
        """Write a text frame now, as `send` of a `websocket.send` would, if it needs no waiting:
        the socket is open and its transport below its high-water mark. False, with nothing
        written, otherwise: the caller sends it with `send_text`, which waits for room."""
        if self.disconnected or not self.handshake_complete or self.close_sent or not self.writable.is_set():
            return False
        try:
            self.conn.send_text(text)
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send_text(self, text: bytes) -> None:
        """Write a text frame once the transport has room; `ClientDisconnected` once it is closed."""
        while not self.send_nowait(text):
            if self.writable.is_set():  # room, so the socket is closed or closing
                raise ClientDisconnected()
            await self.writable.wait()

    async def close(self, code: int, reason: str) -> None:
        await self.send({"type": "websocket.close", "code": code, "reason": reason})

    def hand_over(self, listener: SocketListener) -> None:
        """From now on, received frames and the disconnect go to `listener` as they arrive, and
        the app's call may return: the socket stays open until either side closes it."""
        self.inbox.listen(listener)
        self._resume_reading()

    # -- uvicorn's, changed --------------------------------------------------------------

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            del self.response

    def send_receive_event_to_app(self) -> None:
        super().send_receive_event_to_app()
        if self.inbox.listening:
            # Delivered already: nothing waits to be read, so reading goes on.
            self._resume_reading()

    def _resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    async def run_asgi(self) -> None:
        """uvicorn's, except that a socket the app handed over stays open when the app returns."""
        handed_over = False
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
            handed_over = self.inbox.listening
        if handed_over:
            # The app's scope (a KB or two, with what the app added) is read by nothing past the handshake.
            self.scope = cast("WebSocketScope", {"type": "websocket", "client": self.scope.get("client")})
        elif self.close_timer is None:
            self.transport.close()
