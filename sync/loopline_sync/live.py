"""Live-tail mode: follow the change log over the WebSocket instead of polling `/sync/pull`.

The socket is the same log as pull (see `shared/design/realtime.md`): `changes` frames
are applied exactly like pulled pages — changes, cursor and nothing else in one local
transaction (`LocalStore.apply_pull_page`) — so a frame lost with a dropped connection
is simply sent again after reconnecting from the stored cursor. The live tail never
touches the outbox; pushing stays the engine's job.

`LiveTail.run` reconnects after any disconnect with jittered backoff capped at 30 s
(at once after a clean close by the server, 1001 or 4008), fetching a fresh single-use
ticket each time, and acknowledges its cursor every `ack_every` changes or
`ack_interval_s` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from loopline_sync.backoff import Backoff
from loopline_sync.engine import SyncEngine
from loopline_sync.errors import NetworkError, TransientError
from loopline_sync.protocol import Change

log = logging.getLogger("loopline_sync.live")

TICKET_PATH = "/api/v1/ws/ticket"
SOCKET_PATH = "/api/v1/ws"
# Server closes after which reconnecting at once is right: shutting down, or we were too slow.
RECONNECT_AT_ONCE = frozenset({1001, 4008})

SignalHook = Callable[[dict[str, Any]], None]


@dataclass
class LiveStats:
    connections: int = 0
    frames: int = 0
    changes_applied: int = 0
    resets: int = 0


class LiveTail:
    def __init__(
        self,
        engine: SyncEngine,
        socket_base_url: str,
        *,
        on_signal: SignalHook | None = None,
        ack_every: int = 20,
        ack_interval_s: float = 2.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.socket_base_url = socket_base_url.rstrip("/")
        self.on_signal = on_signal
        self.ack_every = ack_every
        self.ack_interval_s = ack_interval_s
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.stats = LiveStats()
        # Set whenever a frame was applied (clear it to wait for the next one).
        self.progress = asyncio.Event()
        # Set while a socket is open and has said hello.
        self.connected = asyncio.Event()
        self._socket: ClientConnection | None = None
        self._cursor: str | None = None  # of the newest applied frame
        self._unacked = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the log until `stop` is set, reconnecting from the stored cursor after any failure."""
        failures = 0
        while not stop.is_set():
            try:
                clean_close = await self._follow(stop)
                failures = 0 if clean_close else failures + 1
            except (OSError, TimeoutError, InvalidHandshake, NetworkError, TransientError) as exc:
                log.info("live tail: %s; reconnecting", exc)
                failures += 1
            if failures and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.backoff.delay(failures, self.rng))

    async def disconnect(self) -> None:
        """Drop the current socket (as a network loss would); `run` reconnects."""
        if self._socket is not None:
            self._socket.transport.abort()

    async def _follow(self, stop: asyncio.Event) -> bool:
        """One connection's life; True when the server closed it in a way that asks for an immediate return."""
        url = f"{self.socket_base_url}{SOCKET_PATH}?ticket={await self._ticket()}"
        try:
            socket = await websockets.connect(url, open_timeout=10)
        except InvalidStatus as exc:
            # A refused upgrade means the ticket was not accepted: the next attempt fetches a new one.
            raise TransientError(f"live socket refused: HTTP {exc.response.status_code}", code="ws_refused") from exc
        self._socket = socket
        self.stats.connections += 1
        cursor = await asyncio.to_thread(lambda: self.engine.store.cursor)
        await socket.send(
            json.dumps(
                {
                    "type": "hello",
                    "client_id": self.engine.client_id,
                    "cursor": cursor,
                    "schema_version": self.engine.schema_version,
                }
            )
        )
        self.connected.set()
        acker = asyncio.create_task(self._ack_on_timer(socket))
        stopper = asyncio.create_task(self._close_on(stop, socket))
        try:
            async for raw in socket:
                await self._on_frame(socket, json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.connected.clear()
            acker.cancel()
            stopper.cancel()
            self._socket = None
        code = socket.close_code
        return code in RECONNECT_AT_ONCE or stop.is_set()

    async def _ticket(self) -> str:
        for _ in range(2):
            headers = await self.engine.auth.headers()
            response = await self.engine.transport.post(TICKET_PATH, b"", headers)
            if response.status == 401:
                await self.engine.auth.handle_unauthorized(headers.get("Authorization", "").removeprefix("Bearer "))
                continue
            if response.status != 201:
                raise TransientError(f"ticket answered {response.status}", code="ticket_failed")
            ticket: str = response.json()["ticket"]
            return ticket
        raise TransientError("ticket refused after a token refresh", code="unauthorized")

    async def _on_frame(self, socket: ClientConnection, frame: dict[str, Any]) -> None:
        self.stats.frames += 1
        kind = frame.get("type")
        if kind == "changes":
            changes = [Change.model_validate(change) for change in frame["changes"]]
            store = self.engine.store
            # The socket carries no last_mid: the outbox is left exactly as acknowledged.
            await asyncio.to_thread(lambda: store.apply_pull_page(changes, frame["cursor"], store.acked_mid))
            self.stats.changes_applied += len(changes)
            self._unacked += len(changes)
            self._cursor = frame["cursor"]
            if self._unacked >= self.ack_every:
                await self._ack(socket)
            self.progress.set()
        elif kind == "reset_required":
            log.warning("live tail: reset_required; rebuilding the read model (the outbox is kept)")
            await asyncio.to_thread(self.engine.store.reset_read_model)
            self.stats.resets += 1
        elif kind == "error":
            log.warning("live tail: the server says %s", frame.get("error"))
        elif self.on_signal is not None:
            self.on_signal(frame)

    async def _ack(self, socket: ClientConnection) -> None:
        if self._cursor is not None and self._unacked:
            self._unacked = 0
            await socket.send(json.dumps({"type": "ack", "cursor": self._cursor}))

    async def _ack_on_timer(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.ack_interval_s)
                await self._ack(socket)

    @staticmethod
    async def _close_on(stop: asyncio.Event, socket: ClientConnection) -> None:
        await stop.wait()
        await socket.close()
