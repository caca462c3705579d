"""A customer sets up a factory through the admin API alone, and the reads, scopes and trace follow."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import Login, sign_in

# These tests add plants, accounts and users: they run in a world of their own.


async def test_a_factory_set_up_through_the_admin_api_works_end_to_end(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    client, login = world_client, world_login
    admin = await login("admin")

    async def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(f"/api/v1/admin/{path}", headers=admin, json=body)
        assert response.status_code == 201, (path, response.text)
        created: dict[str, Any] = response.json()
        return created

    plant = await create("plants", {"code": "MX-QR", "name": "Querétaro", "country": "MX", "tz": "America/Mexico_City"})
    await create("lines", {"plant_id": plant["id"], "code": "L7", "name": "Line 7"})
    model = await create("product-models", {"sku": "ECU-9", "name": "Engine ECU", "unit_cost": "41.50"})
    await create("defect-codes", {"code": "SOLDER-COLD", "name": "Cold solder joint", "severity": "critical"})
    await create("complaint-categories", {"code": "DEAD", "labels": {"en": "Does not start", "zh": "无法启动"}})
    await create("defect-category-map", {"defect_code": "SOLDER-COLD", "category_code": "DEAD"})
    plan = await create(
        "inspection-plans",
        {"code": "FINAL-ECU9", "product_model_id": model["id"], "plan_version": 1, "status": "released"},
    )
    await create(
        "characteristics",
        {
            "plan_id": plan["id"],
            "code": "V1",
            "name": "Supply voltage",
            "unit": "V",
            "nominal": 5.0,
            "lsl": 4.75,
            "usl": 5.25,
            "sample_n": 5,
            "spc_rules": ["WE1"],
            "defect_code_on_fail": "SOLDER-COLD",
        },
    )
    account = await create(
        "accounts",
        {
            "code": "B-100",
            "name": "Bajío Motores",
            "country": "MX",
            "tier": "key",
            "region": "LATAM",
            "sla_policy": {"first_response_h": 4, "resolution_h": 48},
        },
    )
    await create(
        "contacts",
        {
            "account_id": account["id"],
            "name": "Ana Ruiz",
            "email": "ana@bajio.example",
            "consents": {"service_notices": True, "source": "contract"},
        },
    )
    batch = await create(
        "batches",
        {
            "lot_no": "MX-QR-L7-2611-001",
            "product_model_id": model["id"],
            "plant_id": plant["id"],
            "line": "L7",
            "qty": 900,
            "produced_from": "2026-11-02T06:00:00Z",
            "produced_to": "2026-11-03T18:00:00Z",
        },
    )
    shipment = await create(
        "shipments",
        {
            "account_id": account["id"],
            "number": "SH-MX-1",
            "shipped_at": "2026-11-05T10:00:00Z",
            "destination_region": "LATAM",
        },
    )
    line = await create("shipment-lines", {"shipment_id": shipment["id"], "batch_id": batch["id"], "qty": 600})
    assert (line["account_id"], line["product_model_id"]) == (account["id"], model["id"])
    inspector = await client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={
            "username": "rosa.mx",
            "password": "s3cure-enough",
            "display_name": "Rosa",
            "role": "inspector",
            "memberships": [{"kind": "plant", "ref": plant["id"]}],
        },
    )
    assert inspector.status_code == 201, inspector.text
    rep = await client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={
            "username": "pablo.mx",
            "password": "s3cure-enough",
            "display_name": "Pablo",
            "role": "service_rep",
            "memberships": [{"kind": "account", "ref": account["id"]}],
        },
    )
    assert rep.status_code == 201, rep.text

    # The new inspector sees the new plant's batch and nothing of the demo plants.
    rosa = {"Authorization": f"Bearer {(await sign_in(client, 'rosa.mx', 's3cure-enough'))['access_token']}"}
    lots = [b["lot_no"] for b in (await client.get("/api/v1/batches", headers=rosa)).json()["items"]]
    assert lots == ["MX-QR-L7-2611-001"]
    # The new rep sees the new account only.
    pablo = {"Authorization": f"Bearer {(await sign_in(client, 'pablo.mx', 's3cure-enough'))['access_token']}"}
    accounts = [a["code"] for a in (await client.get("/api/v1/accounts", headers=pablo)).json()["items"]]
    assert accounts == ["B-100"]
    # The trace follows the shipment.
    trace = (await client.get(f"/api/v1/batches/{batch['id']}/trace", headers=admin)).json()
    assert [(a["code"], a["qty"]) for a in trace["accounts"]] == [("B-100", 600)]
    assert trace["unshipped_qty"] == 300
    # The plan reads back with its characteristic.
    detail = (await client.get(f"/api/v1/inspection-plans/{plan['id']}", headers=rosa)).json()
    assert [(c["code"], c["lsl"], c["usl"]) for c in detail["characteristics"]] == [("V1", 4.75, 5.25)]


async def test_admin_changes_are_validated_versioned_and_conflicts_are_clear(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    client, login = world_client, world_login
    admin = await login("admin")
    lots = (await client.get("/api/v1/batches", headers=admin, params={"lot_no": "CN-SZ-L1-2406-019"})).json()
    batch_id = lots["items"][0]["id"]
    before = (await client.get(f"/api/v1/batches/{batch_id}", headers=admin)).json()

    changed = await client.patch(f"/api/v1/admin/batches/{batch_id}", headers=admin, json={"qty": 5001})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["qty"], changed.json()["version"]) == (5001, before["version"] + 1)
    assert changed.json()["lot_no"] == before["lot_no"]

    invalid = [
        ({"status": "vaporised"}, 400, "validation_error"),
        ({"qty": -1}, 400, "validation_error"),
        ({"produced_to": "2024-01-01T00:00:00Z"}, 400, "validation_error"),
        ({"lot_no": "CN-SZ-L2-2406-018"}, 409, "constraint_violation"),
        ({"plant_id": "no-such-plant"}, 409, "constraint_violation"),
        ({"unknown_field": 1}, 400, "validation_error"),
    ]
    for body, status, code in invalid:
        response = await client.patch(f"/api/v1/admin/batches/{batch_id}", headers=admin, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (body, response.text)
    after = (await client.get(f"/api/v1/batches/{batch_id}", headers=admin)).json()
    assert (after["qty"], after["version"]) == (5001, before["version"] + 1)

    missing = await client.patch("/api/v1/admin/batches/does-not-exist", headers=admin, json={"qty": 1})
    assert missing.status_code == 404


async def test_an_amount_too_large_to_keep_in_cents_is_a_validation_error(
    world_client: AsyncTestClient[Any], world_login: Login
) -> None:
    admin = await world_login("admin")
    rules = (await world_client.get("/api/v1/entitlement-rules", headers=admin)).json()["items"]
    for amount in ("1e40", "12345678901234567890.5"):
        response = await world_client.patch(
            f"/api/v1/admin/entitlement-rules/{rules[0]['id']}", headers=admin, json={"cap_amount": amount}
        )
        assert (response.status_code, response.json()["error"]["code"]) == (400, "validation_error"), response.text
