"""The loop end to end in six browsers at once, on a demo world of its own.

An inspector on a tablet finds lot 016 out of spec; without a reload, the phones of the two
account managers whose customers received it show the new cases, the supervisor's overview
shows the nonconformance, the hold and the drafted advisory, and approves and sends it; the
customer of an affected account acknowledges it on her phone and her account manager sees the
answer in the case; a customer of an account that never received lot 016 sees none of it,
not on screen and not in his device's IndexedDB.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from loopline.core.settings import Settings
from tests.browser.conftest import NewContext
from tests.browser.web import WebApp, stored_rows
from tests.browser.worlds import api_as, pulled, scenario_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LOT_016 = "CN-SZ-L2-2406-016"  # HLD-200, shipped to A-004 Shinsei and A-003 Iberia only
BELOW_LSL = [20.5, 21.0, 19.8, 22.4, 23.1]  # C1: LSL 25 µm
ADVISORY = re.compile(r"^ADV-\d+$")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A played demo of this test's own: the shared scenario's lot 016 is changed by others."""
    with scenario_server(tmp_path_factory.mktemp("loop")) as running:
        yield running


def signed_in(new_context: NewContext, base: str, username: str, device: str) -> WebApp:
    app = WebApp(new_context(base, device=device).new_page(), base)
    app.open()
    app.sign_in_as(username)
    return app


def all_sent(app: WebApp) -> None:
    expect(app.unsent_status()).to_contain_text("All changes sent")


def user_id(base: str, username: str) -> str:
    [me] = [row for row in pulled(base, username)["user"] if row["username"] == username]
    return str(me["id"])


