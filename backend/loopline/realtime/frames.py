"""The frames of the live tail (see shared/design/realtime.md), one definition for both ends.

Client → server frames are parsed with one discriminated union; an unknown `type` or a
malformed frame is answered with an `error` frame and the connection stays up, except
before `hello`, where nothing else makes sense.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from loopline_sync import SCHEMA_VERSION
from loopline_sync.protocol import Change, ClientId, is_client_id

# Application close codes (4000-4999). The client reconnects after 4008 and 1001. 4401: the
# session ended (logout, refresh-token reuse, deactivation, a password change or reset, erasure), so
# the client must refresh its tokens or, when that is refused, sign in again before it
# reconnects; it also refuses the upgrade when the ticket is not valid.
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_SLOW = 4008
CLOSE_PROTOCOL_ERROR = 4400
CLOSE_SESSION_ENDED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_HELLO = 4408


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hello(_Frame):
    type: Literal["hello"]
    client_id: ClientId
    cursor: str | None = Field(default=None, max_length=1000)
    schema_version: int = Field(default=SCHEMA_VERSION, ge=0, le=1000)


class Ack(_Frame):
    type: Literal["ack"]
    cursor: str = Field(max_length=1000)


class Typing(_Frame):
    type: Literal["typing"]
    thread_id: str = Field(max_length=36)
    state: Literal["start", "stop"]


class PresenceState(_Frame):
    type: Literal["presence"]
    state: Literal["active", "idle"]


class Viewing(_Frame):
    type: Literal["viewing"]
    thread_id: str | None = Field(default=None, max_length=36)


ClientFrame = Annotated[Hello | Ack | Typing | PresenceState | Viewing, Field(discriminator="type")]
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class BadFrame(ValueError):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        # A stable code of its own when the fault has one (else the caller's generic one).
        self.code = code


def parse_client_frame(text: str | bytes) -> ClientFrame:
    try:
        frame = _client_frame.validate_json(text)
    except ValidationError as exc:
        raise BadFrame(exc.errors(include_url=False, include_context=False)[0]["msg"]) from exc
    if isinstance(frame, Hello) and not is_client_id(frame.client_id):
        # The same rule, and the same code, as the client id of a push or a pull.
        raise BadFrame("client_id must be a UUID (8-4-4-4-12 hexadecimal digits).", "invalid_client_id")
    return frame


def encode_change(change: Change) -> bytes:
    return orjson.dumps(
        {
            "seq": change.seq,
            "entity": change.entity,
            "id": change.id,
            "op": change.op,
            "version": change.version,
            "data": change.data,
        }
    )


def changes_frame(changes: list[bytes], cursor: str) -> bytes:
    """A `changes` frame from changes already encoded once (a change goes to many sockets)."""
    return b'{"type":"changes","changes":[' + b",".join(changes) + b'],"cursor":' + orjson.dumps(cursor) + b"}"


def signal_frame(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"type": kind, **fields})


def error_frame(code: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"code": code, "message": message}})
