"""A change the server refuses is shown with its reason and can be discarded; nothing else
in the outbox is lost."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp
from tests.browser.worlds import api_as, pulled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOT_017 = "CN-SZ-L2-2406-017"


def push(base: str, username: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """One mutation from a device of `username`'s own, straight through the API."""
    mutation = {"mid": 1, "id": str(uuid.uuid4()), "name": name, "args": args}
    with api_as(base, username) as http:
        body = {"client_id": str(uuid.uuid4()), "schema_version": 1, "mutations": [mutation]}
        [result] = http.post("/sync/push", json=body).json()["results"]
    return dict(result)


def enqueue(app: WebApp, name: str, args: dict[str, Any]) -> None:
    """What a screen of the app queues, queued the same way (the outbox's own entry point)."""
    app.page.evaluate(
        """async ([name, args]) => {
            const { client } = await import(`/app/${document.documentElement.dataset.build}/app/state/client.js`);
            await client.enqueue(name, args);
        }""",
        [name, args],
    )


def test_a_stale_status_change_is_shown_with_its_reason_and_discarded_while_the_rest_goes_through(
    scenario: tuple[Any, str], new_context: NewContext
) -> None:
    _, base = scenario
    [batch] = [row for row in pulled(base, "wang.lei")["batch"] if row["lot_no"] == LOT_017]
    defect_id = str(uuid.uuid4())
    report = {
        "id": defect_id,
        "batch_id": batch["id"],
        "defect_code": "MECH-LATCH",
        "severity": "minor",
        "description": "Latch cracked on two housings",
        "captured_at": "2024-06-18T07:30:00Z",
    }
    assert push(base, "wang.lei", "defect.report", report)["status"] == "applied"

    context = new_context(base, device="tablet")
    app = WebApp(context.new_page(), base)
    app.open()
    app.sign_in_as("wang.lei")
    expect(app.page.get_by_role("link", name=re.compile(LOT_017))).to_be_visible()
    context.set_offline(True)
    enqueue(app, "defect.set_status", {"id": defect_id, "from": "open", "to": "contained"})
    enqueue(app, "defect.report", {**report, "id": str(uuid.uuid4()), "description": "Second latch cracked"})
    expect(app.unsent_status()).to_contain_text("2 unsent changes")
    # Meanwhile, on another device, the defect moves on: the queued change is now stale.
    moved_on = push(base, "wang.lei", "defect.set_status", {"id": defect_id, "from": "open", "to": "closed"})
    assert moved_on["status"] == "applied"

    context.set_offline(False)
    expect(app.unsent_status()).to_contain_text("All changes sent")
    refused = app.page.get_by_role("link", name="1 change refused by the server")
    expect(refused).to_be_visible()
    refused.click()
    row = app.page.get_by_role("list", name="Refused by the server").get_by_role("listitem")
    expect(row).to_contain_text("Defect status")
    expect(row).to_contain_text("Someone changed it first: it is now “Closed”.")
    app.shoot("inspector", "outbox-refused", "tablet", "en")
    row.get_by_role("button", name="Discard").click()
    expect(row).to_have_count(0)
    expect(app.page.get_by_role("link", name=re.compile("refused by the server"))).to_have_count(0)
    assert app.errors == []

    descriptions = [d["description"] for d in pulled(base, "wang.lei")["defect"] if d["batch_id"] == batch["id"]]
    assert "Second latch cracked" in descriptions
