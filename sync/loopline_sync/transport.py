"""How the engine talks to the server, and a fault-injecting stand-in for bad networks.

The engine only needs "POST these bytes, give me status, headers and bytes back, or tell
me the network failed"; the photo queue needs the same for HEAD and PATCH
(`BlobTransport`). Keeping it that small lets `FaultyTransport` sit between a client and
a real server and produce, reproducibly from a seed, the failures field devices meet:
lost requests, responses lost after the server committed, duplicates, delays,
reordering, corrupted bodies, 413/401/503 answers, captive-portal pages and server
restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx

from loopline_sync.errors import NetworkError

__all__ = [
    "BlobTransport",
    "Fault",
    "FaultRecord",
    "FaultyTransport",
    "HttpTransport",
    "NetworkError",
    "Transport",
    "TransportResponse",
]


@dataclass(frozen=True)
class TransportResponse:
    status: int
    # Lower-cased header names.
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> tuple[str | None, dict[str, Any]]:
        """`(code, details)` of the protocol's error body, or `(None, {})` if it is not one."""
        try:
            payload = self.json()
        except ValueError:
            return None, {}
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            return None, {}
        details = error.get("details")
        return error["code"], details if isinstance(details, dict) else {}


class Transport(Protocol):
    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        """POST `body` to `path`; raise `NetworkError` if no response arrived."""
        ...


@runtime_checkable
class BlobTransport(Transport, Protocol):
    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        """Send any request (the photo queue's POST, HEAD and PATCH); raise `NetworkError` if no response arrived."""
        ...


