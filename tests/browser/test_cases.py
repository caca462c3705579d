"""The service rep's case screens on the played scenario: the inbox by SLA urgency with live
countdowns and a breached case set apart, filters; the quality panel of a case on lot 018
(measurements against the limits, photos, NC-0142, ADV-031 and who acknowledged it), offline
too; a status change and a remedy decision round-trip; a reply to the customer needs an
in-app confirmation and looks unlike an internal note. Screenshots of the inbox and the case
view on phone, tablet and desktop in both languages, with the layout checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.cases_world import LOT_018, open_complaint_now, open_overdue_case, push
from tests.browser.conftest import NewContext
from tests.browser.web import WebApp, check_layout
from tests.browser.worlds import api_as, pulled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

OVERDUE = "Connector latch cracked on delivery"
FRESH = "Drivers flicker after rain"
REPLY = "Latch cracked on delivery"


@pytest.fixture(scope="module")
def cases(scenario: tuple[Any, str]) -> dict[str, str]:
    """Lucía's open cases, added to the scenario (where every case is resolved): one past its
    first-response time, one opened now, one to answer; and CS-1003's id."""
    settings, base = scenario
    held = pulled(base, "lucia.martin")
    [a003] = [row["id"] for row in held["account"] if row["code"] == "A-003"]
    [cs1003] = [row["id"] for row in held["case"] if row["number"] == "CS-1003"]
    return {
        "overdue": open_overdue_case(settings, "A-003", OVERDUE, hours_ago=10),
        "fresh": open_complaint_now(
            base, "lucia.martin", a003, FRESH, lot_no=LOT_018, category_code="FLICKER", qty_failed=200
        ),
        "reply": open_complaint_now(base, "lucia.martin", a003, REPLY),
        "cs1003": cs1003,
    }


def signed_in(new_context: NewContext, base: str, username: str, device: str, lang: str = "en") -> WebApp:
    app = WebApp(new_context(base, device=device, locale=lang).new_page(), base)
    app.open()
    app.sign_in_as(username)
    return app


def open_case(app: WebApp, case_id: str) -> None:
    app.page.evaluate("route => { location.hash = route; }", f"#/cases/{case_id}")
    expect(app.page.locator(".case__head h1")).to_be_visible()


def case_rows(app: WebApp) -> Any:
    return app.page.locator(".case-row")


def test_the_inbox_orders_by_urgency_ticks_marks_the_breach_and_filters(
    scenario: tuple[Any, str], cases: dict[str, str], new_context: NewContext
) -> None:
    _, base = scenario
    app = signed_in(new_context, base, "lucia.martin", "phone")
    inbox = app.page.get_by_role("region", name="Cases")
    expect(inbox.get_by_role("heading", name="Cases", level=1)).to_be_visible()

    # The breach: first in the inbox, in its own group, red, and in words.
    breached = inbox.get_by_role("list", name="SLA breached")
    overdue = breached.get_by_role("link").filter(has_text=OVERDUE)
    expect(overdue).to_contain_text("SLA breached")
    expect(overdue).to_contain_text(re.compile(r"First response overdue by \d+:\d\d:\d\d"))
    expect(case_rows(app).first).to_contain_text(OVERDUE)
    assert "case-row--breached" in (case_rows(app).first.get_attribute("class") or "")

    # The open ones by their deadline, with countdowns that tick.
    fresh = inbox.get_by_role("list", name="Open, most urgent first").get_by_role("link").filter(has_text=FRESH)
    countdown = fresh.locator(".sla").first
    expect(countdown).to_have_text(re.compile(r"First response due in \d+:\d\d:\d\d"))
    before = countdown.inner_text()
    expect(countdown).not_to_have_text(before)
    expect(inbox).not_to_contain_text("CS-1003")  # resolved: not among the open cases
    check_layout(app)
    app.shoot("rep", "cases", "phone", "en")

    app.page.get_by_label("Status", exact=True).select_option(label="Resolved")
    expect(inbox.get_by_role("link").filter(has_text="CS-1003")).to_be_visible()
    expect(case_rows(app).filter(has_text=OVERDUE)).to_have_count(0)
    app.page.get_by_label("Status", exact=True).select_option(label="Open cases")
    expect(case_rows(app).filter(has_text=OVERDUE)).to_have_count(1)
    assert app.errors == []

    # A supervisor sees several accounts: the account filter narrows to one, VIP marked.
    supervisor = signed_in(new_context, base, "qa.manager", "desktop")
    supervisor.page.get_by_role("link", name="Cases").click()
    supervisor.page.get_by_label("Status", exact=True).select_option(label="All cases")
    expect(case_rows(supervisor).filter(has_text="CS-1003")).to_have_count(1)
    [a001] = [row for row in pulled(base, "qa.manager")["account"] if row["code"] == "A-001"]
    supervisor.page.get_by_label("Account", exact=True).select_option(label=f"A-001 · {a001['name']}")
    expect(case_rows(supervisor).filter(has_text="CS-1001")).to_contain_text("VIP")
    expect(case_rows(supervisor).filter(has_text="CS-1003")).to_have_count(0)
    assert supervisor.errors == []


