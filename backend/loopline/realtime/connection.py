"""One live socket: what it may read, how far it has been sent, and its bounded send queue.

The hub never awaits a socket. It offers rows and enqueues frames without blocking; a
sender task does the awaiting. When the queue is full, or one send stalls longer than
the send timeout, the socket is closed with 4008 and the client reconnects from its
cursor — so one stalled tablet never slows delivery to the others.

Most sockets sit idle most of the time, and a server holds thousands of them, so an idle
one holds no task and no event, only an empty list: the sender runs only while frames
wait, and catch-up gets an event to wait on only while the queue is full.

A frame for a socket with nothing queued that can take it at once is written at once,
without a sender task, when the server offers that (`loopline serve` does: see
ws_protocol.py); a sender would cost several times the write, for every participant of
every message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from loopline.core.access import Principal
from loopline.core.entity import customer_thread_scope, thread_scope
from loopline.realtime.frames import CLOSE_TOO_SLOW, changes_frame
from loopline.realtime.tail import TailRow
from loopline.syncing.pull import ALL_SCOPES
from loopline_sync.cursor import Cursor, scope_hash


class Socket(Protocol):
    """What a connection needs of its socket (`LiveSocketProtocol`, or any ASGI server's through
    `sessions.AsgiSocket`)."""

    def send_nowait(self, text: bytes) -> bool:
        """Write a frame now if that needs no waiting; False, with nothing written, otherwise."""
        ...

    async def send_text(self, text: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(eq=False, slots=True)
class Connection:
    socket: Socket
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
    # How a customer receives a row (None: not at all); staff, with None here, get every row as logged.
    project: Callable[[TailRow], bytes | None] | None = None
    _pending: list[TailRow] = field(default_factory=list)
    # A list, not a deque: a deque allocates a 64-slot block up front even when empty, and the
    # queue is short (at most `queue_limit`), so taking from its head costs next to nothing.
    _outbox: list[bytes] = field(default_factory=list)
    _sender: asyncio.Task[None] | None = None
    _room: asyncio.Event | None = None  # set when the full queue has room again
    _closing: asyncio.Task[None] | None = None
    # The scopes the hash was taken of, and the hash: every frame's cursor carries it.
    _hashed: tuple[frozenset[str] | None, str] | None = None

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    @property
    def scope_hash(self) -> str:
        if self._hashed is None or self._hashed[0] is not self.scopes:
            self._hashed = (self.scopes, scope_hash([ALL_SCOPES] if self.scopes is None else self.scopes))
        return self._hashed[1]

    def cursor(self) -> str:
        return Cursor(self.epoch, "log", self.sent_seq, self.sent_seq, self.scope_hash).encode()

    def reads(self, scope_key: str) -> bool:
        return self.scopes is None or scope_key in self.scopes

    def reads_thread(self, thread_id: str) -> bool:
        return self.reads(thread_scope(thread_id)) or self.reads(customer_thread_scope(thread_id))

    def offer(self, row: TailRow) -> None:
        """A live row this socket reads; sent with the others of its dispatch by `flush`."""
        if self.held is not None:
            self.held.append(row)
        elif row.seq > self.sent_seq:
            self._pending.append(row)

    def flush(self) -> None:
        if self._pending and not self.closed:
            self.sent_seq = self._pending[-1].seq
            changes = self.encoded(self._pending)
            if changes:
                self.enqueue(changes_frame(changes, self.cursor()))
        self._pending = []

    def encoded(self, rows: list[TailRow]) -> list[bytes]:
        """The changes of `rows` as this socket's user receives them."""
        project = self.project
        if project is None:
            return [row.change for row in rows]
        return [change for row in rows if (change := project(row)) is not None]

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
        if self._sender is None and self.socket.send_nowait(frame):
            return
        if len(self._outbox) >= self.queue_limit:
            self.close(CLOSE_TOO_SLOW, "too slow")
            return
        self._outbox.append(frame)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_queued(), name=f"ws-send-{self.client_id}")

    async def send_paced(self, frame: bytes) -> None:
        """Catch-up frames wait for room instead of closing: the client sets the pace."""
        while len(self._outbox) >= self.queue_limit and not self.closed:
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()
        self.enqueue(frame)

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self._stop_sending()
        self._closing = asyncio.create_task(self._close(code, reason), name=f"ws-close-{self.client_id}")

    async def _close(self, code: int, reason: str) -> None:
        if self._sender is not None:
            self._sender.cancel()
        with contextlib.suppress(Exception):
            await self.socket.close(code, reason)

    def _stop_sending(self) -> None:
        """Nothing more goes out: drop the queued frames and release catch-up waiting for room."""
        self.closed = True
        self._outbox.clear()
        self._signal_room()

    def _signal_room(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    async def _send_queued(self) -> None:
        """Send until the queue is empty, then end: the next `enqueue` starts a new sender."""
        try:
            while self._outbox:
                frame = self._outbox.pop(0)
                self._signal_room()
                # A timeout scope, not wait_for: that would start a task for every frame.
                async with asyncio.timeout(self.send_timeout_s):
                    await self.socket.send_text(frame)
        except TimeoutError:
            self.close(CLOSE_TOO_SLOW, "too slow")
        except Exception:
            # The peer went away: send nothing more; its disconnect unregisters the socket.
            self._stop_sending()
        finally:
            self._sender = None
