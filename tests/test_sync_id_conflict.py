"""`id_conflict` tells how a record differs only to those who may read it.

Ids are client-made, so creating with an id that is taken is a bug or a probe. Someone who
cannot read the record learns that the id is taken and nothing else — no differing fields,
and the same answer whatever content it sends — or the rejections would read the record
field by field.
"""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import Login
from tests.sync_helpers import Device, batch_of_lot_018, new_id, new_thread

BARE_CONFLICT = {"code": "id_conflict", "message": "This id is already in use.", "details": {}}


async def first_batch(client: AsyncTestClient[Any], device: Device) -> str:
    batches = (await client.get("/api/v1/batches", headers=device.headers, params={"limit": 1})).json()["items"]
    batch_id: str = batches[0]["id"]
    return batch_id


def defect(defect_id: str, batch_id: str, description: str) -> dict[str, Any]:
    return {
        "id": defect_id,
        "batch_id": batch_id,
        "defect_code": "CC-THIN",
        "severity": "minor",
        "description": description,
        "captured_at": "2024-06-17T08:12:00Z",
    }


async def rejection(device: Device, name: str, args: dict[str, Any]) -> dict[str, Any]:
    [result] = (await device.push_ok(device.mutation(name, args)))["results"]
    assert result["status"] == "rejected", result
    error: dict[str, Any] = result["error"]
    return error


async def test_a_defect_id_of_another_plant_is_only_said_to_be_taken(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))  # Suzhou
    jana = Device(world_client, await world_login("jana.novak"))  # another plant
    taken = new_id()
    await jana.push_ok(jana.mutation("defect.report", defect(taken, await first_batch(world_client, jana), "hers")))

    lot_018 = await batch_of_lot_018(world_client, wang.headers)
    for description in ("hers", "a guess"):
        assert await rejection(wang, "defect.report", defect(taken, lot_018, description)) == BARE_CONFLICT

    # Whoever may read the record is told which fields differ, as before.
    error = await rejection(jana, "defect.report", defect(taken, await first_batch(world_client, jana), "changed"))
    assert error["details"] == {"id": taken, "fields": ["description"]}


async def test_a_message_id_in_a_thread_one_cannot_read_is_only_said_to_be_taken(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    wang = Device(world_client, await world_login("wang.lei"))
    jana = Device(world_client, await world_login("jana.novak"))
    wangs_thread = await new_thread(world_client, wang, await batch_of_lot_018(world_client, wang.headers))
    janas_thread = await new_thread(world_client, jana, await first_batch(world_client, jana))
    taken = new_id()
    await wang.push_ok(wang.mutation("message.post", {"id": taken, "thread_id": wangs_thread, "body": "internal"}))

    probe = {"id": taken, "thread_id": janas_thread, "body": "internal"}
    assert await rejection(jana, "message.post", probe) == BARE_CONFLICT

    error = await rejection(wang, "message.post", {"id": taken, "thread_id": wangs_thread, "body": "edited"})
    assert error["details"] == {"id": taken, "fields": ["body"]}
