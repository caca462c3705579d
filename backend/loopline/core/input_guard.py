"""Check every request's input before Litestar parses it or a handler sees it.

This is the app's `before_request` hook, so it is the one place every route's input
passes (Litestar parses a JSON body only after the hook, when it builds the handler's
arguments). It refuses:

- a body larger than the route's limit (`max_body_bytes` unless the route sets its own):
  Litestar counts the bytes as the hook reads them and answers 413 `payload_too_large`;
- a body sent to a JSON route as anything but JSON (415 `unsupported_media_type`), so
  text that happens to parse as JSON is not taken for it;
- JSON nested deeper than `MAX_JSON_DEPTH` (400 `json_too_deep`): the decoder recurses
  once per level, and a body of 100,000 `[` exhausted the stack (a 500) even before
  sign-in;
- NUL characters in the path, the query or a JSON string (400 `invalid_character`):
  PostgreSQL cannot store U+0000 in text and SQLite truncates it in places, so it is
  refused on both databases alike instead of surfacing as a database error deep inside
  a write.

Routes whose body is bytes rather than JSON (photo chunks) say so with
`opt={BINARY_BODY: True}`: reading their bodies here would take them out of the
handler's hands (its own size limit and its error answers). Routes whose body holds items
that are refused one by one (a sync push: a NUL in one mutation is that mutation's
rejection, not the whole outbox's) say so with `opt={CHECKS_ITEMS_ITSELF: True}`: here
their bodies are checked for their media type only; nesting and NUL characters are
screened item by item by the route (a device could otherwise queue an item that blocks
its outbox for ever).
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request

from loopline.core.errors import AppError

BINARY_BODY = "binary_body"
CHECKS_ITEMS_ITSELF = "checks_items_itself"
# Loopline's own documents nest a handful of levels; this leaves room without letting
# the decoder's recursion anywhere near Python's limit.
MAX_JSON_DEPTH = 64
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# `\u0000` in JSON text, unless its backslash is itself escaped (`\\u0000` is harmless text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Everything but quotes and brackets; and a string on what is left of a body once escapes
# are gone (one left open runs to the end).
_NOT_QUOTE_OR_BRACKET = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*(?:"|\Z)')
_NESTING_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body`, as a JSON decoder would reach it.

    Brackets inside strings are text. Escapes go first, backslashes paired from the left as
    a JSON lexer pairs them, so every quote left opens or closes a string. Malformed JSON
    gets a number too: a decoder stops at the first error, and up to there it saw the same
    strings and brackets as this count. All but the last step run in C.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRING.sub(b"", unescaped.translate(None, _NOT_QUOTE_OR_BRACKET))
    return max(accumulate(map(_NESTING_STEP.__getitem__, brackets)), default=0)


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _refuse_nul() -> AppError:
    return AppError("invalid_character", "The request contains a NUL character, which cannot be stored.")


def _check_json_body(request: Request[Any, Any, Any], body: bytes, *, items_checked_by_route: bool) -> None:
    media_type, _ = request.content_type
    if not is_json_media_type(media_type):
        raise AppError(
            "unsupported_media_type",
            "This route takes a JSON body, sent with `Content-Type: application/json`.",
            status_code=415,
            details={"content_type": media_type},
        )
    if items_checked_by_route:
        return
    if json_depth(body) > MAX_JSON_DEPTH:
        raise AppError(
            "json_too_deep",
            f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.",
            details={"max_depth": MAX_JSON_DEPTH},
        )
    # The substring test first: the regex is slow on every body, and most never contain it.
    if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body)):
        raise _refuse_nul()


async def guard_request_input(request: Request[Any, Any, Any]) -> None:
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(request.scope.get("query_string", b"")):
        raise _refuse_nul()
    opt = request.route_handler.opt
    if request.method in METHODS_WITH_BODY and not opt.get(BINARY_BODY):
        body = await request.body()
        if body:
            _check_json_body(request, body, items_checked_by_route=bool(opt.get(CHECKS_ITEMS_ITSELF)))
