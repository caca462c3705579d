"""A small live-tail client for tests: real HTTP to a real server process, real WebSockets."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from tests.support import DEMO_PASSWORD

FRAME_TIMEOUT_S = 10.0


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class User:
    """A signed-in user of a running server who pushes like a device."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    client_id: str = field(default_factory=new_id)
    mids: count[int] = field(default_factory=lambda: count(1))

    @classmethod
    async def sign_in(cls, http: httpx.AsyncClient, username: str) -> User:
        response = await http.post("/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
        response.raise_for_status()
        return cls(http, {"Authorization": f"Bearer {response.json()['access_token']}"})

    async def push(self, *mutations: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/sync/push",
            headers=self.headers,
            json={
                "client_id": self.client_id,
                "schema_version": 1,
                "mutations": [
                    {"mid": next(self.mids), "id": new_id(), "name": name, "args": args} for name, args in mutations
                ],
            },
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert {r["status"] for r in body["results"]} == {"applied"}, body
        return body

    async def post(self, thread_id: str, body: str, **extra: Any) -> str:
        message_id = new_id()
        await self.push(("message.post", {"id": message_id, "thread_id": thread_id, "body": body, **extra}))
        return message_id

    async def user_id(self) -> str:
        me = await self.http.get("/api/v1/me", headers=self.headers)
        user_id: str = me.json()["user"]["id"]
        return user_id

    async def ticket(self) -> str:
        response = await self.http.post("/api/v1/ws/ticket", headers=self.headers)
        response.raise_for_status()
        ticket: str = response.json()["ticket"]
        return ticket

    async def new_thread(self, batch_lot: str = "CN-SZ-L2-2406-018") -> str:
        """A defect of this user's, and its thread's id."""
        batches = await self.http.get("/api/v1/batches", headers=self.headers, params={"lot_no": batch_lot})
        defect_id = new_id()
        await self.push(
            (
                "defect.report",
                {
                    "id": defect_id,
                    "batch_id": batches.json()["items"][0]["id"],
                    "defect_code": "CC-THIN",
                    "severity": "minor",
                    "captured_at": "2024-06-17T08:12:00Z",
                },
            )
        )
        threads = await self.http.get(
            "/api/v1/threads", headers=self.headers, params={"subject_type": "defect", "subject_id": defect_id}
        )
        thread_id: str = threads.json()["items"][0]["thread"]["id"]
        return thread_id


@dataclass
class Live:
    """One live socket: the frames it received, the changes in them, and its cursor."""

    socket: ClientConnection
    client_id: str
    cursor: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def open(
        cls, base: str, user: User, *, client_id: str | None = None, cursor: str | None = None, **options: Any
    ) -> Live:
        url = base.replace("http://", "ws://") + "/api/v1/ws?ticket=" + await user.ticket()
        socket = await websockets.connect(url, **options)
        live = cls(socket, client_id or new_id(), cursor)
        await socket.send(json.dumps({"type": "hello", "client_id": live.client_id, "cursor": cursor}))
        return live

    async def send(self, **frame: Any) -> None:
        await self.socket.send(json.dumps(frame))

    async def frame(self, timeout_s: float = FRAME_TIMEOUT_S) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), timeout_s))
        if frame["type"] == "changes":
            self.changes.extend(frame["changes"])
            self.cursor = frame["cursor"]
        elif frame["type"] != "reset_required":
            self.signals.append(frame)
        return frame

    async def until(self, done: Any, timeout_s: float = FRAME_TIMEOUT_S) -> None:
        """Read frames until `done(self)` holds."""
        async with asyncio.timeout(timeout_s):
            while not done(self):
                await self.frame(timeout_s)

    def messages(self) -> list[dict[str, Any]]:
        return [c["data"] for c in self.changes if c["entity"] == "message" and c["op"] == "put"]

    def message_ids(self) -> list[str]:
        return [m["id"] for m in self.messages()]

    async def close(self) -> None:
        await self.socket.close()


class StalledSocket:
    """A live socket whose device stops reading after `hello`: a tablet frozen mid-sync.

    Spoken through websockets' sans-I/O protocol over a plain socket with a tiny receive
    buffer, so nothing reads on its behalf and the server's sends really back up.
    """

    def __init__(self, base: str, ticket: str, client_id: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.protocol = ClientProtocol(parse_uri(f"ws://{host}:{port}/api/v1/ws?ticket={ticket}"))
        self.raw = socket.socket()
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.raw.connect((host, int(port)))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self.protocol.receive_data(self.raw.recv(65536))
        self.protocol.send_text(json.dumps({"type": "hello", "client_id": client_id, "cursor": None}).encode())
        self._flush()

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            self.raw.sendall(chunk)

    def close_code(self, timeout_s: float = 60) -> int | None:
        """Read everything the server sent, at last; the close code it ended with."""
        self.raw.settimeout(timeout_s)
        while self.protocol.close_code is None:
            data = self.raw.recv(1 << 20)
            if not data:
                self.protocol.receive_eof()
                break
            self.protocol.receive_data(data)
            self.protocol.events_received()
        self.raw.close()
        return self.protocol.close_code
