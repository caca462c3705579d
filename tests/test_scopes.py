"""Reads honour scopes: by listing, by id and by filter, for every kind of user."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from loopline.catalog.models import Severity
from loopline.core.runtime import Runtime
from loopline.customer.models import Case, CaseOrigin
from tests.conftest import Login


@pytest.fixture(scope="session")
async def a001_case(runtime: Runtime, demo_ids: dict[str, str]) -> str:
    """A case of A-001 (the loop rules that open cases arrive later; the write path is the same)."""
    async with runtime.unit_of_work(actor="test", command="test.case") as session:
        case = Case(
            number="CS-TEST-1",
            account_id=demo_ids["A-001"],
            origin=CaseOrigin.CUSTOMER,
            severity=Severity.MAJOR,
            title="Flicker on two units",
        )
        session.add(case)
    return case.id


async def _items(client: AsyncTestClient[Any], path: str, headers: dict[str, str], **params: Any) -> list[Any]:
    response = await client.get(path, headers=headers, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_a_rep_cannot_read_another_accounts_cases_or_contacts(
    client: AsyncTestClient[Any], login: Login, demo_ids: dict[str, str], a001_case: str
) -> None:
    lucia, lena = await login("lucia.martin"), await login("lena.fischer")
    a001, a003 = demo_ids["A-001"], demo_ids["A-003"]

    # The owner of A-001 sees the case and the contacts: the data is there.
    assert a001_case in {c["id"] for c in await _items(client, "/api/v1/cases", lena)}
    assert await _items(client, "/api/v1/contacts", lena, account_id=a001)

    # Listing
    assert {c["account_id"] for c in await _items(client, "/api/v1/cases", lucia)} <= {a003}
    assert {c["account_id"] for c in await _items(client, "/api/v1/contacts", lucia)} == {a003}
    assert {a["id"] for a in await _items(client, "/api/v1/accounts", lucia)} == {a003}
    # By id
    assert (await client.get(f"/api/v1/cases/{a001_case}", headers=lucia)).status_code == 404
    assert (await client.get(f"/api/v1/cases/{a001_case}/context", headers=lucia)).status_code == 404
    assert (await client.get(f"/api/v1/accounts/{a001}", headers=lucia)).status_code == 404
    lena_contact = (await _items(client, "/api/v1/contacts", lena, account_id=a001))[0]["id"]
    assert (await client.get(f"/api/v1/contacts/{lena_contact}", headers=lucia)).status_code == 404
    # By filter
    assert await _items(client, "/api/v1/cases", lucia, account_id=a001) == []
    assert await _items(client, "/api/v1/cases", lucia, number="CS-TEST-1") == []
    assert await _items(client, "/api/v1/contacts", lucia, account_id=a001) == []
    assert await _items(client, "/api/v1/shipments", lucia, account_id=a001) == []


async def test_an_inspector_reads_only_their_plant_and_no_customer_data(
    client: AsyncTestClient[Any], login: Login, demo_ids: dict[str, str]
) -> None:
    wang = await login("wang.lei")
    lots = {b["lot_no"] for b in await _items(client, "/api/v1/batches", wang)}
    assert lots == {
        "CN-SZ-L2-2406-016",
        "CN-SZ-L2-2406-017",
        "CN-SZ-L2-2406-018",
        "CN-SZ-L1-2406-019",
        "CN-SZ-L1-2406-020",
    }
    brno_lot = demo_ids["CZ-BR-L1-2406-044"]
    assert (await client.get(f"/api/v1/batches/{brno_lot}", headers=wang)).status_code == 404
    assert await _items(client, "/api/v1/batches", wang, plant_id=demo_ids["CZ-BR"]) == []
    assert await _items(client, "/api/v1/accounts", wang) == []
    assert await _items(client, "/api/v1/shipments", wang) == []
    # Internal catalog is staff data, visible to every inspector.
    assert {p["code"] for p in await _items(client, "/api/v1/plants", wang)} == {"CN-SZ", "CZ-BR"}


async def test_a_customer_sees_only_their_own_account(
    client: AsyncTestClient[Any], login: Login, demo_ids: dict[str, str], a001_case: str
) -> None:
    gil = await login("gil.workshop")
    assert {a["code"] for a in await _items(client, "/api/v1/accounts", gil)} == {"A-003"}
    assert {s["account_id"] for s in await _items(client, "/api/v1/shipments", gil)} == {demo_ids["A-003"]}
    assert (await client.get(f"/api/v1/cases/{a001_case}", headers=gil)).status_code == 404
    assert await _items(client, "/api/v1/batches", gil) == []
    assert await _items(client, "/api/v1/plants", gil) == []
    assert await _items(client, "/api/v1/defect-codes", gil) == []
    assert {c["code"] for c in await _items(client, "/api/v1/complaint-categories", gil)} == {
        "FLICKER",
        "DIM",
        "CONNECTOR",
    }


async def test_the_supervisor_reads_all_plants_and_the_accounts_of_their_regions(
    client: AsyncTestClient[Any], login: Login
) -> None:
    qa = await login("qa.manager")
    assert len(await _items(client, "/api/v1/batches", qa)) == 7
    assert {a["code"] for a in await _items(client, "/api/v1/accounts", qa)} == {
        "A-001",
        "A-002",
        "A-003",
        "A-004",
        "A-005",
    }


async def test_pages_follow_the_cursor_without_gaps_or_repeats(client: AsyncTestClient[Any], login: Login) -> None:
    admin = await login("admin")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/shipments", headers=admin, params=params)).json()
        seen.extend(s["id"] for s in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = [s["id"] for s in await _items(client, "/api/v1/shipments", admin)]
    assert seen == everything
    bad = await client.get("/api/v1/shipments", headers=admin, params={"cursor": "garbage"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_nul_characters_are_refused_wherever_they_appear(client: AsyncTestClient[Any], login: Login) -> None:
    admin = await login("admin")
    attempts = [
        client.get("/api/v1/batches", headers=admin, params={"lot_no": "lot\x00018"}),
        client.get("/api/v1/batches/abc%00def", headers=admin),
        client.post(
            "/api/v1/admin/plants", headers=admin, json={"code": "X\u0000", "name": "Nul plant", "country": "DE"}
        ),
        client.post("/api/v1/auth/login", json={"username": "admin\u0000", "password": "x"}),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_character"
    escaped = await client.post(
        "/api/v1/admin/plants", headers=admin, json={"code": "BS-1", "name": "Back\\u0000slash", "country": "DE"}
    )
    assert escaped.status_code == 201, escaped.text
    assert escaped.json()["name"] == "Back\\u0000slash"
