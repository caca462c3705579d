"""Client-made identifiers and timestamps.

Entity and mutation ids are UUIDv7: made offline without coordination, unique, and
roughly time-ordered, which keeps the server's indexes compact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import uuid6

Clock = Callable[[], datetime]


def new_id() -> str:
    return str(uuid6.uuid7())


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """`2026-11-23T08:10:00.000Z`: the protocol's timestamp form (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