def test_the_quality_panel_shows_lot_018_against_its_limits_with_photos_nc_and_advisory_offline_too(
    scenario: tuple[Any, str], cases: dict[str, str], new_context: NewContext
) -> None:
    _, base = scenario
    context = new_context(base, device="tablet")
    app = WebApp(context.new_page(), base)
    app.open()
    app.sign_in_as("lucia.martin")
    app.page.get_by_label("Status", exact=True).select_option(label="All cases")
    app.page.get_by_role("link").filter(has_text="CS-1003").click()
    quality = app.page.get_by_role("region", name="Quality evidence")
    expect(quality).to_contain_text("Up to date from the server.")
    expect(quality).to_contain_text(LOT_018)

    def shows_the_evidence() -> None:
        expect(quality.locator(".chart canvas").first).to_be_visible()
        legend = quality.locator(".u-legend")
        for line in ["Measured", "Out of spec", "LSL", "USL", "LCL", "UCL"]:
            expect(legend).to_contain_text(line)
        expect(quality).to_contain_text("LSL 25 µm")
        expect(quality).to_contain_text(re.compile(r"Control limits [\d.]+ µm \u2013 [\d.]+ µm"))
        table = quality.get_by_role("table", name="Measured values of C1")
        row = table.get_by_role("row").filter(has_text="INS-88213")
        expect(row).to_contain_text("Fail")
        out_of_spec = [f"{value} µm Out of spec" for value in (24, 22, 23, 21)]
        expect(row.locator(".value--out")).to_have_text(out_of_spec)
        expect(row).to_contain_text("26 µm")
        photos = quality.get_by_role("figure", name="Photos of INS-88213")
        expect(photos.get_by_role("img", name=re.compile(r"^Photo \d of INS-88213$"))).to_have_count(2)
        expect(quality).to_contain_text("NC-0142")

    shows_the_evidence()
    advisory = app.page.get_by_role("region", name="Advisory ADV-031")
    expect(advisory.get_by_role("listitem").filter(has_text="Carmen Ortega")).to_contain_text("Acknowledged")
    expect(app.page.get_by_role("region", name="Contacts at the account")).to_contain_text("Erased contact")
    assert app.errors == []

    # Offline, the panel shows what it fetched last, saying how old it is.
    app.wait_for_service_worker()
    context.set_offline(True)
    app.page.reload()
    expect(quality).to_contain_text("Offline: as fetched")
    shows_the_evidence()
    context.set_offline(False)