def test_an_out_of_spec_lot_reaches_reps_supervisor_and_the_affected_customer_only(
    world: tuple[Settings, str], new_context: NewContext
) -> None:
    _, base = world

    # 1. Six people sign in, each on their own device, and each home shows its first sync.
    inspector = signed_in(new_context, base, "wang.lei", "tablet")
    lot_row = inspector.page.get_by_role("link", name=re.compile(LOT_016))
    expect(lot_row).to_contain_text("Released")

    reps = {name: signed_in(new_context, base, name, "phone") for name in ("kenji.sato", "lucia.martin")}
    for app, code in zip(reps.values(), ("A-004", "A-003"), strict=True):
        expect(app.page.get_by_role("heading", name="Cases", level=1)).to_be_visible()
        expect(app.page.get_by_label("Account", exact=True).locator("option", has_text=code)).to_have_count(1)
        expect(app.page.locator(".case-row").filter(has_text=LOT_016)).to_have_count(0)

    supervisor = signed_in(new_context, base, "qa.manager", "desktop")
    expect(supervisor.page.locator(".overview__tally")).to_be_visible()
    held = supervisor.page.get_by_role("list", name="Batches on hold")
    drafts = supervisor.page.get_by_role("list", name="Waiting for approval")
    expect(supervisor.page.get_by_role("region", name="Quality watches")).to_contain_text("QW-0001")
    expect(held.get_by_role("listitem").filter(has_text=LOT_016)).to_have_count(0)

    haruka = signed_in(new_context, base, "haruka.tanaka", "phone")
    expect(haruka.page.get_by_role("heading", name="Shinsei Auto Trading K.K.")).to_be_visible()
    expect(haruka.page.get_by_role("link", name=re.compile(r"^CS-1005"))).to_be_visible()
    expect(haruka.page.get_by_text("No advisory concerns the parts your company received.")).to_be_visible()

    thomas = signed_in(new_context, base, "thomas.brandt", "desktop")
    expect(thomas.page.get_by_role("heading", name="Autowerk Stuttgart GmbH")).to_be_visible()
    expect(thomas.page.get_by_role("link", name=re.compile(r"^ADV-031"))).to_be_visible()

    # 2. The inspector finds lot 016 thin, through the screens.
    page = inspector.page
    page.get_by_label("Lot number").fill(LOT_016)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_role("heading", name=LOT_016)).to_be_visible()
    page.get_by_role("link", name="New inspection").click()
    for n, value in enumerate(BELOW_LSL, start=1):
        page.get_by_label(f"C1 sample {n}", exact=True).fill(str(value))
    expect(page.get_by_role("status").filter(has_text="Result: fail")).to_contain_text("Out of spec: C1")
    page.get_by_role("button", name="Submit inspection").click()
    all_sent(inspector)
    expect(page.get_by_role("status").filter(has_text="on hold")).to_be_visible()

    # 3. Both account managers' phones show their account's new case, live.
    new_cases = {}
    for (name, app), account in zip(
        reps.items(), ("Shinsei Auto Trading K.K.", "Iberia Motor Parts S.L."), strict=True
    ):
        row = app.page.locator(".case-row").filter(has_text=LOT_016)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(account)
        expect(row).to_contain_text("New")
        new_cases[name] = row

    # 4. The supervisor sees the nonconformance, the hold and the draft; approves and sends it.
    ncs = supervisor.page.get_by_role("list", name="Open nonconformances")
    expect(ncs.get_by_role("listitem").filter(has_text=LOT_016)).to_contain_text(re.compile(r"NC-\d+"))
    expect(held.get_by_role("listitem").filter(has_text=LOT_016)).to_contain_text("On hold")
    draft = drafts.get_by_role("listitem").filter(has_text=LOT_016)
    expect(draft).to_have_count(1)
    number = draft.get_attribute("data-advisory") or ""
    assert ADVISORY.match(number), number
    draft.get_by_role("button", name="Approve advisory", exact=True).click()
    expect(draft).to_have_count(0)
    approved = supervisor.page.get_by_role("list", name="Approved, not sent yet").get_by_role("listitem")
    send = approved.filter(has_text=number).get_by_role("button", name="Send advisory", exact=True)
    send.click()
    question = supervisor.page.get_by_role("dialog", name=f"Send {number}?")
    expect(question).to_contain_text(f"Send {number} to its customers now? They are notified at once.")
    question.get_by_role("button", name="Send advisory", exact=True).click()
    expect(approved.filter(has_text=number)).to_have_count(0)  # sent: no longer waiting
    all_sent(supervisor)

    # 5. Haruka's portal shows the advisory; she acknowledges it.
    advisory = haruka.page.get_by_role("link", name=re.compile(f"^{number}"))
    expect(advisory).to_contain_text("Not answered yet")
    advisory.click()
    expect(haruka.page.get_by_role("heading", name=number)).to_be_visible()
    expect(haruka.page.get_by_role("link", name=re.compile(LOT_016))).to_be_visible()  # the case it speaks to
    haruka.page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(haruka.page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    all_sent(haruka)
    expect(haruka.page.get_by_role("status").filter(has_text="Acknowledged")).to_be_visible()

    # 6. Kenji opens the new case: the advisory panel shows Haruka's acknowledgement.
    kenji = reps["kenji.sato"]
    new_cases["kenji.sato"].click()
    panel = kenji.page.get_by_role("region", name=f"Advisory {number}")
    expect(panel.get_by_role("listitem").filter(has_text="Haruka Tanaka")).to_contain_text("Acknowledged")
    panel.scroll_into_view_if_needed()

    # 7. Thomas's account never received lot 016. A customer-visible reply on his own case,
    # posted after Haruka's answer and arriving live, shows his device has followed the
    # change log past the whole loop: what is missing now was never sent to it.
    staff = pulled(base, "lena.fischer")
    [cs1001] = [row for row in staff["case"] if row["number"] == "CS-1001"]
    [thread] = [row for row in staff["thread"] if row["subject_type"] == "case" and row["subject_id"] == cs1001["id"]]
    marker = f"Your replacement has arrived at goods-in ({uuid.uuid4().hex[:6]})."
    message_id = str(uuid.uuid4())
    with api_as(base, "lena.fischer") as http:
        mutation = {
            "mid": 1,
            "id": str(uuid.uuid4()),
            "name": "message.post",
            "args": {"id": message_id, "thread_id": thread["id"], "body": marker, "visibility": "customer"},
        }
        body = {"client_id": str(uuid.uuid4()), "schema_version": 1, "mutations": [mutation]}
        [result] = http.post("/sync/push", json=body).json()["results"]
        assert result["status"] == "applied", result
    thomas.page.get_by_role("link", name=re.compile(r"^CS-1001")).click()
    expect(thomas.page.get_by_role("log").get_by_role("listitem").filter(has_text=marker)).to_have_count(1)
    thomas.page.get_by_role("link", name="Back to the portal").click()
    expect(thomas.page.get_by_role("heading", name="Autowerk Stuttgart GmbH")).to_be_visible()
    expect(thomas.page.get_by_text(number)).to_have_count(0)
    expect(thomas.page.get_by_text(LOT_016)).to_have_count(0)
    expect(thomas.page.get_by_role("link", name=re.compile(r"^ADV-"))).to_have_count(1)  # ADV-031 only

    loop = pulled(base, "qa.manager")
    [batch] = [row for row in loop["batch"] if row["lot_no"] == LOT_016]
    [sent] = [row for row in loop["advisory"] if row["number"] == number]
    assert sent["status"] == "sent"
    opened = [row for row in loop["case"] if row["batch_id"] == batch["id"]]
    assert len(opened) == 2
    foreign = {batch["id"], sent["id"], *(row["id"] for row in opened)}
    held_by_thomas: list[dict[str, Any]] = stored_rows(thomas.page, user_id(base, "thomas.brandt"))
    assert {cs1001["id"], message_id} <= {row["id"] for row in held_by_thomas}  # the read model is there
    assert [row for row in held_by_thomas if row.get("id") in foreign] == []
    traces = (*foreign, LOT_016, number)
    assert [row for row in held_by_thomas if any(key in str(row.get("data")) for key in traces)] == []
    assert {row["data"]["number"] for row in held_by_thomas if row.get("entity") == "advisory"} == {"ADV-031"}

    for app, persona, device in [
        (inspector, "inspector", "tablet"),
        (reps["kenji.sato"], "rep-kenji", "phone"),
        (reps["lucia.martin"], "rep-lucia", "phone"),
        (supervisor, "supervisor", "desktop"),
        (haruka, "customer-affected", "phone"),
        (thomas, "customer-unaffected", "desktop"),
    ]:
        app.shoot("loop", persona, device, "en")
        assert app.errors == [], persona
