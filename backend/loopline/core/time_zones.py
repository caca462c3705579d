"""Time zone names as people type them: only IANA names this machine's zoneinfo knows are kept.

A plant's local day (shift boundaries, "today" on its dashboards) is computed with its
zone; a name zoneinfo cannot load would fail there, long after it was accepted.
"""

from __future__ import annotations

import functools
import zoneinfo

from loopline.core.errors import AppError


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def require_known_time_zone(name: str, *, field: str = "tz") -> None:
    if name not in _known():
        raise AppError(
            "unknown_time_zone",
            f"{name!r} is not a known time zone; use an IANA name such as 'Europe/Berlin' or 'UTC'.",
            details={"field": field, "value": name},
        )
