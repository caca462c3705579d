"""A customer reads every entity in its customer view, by every path: REST, the pull and the live tail.

The views are specified in `tests/customer_views.py`. A drafted advisory is nothing to a
customer until it is sent, and then it arrives like any other change; staff read as before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import col, select

from loopline.core.runtime import Runtime
from loopline.customer.models import Advisory, AdvisoryRecipient, Case
from loopline.customer.projections import for_customer
from loopline_sync.protocol import Change
from tests.conftest import Login
from tests.customer_views import CUSTOMER_FIELDS, shapes_outside_the_views
from tests.live_helpers import Live, User
from tests.loop_helpers import LATE_SHIFT_C1, LOT_018, demo_ids, inspection
from tests.support import demo_world, running_server
from tests.sync_helpers import Device, new_id, principal_of_token, server_state

# Words of the drafted summary ("… 3 accounts received it."), which counts other customers.
SUMMARY_WORDS = "accounts received it"
STAFF_ONLY_KEYS = ("unit_cost", "summary", "amount", "nc_id", "assignee_id", "sla_policy", "approved_by")
PHOTO = {"customer": "d" * 64, "rep": "e" * 64}


def _puts(changes: list[dict[str, Any]], entity: str) -> list[dict[str, Any]]:
    return [c for c in changes if c["entity"] == entity and c["op"] == "put"]


def _assert_customer_shaped(changes: list[dict[str, Any]]) -> None:
    assert shapes_outside_the_views(changes) == []
    text = json.dumps(changes)
    assert SUMMARY_WORDS not in text
    for key in STAFF_ONLY_KEYS:
        assert f'"{key}"' not in text, key
    for advisory in _puts(changes, "advisory"):
        assert advisory["data"]["status"] in ("sent", "closed")


async def _applied(device: Device, name: str, args: dict[str, Any]) -> None:
    [result] = (await device.push_ok(device.mutation(name, args)))["results"]
    assert result["status"] == "applied", result


async def _drafted(client: AsyncTestClient[Any], login: Login, runtime: Runtime) -> Advisory:
    """The advisory the out-of-spec rule drafts for lot 018 (scenario steps 2-3), drafting it if need be."""
    async with runtime.db.read_session() as session:
        advisory = await session.scalar(select(Advisory))
    if advisory is None:
        wang = Device(client, await login("wang.lei"))
        await _applied(wang, "inspection.submit", inspection(await demo_ids(runtime), LOT_018, LATE_SHIFT_C1))
        async with runtime.db.read_session() as session:
            advisory = (await session.scalars(select(Advisory))).one()
    return advisory


async def _sent(client: AsyncTestClient[Any], login: Login, runtime: Runtime) -> Advisory:
    advisory = await _drafted(client, login, runtime)
    qa = Device(client, await login("qa.manager"))
    for step in ("advisory.approve", "advisory.send"):
        await _applied(qa, step, {"id": advisory.id})
    return advisory


async def test_a_drafted_advisory_is_nothing_to_a_customer_until_it_is_sent(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    gil = Device(world_client, await world_login("gil.workshop"))
    await gil.pull_all()
    advisory = await _drafted(world_client, world_login, world_runtime)

    page = await gil.pull_page()
    assert _puts(page["changes"], "advisory") == _puts(page["changes"], "advisory_recipient") == []
    assert ("advisory", advisory.id) not in gil.read_model
    _assert_customer_shaped(page["changes"])
    assert (await world_client.get("/api/v1/advisories", headers=gil.headers)).json()["items"] == []
    draft = await world_client.get(f"/api/v1/advisories/{advisory.id}", headers=gil.headers)
    assert (draft.status_code, draft.json()["error"]["code"]) == (404, "not_found")

    await _sent(world_client, world_login, world_runtime)

    page = await gil.pull_page()
    _assert_customer_shaped(page["changes"])
    [put] = _puts(page["changes"], "advisory")
    async with world_runtime.db.read_session() as session:
        sent = await session.get(Advisory, advisory.id)
    assert sent is not None
    assert (put["id"], put["version"], put["data"]["status"]) == (advisory.id, sent.version, "sent")
    assert {r["data"]["state"] for r in _puts(page["changes"], "advisory_recipient")} == {"sent"}
    listed = (await world_client.get("/api/v1/advisories", headers=gil.headers)).json()["items"]
    assert [(a["id"], set(a)) for a in listed] == [(advisory.id, CUSTOMER_FIELDS["advisory"])]


async def test_a_customers_full_pull_carries_only_their_views(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    await _sent(world_client, world_login, world_runtime)
    gil = Device(world_client, await world_login("gil.workshop"))
    lucia = Device(world_client, await world_login("lucia.martin"))
    ids = await demo_ids(world_runtime)
    async with world_runtime.db.read_session() as session:
        case = (await session.scalars(select(Case).where(col(Case.account_id) == ids["A-003"]))).one()
        recipient = (
            await session.scalars(select(AdvisoryRecipient).where(col(AdvisoryRecipient.account_id) == ids["A-003"]))
        ).first()
    assert recipient is not None
    await _applied(gil, "advisory.respond", {"recipient_id": recipient.id, "response": "acknowledge"})
    for device, photo in ((gil, PHOTO["customer"]), (lucia, PHOTO["rep"])):
        await _applied(device, "attachment.link", {"entity": "case", "entity_id": case.id, "sha256": photo})

    await gil.pull_all()

    changes = [
        {"entity": entity, "id": entity_id, "op": "put", "version": version, "data": data}
        for (entity, entity_id), (version, data) in gil.read_model.items()
    ]
    _assert_customer_shaped(changes)
    held = {entity for entity, _ in gil.read_model}
    assert {"account", "case", "advisory", "advisory_recipient", "remedy", "attachment", "product_model"} <= held
    assert {data["sha256"] for entity, (_, data) in _by_entity(gil.read_model, "attachment")} == {PHOTO["customer"]}
    assert {data["status"] for _, (_, data) in _by_entity(gil.read_model, "remedy")} == {"approved"}

    # Staff pull what they pulled before: every field of what they may read.
    await lucia.pull_all()
    assert lucia.read_model == await server_state(world_runtime, await principal_of_token(world_runtime, _token(lucia)))
    _, staff_case = lucia.read_model[("case", case.id)]
    assert {"nc_id", "assignee_id", "defect_code", "sla_resolution_due", "flags"} <= set(staff_case)


def _by_entity(read_model: dict[tuple[str, str], tuple[int, dict[str, Any]]], entity: str) -> list[Any]:
    return [(key, value) for key, value in read_model.items() if key[0] == entity]


def _token(device: Device) -> str:
    return device.headers["Authorization"].removeprefix("Bearer ")


async def test_a_customers_rest_reads_are_their_views(
    world_client: AsyncTestClient[Any], world_login: Login, world_runtime: Runtime
) -> None:
    advisory = await _sent(world_client, world_login, world_runtime)
    gil, lucia = await world_login("gil.workshop"), await world_login("lucia.martin")

    async def read(path: str, headers: dict[str, str] = gil, **params: Any) -> Any:
        response = await world_client.get(f"/api/v1{path}", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    [account] = (await read("/accounts"))["items"]
    [case, *_] = (await read("/cases"))["items"]
    [shipment, *_] = (await read("/shipments"))["items"]
    [product, *_] = (await read("/product-models"))["items"]
    reads = {
        "account": [account, await read(f"/accounts/{account['id']}")],
        "contact": (await read("/contacts"))["items"],
        "shipment": [shipment, (await read(f"/shipments/{shipment['id']}"))["shipment"]],
        "shipment_line": (await read(f"/shipments/{shipment['id']}"))["lines"],
        "case": [case, await read(f"/cases/{case['id']}")],
        "advisory": [*(await read("/advisories"))["items"], (await read(f"/advisories/{advisory.id}"))["advisory"]],
        "advisory_recipient": (await read(f"/advisories/{advisory.id}"))["recipients"],
        "product_model": [product, await read(f"/product-models/{product['id']}")],
        "complaint_category": (await read("/complaint-categories"))["items"],
    }
    for entity, rows in reads.items():
        assert rows, entity
        assert [set(row) for row in rows] == [CUSTOMER_FIELDS[entity]] * len(rows), entity

    # Filtering by a field the customer cannot see would tell it: refused, with a stable code.
    for path, params in [("/cases", {"assignee_id": new_id()}), ("/accounts", {"tier": "vip"})]:
        refused = await world_client.get(f"/api/v1{path}", headers=gil, params=params)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "filter_not_allowed")
    # Staff read the whole record, as before.
    assert "unit_cost" in await read(f"/product-models/{product['id']}", lucia)
    assert "assignee_id" in await read(f"/cases/{case['id']}", lucia)
    assert "summary" in (await read(f"/advisories/{advisory.id}", lucia))["advisory"]


# -- the live tail, against a real server process -------------------------------------------


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_world(tmp_path_factory.mktemp("customer-live")) as settings, running_server(settings) as base:
        yield base


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


async def _synced(base: str, user: User, cursor: str | None = None) -> Live:
    live = await Live.open(base, user, cursor=cursor)
    while len((await live.frame())["changes"]) == 500:
        pass
    return live


async def _inspection_of_lot_018(http: httpx.AsyncClient, wang: User) -> dict[str, Any]:
    batches = await http.get("/api/v1/batches", headers=wang.headers, params={"lot_no": LOT_018})
    plans = await http.get("/api/v1/inspection-plans", headers=wang.headers, params={"code": "FINAL-HLD200"})
    ids = {LOT_018: batches.json()["items"][0]["id"], "FINAL-HLD200": plans.json()["items"][0]["id"]}
    return inspection(ids, LOT_018, LATE_SHIFT_C1)


async def test_a_customers_live_tail_carries_their_views_and_the_advisory_once_sent(
    live_server: str, http: httpx.AsyncClient
) -> None:
    wang, qa, lucia, gil = [
        await User.sign_in(http, name) for name in ("wang.lei", "qa.manager", "lucia.martin", "gil.workshop")
    ]
    rep, customer = await _synced(live_server, lucia), await _synced(live_server, gil)
    _assert_customer_shaped(customer.changes)
    before_the_send = customer.cursor

    await wang.push(("inspection.submit", await _inspection_of_lot_018(http, wang)))
    await rep.until(lambda live: _puts(live.changes, "advisory") != [])
    [draft] = _puts(rep.changes, "advisory")
    assert SUMMARY_WORDS in draft["data"]["summary"]
    await qa.push(("advisory.approve", {"id": draft["id"]}), ("advisory.send", {"id": draft["id"]}))

    def sent(live: Live) -> bool:
        return any(put["data"]["status"] == "sent" for put in _puts(live.changes, "advisory"))

    await customer.until(sent)
    await rep.until(sent)
    _assert_customer_shaped(customer.changes)
    [put] = _puts(customer.changes, "advisory")
    assert put["id"] == draft["id"]
    assert put["version"] == max(c["version"] for c in _puts(rep.changes, "advisory"))
    assert {r["data"]["state"] for r in _puts(customer.changes, "advisory_recipient")} == {"sent"}
    # The draft was never sent to the customer: at most its removal, which carries nothing.
    drafted = [c for c in customer.changes if c["id"] == draft["id"] and c["version"] < put["version"]]
    assert all(c["op"] == "delete" and c["data"] is None for c in drafted)
    # Staff sockets carry every field, as logged.
    assert "nc_id" in _puts(rep.changes, "advisory")[-1]["data"]

    # A customer catching up from the tail with an older cursor gets the same views.
    resumed = await Live.open(live_server, gil, cursor=before_the_send)
    await resumed.until(sent)
    _assert_customer_shaped(resumed.changes)
    for live in (rep, customer, resumed):
        await live.close()


# -- leaving a customer's view ----------------------------------------------------------------


def _change(entity: str, op: str, version: int, data: dict[str, Any] | None = None) -> Change:
    return Change(seq=version, entity=entity, id="x", op=op, version=version, data=data)


def test_a_row_that_leaves_a_customers_view_arrives_as_a_delete() -> None:
    proposed = {"status": "proposed", "amount": "10.00", **dict.fromkeys(CUSTOMER_FIELDS["remedy"], "")}
    approved = {**proposed, "status": "approved"}
    # A remedy approved, then (say) taken back to proposed: the customer's copy is removed.
    shown = for_customer(_change("remedy", "put", 2, approved), frozenset())
    assert shown is not None
    assert (shown.op, set(shown.data or {})) == ("put", CUSTOMER_FIELDS["remedy"])
    assert for_customer(_change("remedy", "put", 3, proposed), frozenset()) == _change("remedy", "delete", 3)
    # A case moved to another account is deleted in its old scope by the unit of work: it passes as it is.
    assert for_customer(_change("case", "delete", 4), frozenset()) == _change("case", "delete", 4)
    # Entities without a customer view never reach a customer, not even as deletes.
    for internal in ("inspection", "nonconformance", "entitlement_rule", "plant"):
        assert for_customer(_change(internal, "put", 1, {"id": "x"}), frozenset()) is None
        assert for_customer(_change(internal, "delete", 2), frozenset()) is None
    # A staff photo on a case is not the customer's; theirs is.
    photo = {**dict.fromkeys(CUSTOMER_FIELDS["attachment"], ""), "entity_type": "case", "uploaded_by": "rep"}
    customers = frozenset({"gil"})
    assert for_customer(_change("attachment", "put", 1, photo), customers) == _change("attachment", "delete", 1)
    mine = for_customer(_change("attachment", "put", 1, {**photo, "uploaded_by": "gil"}), customers)
    assert mine is not None
    assert mine.op == "put"
