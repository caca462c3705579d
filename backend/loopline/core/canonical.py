"""Canonical JSON: one byte sequence per value, the input of the audit hash chain."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

_PLAIN = frozenset({str, int, float, bool})


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for the values entities hold (times as UTC ISO-8601)."""
    if value is None or type(value) in _PLAIN:
        return value
    # Most common first: timestamps and enum-typed columns are in every row.
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def jsonable_fields(fields: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A record's fields through `to_jsonable`; the plain values, most of them, without a call
    each, which counts when a rule publishes a thousand rows in one commit."""
    return {name: value if value is None or type(value) in _PLAIN else to_jsonable(value) for name, value in fields}


def _leaf(value: Any) -> Any:
    jsonable = to_jsonable(value)
    if jsonable is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return jsonable


# json calls `_leaf` only for values it cannot encode itself, so plain data is never walked twice.
# Built once: the audit chain encodes an event per changed entity, a thousand in a rule's commit.
_CANONICAL = json.JSONEncoder(default=_leaf, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()
