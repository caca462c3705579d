"""The customer portal in Chromium against the played demo: a purchasing contact of the VIP
account answers ADV-031, talks with the service team in its case (and never receives their
internal notes, not even on the device), files a complaint with a lot number and a photo
that the loop links by itself; a customer of an unaffected account sees nothing of lot 018.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from loopline.core.settings import Settings
from tests.browser.conftest import NewContext
from tests.browser.web import WebApp, check_layout, stored_rows
from tests.browser.worlds import api_as, pulled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CUSTOMER = "thomas.brandt"  # purchasing at A-001 Autowerk Stuttgart: received lot 018, a recipient of ADV-031
UNAFFECTED = "haruka.tanaka"  # purchasing at A-004 Shinsei: lots 016 and 017 only
REP = "lena.fischer"  # account manager of A-001
LOT_018 = "CN-SZ-L2-2406-018"


def portal(context: Any, base: str, username: str) -> WebApp:
    app = WebApp(context.new_page(), base)
    app.open()
    app.sign_in_as(username)
    return app


def shot(app: WebApp, screen: str, device: str, lang: str) -> None:
    check_layout(app)
    app.shoot("customer", screen, device, lang)


def all_sent(app: WebApp) -> None:
    expect(app.unsent_status()).to_contain_text("All changes sent")


def push(base: str, username: str, name: str, args: dict[str, Any]) -> None:
    """One mutation from a device of `username`'s own, straight through the API."""
    mutation = {"mid": 1, "id": str(uuid.uuid4()), "name": name, "args": args}
    with api_as(base, username) as http:
        body = {"client_id": str(uuid.uuid4()), "schema_version": 1, "mutations": [mutation]}
        [result] = http.post("/sync/push", json=body).json()["results"]
    assert result["status"] == "applied", result


def user_id(base: str, username: str) -> str:
    [me] = [row for row in pulled(base, username)["user"] if row["username"] == username]
    return str(me["id"])


def label_photo(path: Path) -> Path:
    """A photo of a driver's label, as a phone takes it."""
    image = Image.new("RGB", (1600, 1200), (235, 235, 228))
    draw = ImageDraw.Draw(image)
    draw.rectangle((200, 300, 1400, 900), outline=(20, 20, 20), width=12)
    draw.text((260, 560), f"HLD-200  LOT {LOT_018}", fill=(10, 10, 10))
    image.save(path, "JPEG", quality=85)
    return path


