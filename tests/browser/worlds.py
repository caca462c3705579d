"""A demo world with a server of its own, for browser tests that change what they look at.

Building a world runs an event loop (`asyncio.run`); Playwright's sync API already runs one
in the test thread, so the world is built and dropped on a worker thread.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from loopline.core.settings import Settings
from loopline.demo.loader import load_demo
from tests.support import DEMO_PASSWORD, demo_world, running_server


@contextlib.contextmanager
def scenario_server(data_dir: Path) -> Iterator[tuple[Settings, str]]:
    """The whole demo scenario played, and a `loopline serve` on it: (settings, base URL)."""
    world = demo_world(data_dir, loader=load_demo)
    with ThreadPoolExecutor(1) as worker:
        settings = worker.submit(world.__enter__).result()
        try:
            with running_server(settings) as base:
                yield settings, base
        finally:
            worker.submit(world.__exit__, None, None, None).result()


@contextlib.contextmanager
def api_as(base: str, username: str) -> Iterator[httpx.Client]:
    """The HTTP API as `username`, as any integration would call it."""
    with httpx.Client(base_url=base + "/api/v1", timeout=30) as http:
        tokens = http.post("/auth/login", json={"username": username, "password": DEMO_PASSWORD}).json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        yield http


def items(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    answer = http.get(path, params=params)
    answer.raise_for_status()
    return list(answer.json()["items"])


def pulled(base: str, username: str) -> dict[str, list[dict[str, Any]]]:
    """What a new device of `username` holds after its initial sync: rows by entity."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    with api_as(base, username) as http:
        cursor, client_id = None, str(uuid.uuid4())
        while True:
            page = http.post(
                "/sync/pull", json={"client_id": client_id, "schema_version": 1, "cursor": cursor, "limit": 500}
            ).json()
            for change in page["changes"]:
                by_id = rows.setdefault(change["entity"], {})
                if change["op"] == "put":
                    by_id[change["id"]] = change["data"]
                else:
                    by_id.pop(change["id"], None)
            cursor = page["cursor"]
            if not page["has_more"]:
                return {entity: list(by_id.values()) for entity, by_id in rows.items()}
