"""Access tokens, the authentication middleware and role guards.

Access tokens are short-lived HS256 JWTs naming the user and the login session
(`sid`). The middleware decodes the token, then asks the application's principal
loader (provided by the people domain) to resolve the user and check that the session
is still alive, so logout and refresh-token reuse end a session at once rather than
when the token expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from loopline.core.access import Principal, Role
from loopline.core.errors import AppError, Forbidden

ALGORITHM = "HS256"
AUDIENCE = "loopline-api"

PrincipalLoader = Callable[[Any, dict[str, Any]], Awaitable[Principal | None]]


class NotAuthenticated(AppError):
    def __init__(self, code: str = "not_authenticated", message: str = "Sign in to continue.") -> None:
        super().__init__(code, message, status_code=401, headers={"WWW-Authenticate": "Bearer"})


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
        raise NotAuthenticated("token_expired", "The access token has expired; refresh it.") from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated("invalid_token", "The access token is not valid.") from exc


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated()
        state = connection.app.state
        claims = decode_access_token(token.strip(), secret=state.settings.secret_key)
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
