"""People services: accounts of users, login sessions with rotating refresh tokens, principals."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import String, bindparam, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loopline.core.access import Principal, Role
from loopline.core.auth import NotAuthenticated, issue_access_token
from loopline.core.db import table_of
from loopline.core.errors import AppError, NotFound
from loopline.core.ids import new_id
from loopline.core.prepared import Prepared
from loopline.core.ratelimit import Quota
from loopline.core.runtime import Runtime
from loopline.core.session_end import EndedSessions
from loopline.core.settings import Settings
from loopline.core.types import UTCDateTime
from loopline.core.uow import UnitOfWork
from loopline.customer.models import Account
from loopline.people.models import Membership, MembershipKind, RefreshToken, User
from loopline.people.passwords import hash_password, verify_password

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_user(
    session: AsyncSession,
    settings: Settings,
    *,
    username: str,
    password: str,
    display_name: str,
    role: Role,
    email: str | None = None,
    memberships: Sequence[tuple[MembershipKind, str]] = (),
) -> User:
    """Add a user and their memberships inside the caller's unit of work."""
    _require_memberships_fit_role(role, memberships)
    user = User.model_validate(
        {
            "username": username,
            "display_name": display_name,
            "role": role,
            "email": email,
            "password_hash": hash_password(password, settings),
        }
    )
    session.add(user)
    await session.flush()
    session.add_all(Membership(user_id=user.id, kind=kind, ref=ref) for kind, ref in memberships)
    return user


def _require_memberships_fit_role(role: Role, memberships: Sequence[tuple[MembershipKind, str]]) -> None:
    """A customer portal user belongs to their accounts only: a plant or region would open staff data to them."""
    if role is not Role.CUSTOMER:
        return
    refused = sorted({kind.value for kind, _ in memberships if kind != MembershipKind.ACCOUNT})
    if refused:
        raise AppError(
            "invalid_membership",
            "A customer portal user belongs to accounts only, never to a plant or a region.",
            details={"role": role.value, "kinds": refused},
        )


async def create_user(runtime: Runtime, *, actor: str, **details: Any) -> User:
    """Create a user (see `add_user` for the details) in a transaction of its own."""
    async with runtime.unit_of_work(actor=actor, command="users.create") as session:
        return await add_user(session, runtime.settings, **details)


async def _issue_session_tokens(runtime: Runtime, session: AsyncSession, user: User, family_id: str) -> TokenPair:
    now = runtime.clock.now()
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=new_id(),
            family_id=family_id,
            user_id=user.id,
            token_hash=_token_hash(refresh),
            issued_at=now,
            expires_at=now + timedelta(seconds=runtime.settings.refresh_token_ttl_s),
        )
    )
    access = issue_access_token(
        secret=runtime.settings.secret_key,
        user_id=user.id,
        session_id=family_id,
        now=now,
        ttl_s=runtime.settings.access_token_ttl_s,
    )
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=runtime.settings.access_token_ttl_s)


async def _count_login_attempt(runtime: Runtime, username: str, address: str) -> None:
    settings = runtime.settings
    wait = await runtime.login_attempts.attempt(
        [
            Quota(f"user:{username}", settings.login_attempts_per_user),
            Quota(f"addr:{address}", settings.login_attempts_per_address),
        ]
    )
    if wait is not None:
        raise AppError(
            "rate_limited",
            "Too many sign-in attempts; wait and try again.",
            status_code=429,
            details={"retry_after_s": wait},
            headers={"Retry-After": str(wait)},
        )


async def login(runtime: Runtime, *, username: str, password: str, address: str) -> TokenPair:
    username = username.strip().lower()
    await _count_login_attempt(runtime, username, address)
    async with runtime.db.read_session() as session:
        user = (await session.scalars(select(User).where(col(User.username) == username))).one_or_none()
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.is_active:
        raise NotAuthenticated("invalid_credentials", "Unknown username or wrong password.")
    await runtime.login_attempts.forget(f"user:{username}")
    family_id = new_id()
    uow = runtime.unit_of_work(actor=user.id, command="auth.login")
    async with uow as session:
        tokens = await _issue_session_tokens(runtime, session, user, family_id)
        uow.audit(entity="session", entity_id=family_id, action="auth.login", diff={"address": address})
    return tokens


