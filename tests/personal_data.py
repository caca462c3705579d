"""Where a person's data survives: every stored value of every table, searched for it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from loopline.core.runtime import Runtime


def _as_text(stored: Any) -> str:
    if isinstance(stored, bytes):
        return stored.decode("utf-8", "replace")
    if isinstance(stored, dict | list):
        return json.dumps(stored, ensure_ascii=False)
    return str(stored)


def _table_names(session: Session) -> list[str]:
    return inspect(session.connection()).get_table_names()


async def copies_of(runtime: Runtime, values: Iterable[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) for every stored value, in any table, that contains one of `values`.

    Values are looked for as written and as JSON escapes them (`Mart\\u00edn`), in the raw
    column text the database returns, so a JSON column is searched as stored.
    """
    forms = {value: {value, json.dumps(value)[1:-1]} for value in values}
    found: list[tuple[str, str, str]] = []
    async with runtime.db.read_session() as session:
        for table in await session.run_sync(_table_names):
            for row in (await session.execute(text(f'SELECT * FROM "{table}"'))).mappings():
                for column, stored in row.items():
                    if stored is None:
                        continue
                    stored_text = _as_text(stored)
                    found.extend(
                        (table, column, value)
                        for value, written in forms.items()
                        if any(form in stored_text for form in written)
                    )
    return found