class HttpTransport:
    """The real thing, on one pooled `httpx.AsyncClient`."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        return await self.request("POST", path, body, {"Content-Type": "application/json", **headers})

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        try:
            response = await self._client.request(method, self.base_url + path, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write, timeouts, protocol errors
            raise NetworkError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        return TransportResponse(
            status=response.status_code,
            headers={name.lower(): value for name, value in response.headers.items()},
            body=response.content,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Fault(StrEnum):
    NONE = "none"
    DROP_REQUEST = "drop_request"  # NetworkError before anything is sent
    DROP_RESPONSE = "drop_response"  # sent and answered (maybe committed), then NetworkError
    DUPLICATE = "duplicate"  # sent twice; the second answer is returned
    DELAY = "delay"  # sleep up to max_delay_s, then send
    REORDER = "reorder"  # held back (caller sees NetworkError), replayed after newer requests
    PAYLOAD_TOO_LARGE = "413"
    UNAUTHORIZED = "401"
    UNAVAILABLE = "503"  # with Retry-After
    CAPTIVE_PORTAL = "captive_portal"  # 200 text/html
    CORRUPT = "corrupt"  # one byte of the body flipped on the way (a blob chunk's checksum catches it)
    SERVER_RESTART = "server_restart"  # runs the test's hook, the in-flight request is lost


@dataclass(frozen=True)
class FaultRecord:
    index: int  # the n-th call of post() or request(), from 0
    path: str
    fault: Fault
    scripted: bool


@dataclass
class _Held:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    remaining: int


_CAPTIVE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Guest Wi-Fi</title></head>"
    b"<body><form action='/login'>Accept the terms to continue</form></body></html>"
)

RestartHook = Callable[[], Awaitable[None] | None]


def _flip_middle_byte(body: bytes) -> bytes:
    """The body with one byte inverted; the position is fixed so seeds stay reproducible."""
    if not body:
        return body
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]


def _error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> TransportResponse:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    return TransportResponse(status, {"content-type": "application/json", **(headers or {})}, body)


class FaultyTransport:
    """Wraps a transport and injects faults: scripted ones first, then random ones.

    Reproducibility: exactly one `rng.random()` is drawn per request whose path matches
    `paths` (scripted or not), plus one more only when a delay is chosen, so the same
    seed and the same sequence of requests give the same faults (`log` records them).
    Requests on other paths (by default: sign-in) are passed through untouched, because a
    synthetic 401 on the login call would mean "wrong password", not a network fault.
    """

    def __init__(
        self,
        inner: Transport,
        rng: random.Random,
        *,
        rates: Mapping[Fault, float] | None = None,
        paths: tuple[str, ...] = ("/api/v1/sync/",),
        max_delay_s: float = 0.05,
        reorder_after: int = 1,
        retry_after_s: int = 1,
        on_restart: RestartHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        rates = dict(rates or {})
        if sum(rates.values()) > 1.0 or any(rate < 0 for rate in rates.values()):
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        if Fault.SERVER_RESTART in rates and on_restart is None:
            raise ValueError("a random SERVER_RESTART needs an on_restart hook")
        self.inner = inner
        self.rng = rng
        self.rates = rates
        self.paths = paths
        self.max_delay_s = max_delay_s
        self.reorder_after = reorder_after
        self.retry_after_s = retry_after_s
        self.on_restart = on_restart
        self.sleep = sleep
        self.log: list[FaultRecord] = []
        self._script: deque[tuple[Fault, str | None]] = deque()
        self._held: list[_Held] = []
        self._calls = 0

    def script(self, *faults: Fault, path: str | None = None) -> None:
        """Queue faults for the next requests whose path starts with `path` (any path if None)."""
        self._script.extend((fault, path) for fault in faults)

    @property
    def held(self) -> int:
        """Requests held back by REORDER and not replayed yet."""
        return len(self._held)

    async def flush(self) -> None:
        """Replay every held-back request now (their answers go nowhere, like a late packet's)."""
        held, self._held = self._held, []
        for request in held:
            await self._replay(request)

    def _choose(self, path: str) -> tuple[Fault, bool]:
        if not path.startswith(self.paths):
            return Fault.NONE, False
        draw = self.rng.random()
        for i, (fault, wanted) in enumerate(self._script):
            if wanted is None or path.startswith(wanted):
                del self._script[i]
                return fault, True
        threshold = 0.0
        for fault, rate in self.rates.items():
            threshold += rate
            if draw < threshold:
                # Only a push can be too large: a proxy would never answer a tiny pull with 413.
                if fault is Fault.PAYLOAD_TOO_LARGE and not path.endswith("/push"):
                    return Fault.NONE, False
                return fault, False
        return Fault.NONE, False

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        return await self.request("POST", path, body, headers)

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        """Any method; other than POST, the inner transport must be a `BlobTransport`.

        A connection lost in the middle of a request body reaches the server as a request
        that never completed, which it discards: that is DROP_REQUEST. One lost after the
        server read the whole body is DROP_RESPONSE.
        """
        index = self._calls
        self._calls += 1
        fault, scripted = self._choose(path)
        self.log.append(FaultRecord(index, path, fault, scripted))
        try:
            return await self._perform(fault, method, path, body, headers)
        finally:
            if fault is not Fault.REORDER:
                await self._replay_due()

    async def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        if method == "POST":
            return await self.inner.post(path, body, headers)
        if not isinstance(self.inner, BlobTransport):
            raise TypeError(f"{type(self.inner).__name__} sends POST only")
        return await self.inner.request(method, path, body, headers)

    async def _perform(
        self, fault: Fault, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> TransportResponse:
        match fault:
            case Fault.NONE:
                return await self._send(method, path, body, headers)
            case Fault.DROP_REQUEST:
                raise NetworkError(f"injected: request to {path} lost")
            case Fault.DROP_RESPONSE:
                await self._send(method, path, body, headers)
                raise NetworkError(f"injected: response from {path} lost")
            case Fault.DUPLICATE:
                await self._send(method, path, body, headers)
                return await self._send(method, path, body, headers)
            case Fault.DELAY:
                await self.sleep(self.rng.uniform(0.0, self.max_delay_s))
                return await self._send(method, path, body, headers)
            case Fault.REORDER:
                self._held.append(_Held(method, path, body, dict(headers), self.reorder_after))
                raise NetworkError(f"injected: request to {path} delayed in the network")
            case Fault.CORRUPT:
                return await self._send(method, path, _flip_middle_byte(body), headers)
            case Fault.PAYLOAD_TOO_LARGE | Fault.UNAUTHORIZED | Fault.UNAVAILABLE | Fault.CAPTIVE_PORTAL:
                return self._synthetic(fault)
            case Fault.SERVER_RESTART:
                if self.on_restart is None:
                    raise ValueError("SERVER_RESTART needs an on_restart hook")
                outcome = self.on_restart()
                if inspect.isawaitable(outcome):
                    await outcome
                raise NetworkError(f"injected: connection to {path} reset by a server restart")
        raise AssertionError(f"unhandled fault {fault}")  # pragma: no cover

    def _synthetic(self, fault: Fault) -> TransportResponse:
        """The answer a proxy, a busy server or a hotel Wi-Fi gives instead of the real one."""
        if fault is Fault.PAYLOAD_TOO_LARGE:
            return _error_response(413, "payload_too_large", "injected: request entity too large")
        if fault is Fault.UNAUTHORIZED:
            return _error_response(401, "not_authenticated", "injected: token rejected", {"www-authenticate": "Bearer"})
        if fault is Fault.UNAVAILABLE:
            return _error_response(503, "unavailable", "injected: busy", {"retry-after": str(self.retry_after_s)})
        return TransportResponse(200, {"content-type": "text/html; charset=utf-8"}, _CAPTIVE_PAGE)

    async def _replay_due(self) -> None:
        due: list[_Held] = []
        for request in self._held:
            request.remaining -= 1
            if request.remaining <= 0:
                due.append(request)
        self._held = [request for request in self._held if request.remaining > 0]
        for request in due:
            await self._replay(request)

    async def _replay(self, request: _Held) -> None:
        # A late packet that never arrives is also a late packet.
        with contextlib.suppress(NetworkError):
            await self._send(request.method, request.path, request.body, request.headers)