async def end_sessions(
    runtime: Runtime,
    uow: UnitOfWork,
    *,
    user_id: str,
    sessions: Collection[str] | None = None,
    keep: str | None = None,
) -> None:
    """End `user_id`'s login `sessions` (None: all of them but `keep`) in `uow`'s transaction.

    The one way any session ends. Revoking its refresh tokens makes REST and refresh refuse it
    once the transaction commits; then `runtime.on_sessions_ended` hears of it, and the live
    tail closes its sockets in every process.
    """
    tokens = table_of(RefreshToken)
    statement = update(tokens).where(tokens.c.user_id == user_id, tokens.c.revoked_at.is_(None))
    if sessions is not None:
        statement = statement.where(tokens.c.family_id.in_(sorted(sessions)))
    if keep is not None:
        statement = statement.where(tokens.c.family_id != keep)
    assert uow.session is not None
    result = await uow.session.execute(statement.values(revoked_at=runtime.clock.now()).returning(tokens.c.family_id))
    if sessions is None and keep is None:
        ended = EndedSessions(user_id, None)
    else:
        ended = EndedSessions(user_id, frozenset(sessions or ()) | frozenset(result.scalars()))

    def announce() -> None:
        for hook in runtime.on_sessions_ended:
            hook(ended)

    uow.call_on_commit(announce)


async def refresh(runtime: Runtime, *, refresh_token: str) -> TokenPair:
    now = runtime.clock.now()
    uow = runtime.unit_of_work(actor=SYSTEM_ACTOR, command="auth.refresh")
    async with uow as session:
        token = (
            await session.scalars(
                select(RefreshToken).where(col(RefreshToken.token_hash) == _token_hash(refresh_token))
            )
        ).one_or_none()
        if token is None:
            raise NotAuthenticated("invalid_refresh_token", "The refresh token is not valid.")
        if token.revoked_at is not None:
            raise NotAuthenticated("session_ended", "This session has ended; sign in again.")
        if token.used_at is None and token.expires_at <= now:
            raise NotAuthenticated("refresh_token_expired", "The session has expired; sign in again.")
        if token.used_at is None:
            user = await session.get(User, token.user_id)
            if user is None or not user.is_active:
                raise NotAuthenticated("session_ended", "This session has ended; sign in again.")
            token.used_at = now
            return await _issue_session_tokens(runtime, session, user, token.family_id)
        # A rotated token came back: someone holds a copy. End the whole session, then refuse.
        await end_sessions(runtime, uow, user_id=token.user_id, sessions=[token.family_id])
        uow.audit(entity="session", entity_id=token.family_id, action="auth.refresh_reuse_detected")
    raise NotAuthenticated(
        "refresh_token_reused", "This refresh token was already used; the session has been ended for safety."
    )


async def logout(runtime: Runtime, principal: Principal) -> None:
    uow = runtime.unit_of_work(actor=principal.user_id, command="auth.logout")
    async with uow:
        await end_sessions(runtime, uow, user_id=principal.user_id, sessions=[principal.session_id])
        uow.audit(entity="session", entity_id=principal.session_id, action="auth.logout")


async def update_user(runtime: Runtime, actor: Principal, user_id: str, changes: dict[str, Any]) -> User:
    """Apply an administrator's `changes` (fields of `User`, and `password`) to a user.

    Deactivating a user ends all their sessions. A new password ends every session that
    the old one opened: all of them when an administrator resets someone's password, all
    but the acting one when administrators change their own.
    """
    uow = runtime.unit_of_work(actor=actor.user_id, command="admin.user.update")
    async with uow as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        password = changes.pop("password", None)
        if password:
            user.password_hash = hash_password(password, runtime.settings)
        for name, value in changes.items():
            if value is not None:
                setattr(user, name, value)
        deactivated = changes.get("is_active") is False
        if deactivated or password:
            keep = actor.session_id if user.id == actor.user_id and not deactivated else None
            await end_sessions(runtime, uow, user_id=user.id, keep=keep)
    return user


