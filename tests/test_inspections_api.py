"""`POST /api/v1/inspections`: the REST face of `inspection.submit`, with the same rules and idempotency."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func
from sqlmodel import select

from loopline.core.runtime import Runtime
from loopline.customer.models import Case
from loopline.quality.models import Batch, Inspection, NonConformance
from tests.conftest import Login
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, LOT_019, demo_ids, inspection


@pytest.fixture(scope="module")
async def ids(world_runtime: Runtime) -> dict[str, str]:
    return await demo_ids(world_runtime)


async def counts(runtime: Runtime) -> tuple[int, int, int]:
    async with runtime.db.read_session() as session:
        return tuple(  # type: ignore[return-value]
            [
                int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Inspection, NonConformance, Case)
            ]
        )


async def test_an_out_of_spec_inspection_posted_over_rest_runs_the_loop_once(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime, ids: dict[str, str]
) -> None:
    wang = await world_login("wang.lei")
    body = inspection(ids, LOT_018, LATE_SHIFT_C1, number="INS-90001")
    response = await world_client.post("/api/v1/inspections", headers=wang, json=body)
    assert response.status_code == 201, response.text
    detail = response.json()
    assert (detail["inspection"]["id"], detail["inspection"]["result"]) == (body["id"], "fail")
    assert [m["value"] for m in detail["measurements"]] == LATE_SHIFT_C1
    after_first = await counts(world_runtime)
    async with world_runtime.db.read_session() as session:
        [nc] = (await session.scalars(select(NonConformance))).all()
        lot = await session.get(Batch, ids[LOT_018])
    assert (nc.source_ref, after_first) == ("INS-90001", (1, 1, 3))
    assert lot is not None
    assert lot.status == "on_hold"

    # A retry of the same request is answered from what is stored; nothing happens twice.
    again = await world_client.post("/api/v1/inspections", headers=wang, json=body)
    assert again.status_code == 201, again.text
    assert again.json() == detail
    assert await counts(world_runtime) == after_first
    changed = {**body, "notes": "another inspection under the same id"}
    conflict = await world_client.post("/api/v1/inspections", headers=wang, json=changed)
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "id_conflict")


@pytest.mark.parametrize(
    ("who", "change", "status", "code"),
    [
        ("gil.workshop", {}, 403, "forbidden"),
        ("jana.novak", {}, 404, "not_found"),  # Brno's inspector cannot read a Suzhou lot
        ("wang.lei", {"plan_id": "no-such-plan"}, 404, "not_found"),
        ("wang.lei", {"measurements": [{"characteristic": "C9", "value": 1.0}]}, 422, "unknown_characteristic"),
        ("wang.lei", {"kind": "guesswork"}, 400, "validation_error"),
    ],
)
async def test_a_refused_inspection_is_a_clear_error_and_stores_nothing(
    world_client: AsyncTestClient[Any],
    world_login: Login,
    world_runtime: Runtime,
    ids: dict[str, str],
    who: str,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = await counts(world_runtime)
    body = {**inspection(ids, LOT_019, [49.0, 50.5, 51.2, 48.8, 50.1]), **change}
    response = await world_client.post("/api/v1/inspections", headers=await world_login(who), json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert await counts(world_runtime) == before
