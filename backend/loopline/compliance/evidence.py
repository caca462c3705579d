"""The audit chain as evidence (ISO 9001 §7.5.3, §8.7, §10.2), in a form an auditor checks without us.

An export is JSON lines, one event per line in seq order, each line the event's canonical
JSON (keys sorted, no whitespace, UTF-8): `seq`, `at`, `actor`, `command`, `entity`,
`entity_id`, `action`, `diff`, `prev_hash`, `hash`. To verify it, take each line without
`prev_hash` and `hash`, serialize it canonically, and check that SHA-256 over the ASCII
`prev_hash` followed by those bytes is `hash`, and that each `prev_hash` is the previous
line's `hash` (64 zeros before seq 1). The last `hash` is the head to anchor elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from loopline.core.audit import chain_events, exported
from loopline.core.canonical import canonical_json
from loopline.core.db import Database

MEDIA_TYPE = "application/x-ndjson"


async def export_lines(db: Database, *, after_seq: int, up_to: int) -> AsyncIterator[bytes]:
    """The events after `after_seq` up to `up_to` as export lines, streamed from one read transaction."""
    async with db.read_session() as session:
        async for event in await chain_events(session, after_seq=after_seq, up_to=up_to):
            yield canonical_json(exported(event)) + b"\n"
