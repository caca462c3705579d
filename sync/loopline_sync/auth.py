"""Bearer tokens for the engine: sign in, refresh (rotating), and sign in again if needed.

Refresh tokens rotate: every refresh returns a new one and the old one is spent; the
server ends the whole session if a spent token comes back. So refreshes are serialised
by a lock, and a caller that saw a 401 for a token someone else already replaced does
not refresh again. When a refresh is refused (expired, reused, revoked) we fall back to
a fresh login with the stored credentials. Nothing here ever touches the outbox.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ValidationError

from loopline_sync.backoff import parse_retry_after
from loopline_sync.errors import AuthenticationFailed, TransientError, UnexpectedResponse
from loopline_sync.ids import Clock, utc_now
from loopline_sync.transport import Transport, TransportResponse

LOGIN_PATH = "/api/v1/auth/login"
REFRESH_PATH = "/api/v1/auth/refresh"


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_at: datetime
    user_id: str | None


def token_subject(access_token: str) -> str | None:
    """The `sub` claim of a JWT, read without verification.

    Only for local bookkeeping (whose queue is this?); the server verifies every token.
    """
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def _encode(payload: dict[str, str]) -> bytes:
    return json.dumps(payload).encode()


class Auth:
    def __init__(
        self,
        transport: Transport,
        username: str,
        password: str,
        *,
        clock: Clock = utc_now,
        refresh_margin_s: float = 30.0,
    ) -> None:
        self._transport = transport
        self.username = username
        self._password = password
        self._clock = clock
        self._margin = timedelta(seconds=refresh_margin_s)
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self.logins = 0
        self.refreshes = 0

    @property
    def user_id(self) -> str | None:
        """The signed-in user's id (the token's `sub`), once signed in."""
        return self._session.user_id if self._session else None

    @property
    def access_token(self) -> str | None:
        return self._session.access_token if self._session else None

    async def headers(self) -> dict[str, str]:
        """The `Authorization` header, signing in or refreshing first when needed."""
        async with self._lock:
            if self._session is None:
                await self._login()
            elif self._clock() >= self._session.expires_at - self._margin:
                await self._refresh()
            assert self._session is not None
            return {"Authorization": f"Bearer {self._session.access_token}"}

    async def login(self) -> None:
        async with self._lock:
            await self._login()

    async def refresh(self) -> None:
        async with self._lock:
            await self._refresh()

    async def handle_unauthorized(self, rejected_token: str | None) -> None:
        """A call was answered 401 with `rejected_token`: get a new one, once per rejected token."""
        async with self._lock:
            if self._session is not None and self._session.access_token != rejected_token:
                return  # someone already replaced it while we waited for the lock
            await self._refresh()

    async def _login(self) -> None:
        body = _encode({"username": self.username, "password": self._password})
        response = await self._transport.post(LOGIN_PATH, body, {"Content-Type": "application/json"})
        if response.status == 200:
            self._accept(response, "login")
            self.logins += 1
            return
        _raise_transient(response, "login")
        code, _ = response.error()
        if 400 <= response.status < 500:
            raise AuthenticationFailed(f"Sign-in refused for {self.username!r} ({response.status} {code}).", code=code)
        raise UnexpectedResponse(f"login answered {response.status}", details={"status": response.status})

    async def _refresh(self) -> None:
        if self._session is None:
            await self._login()
            return
        body = _encode({"refresh_token": self._session.refresh_token})
        response = await self._transport.post(REFRESH_PATH, body, {"Content-Type": "application/json"})
        if response.status == 200:
            self._accept(response, "refresh")
            self.refreshes += 1
            return
        _raise_transient(response, "refresh")
        # Refused (expired, reused, revoked, or never valid): the session is over, start a new one.
        self._session = None
        await self._login()

    def _accept(self, response: TransportResponse, what: str) -> None:
        try:
            tokens = TokenResponse.model_validate_json(response.body)
        except ValidationError as exc:
            # A 200 that is not our JSON is a captive portal or a proxy, not a session.
            raise TransientError(f"{what} answered 200 with something that is not a token response") from exc
        if tokens.token_type.lower() != "bearer":
            raise UnexpectedResponse(f"{what} returned token type {tokens.token_type!r}")
        self._session = Session(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=self._clock() + timedelta(seconds=tokens.expires_in),
            user_id=token_subject(tokens.access_token),
        )


def _raise_transient(response: TransportResponse, what: str) -> None:
    if response.status == 429 or response.status >= 500:
        code, details = response.error()
        raise TransientError(
            f"{what} answered {response.status}",
            code=code or f"http_{response.status}",
            details=details,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
