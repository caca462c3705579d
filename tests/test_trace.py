"""The forward trace of a lot: shipments to accounts, with quantities."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import Login


async def test_lot_018_reaches_a001_a002_a003_and_not_the_vips_other_lot(
    client: AsyncTestClient[Any], login: Login, demo_ids: dict[str, str]
) -> None:
    qa = await login("qa.manager")
    response = await client.get(f"/api/v1/batches/{demo_ids['CN-SZ-L2-2406-018']}/trace", headers=qa)
    assert response.status_code == 200, response.text
    trace = response.json()
    assert [(a["code"], a["qty"]) for a in trace["accounts"]] == [("A-001", 2000), ("A-002", 1200), ("A-003", 800)]
    shipments = {s["number"] for a in trace["accounts"] for s in a["shipments"]}
    assert shipments == {"SH-5531", "SH-5534", "SH-5536"}
    assert "SH-5529" not in shipments
    assert (trace["shipped_qty"], trace["unshipped_qty"], trace["other_accounts_qty"]) == (4000, 2000, 0)


async def test_a_rep_sees_only_their_accounts_in_a_trace_and_a_count_of_the_rest(
    client: AsyncTestClient[Any], login: Login, demo_ids: dict[str, str]
) -> None:
    inspector = await login("wang.lei")
    trace = (await client.get(f"/api/v1/batches/{demo_ids['CN-SZ-L2-2406-018']}/trace", headers=inspector)).json()
    assert trace["accounts"] == []
    assert trace["other_accounts_qty"] == 4000
    rep = await login("lucia.martin")
    denied = await client.get(f"/api/v1/batches/{demo_ids['CN-SZ-L2-2406-018']}/trace", headers=rep)
    assert denied.status_code == 404
