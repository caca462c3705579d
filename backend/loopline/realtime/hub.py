"""The live-tail hub: one per process, between the change log and every open socket.

The write path rings a doorbell after each commit (`ring`), published through Litestar's
channels plugin — in memory in one process, through Redis across several. The doorbell
only says "the log has grown": the hub then reads the new rows once (`LogTail.fetch`),
routes each to the sockets whose scopes include the row's scope key, and each socket
gets one `changes` frame per fetch. The process that committed skips the read: `ring`
hands it the rows as written, and they go into the tail when they follow its last row.
A lost doorbell costs latency, never data: a poll notices a grown log within
`poll_interval_s`.

Typing and presence travel on a second channel as signals. Every process applies every
signal to its own `PresenceBoard`, so all of them agree on who is typing and present.

When login sessions end (`end_sessions`, told by the people domain after the commit), the
hub closes their sockets here at once with 4401 and signals the other processes to close
theirs. A lost signal costs latency, never access: every `session_check_interval_s` one
query asks which of the sessions behind this process's sockets are still alive, and a
socket is checked once more right after it registers (an ending announced while it was
opening found nothing to close). Nothing of this is on the fan-out path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from litestar.channels import ChannelsPlugin
from sqlalchemy import bindparam, update

from loopline.core.access import Role
from loopline.core.db import table_of
from loopline.core.entity import customer_thread_scope, thread_scope, user_scope
from loopline.core.runtime import Runtime
from loopline.core.session_end import EndedSessions
from loopline.core.uow import CommittedChange
from loopline.people.service import live_sessions
from loopline.realtime.connection import Connection
from loopline.realtime.frames import CLOSE_GOING_AWAY, CLOSE_SESSION_ENDED, signal_frame
from loopline.realtime.presence import PresenceBoard, PresenceChanged, Report, TypingStopped
from loopline.realtime.tail import LogTail, TailRow
from loopline.syncing.models import SyncClient

log = logging.getLogger("loopline.realtime")

DOORBELL = "loopline.changelog"
SIGNALS = "loopline.signals"
CHANNELS = [DOORBELL, SIGNALS]
# A row of these, in a user's own scope, may change what the user reads.
RESCOPING_ENTITIES = frozenset({"thread_participant", "membership", "user"})


PULLS_AT_ONCE = 2


@dataclass(frozen=True)
class HubSettings:
    queue_limit: int = 256
    send_timeout_s: float = 10.0
    tail_capacity: int = 20_000
    poll_interval_s: float = 2.0
    sweep_interval_s: float = 1.0
    ack_flush_interval_s: float = 10.0
    session_check_interval_s: float = 5.0


class Hub:
    def __init__(self, runtime: Runtime, channels: ChannelsPlugin, settings: HubSettings) -> None:
        self.runtime = runtime
        self.channels = channels
        self.settings = settings
        self.process_id = uuid.uuid4().hex
        self.tail = LogTail(runtime.db, settings.tail_capacity)
        self.board = PresenceBoard()
        self._by_scope: dict[str, set[Connection]] = defaultdict(set)
        self._unscoped: set[Connection] = set()
        self._by_user: dict[str, set[Connection]] = defaultdict(set)
        self._threads_of: dict[str, list[str]] = {}  # user → their thread ids, for presence routing
        self._reported: dict[str, Report] = {}
        self._acks: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._committed: list[list[CommittedChange]] = []  # rung here, not yet in the tail
        self._tasks: list[asyncio.Task[None]] = []
        # Set by `sessions.make_hub`: re-route a socket whose user's scopes may have changed.
        self.on_rescope: Callable[[Connection], Coroutine[Any, Any, None]] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Sockets catching up through the pull service read their pages a couple at a time: a
        # thousand reconnecting at once interleave their pages' short-lived objects with the
        # sockets' long-lived ones, and the freed memory stays fragmented (about 5 KB a socket).
        self.pull_gate = asyncio.Semaphore(PULLS_AT_ONCE)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.tail.start()
        subscriber = await self.channels.subscribe(CHANNELS)
        for name, loop in [
            ("listen", self._listen(subscriber.iter_events())),
            ("pump", self._pump()),
            ("poll", self._every(self.settings.poll_interval_s, self._poll)),
            ("sweep", self._every(self.settings.sweep_interval_s, self._sweep)),
            ("acks", self._every(self.settings.ack_flush_interval_s, self.flush_acks)),
            ("sessions", self._every(self.settings.session_check_interval_s, self._check_all_sessions)),
        ]:
            self._tasks.append(asyncio.create_task(loop, name=f"hub-{name}"))

    async def stop(self) -> None:
        for connection in self.connections():
            connection.close(CLOSE_GOING_AWAY, "server shutting down")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush_acks()

    def connections(self) -> list[Connection]:
        return [c for group in self._by_user.values() for c in group]

    # -- the doorbell --------------------------------------------------------------------

    def ring(self, committed: list[CommittedChange]) -> None:
        """Called after every commit that appended to the log. This process's sockets get the
        rows as written; other processes read them when the doorbell rings there."""
        if committed:
            self._committed.append(committed)
            self._wake.set()
            self.channels.publish(orjson.dumps({"seq": committed[-1].seq}), DOORBELL)

    async def _listen(self, events: Any) -> None:
        async for event in events:
            message = orjson.loads(event)
            if "seq" in message:
                if message["seq"] > self.tail.high:
                    self._wake.set()
            else:
                self._on_signal(message)

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._advance()
            except Exception:
                log.exception("reading the log tail failed; the poll retries")

    async def _advance(self) -> None:
        """Move the tail to the log's head and dispatch what it gained: rows committed here
        and in order straight from memory, anything else read from the database."""
        committed, self._committed = self._committed, []
        for rows in committed:
            if rows[-1].seq <= self.tail.high:
                continue
            kept = self.tail.extend(rows)
            self.dispatch(kept if kept is not None else await self.tail.fetch())
        if not committed:
            self.dispatch(await self.tail.fetch())

    async def _poll(self) -> None:
        if await self.tail.head() > self.tail.high:
            self._wake.set()

    async def _every(self, interval_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await action()
            except Exception:
                log.exception("realtime housekeeping failed")

    def dispatch(self, rows: Iterable[TailRow]) -> None:
        touched: set[Connection] = set()
        rescope: set[Connection] = set()
        new_thread = False
        for row in rows:
            for connection in (*self._by_scope.get(row.scope_key, ()), *self._unscoped):
                connection.offer(row)
                touched.add(connection)
                if row.entity in RESCOPING_ENTITIES and row.scope_key == user_scope(connection.user_id):
                    rescope.add(connection)
            new_thread = new_thread or (row.entity == "thread" and row.version == 1)
        if new_thread:
            # Supervisors read every thread of their plants and accounts, joined or not.
            rescope.update(c for c in self.connections() if c.principal.role is Role.SUPERVISOR)
        for connection in touched:
            connection.flush()
        if self.on_rescope is not None:
            for connection in rescope:
                task = asyncio.create_task(self.on_rescope(connection), name=f"ws-rescope-{connection.client_id}")
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    # -- sockets -------------------------------------------------------------------------

    def register(self, connection: Connection) -> None:
        if not connection.principal.is_staff:
            connection.project = self.tail.customer_change
        self._by_user[connection.user_id].add(connection)
        self._route(connection)
        self._threads_of[connection.user_id] = self._thread_ids(connection.scopes)
        self._report_presence(connection.user_id)

    def rerouted(self, connection: Connection, scopes: frozenset[str] | None) -> None:
        """The socket's user now reads `scopes`."""
        self._unroute(connection)
        connection.scopes = scopes
        self._route(connection)
        self._threads_of[connection.user_id] = self._thread_ids(scopes)

    def unregister(self, connection: Connection) -> None:
        self._unroute(connection)
        mine = self._by_user.get(connection.user_id, set())
        mine.discard(connection)
        if not mine:
            self._by_user.pop(connection.user_id, None)
        self._report_presence(connection.user_id)

    def _route(self, connection: Connection) -> None:
        if connection.scopes is None:
            self._unscoped.add(connection)
        else:
            for key in connection.scopes:
                self._by_scope[key].add(connection)

    def _unroute(self, connection: Connection) -> None:
        self._unscoped.discard(connection)
        for key in connection.scopes or ():
            group = self._by_scope.get(key)
            if group is not None:
                group.discard(connection)
                if not group:
                    del self._by_scope[key]

    @staticmethod
    def _thread_ids(scopes: frozenset[str] | None) -> list[str]:
        return sorted(key.split(":")[1] for key in scopes or () if key.startswith("thread:") and key.count(":") == 1)

    def acked(self, connection: Connection, seq: int) -> None:
        self._acks[connection.client_id] = max(seq, self._acks.get(connection.client_id, 0))

    async def flush_acks(self) -> None:
        """Record how far each device has confirmed, in one statement for all of them."""
        acks, self._acks = self._acks, {}
        if not acks:
            return
        clients = table_of(SyncClient)
        now = self.runtime.clock.now()
        async with self.runtime.unit_of_work(actor="ws", command="ws.ack") as session:
            await session.execute(
                update(clients).where(clients.c.client_id == bindparam("client")),
                [{"client": client, "last_pulled_seq": seq, "last_pull_at": now} for client, seq in acks.items()],
            )

    # -- ended sessions ------------------------------------------------------------------

    def end_sessions(self, ended: EndedSessions) -> None:
        """Close this process's sockets of sessions that just ended, and tell the other processes."""
        self._close_ended(ended)
        sessions = None if ended.session_ids is None else sorted(ended.session_ids)
        self._signal({"kind": "sessions_ended", "user_id": ended.user_id, "sessions": sessions})

    def _close_ended(self, ended: EndedSessions) -> None:
        for connection in list(self._by_user.get(ended.user_id, ())):
            if ended.covers(connection.principal.session_id):
                connection.close(CLOSE_SESSION_ENDED, "session ended")

    async def check_sessions(self, connections: Collection[Connection]) -> None:
        """Close those of `connections` whose session is no longer alive, whether or not we heard it end."""
        if not connections:
            return
        alive = await live_sessions(self.runtime, {c.principal.session_id for c in connections})
        for connection in connections:
            if connection.principal.session_id not in alive:
                connection.close(CLOSE_SESSION_ENDED, "session ended")

    async def _check_all_sessions(self) -> None:
        await self.check_sessions(self.connections())

    # -- typing and presence -------------------------------------------------------------

    def typing(self, connection: Connection, thread_id: str, state: str) -> None:
        self._signal(
            {
                "kind": "typing",
                "thread_id": thread_id,
                "user_id": connection.user_id,
                "state": state,
                "customer": not connection.principal.is_staff,
            }
        )

    def presence_changed(self, connection: Connection) -> None:
        self._report_presence(connection.user_id)

    def _report_presence(self, user_id: str) -> None:
        states = {c.presence for c in self._by_user.get(user_id, ())}
        report: Report = "active" if "active" in states else "idle" if states else "gone"
        if self._reported.get(user_id) == report:
            return
        if report == "gone":
            self._reported.pop(user_id, None)
        else:
            self._reported[user_id] = report
        self._signal(
            {
                "kind": "presence",
                "user_id": user_id,
                "process": self.process_id,
                "report": report,
                "threads": self._threads_of.get(user_id, []),
            }
        )

    def _signal(self, message: dict[str, Any]) -> None:
        self.channels.publish(orjson.dumps(message), SIGNALS)

    def _on_signal(self, message: dict[str, Any]) -> None:
        now = self.runtime.clock.now()
        if message["kind"] == "typing":
            customer = message["customer"]
            if self.board.typing_changed(
                message["thread_id"], message["user_id"], message["state"], now, customer=customer
            ):
                self._send_typing(message["thread_id"], message["user_id"], message["state"], message["customer"])
        elif message["kind"] == "sessions_ended":
            sessions = message["sessions"]
            self._close_ended(EndedSessions(message["user_id"], None if sessions is None else frozenset(sessions)))
        elif message["kind"] == "presence":
            self._threads_of.setdefault(message["user_id"], message["threads"])
            change = self.board.report(message["user_id"], message["process"], message["report"], now)
            if change is not None:
                self._send_presence(change.user_id, change.state)

    async def _sweep(self) -> None:
        for event in self.board.expire(self.runtime.clock.now()):
            if isinstance(event, TypingStopped):
                self._send_typing(event.thread_id, event.user_id, "stop", event.customer)
            elif isinstance(event, PresenceChanged):
                self._send_presence(event.user_id, event.state)

    def _send_typing(self, thread_id: str, user_id: str, state: str, customer: bool) -> None:
        """To staff reading the thread; to customers too when a customer types."""
        keys = [thread_scope(thread_id)] + ([customer_thread_scope(thread_id)] if customer else [])
        frame = signal_frame("typing", thread_id=thread_id, user_id=user_id, state=state)
        for connection in self._readers(keys):
            if connection.user_id != user_id:
                connection.enqueue(frame)

    def _send_presence(self, user_id: str, state: str) -> None:
        """To staff who share a thread with the user; customers see no presence."""
        frame = signal_frame("presence", user_id=user_id, state=state)
        keys = [thread_scope(thread_id) for thread_id in self._threads_of.get(user_id, [])]
        for connection in self._readers(keys):
            if connection.user_id != user_id and connection.principal.is_staff:
                connection.enqueue(frame)

    def greet(self, connection: Connection) -> None:
        """Tell a socket that just caught up who among the people it shares threads with is present."""
        if not connection.principal.is_staff:
            return
        for user_id in self.board.present_users():
            shared = any(connection.reads(thread_scope(t)) for t in self._threads_of.get(user_id, []))
            if user_id != connection.user_id and shared:
                connection.enqueue(signal_frame("presence", user_id=user_id, state=self.board.presence(user_id)))

    def _readers(self, scope_keys: list[str]) -> set[Connection]:
        found = set(self._unscoped)
        for key in scope_keys:
            found.update(self._by_scope.get(key, ()))
        return found
