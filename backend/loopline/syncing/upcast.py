"""Mutations from the previous schema version, rewritten to the current one.

A device that was offline across a server upgrade still holds mutations in the old
shape; the server upcasts them rather than rejecting a queue that cannot be re-made.
Schema 0 differed from 1 in two argument names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopline_sync.protocol import Mutation

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _renamed(old: str, new: str) -> Upcaster:
    def upcast(args: dict[str, Any]) -> dict[str, Any]:
        if old not in args:
            return args
        renamed = {k: v for k, v in args.items() if k != old}
        renamed.setdefault(new, args[old])
        return renamed

    return upcast


FROM_SCHEMA_0: dict[str, Upcaster] = {
    "message.post": _renamed("text", "body"),
    "defect.report": _renamed("qty", "qty_affected"),
}


def upcast(mutation: Mutation, schema_version: int) -> Mutation:
    # Args that are not an object are rejected as they came (syncing/push_input.py).
    if schema_version == 0 and mutation.name in FROM_SCHEMA_0 and isinstance(mutation.args, dict):
        return mutation.model_copy(update={"args": FROM_SCHEMA_0[mutation.name](mutation.args)})
    return mutation
