"""A scripted in-process Transport for the client engine's reaction-to-response tests.

Not a fake server: it keeps no protocol state. Each sync request consumes the next canned
answer from a script (a response, an exception to raise, or a function of the request),
and sign-in calls get fresh tokens unless the test scripts them too. End-to-end behaviour
is tested against the real server elsewhere. (This module holds helpers, no tests.)
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopline_sync.transport import TransportResponse

Reply = TransportResponse | Exception | Callable[[dict[str, Any]], TransportResponse]


def fake_jwt(sub: str, n: int) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'n': n})}.sig"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> TransportResponse:
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    return TransportResponse(status, {"content-type": "application/json", **lowered}, json.dumps(payload).encode())


def error(
    status: int, code: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> TransportResponse:
    return json_response(status, {"error": {"code": code, "message": code, "details": details or {}}}, headers)


def captive_portal() -> TransportResponse:
    return TransportResponse(200, {"content-type": "text/html"}, b"<html><body>Accept the Wi-Fi terms</body></html>")


def ack(
    request: dict[str, Any], *, last_mid: int | None = None, client_id: str | None = None, status: str = "applied"
) -> TransportResponse:
    """A PushResponse acknowledging every mutation of `request` (or up to `last_mid`)."""
    mutations = request["mutations"]
    top = mutations[-1]["mid"] if last_mid is None else last_mid
    results = [
        {"mid": m["mid"], "id": m["id"], "status": status, "version": 1}
        if status != "rejected"
        else {"mid": m["mid"], "id": m["id"], "status": status, "error": {"code": "stale_transition", "message": "no"}}
        for m in mutations
        if m["mid"] <= top
    ]
    return json_response(
        200, {"client_id": client_id or request["client_id"], "server_epoch": "e1", "last_mid": top, "results": results}
    )


def page(
    cursor: str,
    changes: list[dict[str, Any]] | None = None,
    *,
    last_mid: int = 0,
    has_more: bool = False,
    reset_required: bool = False,
) -> TransportResponse:
    return json_response(
        200,
        {
            "cursor": cursor,
            "last_mid": last_mid,
            "has_more": has_more,
            "reset_required": reset_required,
            "changes": changes or [],
        },
    )


def put(seq: int, entity: str, id_: str, version: int, **data: Any) -> dict[str, Any]:
    return {"seq": seq, "entity": entity, "id": id_, "op": "put", "version": version, "data": data}


def delete(seq: int, entity: str, id_: str, version: int) -> dict[str, Any]:
    return {"seq": seq, "entity": entity, "id": id_, "op": "delete", "version": version}


@dataclass
class Sent:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def mids(self) -> list[int]:
        return [m["mid"] for m in self.body.get("mutations", [])]

    @property
    def token(self) -> str:
        return self.headers.get("Authorization", "").removeprefix("Bearer ")


class ScriptedTransport:
    def __init__(self, user_id: str = "user-a") -> None:
        self.user_id = user_id
        self.sent: list[Sent] = []
        self.script: deque[Reply] = deque()
        self.auth_script: deque[Reply] = deque()
        self.tokens_issued = 0

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def reply_auth(self, *replies: Reply) -> None:
        self.auth_script.extend(replies)

    @property
    def sync_requests(self) -> list[Sent]:
        return [s for s in self.sent if s.path.startswith("/api/v1/sync/")]

    def issue_tokens(self) -> TransportResponse:
        self.tokens_issued += 1
        n = self.tokens_issued
        return json_response(
            200,
            {
                "access_token": fake_jwt(self.user_id, n),
                "refresh_token": f"refresh-{n}",
                "token_type": "bearer",
                "expires_in": 900,
            },
        )

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        request = json.loads(body)
        self.sent.append(Sent(path, request, dict(headers)))
        if path.startswith("/api/v1/auth/"):
            queue = self.auth_script
            if not queue:
                return self.issue_tokens()
        else:
            queue = self.script
            assert queue, f"unscripted request to {path}: {request}"
        item = queue.popleft()
        if isinstance(item, Exception):
            raise item
        if callable(item):
            return item(request)
        return item


class Sleeps:
    """An instant, recording `sleep` for the engine's backoff."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
