"""Every route in the OpenAPI document, called as every role: nobody gets what their role may not.

`POLICY` must name every operation the server documents: a new route without a
policy entry fails this test, so no route is forgotten.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Login, sign_in

Access = Literal["public", "signed_in", "supervisor", "admin"]

ROLES = {
    "inspector": "wang.lei",
    "service_rep": "lena.fischer",
    "supervisor": "qa.manager",
    "admin": "admin",
    "customer": "gil.workshop",
}

# Reads are open to every signed-in user and filtered by scope (out of scope reads as
# "not found"); master data changes are for admins.
POLICY: dict[str, Access] = {
    "health": "public",
    # The web app: its shell, service worker, manifest and static files hold no data.
    "web_shell": "public",
    "web_service_worker": "public",
    "web_manifest": "public",
    "web_asset": "public",
    "login": "public",
    "refresh_token": "public",
    "logout": "signed_in",
    "get_me": "signed_in",
    "sync_push": "signed_in",
    "sync_pull": "signed_in",
    # The REST face of `inspection.submit`: signed in, and the mutation's own role check
    # answers 403 to the roles that may not inspect (tests/test_inspections_api.py).
    "submit_inspection": "signed_in",
    "admin_list_users": "admin",
    "admin_create_user": "admin",
    "admin_update_user": "admin",
    "admin_get_loop_lag": "admin",
    "admin_reset_loop_lag": "admin",
    # Webhook subscriptions say where data leaves the company, and carry signing secrets.
    "admin_create_webhook": "admin",
    "admin_list_webhooks": "admin",
    "admin_get_webhook": "admin",
    "admin_update_webhook": "admin",
    "admin_list_webhook_deliveries": "admin",
    "admin_get_webhook_summary": "admin",
    # Erasing personal data and checking the audit chain: supervisors and admins; the chain's
    # export spans every plant and account.
    "compliance_erase_contact": "supervisor",
    "compliance_verify_audit_chain": "supervisor",
    "compliance_export_audit_chain": "admin",
    # Any signed-in user may upload (a photo can arrive before the record that references it);
    # fetching a blob is filtered like any read (404 unless a referencing record is readable).
    "blob_start": "signed_in",
    "blob_upload_offset": "signed_in",
    "blob_upload_chunk": "signed_in",
    "get_blob": "signed_in",
    # Anyone signed in may open the live socket; it carries only what their scopes allow.
    "ws_ticket": "signed_in",
    **{
        op: "signed_in"
        for op in [
            "list_plants",
            "get_plant",
            "list_plant_lines",
            "list_product_models",
            "get_product_model",
            "list_inspection_plans",
            "get_inspection_plan",
            "list_defect_codes",
            "list_complaint_categories",
            "list_defect_category_map",
            "list_batches",
            "get_batch",
            "trace_batch",
            "list_inspections",
            "get_inspection",
            "list_defects",
            "get_defect",
            "list_nonconformances",
            "get_nonconformance",
            "list_accounts",
            "get_account",
            "list_contacts",
            "get_contact",
            "list_shipments",
            "get_shipment",
            "list_cases",
            "get_case",
            "get_case_context",
            "list_advisories",
            "get_advisory",
            "list_entitlement_rules",
            "list_threads",
            "get_thread",
            "list_thread_messages",
        ]
    },
    **{
        f"admin_{verb}_{entity}": "admin"
        for verb in ("create", "update")
        for entity in [
            "plant",
            "line",
            "product_model",
            "inspection_plan",
            "characteristic",
            "defect_code",
            "complaint_category",
            "defect_category_map",
            "batch",
            "account",
            "contact",
            "shipment",
            "shipment_line",
            "entitlement_rule",
        ]
    },
}


async def operations(client: AsyncTestClient[Any]) -> list[tuple[str, str, str]]:
    document = (await client.get("/schema/openapi.json")).json()
    return [
        (op["operationId"], method.upper(), path)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in {"get", "head", "post", "put", "patch", "delete"}
    ]


async def test_every_documented_operation_has_an_access_policy(client: AsyncTestClient[Any]) -> None:
    documented = {op for op, _, _ in await operations(client)}
    assert documented - POLICY.keys() == set(), "routes without an access policy"
    assert POLICY.keys() - documented == set(), "policies for routes that no longer exist"


def _expected(access: Access, role: str | None) -> str:
    if access == "public":
        return "allowed"
    if role is None:
        return "unauthenticated"
    if access == "admin" and role != "admin":
        return "forbidden"
    if access == "supervisor" and role not in ("supervisor", "admin"):
        return "forbidden"
    return "allowed"


def _outcome(status: int) -> str:
    return {401: "unauthenticated", 403: "forbidden"}.get(status, "allowed")


@pytest.mark.parametrize("role", [None, *ROLES])
async def test_each_role_gets_exactly_its_access_on_every_route(
    client: AsyncTestClient[Any], login: Login, role: str | None
) -> None:
    mismatches = []
    for operation, method, path in await operations(client):
        if operation in {"login", "refresh_token"}:
            continue  # public by design; exercised in test_auth
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        headers: dict[str, str] = {}
        if role is not None:
            if operation == "logout":  # a session of its own, so the shared one survives
                tokens = await sign_in(client, ROLES[role])
                headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            else:
                headers = await login(ROLES[role])
        body: dict[str, Any] | None = {} if method in {"POST", "PATCH", "PUT"} else None
        response = await client.request(method, url, headers=headers, json=body)
        assert response.status_code < 500, f"{method} {path} as {role}: {response.text}"
        expected, got = _expected(POLICY[operation], role), _outcome(response.status_code)
        if expected != got:
            mismatches.append(f"{method} {path} as {role}: expected {expected}, got {response.status_code}")
    assert mismatches == []
