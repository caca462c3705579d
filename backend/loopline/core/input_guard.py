"""Refuse NUL characters in any request input before it reaches a handler.

PostgreSQL cannot store U+0000 in text and SQLite truncates it in places, so a NUL in a
path, a query parameter or a JSON string is answered with a 400 on both databases alike,
instead of surfacing as a database error deep inside a write.

Routes whose body is bytes rather than text (photo chunks) say so with
`opt={BINARY_BODY: True}`: their bodies are never stored as text, and reading them here
would take the body out of the handler's hands (its size limit and its error answers).
Routes whose body holds items that are refused one by one (a sync push: a NUL in one
mutation is that mutation's rejection, not the whole outbox's) say so with
`opt={CHECKS_ITEMS_ITSELF: True}` and screen their items themselves.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request

from loopline.core.errors import AppError

# `\u0000` in JSON text, unless its backslash is itself escaped (`\\u0000` is harmless text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

BINARY_BODY = "binary_body"
CHECKS_ITEMS_ITSELF = "checks_items_itself"


def _refuse() -> AppError:
    return AppError("invalid_character", "The request contains a NUL character, which cannot be stored.")


async def refuse_nul_characters(request: Request[Any, Any, Any]) -> None:
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    if b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(request.scope.get("query_string", b"")):
        raise _refuse()
    opt = request.route_handler.opt
    if request.method in {"POST", "PUT", "PATCH"} and not (opt.get(BINARY_BODY) or opt.get(CHECKS_ITEMS_ITSELF)):
        body = await request.body()
        if b"\x00" in body or _JSON_NUL.search(body):
            raise _refuse()