# A principal's reads, built once: every request whose cached principal expired runs them.
_users_table = table_of(User)
_users = _users_table.c
_ACTIVE_USER = Prepared(
    select(_users.username, type_coerce(_users.role, String)).where(
        _users.id == bindparam("user", type_=String), _users.is_active
    )
)
_tokens = table_of(RefreshToken).c
_SESSION_ALIVE = Prepared(
    select(_tokens.id)
    .where(
        _tokens.family_id == bindparam("session", type_=String),
        _tokens.revoked_at.is_(None),
        _tokens.expires_at > bindparam("now", type_=UTCDateTime),
    )
    .limit(1)
)
_memberships = table_of(Membership).c
_MEMBERSHIPS = Prepared(
    select(type_coerce(_memberships.kind, String), _memberships.ref).where(
        _memberships.user_id == bindparam("user", type_=String)
    )
)
_MANAGED_ACCOUNTS = Prepared(
    select(col(Account.id)).where(col(Account.account_manager_id) == bindparam("user", type_=String))
)


async def live_sessions(runtime: Runtime, session_ids: Collection[str]) -> set[str]:
    """Those of `session_ids` that are alive: not ended, not expired, their user still active.

    For the live tail's check of its open sockets, which must not rely on having heard of every
    ending: one query for all of them, off the event loop's thread.
    """
    now = runtime.clock.now()
    query = (
        select(_tokens.family_id)
        .join(_users_table, _users.id == _tokens.user_id)
        .where(
            _tokens.family_id.in_(sorted(session_ids)),
            _tokens.revoked_at.is_(None),
            _tokens.expires_at > now,
            _users.is_active,
        )
        .distinct()
    )
    async with runtime.db.read_session() as session:
        return set(await session.scalars(query))


async def load_principal(runtime: Runtime, claims: dict[str, Any]) -> Principal | None:
    """The principal for a decoded access token, or None when the user or the session is gone.

    A few reads by index, on the event loop's thread: through aiosqlite's thread hops they
    cost several times as much, and every request whose cached principal expired pays it.
    """
    now = runtime.clock.now()
    async with runtime.db.quick_read_session() as session:
        user = await _ACTIVE_USER.rows(session, {"user": claims["sub"]})
        if not user or not await _SESSION_ALIVE.rows(session, {"session": claims["sid"], "now": now}):
            return None
        [(username, role)] = user
        return await _principal(session, claims["sub"], username, Role(role), claims["sid"])


async def principal_of(session: AsyncSession, user: User, session_id: str) -> Principal:
    """What `user` may read: the plants and accounts of their memberships and role."""
    return await _principal(session, user.id, user.username, Role(user.role), session_id)


async def _principal(session: AsyncSession, user_id: str, username: str, role: Role, session_id: str) -> Principal:
    if role is Role.ADMIN:
        return Principal(user_id, username, role, session_id, None, None)
    refs: dict[str, set[str]] = {kind.value: set() for kind in MembershipKind}
    for kind, ref in await _MEMBERSHIPS.rows(session, {"user": user_id}):
        refs[kind].add(ref)
    accounts = refs[MembershipKind.ACCOUNT]
    if role is Role.SERVICE_REP:
        accounts |= {account_id for (account_id,) in await _MANAGED_ACCOUNTS.rows(session, {"user": user_id})}
    if role is Role.SUPERVISOR and refs[MembershipKind.REGION]:
        in_regions = await session.scalars(
            select(col(Account.id)).where(col(Account.region).in_(sorted(refs[MembershipKind.REGION])))
        )
        accounts |= set(in_regions)
    plants = refs[MembershipKind.PLANT] if role in (Role.INSPECTOR, Role.SUPERVISOR) else set()
    return Principal(user_id, username, role, session_id, frozenset(plants), frozenset(accounts))
