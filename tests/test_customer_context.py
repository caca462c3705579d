"""A customer's case context carries what is published to them, and nothing they get 404 for directly."""

from __future__ import annotations

import json
import re
from typing import Any

from litestar.testing import AsyncTestClient
from sqlmodel import select

from loopline.core.runtime import Runtime
from loopline.threads.models import SubjectType, Thread
from tests.conftest import Login
from tests.customer_views import CUSTOMER_FIELDS
from tests.loop_helpers import LOT_018, demo_ids, lot_018_under_advisory
from tests.sync_helpers import Device, new_id

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PHOTO = {"customer": "a" * 64, "rep": "b" * 64, "inspector": "c" * 64}


async def _applied(device: Device, name: str, args: dict[str, Any]) -> None:
    [result] = (await device.push_ok(device.mutation(name, args)))["results"]
    assert result["status"] == "applied", result


async def _case_thread(runtime: Runtime, case_id: str) -> str:
    async with runtime.db.read_session() as session:
        thread = await session.scalar(
            select(Thread.id).where(Thread.subject_type == SubjectType.CASE, Thread.subject_id == case_id)
        )
    assert thread is not None
    return thread


async def test_a_customer_sees_the_lot_the_advisory_and_what_is_published_to_them_only(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    ids = await demo_ids(world_runtime)
    await lot_018_under_advisory(world_client, world_login, world_runtime, ids)
    gil = Device(world_client, await world_login("gil.workshop"))
    lucia = Device(world_client, await world_login("lucia.martin"))
    wang = Device(world_client, await world_login("wang.lei"))
    case_id = new_id()
    await _applied(
        gil,
        "case.open",
        {"id": case_id, "title": "Three headlamps flicker", "lot_no": LOT_018, "category_code": "FLICKER"},
    )
    thread_id = await _case_thread(world_runtime, case_id)
    for visibility, body in [("customer", "We are sending replacements."), ("internal", "Keep this between us.")]:
        await _applied(
            lucia, "message.post", {"id": new_id(), "thread_id": thread_id, "body": body, "visibility": visibility}
        )
    staff_context = (await world_client.get(f"/api/v1/cases/{case_id}/context", headers=lucia.headers)).json()
    [inspection] = staff_context["inspections"]
    for device, entity, entity_id, photo in [
        (gil, "case", case_id, PHOTO["customer"]),
        (lucia, "case", case_id, PHOTO["rep"]),
        (wang, "inspection", inspection["inspection"]["id"], PHOTO["inspector"]),
    ]:
        await _applied(device, "attachment.link", {"entity": entity, "entity_id": entity_id, "sha256": photo})
    staff_context = (await world_client.get(f"/api/v1/cases/{case_id}/context", headers=lucia.headers)).json()

    response = await world_client.get(f"/api/v1/cases/{case_id}/context", headers=gil.headers)

    assert response.status_code == 200, response.text
    context = response.json()
    assert set(context) == {"case", "product", "lot", "advisories", "messages", "attachments"}
    assert set(context["case"]) == CUSTOMER_FIELDS["case"]
    assert set(context["product"]) == CUSTOMER_FIELDS["product_model"]
    assert context["lot"] == {
        "lot_no": LOT_018,
        "received": [{"number": "SH-5536", "shipped_at": context["lot"]["received"][0]["shipped_at"], "qty": 800}],
    }
    assert context["product"]["sku"] == "HLD-200"
    [advisory] = context["advisories"]
    assert (advisory["status"], advisory["lot_nos"]) == ("sent", [LOT_018])
    # The drafted summary counts the accounts that received the lot: staff's business.
    assert set(advisory) == CUSTOMER_FIELDS["advisory"] | {"lot_nos", "recipients"}
    assert {key for recipient in advisory["recipients"] for key in recipient} == CUSTOMER_FIELDS["advisory_recipient"]
    assert [set(a) for a in context["attachments"]] == [CUSTOMER_FIELDS["attachment"]]
    assert [m["body"] for m in context["messages"]] == ["We are sending replacements."]
    assert [a["sha256"] for a in context["attachments"]] == [PHOTO["customer"]]

    # Nothing of the manufacturer's records: no id, name or note a customer would get 404 for.
    staff_only = {
        *(
            value
            for part in ("inspections", "nonconformances")
            for value in UUID.findall(json.dumps(staff_context[part]))
        ),
        *(a["id"] for a in staff_context["attachments"]),
        staff_context["case"]["nc_id"],
    }
    assert staff_only, "the staff context has internal records to keep back"
    text = response.text
    assert [leaked for leaked in staff_only if leaked in text] == [a["id"] for a in context["attachments"]]
    for secret in ("Keep this between us.", inspection["inspection"]["device_id"], "spc_signals", "inspector_id"):
        assert secret not in text
    for unreadable in staff_only - {a["id"] for a in context["attachments"]}:
        for path in ("inspections", "nonconformances"):
            assert (await world_client.get(f"/api/v1/{path}/{unreadable}", headers=gil.headers)).status_code == 404
