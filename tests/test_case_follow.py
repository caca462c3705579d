"""`case.follow`: a customer portal user joins the thread of one of their account's cases and
from then on reads its customer-visible messages, never its internal notes; no one else
follows, and no customer follows another account's case."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from loopline.core.runtime import Runtime
from tests.conftest import Login
from tests.loop_helpers import demo_ids
from tests.sync_helpers import Device, new_id


def _rows(device: Device, entity: str) -> list[dict[str, Any]]:
    return [data for (kind, _), (_, data) in device.read_model.items() if kind == entity]


async def _result(device: Device, name: str, args: dict[str, Any]) -> dict[str, Any]:
    [result] = (await device.push_ok(device.mutation(name, args)))["results"]
    return dict(result)


async def test_a_customer_follows_their_accounts_case_and_reads_only_what_is_meant_for_them(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    ids = await demo_ids(world_runtime)
    lena = Device(world_client, await world_login("lena.fischer"))
    thomas = Device(world_client, await world_login("thomas.brandt"))
    case_id = new_id()
    opened = await _result(lena, "case.open", {"id": case_id, "account_id": ids["A-001"], "title": "Label misprint"})
    assert opened["status"] == "applied", opened
    await lena.pull_all()
    [thread] = [row for row in _rows(lena, "thread") if row["subject_id"] == case_id]
    for visibility, body in [("internal", "Check the printer first."), ("customer", "We are looking into it.")]:
        args = {"id": new_id(), "thread_id": thread["id"], "body": body, "visibility": visibility}
        assert (await _result(lena, "message.post", args))["status"] == "applied"

    await thomas.pull_all()
    assert [row["id"] for row in _rows(thomas, "case")] == [case_id]
    assert _rows(thomas, "thread") == []  # not a participant (yet): the case, not its thread

    for _ in range(2):  # following twice changes nothing
        assert (await _result(thomas, "case.follow", {"id": case_id}))["status"] == "applied"
    await thomas.pull_all()

    assert [row["id"] for row in _rows(thomas, "thread")] == [thread["id"]]
    assert [row["body"] for row in _rows(thomas, "message")] == ["We are looking into it."]
    await lena.pull_all()
    mine = [row for row in _rows(lena, "thread_participant") if row["user_id"] == ids["thomas.brandt"]]
    assert [(row["thread_id"], row["reason"]) for row in mine] == [(thread["id"], "follower")]
    # Now a participant, the customer answers in the thread like the one who filed a case.
    reply = {"id": new_id(), "thread_id": thread["id"], "body": "Thanks.", "visibility": "customer"}
    assert (await _result(thomas, "message.post", reply))["status"] == "applied"


async def test_no_one_but_the_accounts_customers_follows_a_case(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    ids = await demo_ids(world_runtime)
    lena = Device(world_client, await world_login("lena.fischer"))
    case_id = new_id()
    opened = await _result(
        lena, "case.open", {"id": case_id, "account_id": ids["A-001"], "title": "Wrong carton count"}
    )
    assert opened["status"] == "applied", opened

    staff = await _result(lena, "case.follow", {"id": case_id})
    elsewhere = await _result(Device(world_client, await world_login("haruka.tanaka")), "case.follow", {"id": case_id})

    assert (staff["status"], staff["error"]["code"]) == ("rejected", "forbidden")
    assert (elsewhere["status"], elsewhere["error"]["code"]) == ("rejected", "not_found")
