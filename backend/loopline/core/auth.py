"""Access tokens, the authentication middleware and role guards.

Access tokens are short-lived HS256 JWTs naming the user and the login session
(`sid`). The middleware decodes the token, then asks the application's principal
loader (provided by the people domain) to resolve the user and check that the session
is still alive, so logout and refresh-token reuse end a session at once rather than
when the token expires.

Resolving a principal costs a few queries, on every request. `PrincipalCache` keeps
recent answers per session for a few seconds and forgets all of them whenever a
statement writes one of the tables a principal is made of (users, memberships,
sessions, accounts), and again when that transaction ends, so a logout or a role change
counts from the next request. It sees the writes of this process only (any engine): the
application uses it where one process serves.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakSet

import jwt
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import Engine, Pool, event
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.sql.dml import UpdateBase

from loopline.core.access import Principal, Role
from loopline.core.clock import Clock
from loopline.core.db import WATCHED_TABLES, WRITES_TABLE
from loopline.core.errors import AppError, Forbidden

ALGORITHM = "HS256"
AUDIENCE = "loopline-api"

PrincipalLoader = Callable[[Any, dict[str, Any]], Awaitable[Principal | None]]


class NotAuthenticated(AppError):
    def __init__(self, code: str = "not_authenticated", message: str = "Sign in to continue.") -> None:
        super().__init__(code, message, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _token_expired() -> NotAuthenticated:
    return NotAuthenticated("token_expired", "The access token has expired; refresh it.")


def issue_access_token(*, secret: str, user_id: str, session_id: str, now: datetime, ttl_s: int) -> str:
    claims = {
        "sub": user_id,
        "sid": session_id,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> dict[str, Any]:
    try:
        return jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, options={"require": ["exp", "sub", "sid"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise _token_expired() from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("invalid_token", "The access token is not valid.") from exc


class VerifiedTokens:
    """The claims of access tokens whose signature was checked, until each expires.

    A device sends the same token with every request for its lifetime; checking its
    signature and claims again cost more than the rest of a request's authentication once
    its principal is cached. A token's expiry is still checked on every use.
    """

    def __init__(self, secret: str, *, capacity: int = 10_000, now: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._capacity = capacity
        self._now = now
        self._claims: dict[str, dict[str, Any]] = {}

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims (not to be changed); `NotAuthenticated` when it is not valid."""
        claims = self._claims.get(token)
        if claims is not None:
            if self._now() < claims["exp"]:
                return claims
            del self._claims[token]
            raise _token_expired()
        claims = decode_access_token(token, secret=self._secret)
        if len(self._claims) >= self._capacity:
            self._claims.clear()  # that many tokens in use at once is rare; no need to track age
        self._claims[token] = claims
        return claims


@dataclass(frozen=True)
class _Cached:
    principal: Principal
    generation: int
    expires_at: datetime


class PrincipalCache:
    """Principals by login session, each for `ttl_s` at most, forgotten on any write to `tables`."""

    def __init__(self, clock: Clock, *, tables: Collection[str], ttl_s: float, capacity: int = 10_000) -> None:
        self.tables = frozenset(tables)
        WATCHED_TABLES.update(self.tables)
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._capacity = capacity
        self._entries: dict[tuple[str, str], _Cached] = {}
        # Bumped by every watched write: an entry of an older generation is never served.
        self._generation = 0
        _caches.add(self)

    async def resolve(
        self, claims: dict[str, Any], load: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        key = (claims["sid"], claims["sub"])
        now = self._clock.now()
        cached = self._entries.get(key)
        if cached is not None and cached.generation == self._generation and now < cached.expires_at:
            return cached.principal
        # Read before loading: a write that lands while the load runs makes the answer stale at once.
        generation = self._generation
        principal = await load()
        if principal is None or generation != self._generation:
            self._entries.pop(key, None)
            return principal
        if len(self._entries) >= self._capacity:
            self._entries.clear()  # that many sessions active within the TTL is rare; no need to track age
        self._entries[key] = _Cached(principal, generation, now + self._ttl)
        return principal

    def forget_all(self) -> None:
        self._generation += 1
        self._entries.clear()


# Every cache of the process, whatever engine writes: tests and commands open their own engines.
_caches: WeakSet[PrincipalCache] = WeakSet()
# Marks a pooled connection whose transaction wrote a watched table (in its record's `info`).
_WROTE_PRINCIPALS = "loopline.wrote_principals"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@event.listens_for(Engine, "after_cursor_execute")
def _forget_on_write(
    connection: Connection, _cursor: Any, statement: str, _params: Any, context: ExecutionContext, _many: bool
) -> None:
    """A write forgets at once (loads that start meanwhile read the old rows) and when its transaction ends."""
    if not _caches:
        return
    dml = getattr(getattr(context, "compiled", None), "statement", None)
    is_dml = isinstance(dml, UpdateBase)
    table = getattr(getattr(dml, "table", None), "name", None) or context.execution_options.get(WRITES_TABLE)
    if is_dml or table is not None:
        hit = [cache for cache in _caches if table in cache.tables]
    elif statement.lstrip()[:7].upper().startswith(_WRITE_VERBS):
        hit = list(_caches)  # textual SQL names no table we can trust
    else:
        return
    if hit:
        connection.info[_WROTE_PRINCIPALS] = True
        for cache in hit:
            cache.forget_all()


@event.listens_for(Pool, "checkin")
def _forget_after_transaction(_dbapi_connection: Any, record: Any) -> None:
    """A connection returns to its pool only after its commit or rollback: the change is visible now."""
    if record is not None and record.info.pop(_WROTE_PRINCIPALS, False):
        for cache in list(_caches):
            cache.forget_all()


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated()
        state = connection.app.state
        claims = state.verified_tokens.claims(token.strip())
        principal = await state.principal_loader(state, claims)
        if principal is None:
            raise NotAuthenticated("session_ended", "This session has ended; sign in again.")
        return AuthenticationResult(user=principal, auth=claims)


def require_roles(*roles: Role) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal: Principal = connection.user
        if principal.role not in allowed:
            raise Forbidden(f"This needs one of the roles: {', '.join(sorted(allowed))}.")

    return guard


admin_only = require_roles(Role.ADMIN)
staff_only = require_roles(Role.INSPECTOR, Role.SERVICE_REP, Role.SUPERVISOR, Role.ADMIN)
