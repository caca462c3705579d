"""WebSocket tickets: how a browser, which cannot set headers on a WebSocket, proves who it is.

`POST /ws/ticket` (with the bearer token) gives a random ticket valid for one minute and
one use; the socket connects with `?ticket=…`. Only the ticket's SHA-256 is stored, so the
table holds nothing a reader could connect with, and redeeming is one atomic UPDATE, so a
ticket works once even when two server processes race for it. No long-lived token ever
goes into a URL (URLs end up in logs).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col

from loopline.core.access import Principal
from loopline.core.db import table_of
from loopline.core.runtime import Runtime
from loopline.realtime.models import WsTicket

TICKET_TTL = timedelta(minutes=1)
# Used and expired tickets are kept this long (for inspection) before they are swept.
TICKET_RETENTION = timedelta(hours=1)


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue_ticket(runtime: Runtime, principal: Principal) -> tuple[str, datetime]:
    """A new single-use ticket for this user and session, and when it expires."""
    now = runtime.clock.now()
    ticket = secrets.token_urlsafe(32)
    expires_at = now + TICKET_TTL
    async with runtime.unit_of_work(actor=principal.user_id, command="ws.ticket") as session:
        await session.execute(delete(table_of(WsTicket)).where(col(WsTicket.expires_at) < now - TICKET_RETENTION))
        session.add(
            WsTicket(
                ticket_hash=_digest(ticket),
                user_id=principal.user_id,
                session_id=principal.session_id,
                expires_at=expires_at,
            )
        )
    return ticket, expires_at


async def redeem_ticket(
    runtime: Runtime, ticket: str, load_principal: Callable[[dict[str, Any]], Awaitable[Principal | None]]
) -> Principal | None:
    """The ticket's principal, once: None when it is unknown, expired, used, or its session ended.

    `load_principal` resolves access-token claims as the bearer authentication does: through the
    principal cache, the socket shares the principal its ticket request just loaded instead of
    holding a copy of its own for as long as it stays open."""
    if not ticket or len(ticket) > 100:
        return None
    now = runtime.clock.now()
    tickets = table_of(WsTicket)
    async with runtime.unit_of_work(actor="ws", command="ws.redeem") as session:
        redeemed = (
            await session.execute(
                update(tickets)
                .where(
                    tickets.c.ticket_hash == _digest(ticket),
                    tickets.c.used_at.is_(None),
                    tickets.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(tickets.c.user_id, tickets.c.session_id)
            )
        ).first()
    if redeemed is None:
        return None
    return await load_principal({"sub": redeemed.user_id, "sid": redeemed.session_id})
