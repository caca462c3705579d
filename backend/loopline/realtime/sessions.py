"""One socket's life: hello, catch up, then live frames both ways until either side leaves.

Served by `loopline serve`, a socket that has caught up is handed over (ws_protocol.py):
its frames come to a `FrameListener` as they arrive and the handler returns, so an idle
socket holds no coroutine at all. Under another ASGI server the handler stays, and reads
its frames in a loop until the socket closes; both ways run the same `_on_frame`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, cast

from litestar import WebSocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect
from litestar.types import WebSocketReceiveEvent

from loopline.core.access import Principal
from loopline.core.errors import AppError
from loopline.core.runtime import Runtime
from loopline.realtime.catchup import catch_up, current_scopes, rescope
from loopline.realtime.connection import Connection, Socket
from loopline.realtime.frames import (
    CLOSE_FORBIDDEN,
    CLOSE_NO_HELLO,
    CLOSE_PROTOCOL_ERROR,
    Ack,
    BadFrame,
    Hello,
    PresenceState,
    Typing,
    Viewing,
    error_frame,
    parse_client_frame,
)
from loopline.realtime.hub import Hub, HubSettings
from loopline.realtime.ws_protocol import LIVE_SOCKET, LiveSocketProtocol
from loopline_sync.cursor import Cursor, InvalidCursor

log = logging.getLogger("loopline.realtime")

HELLO_TIMEOUT_S = 10.0


class AsgiSocket:
    """A connection's socket through ASGI's `send`, for servers that do not offer `LIVE_SOCKET`."""

    __slots__ = ("_socket",)

    def __init__(self, socket: WebSocket) -> None:
        self._socket = socket

    def send_nowait(self, text: bytes) -> bool:
        return False

    async def send_text(self, text: bytes) -> None:
        await self._socket.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self._socket.close(code=code, reason=reason)


def _live_socket(socket: WebSocket) -> LiveSocketProtocol | None:
    extensions: dict[str, Any] = socket.scope.get("extensions") or {}
    live: LiveSocketProtocol | None = extensions.get(LIVE_SOCKET, {}).get("socket")
    return live


async def serve_socket(hub: Hub, socket: WebSocket, principal: Principal) -> None:
    """Run an accepted socket until it closes, or until it is handed over to a `FrameListener`."""
    live = _live_socket(socket)
    opened = await _connection_from_hello(hub, socket, live or AsgiSocket(socket), principal)
    if opened is None:
        return
    connection, cursor = opened
    connection.scopes = await current_scopes(hub.runtime, connection)
    # Registered before catching up, so nothing committed from here on can be missed.
    hub.register(connection)
    handed_over = False
    try:
        # Its session may have ended since the ticket was redeemed, while nothing could close it.
        await hub.check_sessions([connection])
        if connection.closed:
            return
        try:
            await catch_up(hub, connection, cursor)
            hub.greet(connection)
        except AppError as exc:
            await socket.send_text(error_frame(exc.code, exc.message))
            connection.close(CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_PROTOCOL_ERROR, exc.code)
            return
        if live is not None:
            live.hand_over(FrameListener(hub, connection))
            handed_over = True
            return
        while not connection.closed:
            # The socket's own receive, not `receive_text`: an idle socket waits here, and each
            # coroutine that wraps the wait stays in memory for as long as it does.
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            _on_frame(hub, connection, cast("WebSocketReceiveEvent", message).get("text") or "")
    finally:
        if not handed_over:
            _leave(hub, connection)


def _leave(hub: Hub, connection: Connection) -> None:
    hub.unregister(connection)
    connection.close(1000, "")


@dataclass(slots=True)
class FrameListener:
    """A handed-over socket's frames, as they arrive, and its end."""

    hub: Hub
    connection: Connection

    def received(self, text: str) -> None:
        try:
            _on_frame(self.hub, self.connection, text)
        except Exception:
            # Called from the transport's read: a defect of ours must end this socket, not the server's reading.
            log.exception("handling a live frame failed; closing the socket so the client reconnects")
            self.connection.close(CLOSE_PROTOCOL_ERROR, "internal error")

    def disconnected(self) -> None:
        _leave(self.hub, self.connection)


async def _connection_from_hello(
    hub: Hub, socket: WebSocket, sending: Socket, principal: Principal
) -> tuple[Connection, str | None] | None:
    """The socket's connection and the cursor its hello catches up from; None when it sent no hello.

    The hello frame itself is not kept: it would stay referenced for the socket's lifetime.
    """
    hello = await _hello(socket)
    if hello is None:
        return None
    connection = Connection(
        socket=sending,
        principal=principal,
        client_id=hello.client_id,
        schema_version=hello.schema_version,
        epoch="",
        queue_limit=hub.settings.queue_limit,
        send_timeout_s=hub.settings.send_timeout_s,
    )
    return connection, hello.cursor


async def _hello(socket: WebSocket) -> Hello | None:
    try:
        text = await asyncio.wait_for(socket.receive_text(), timeout=HELLO_TIMEOUT_S)
    except (TimeoutError, WebSocketDisconnect):
        with contextlib.suppress(Exception):
            await socket.close(code=CLOSE_NO_HELLO, reason="hello expected")
        return None
    code = "hello_expected"
    try:
        frame = parse_client_frame(text)
    except BadFrame as exc:
        frame = None
        message = str(exc)
        code = exc.code or code
    else:
        message = "the first frame must be hello"
    if not isinstance(frame, Hello):
        with contextlib.suppress(Exception):
            await socket.send_text(error_frame(code, message))
            await socket.close(code=CLOSE_PROTOCOL_ERROR, reason="hello expected")
        return None
    return frame


def make_hub(runtime: Runtime, channels: ChannelsPlugin, settings: HubSettings) -> Hub:
    hub = Hub(runtime, channels, settings)

    async def follow_scopes(connection: Connection) -> None:
        if connection.rescoping:
            connection.rescope_again = True
            return
        connection.rescoping = True
        try:
            while True:
                connection.rescope_again = False
                await rescope(hub, connection)
                if not connection.rescope_again:
                    return
        except Exception:
            log.exception("re-scoping a socket failed; closing it so the client reconnects")
            connection.close(CLOSE_PROTOCOL_ERROR, "rescope failed")
        finally:
            connection.rescoping = False

    hub.on_rescope = follow_scopes
    return hub


def _on_frame(hub: Hub, connection: Connection, text: str) -> None:
    """A frame the client sent once the socket is live."""
    if connection.closed:
        return  # a socket being closed, its session ended perhaps, speaks for nobody
    try:
        frame = parse_client_frame(text)
    except BadFrame as exc:
        connection.enqueue(error_frame("bad_frame", str(exc)))
        return
    if isinstance(frame, Ack):
        _ack(hub, connection, frame.cursor)
    elif isinstance(frame, Typing):
        if connection.reads_thread(frame.thread_id):
            hub.typing(connection, frame.thread_id, frame.state)
    elif isinstance(frame, PresenceState):
        connection.presence = frame.state
        hub.presence_changed(connection)
    elif isinstance(frame, Viewing):
        connection.viewing = frame.thread_id
    else:
        connection.enqueue(error_frame("hello_repeated", "hello is sent once per socket"))


def _ack(hub: Hub, connection: Connection, cursor_text: str) -> None:
    try:
        cursor = Cursor.decode(cursor_text)
    except InvalidCursor:
        connection.enqueue(error_frame("invalid_cursor", "The cursor is not one this server issued."))
        return
    if cursor.seq <= connection.sent_seq:
        hub.acked(connection, cursor.seq)
