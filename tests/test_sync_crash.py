"""A server killed (SIGKILL) after committing a push but before answering: the retry neither loses nor repeats."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loopline.core.settings import Settings
from tests.support import DEMO_PASSWORD, demo_world, running_server


@pytest.fixture
def crash_world(tmp_path: Any) -> Iterator[Settings]:
    with demo_world(tmp_path) as settings:
        yield settings


def _headers(base: str) -> dict[str, str]:
    tokens = httpx.post(f"{base}/api/v1/auth/login", json={"username": "wang.lei", "password": DEMO_PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.mark.slow
def test_a_push_committed_by_a_server_killed_before_answering_is_applied_exactly_once(
    crash_world: Settings,
) -> None:
    client_id = str(uuid.uuid4())
    with running_server(crash_world) as base:
        headers = _headers(base)
        lot = httpx.get(f"{base}/api/v1/batches", headers=headers, params={"lot_no": "CN-SZ-L2-2406-018"}).json()[
            "items"
        ][0]
    mutations = [
        {
            "mid": mid,
            "id": str(uuid.uuid4()),
            "name": "defect.report",
            "args": {
                "id": str(uuid.uuid4()),
                "batch_id": lot["id"],
                "defect_code": "CC-THIN",
                "severity": "major",
                "description": f"edge {mid}",
                "captured_at": "2024-06-17T08:12:00Z",
            },
        }
        for mid in range(1, 11)
    ]
    push = {"client_id": client_id, "schema_version": 1, "mutations": mutations}

    with running_server(crash_world, ("LOOPLINE_FAULT_INJECTION", "kill_after_push_commit")) as base:
        headers = _headers(base)
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{base}/api/v1/sync/push", headers=headers, json=push, timeout=30)

    with running_server(crash_world) as base:
        headers = _headers(base)
        retried = httpx.post(f"{base}/api/v1/sync/push", headers=headers, json=push, timeout=30).json()
        assert retried["last_mid"] == 10
        assert [r["status"] for r in retried["results"]] == ["duplicate"] * 10
        assert {r["original_status"] for r in retried["results"]} == {"applied"}
        defects = httpx.get(f"{base}/api/v1/defects", headers=headers, params={"limit": 500}).json()["items"]
        assert sorted(d["description"] for d in defects) == sorted(f"edge {mid}" for mid in range(1, 11))
