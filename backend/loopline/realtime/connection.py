"""One live socket: what it may read, how far it has been sent, and its bounded send queue.

The hub never awaits a socket. It offers rows and enqueues frames without blocking; a
sender task per socket does the awaiting. When the queue is full, or one send stalls
longer than the send timeout, the socket is closed with 4008 and the client reconnects
from its cursor — so one stalled tablet never slows delivery to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from litestar import WebSocket

from loopline.core.access import Principal
from loopline.core.entity import customer_thread_scope, thread_scope
from loopline.realtime.frames import CLOSE_TOO_SLOW, changes_frame
from loopline.realtime.tail import TailRow
from loopline.syncing.pull import ALL_SCOPES
from loopline_sync.cursor import Cursor, scope_hash


@dataclass(eq=False)
class Connection:
    socket: WebSocket
    principal: Principal
    client_id: str
    schema_version: int
    epoch: str
    queue_limit: int
    send_timeout_s: float
    scopes: frozenset[str] | None = None  # None: every scope (admins)
    sent_seq: int = 0
    # While catching up from the database, live rows wait here instead of being sent.
    held: list[TailRow] | None = field(default_factory=list)
    presence: str = "active"
    viewing: str | None = None
    closed: bool = False
    rescoping: bool = False
    rescope_again: bool = False
    _pending: list[TailRow] = field(default_factory=list)
    _outbox: asyncio.Queue[bytes | None] = field(init=False)
    _sender: asyncio.Task[None] | None = None
    _closing: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._outbox = asyncio.Queue(maxsize=self.queue_limit)

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    @property
    def scope_hash(self) -> str:
        return scope_hash([ALL_SCOPES] if self.scopes is None else self.scopes)

    def cursor(self) -> str:
        return Cursor(self.epoch, "log", self.sent_seq, self.sent_seq, self.scope_hash).encode()

    def reads(self, scope_key: str) -> bool:
        return self.scopes is None or scope_key in self.scopes

    def reads_thread(self, thread_id: str) -> bool:
        return self.reads(thread_scope(thread_id)) or self.reads(customer_thread_scope(thread_id))

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"ws-send-{self.client_id}")

    def offer(self, row: TailRow) -> None:
        """A live row this socket reads; sent with the others of its dispatch by `flush`."""
        if self.held is not None:
            self.held.append(row)
        elif row.seq > self.sent_seq:
            self._pending.append(row)

    def flush(self) -> None:
        if self._pending and not self.closed:
            self.sent_seq = self._pending[-1].seq
            self.enqueue(changes_frame([row.change for row in self._pending], self.cursor()))
        self._pending = []

    def go_live(self, sent_seq: int) -> None:
        """Caught up to `sent_seq`: send what arrived meanwhile (newer rows only) and stop holding."""
        self.sent_seq = sent_seq
        held, self.held = self.held or [], None
        for row in held:
            self.offer(row)
        self.flush()

    def hold(self) -> None:
        if self.held is None:
            self.held = []

    def enqueue(self, frame: bytes) -> None:
        if self.closed:
            return
        try:
            self._outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(CLOSE_TOO_SLOW, "too slow")

    async def send_paced(self, frame: bytes) -> None:
        """Catch-up frames wait for room instead of closing: the client sets the pace."""
        if not self.closed:
            await self._outbox.put(frame)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self._closing = asyncio.create_task(self._close(code, reason), name=f"ws-close-{self.client_id}")

    async def _close(self, code: int, reason: str) -> None:
        if self._sender is not None:
            self._sender.cancel()
        with contextlib.suppress(Exception):
            await self.socket.close(code=code, reason=reason)

    async def _send_loop(self) -> None:
        while (frame := await self._outbox.get()) is not None:
            try:
                # A timeout scope, not wait_for: that would start a task for every frame.
                async with asyncio.timeout(self.send_timeout_s):
                    await self.socket.send_text(frame)
            except TimeoutError:
                self.close(CLOSE_TOO_SLOW, "too slow")
                return
            except Exception:
                # The peer went away; the receive loop sees it and unregisters the socket.
                return
