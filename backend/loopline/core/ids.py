"""Identifiers: UUIDv7 strings, time-ordered so they also serve as a stable sort key."""

from __future__ import annotations

import uuid6


def new_id() -> str:
    return str(uuid6.uuid7())
