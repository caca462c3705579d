"""Reading a push so that only the mutation at fault is refused.

A device resends a refused push unchanged, for ever: a request-level error for something
inside one mutation would stop its whole outbox. So the body is decoded even when one
mutation's args hold what the fast decoder refuses (a lone surrogate escape such as
`\\ud800`, which a browser's `JSON.stringify` writes, or a deep nesting), and each
mutation's args are then screened alone for what no database column or JSON encoder can
take: a NUL or a lone surrogate in a string or key, an integer beyond 64 bits, a
non-finite number, a nesting deeper than `MAX_ARGS_DEPTH`. A mutation that fails the
screen is rejected with a code before any handler sees it, and nothing of its content is
echoed (the location of the fault names unsafe keys by their `ascii()` form).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

from loopline.syncing.registry import MutationRejected
from loopline_sync import MAX_ARGS_DEPTH
from loopline_sync.protocol import nests_deeper_than

# U+0000 and UTF-16 surrogate halves: PostgreSQL text refuses the first, UTF-8 the second.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SMALLEST_INT, _LARGEST_INT = -(2**63), 2**63 - 1

Loc = list[str | int]


class PushRequestBody(Request[Any, Any, Any]):
    """The request of `/sync/push`: its JSON body decoded even when the fast decoder refuses it.

    Only a body that is not JSON at all (or nests deeper than Python's own parser goes)
    is a malformed request; the fast decoder's other refusals are left to the screen.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except (SerializationException, RecursionError) as refused:
            try:
                return json.loads(await self.body(), parse_constant=_refuse_constant)
            except (ValueError, RecursionError):
                if isinstance(refused, RecursionError):
                    raise SerializationException("The JSON body nests too deeply.") from None
                raise refused from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def args_problem(args: Any) -> MutationRejected | None:
    """Why these args can never be applied as sent, or None if handlers may judge them."""
    if not isinstance(args, dict):
        return MutationRejected("validation_error", "A mutation's args are a JSON object.", {"loc": []})
    if nests_deeper_than(args, MAX_ARGS_DEPTH):
        return MutationRejected(
            "too_deep", f"The args nest deeper than {MAX_ARGS_DEPTH} levels.", {"max_depth": MAX_ARGS_DEPTH}
        )
    pending: list[tuple[Any, Loc]] = [(args, [])]
    while pending:
        value, loc = pending.pop()
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return _invalid_character([*loc, ascii(key)])
                pending.append((item, [*loc, key]))
        elif isinstance(value, str):
            if _UNSTORABLE.search(value):
                return _invalid_character(loc)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not _SMALLEST_INT <= value <= _LARGEST_INT:
            return MutationRejected("invalid_value", "A number is beyond the 64-bit integer range.", {"loc": loc})
        elif isinstance(value, float) and not math.isfinite(value):
            return MutationRejected("invalid_value", "A number is not finite.", {"loc": loc})
    return None


def _invalid_character(loc: Loc) -> MutationRejected:
    return MutationRejected(
        "invalid_character",
        "The args contain a NUL character or a lone surrogate, which cannot be stored.",
        {"loc": loc},
    )
