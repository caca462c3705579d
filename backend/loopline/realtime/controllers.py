"""`POST /ws/ticket` and the WebSocket `GET /ws?ticket=…` (see shared/design/realtime.md)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs

from litestar import Controller, WebSocket, post, websocket
from litestar.datastructures import State
from litestar.handlers import WebsocketRouteHandler
from pydantic import BaseModel

from loopline.core.api import PrincipalDep, RuntimeDep
from loopline.realtime.frames import CLOSE_FORBIDDEN, CLOSE_SESSION_ENDED
from loopline.realtime.hub import Hub
from loopline.realtime.sessions import serve_socket
from loopline.realtime.tickets import issue_ticket, redeem_ticket


class Ticket(BaseModel):
    ticket: str
    expires_at: datetime


class LiveController(Controller):
    path = "/ws"
    tags = ["realtime"]

    @post("/ticket", operation_id="ws_ticket", status_code=201)
    async def ticket(self, runtime: RuntimeDep, principal: PrincipalDep) -> Ticket:
        """A one-minute, single-use ticket for opening the live socket (browsers cannot set headers on it)."""
        ticket, expires_at = await issue_ticket(runtime, principal)
        return Ticket(ticket=ticket, expires_at=expires_at)


@websocket("/ws", exclude_from_auth=True)
async def live(socket: WebSocket[object, object, State]) -> None:
    """The live tail. A missing, expired, reused or forged ticket, or a foreign Origin, refuses the upgrade."""
    hub: Hub = socket.app.state.hub
    allowed = hub.runtime.settings.ws_allowed_origins
    origin = _origin(socket)
    if allowed and origin is not None and origin not in allowed.split(","):
        await socket.close(code=CLOSE_FORBIDDEN, reason="origin not allowed")
        return
    state = socket.app.state
    principal = await redeem_ticket(hub.runtime, _ticket(socket), lambda claims: state.principal_loader(state, claims))
    if principal is None:
        # Closing before accepting refuses the upgrade (HTTP 403): the client fetches a new ticket.
        await socket.close(code=CLOSE_SESSION_ENDED, reason="invalid ticket")
        return
    await socket.accept()
    # Nothing reads a header past this point, and the scope would hold all of them for as long as
    # the socket stays open: a browser's (cookies, user agent, …) weigh a KB or two per socket.
    socket.scope["headers"] = []
    await serve_socket(hub, socket, principal)


def _origin(socket: WebSocket[object, object, State]) -> str | None:
    """Read from the raw scope: `socket.headers` would decode every header and keep them for as
    long as the socket stays open."""
    for name, value in socket.scope["headers"]:
        if name == b"origin":  # ASGI servers hand header names over in lower case
            return value.decode("latin-1")
    return None


def _ticket(socket: WebSocket[object, object, State]) -> str:
    """Read from the raw scope, like the origin: `socket.query_params` would keep its parse too."""
    return parse_qs(socket.scope["query_string"].decode("latin-1")).get("ticket", [""])[0]


controllers: list[type[Controller] | WebsocketRouteHandler] = [LiveController, live]
