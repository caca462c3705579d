"""One socket's life: hello, catch up, then live frames both ways until either side leaves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

from litestar import WebSocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect
from litestar.types import WebSocketReceiveEvent

from loopline.core.access import Principal
from loopline.core.errors import AppError
from loopline.core.runtime import Runtime
from loopline.realtime.catchup import catch_up, current_scopes, rescope
from loopline.realtime.connection import Connection
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
from loopline_sync.cursor import Cursor, InvalidCursor

log = logging.getLogger("loopline.realtime")

HELLO_TIMEOUT_S = 10.0


async def serve_socket(hub: Hub, socket: WebSocket, principal: Principal) -> None:
    """Run an accepted socket until it closes."""
    opened = await _connection_from_hello(hub, socket, principal)
    if opened is None:
        return
    connection, cursor = opened
    connection.scopes = await current_scopes(hub.runtime, connection)
    # Registered before catching up, so nothing committed from here on can be missed.
    hub.register(connection)
    try:
        try:
            await catch_up(hub, connection, cursor)
            hub.greet(connection)
        except AppError as exc:
            await socket.send_text(error_frame(exc.code, exc.message))
            connection.close(CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_PROTOCOL_ERROR, exc.code)
            return
        await _receive(hub, connection)
    finally:
        hub.unregister(connection)
        connection.close(1000, "")


async def _connection_from_hello(
    hub: Hub, socket: WebSocket, principal: Principal
) -> tuple[Connection, str | None] | None:
    """The socket's connection and the cursor its hello catches up from; None when it sent no hello.

    The hello frame itself is not kept: it would stay referenced for the socket's lifetime.
    """
    hello = await _hello(socket)
    if hello is None:
        return None
    connection = Connection(
        socket=socket,
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
    try:
        frame = parse_client_frame(text)
    except BadFrame as exc:
        frame = None
        message = str(exc)
    else:
        message = "the first frame must be hello"
    if not isinstance(frame, Hello):
        with contextlib.suppress(Exception):
            await socket.send_text(error_frame("hello_expected", message))
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


async def _receive(hub: Hub, connection: Connection) -> None:
    while not connection.closed:
        # The socket's own receive, not `receive_text`: an idle socket waits here, and each
        # coroutine that wraps the wait stays in memory for as long as it does.
        message = await connection.socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = cast("WebSocketReceiveEvent", message).get("text") or ""
        try:
            frame = parse_client_frame(text)
        except BadFrame as exc:
            connection.enqueue(error_frame("bad_frame", str(exc)))
            continue
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