def test_a_status_change_and_a_remedy_decision_round_trip(
    scenario: tuple[Any, str], cases: dict[str, str], new_context: NewContext
) -> None:
    _, base = scenario
    rep_context = new_context(base, device="desktop")
    rep = WebApp(rep_context.new_page(), base)
    rep.open()
    rep.sign_in_as("lucia.martin")
    open_case(rep, cases["fresh"])
    head = rep.page.locator(".case__head")
    status = rep.page.get_by_role("region", name="Status")
    expect(head).to_contain_text("New")
    status.get_by_role("button", name="Mark triaged").click()
    expect(head).to_contain_text("Triaged")
    with api_as(base, "lucia.martin") as http:
        assert http.get(f"/cases/{cases['fresh']}").json()["status"] == "triaged"

    # Moved by someone else while this device was offline: refused as stale, with the reason.
    rep_context.set_offline(True)
    status.get_by_role("button", name="Start work").click()
    expect(status).to_contain_text("not sent yet")
    moved = {"id": cases["fresh"], "from": "triaged", "to": "awaiting_customer"}
    answer = push(base, "lucia.martin", "case.set_status", moved)
    assert answer["status"] == "applied", answer
    rep_context.set_offline(False)
    refusal = status.get_by_role("alert")
    expect(refusal).to_contain_text("Someone changed it first")
    expect(head).to_contain_text("Awaiting customer")
    refusal.get_by_role("button", name="Discard").click()
    expect(status.get_by_role("alert")).to_have_count(0)

    # The remedy waits for its approver (R4 names none: an admin decides); the rep sees who.
    remedies = rep.page.get_by_role("region", name="Remedies")
    expect(remedies).to_contain_text("Waiting for the decision of")
    expect(remedies.get_by_role("button", name="Approve")).to_have_count(0)

    admin = signed_in(new_context, base, "admin", "tablet")
    open_case(admin, cases["fresh"])
    decided = admin.page.get_by_role("region", name="Remedies")
    decided.get_by_role("button", name="Approve").click()
    dialog = admin.page.get_by_role("dialog")
    expect(dialog).to_contain_text("Approve RMA-")
    dialog.get_by_role("button", name="Approve").click()
    expect(decided.get_by_role("listitem")).to_contain_text("Approved")
    expect(remedies.get_by_role("listitem")).to_contain_text("Approved")  # the rep's screen follows
    remedies.get_by_role("button", name="Mark carried out").click()
    expect(remedies.get_by_role("listitem")).to_contain_text("Carried out")
    # Every remedy carried out resolves the case.
    expect(head).to_contain_text("Resolved")
    rep.shoot("rep", "case-remedy", "desktop", "en")
    assert rep.errors == []
    assert admin.errors == []


def test_a_reply_to_the_customer_is_confirmed_and_looks_unlike_an_internal_note(
    scenario: tuple[Any, str], cases: dict[str, str], new_context: NewContext
) -> None:
    _, base = scenario
    app = signed_in(new_context, base, "lucia.martin", "phone")
    open_case(app, cases["reply"])
    page = app.page
    page.get_by_role("button", name="Write first response").click()
    expect(page.get_by_label("Visible to customer")).to_be_checked()
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    page.get_by_label("Message", exact=True).fill("We are sending replacement latches today.")
    page.get_by_role("button", name="Send", exact=True).click()
    dialog = page.get_by_role("dialog", name="Send to the customer?")
    expect(dialog).to_be_visible()
    check_layout(app)
    app.shoot("rep", "case-publish-confirm", "phone", "en")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    log = page.get_by_role("log", name="Messages")
    expect(log.get_by_role("listitem").filter(has_text="replacement latches")).to_have_count(0)
    expect(page.get_by_label("Message", exact=True)).to_have_value("We are sending replacement latches today.")

    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Send to customer").click()
    # Sent and acknowledged: no copy of it still waits in the outbox.
    expect(log.get_by_role("listitem").filter(has_text="replacement latches").first).to_be_visible()
    expect(log.locator(".message--pending")).to_have_count(0)
    public = log.get_by_role("listitem").filter(has_text="replacement latches")
    expect(public).to_contain_text("Visible to customer")
    # The reply was the first response: the prompt for one is gone.
    expect(page.get_by_role("button", name="Write first response")).to_have_count(0)

    page.get_by_label("Message", exact=True).fill("Ask the warehouse for the latch batch.")
    expect(page.get_by_label("Visible to customer")).not_to_be_checked()
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log.get_by_role("listitem").filter(has_text="latch batch").first).to_be_visible()
    expect(log.locator(".message--pending")).to_have_count(0)
    note = log.get_by_role("listitem").filter(has_text="latch batch")
    expect(note).to_contain_text("Internal")
    expect(page.get_by_role("dialog")).to_have_count(0)
    style = "el => [getComputedStyle(el).borderTopStyle, getComputedStyle(el).backgroundColor]"
    assert public.evaluate(style) != note.evaluate(style)
    app.shoot("rep", "case-thread", "phone", "en")
    assert app.errors == []


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize("device", ["phone", "tablet", "desktop"])
def test_the_inbox_and_the_case_view_in_each_viewport_and_language(
    scenario: tuple[Any, str], cases: dict[str, str], new_context: NewContext, device: str, lang: str
) -> None:
    _, base = scenario
    app = signed_in(new_context, base, "lucia.martin", device, lang)
    expect(case_rows(app).first).to_be_visible()
    check_layout(app)
    app.shoot("rep", "cases", device, lang)
    open_case(app, cases["cs1003"])
    expect(app.page.locator(".chart canvas").first).to_be_visible()
    check_layout(app)
    app.shoot("rep", "case", device, lang)
    assert app.errors == []
    assert not re.search(r"\b(undefined|NaN)\b", app.page.inner_text("body"))
