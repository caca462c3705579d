"""What a sync request must get right as a whole: its client id and its schema version.

Only the envelope of a request may refuse it whole. A device resends a refused request
unchanged, so anything wrong inside one mutation is that mutation's rejection instead
(see syncing/push_input.py); the envelope is what a client's engine writes itself.
"""

from __future__ import annotations

from loopline.core.errors import AppError
from loopline_sync import SCHEMA_VERSION
from loopline_sync.protocol import is_client_id


def check_client_id(client_id: str) -> None:
    if not is_client_id(client_id):
        raise AppError(
            "invalid_client_id",
            "client_id must be a UUID (8-4-4-4-12 hexadecimal digits) made once per installation.",
        )


def check_schema_version(version: int, *, oldest: int) -> None:
    if version < oldest:
        raise AppError(
            "client_too_old",
            "This app is too old for the server; update it.",
            status_code=426,
            details={"oldest_schema_version": oldest, "schema_version": SCHEMA_VERSION},
        )
    if version > SCHEMA_VERSION:
        raise AppError(
            "schema_version_unsupported",
            "The server does not know this schema version yet.",
            details={"schema_version": SCHEMA_VERSION},
        )