def test_the_customer_sees_their_cases_and_answers_the_advisory(
    scenario: tuple[Settings, str], new_context: NewContext
) -> None:
    _, base = scenario
    app = portal(new_context(base, device="phone"), base, CUSTOMER)
    page = app.page
    expect(page.get_by_role("heading", name="Autowerk Stuttgart GmbH")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^CS-1001"))).to_contain_text("Resolved")
    advisory = page.get_by_role("link", name=re.compile(r"^ADV-031"))
    expect(advisory).to_contain_text("Not answered yet")
    shot(app, "portal", "phone", "en")

    advisory.click()
    expect(page.get_by_role("heading", name="ADV-031")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^CS-1001"))).to_be_visible()
    # Katrin Vogel answered for Autowerk on the day (by phone, through Lena); Thomas has not yet.
    expect(page.get_by_role("listitem").filter(has_text="Katrin Vogel")).to_contain_text("Acknowledged")
    shot(app, "advisory", "phone", "en")
    page.get_by_role("button", name="Acknowledge", exact=True).click()
    expect(page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Accept", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Accepted")).to_be_visible()
    all_sent(app)
    expect(page.get_by_role("button", name="Decline", exact=True)).to_have_count(0)

    staff = pulled(base, REP)
    [thomas] = [row for row in staff["contact"] if row["name"] == "Thomas Brandt"]
    [answer] = [row for row in staff["advisory_recipient"] if row["contact_id"] == thomas["id"]]
    assert (answer["state"], answer["responded_at"] is not None) == ("accepted", True)
    assert app.errors == []

    desktop = portal(new_context(base, device="desktop", locale="zh-CN"), base, CUSTOMER)
    expect(desktop.page.get_by_role("link", name=re.compile(r"^ADV-031"))).to_contain_text("已接受")
    shot(desktop, "portal", "desktop", "zh-CN")
    desktop.page.get_by_role("link", name=re.compile(r"^ADV-031")).click()
    expect(desktop.page.get_by_role("status").filter(has_text="已接受")).to_be_visible()
    shot(desktop, "advisory", "desktop", "zh-CN")
    assert desktop.errors == []


def test_the_portal_shows_the_reply_and_never_receives_the_internal_note(
    scenario: tuple[Settings, str], new_context: NewContext
) -> None:
    _, base = scenario
    staff = pulled(base, REP)
    [case] = [row for row in staff["case"] if row["number"] == "CS-1001"]
    [thread] = [row for row in staff["thread"] if row["subject_type"] == "case" and row["subject_id"] == case["id"]]
    note = f"Internal: Autowerk's air freight costs us more than planned ({uuid.uuid4().hex[:6]})."
    reply = f"The replacement from lot 019 is on its way by air ({uuid.uuid4().hex[:6]})."
    # The note first: once the reply is on the device, the note would have arrived before it.
    push(base, REP, "message.post", {"id": str(uuid.uuid4()), "thread_id": thread["id"], "body": note})
    push(
        base,
        REP,
        "message.post",
        {"id": str(uuid.uuid4()), "thread_id": thread["id"], "body": reply, "visibility": "customer"},
    )

    app = portal(new_context(base, device="phone", locale="zh-CN"), base, CUSTOMER)
    app.page.get_by_role("link", name=re.compile(r"^CS-1001")).click()
    log = app.page.get_by_role("log")
    expect(log.get_by_role("listitem").filter(has_text=reply)).to_have_count(1)
    expect(log.get_by_role("listitem").filter(has_text="Internal:")).to_have_count(0)
    expect(app.page.get_by_text("RMA-7781")).to_be_visible()
    shot(app, "case", "phone", "zh-CN")
    log.scroll_into_view_if_needed()
    app.shoot("customer", "case-messages", "phone", "zh-CN")

    held = stored_rows(app.page, user_id(base, CUSTOMER))
    assert any(reply in str(row.get("data")) for row in held)
    assert not [row for row in held if note in str(row.get("data"))]
    assert not [row for row in held if row.get("entity") == "message" and row["data"]["visibility"] != "customer"]

    # The customer answers in the same thread; the service team reads it as a message to them.
    answer = f"Thanks, our goods-in is expecting it ({uuid.uuid4().hex[:6]})."
    en = portal(new_context(base, device="desktop"), base, CUSTOMER)
    en.page.get_by_role("link", name=re.compile(r"^CS-1001")).click()
    expect(en.page.get_by_role("log").get_by_role("listitem").filter(has_text=reply)).to_have_count(1)
    en.page.get_by_label("Message", exact=True).fill(answer)
    en.page.get_by_role("button", name="Send").click()
    all_sent(en)
    sent = en.page.get_by_role("log").get_by_role("listitem").filter(has_text=answer)
    expect(sent).to_have_count(1)
    expect(sent).not_to_contain_text("Sending")
    shot(en, "case", "desktop", "en")
    [posted] = [row for row in pulled(base, REP)["message"] if row["body"] == answer]
    assert (posted["visibility"], posted["thread_id"]) == ("customer", thread["id"])
    assert app.errors == []
    assert en.errors == []


def test_a_complaint_with_lot_and_photo_is_linked_by_the_loop(
    scenario: tuple[Settings, str], new_context: NewContext, tmp_path: Path
) -> None:
    _, base = scenario
    app = portal(new_context(base, device="phone"), base, CUSTOMER)
    page = app.page
    page.get_by_role("link", name="File a complaint").click()
    expect(page.get_by_role("heading", name="File a complaint")).to_be_visible()
    title = f"2 drivers flicker in the rain test ({uuid.uuid4().hex[:6]})"
    page.get_by_label("What is wrong?").fill(title)
    page.get_by_label("Lot number").fill(LOT_018)
    page.get_by_label("Kind of problem").select_option("FLICKER")
    page.get_by_label("Units that failed").fill("2")
    page.get_by_label("Details").fill("Found at goods-in testing, both from carton 14.")
    page.get_by_label("Add photo").set_input_files([label_photo(tmp_path / "label.jpg")])
    expect(page.locator(".photos__item img")).to_have_count(1)
    shot(app, "complaint", "phone", "en")
    page.get_by_role("button", name="Send complaint").click()

    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Case CS-\d+"))).to_be_visible()  # the server's number: it is in
    all_sent(app)
    expect(page.get_by_text(re.compile("waiting to upload"))).to_have_count(0)
    expect(page.get_by_role("img", name="Photo 1")).to_be_visible()

    # The same loop rules as a complaint a rep files: the lot is one A-001 received, so the case
    # carries its batch and product, and the category's defect code. NC-0142 was closed at D+45,
    # so no open nonconformance (nor its advisory) is there to link: the rules say investigate.
    staff = pulled(base, REP)
    [case] = [row for row in staff["case"] if row["title"] == title]
    [batch] = [row for row in pulled(base, "wang.lei")["batch"] if row["lot_no"] == LOT_018]
    [model] = [row for row in staff["product_model"] if row["sku"] == "HLD-200"]
    [thomas] = [row for row in staff["contact"] if row["name"] == "Thomas Brandt"]
    assert (case["origin"], case["lot_no_reported"], case["category_code"]) == ("customer", LOT_018, "FLICKER")
    assert (case["batch_id"], case["product_model_id"], case["defect_code"]) == (batch["id"], model["id"], "CC-THIN")
    assert case["contact_id"] == thomas["id"]
    assert "lot_not_received" not in case["flags"]
    assert (case["nc_id"], case["advisory_id"]) == (None, None)
    assert [r["kind"] for r in staff["remedy"] if r["case_id"] == case["id"]] == ["investigate"]
    [photo] = [row for row in staff["attachment"] if row["entity_type"] == "case" and row["entity_id"] == case["id"]]
    assert photo["state"] == "available"
    assert app.errors == []

    zh = portal(new_context(base, device="desktop", locale="zh-CN"), base, CUSTOMER)
    zh.page.get_by_role("link", name="提交投诉").click()
    expect(zh.page.get_by_role("heading", name="提交投诉")).to_be_visible()
    shot(zh, "complaint", "desktop", "zh-CN")
    assert zh.errors == []


def test_a_customer_of_an_unaffected_account_sees_nothing_of_lot_018s_advisory(
    scenario: tuple[Settings, str], new_context: NewContext
) -> None:
    _, base = scenario
    app = portal(new_context(base, device="desktop"), base, UNAFFECTED)
    page = app.page
    expect(page.get_by_role("heading", name="Shinsei Auto Trading K.K.")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^CS-1005"))).to_be_visible()  # the first sync is in
    expect(page.get_by_text("No advisory concerns the parts your company received.")).to_be_visible()
    expect(page.get_by_text("ADV-031")).to_have_count(0)
    shot(app, "portal-unaffected", "desktop", "en")

    held = stored_rows(app.page, user_id(base, UNAFFECTED))
    assert not [row for row in held if row.get("entity") in {"advisory", "advisory_recipient"}]
    assert not [row for row in held if "ADV-031" in str(row.get("data"))]
    seen = pulled(base, UNAFFECTED)
    assert seen.get("advisory", []) == []
    assert seen.get("advisory_recipient", []) == []

    # The advisory's address does not open it either.
    with api_as(base, REP) as http:
        [advisory] = [row for row in http.get("/advisories").json()["items"] if row["number"] == "ADV-031"]
    page.goto(f"/#/portal/advisory/{advisory['id']}")
    expect(page.get_by_text("This advisory is not here.")).to_be_visible()
    assert app.errors == []
