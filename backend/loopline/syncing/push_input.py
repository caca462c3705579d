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
    fault = _fault(args, 1)
    if fault is None:
        return None
    code, inside_out = fault
    loc = inside_out[::-1]
    if code == "too_deep":
        message = f"The args nest deeper than {MAX_ARGS_DEPTH} levels."
        return MutationRejected(code, message, {"loc": loc, "max_depth": MAX_ARGS_DEPTH})
    if code == "invalid_character":
        message = "The args contain a NUL character or a lone surrogate, which cannot be stored."
        return MutationRejected(code, message, {"loc": loc})
    return MutationRejected(code, "A number is beyond the 64-bit integer range or not finite.", {"loc": loc})


def _fault(value: Any, depth: int) -> tuple[str, Loc] | None:
    """The first fault in a JSON value: its code and its location, innermost key first.

    Depth counts as `loopline_sync.protocol.nests_deeper_than` does (the args object is
    level 1), so the recursion is bounded. Locations are built only for a fault: every
    push's every mutation passes through here.
    """
    if isinstance(value, str):
        return ("invalid_character", []) if _UNSTORABLE.search(value) else None
    if isinstance(value, dict | list):
        if depth > MAX_ARGS_DEPTH:
            return "too_deep", []
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return "invalid_character", [ascii(key)]
            fault = _fault(item, depth + 1)
            if fault is not None:
                fault[1].append(key)
                return fault
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not _SMALLEST_INT <= value <= _LARGEST_INT:
        return "invalid_value", []
    if isinstance(value, float) and not math.isfinite(value):
        return "invalid_value", []
    return None
