"""The pull cursor: opaque to clients, meaningful to the server.

It carries the server epoch (a restored database starts a new epoch), the phase
(`snapshot` while an initial sync pages through current state, then `log`), the
snapshot's high-water seq, the last seq delivered, and a hash of the reader's scopes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Phase = Literal["snapshot", "log"]


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    epoch: str
    phase: Phase
    # In the snapshot phase: the seq the snapshot is taken at. In the log phase: equal to `seq`.
    snapshot_seq: int
    # The last seq delivered (snapshot rows are delivered in seq order too).
    seq: int
    scope_hash: str

    def encode(self) -> str:
        # Every live frame carries one: the instance's own fields, which `asdict` would copy deeply.
        raw = json.dumps(vars(self), separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            fields = json.loads(raw)
            cursor = cls(**fields)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InvalidCursor("not a cursor this server issued") from exc
        if cursor.phase not in ("snapshot", "log") or not all(
            isinstance(v, int) and v >= 0 for v in (cursor.snapshot_seq, cursor.seq)
        ):
            raise InvalidCursor("not a cursor this server issued")
        return cursor


def scope_hash(scope_keys: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(scope_keys))).encode()).hexdigest()[:16]
