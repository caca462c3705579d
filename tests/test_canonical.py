"""Canonical JSON, the input of the audit chain's hashes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from loopline.core.canonical import canonical_json, to_jsonable

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
)
values = st.recursive(leaves, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30)


@given(values)
def test_canonical_json_is_the_sorted_compact_json_of_the_plain_value(value: Any) -> None:
    expected = json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected.encode()


def test_times_are_utc_iso_and_numbers_keep_their_text() -> None:
    value = {"b": Decimal("1.50"), "a": datetime(2024, 6, 17, 8, 12, tzinfo=UTC), "c": date(2024, 6, 17)}
    assert canonical_json(value) == b'{"a":"2024-06-17T08:12:00Z","b":"1.50","c":"2024-06-17"}'
