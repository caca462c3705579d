"""Inside a case, staff see the line's control limits and the lot's trace as far as their scope reaches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.core.runtime import Runtime
from loopline.customer.models import Account, Case
from tests.conftest import Login
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, demo_ids, inspection
from tests.sync_helpers import Device


async def test_a_rep_sees_the_control_limits_and_only_their_own_account_in_the_trace(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    ids = await demo_ids(world_runtime)
    wang = Device(world_client, await world_login("wang.lei"))
    # The early shift passes, then the late shift's samples fall below the LSL.
    in_spec = inspection(ids, LOT_018, [34, 36, 33, 35, 37])
    deviation = inspection(ids, LOT_018, LATE_SHIFT_C1)
    for submitted in (in_spec, deviation):
        await wang.push_ok(wang.mutation("inspection.submit", submitted))
    async with world_runtime.db.read_session() as session:
        a003 = await session.scalar(select(Account.id).where(Account.code == "A-003"))
        case = await session.scalar(select(Case).where(Case.account_id == a003))
    assert case is not None
    assert case.created_at is not None
    case_id = case.id
    lucia = await world_login("lucia.martin")

    response = await world_client.get(f"/api/v1/cases/{case_id}/context", headers=lucia)

    assert response.status_code == 200, response.text
    context = response.json()
    [c1] = context["capability"]
    assert c1["characteristic_code"] == "C1"
    # The line's last capability in control: not the one that counts the deviation in.
    assert c1["inspection_id"] == in_spec["id"]
    assert datetime.fromisoformat(c1["created_at"]) <= case.created_at
    assert c1["sigma"] > 0
    trace = context["trace"]
    assert [account["code"] for account in trace["accounts"]] == ["A-003"]
    assert trace["accounts"][0]["qty"] == 800
    assert trace["other_accounts_qty"] == 3200
