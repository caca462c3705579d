"""The supervisor's overview on the played scenario: every section with the demo's data, the
SPC chart of C1 on line L2 with the Nelson-3 points of QW-0001, an advisory approved from
here, and screenshots on a desk and a tablet in both languages."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp, check_layout
from tests.browser.worlds import api_as, pulled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Shipped to; no other browser test finds it out of spec.
LOT_017 = "CN-SZ-L2-2406-017"
# QW-0001: Nelson 3 on C1, line L2 (six falling means, the last of them INS-88130's).
QW_0001_SUBGROUP = "INS-88130"


def overview(new_context: NewContext, base: str, device: str = "desktop", locale: str = "en") -> WebApp:
    app = WebApp(new_context(base, device=device, locale=locale).new_page(), base)
    app.open()
    app.sign_in_as("qa.manager")
    expect(app.page.locator(".overview__tally")).to_be_visible()
    return app


def section(app: WebApp, name: str) -> Any:
    return app.page.get_by_role("region", name=name, exact=True)


def test_the_overview_shows_what_is_on_fire_in_the_demo(scenario: tuple[Any, str], new_context: NewContext) -> None:
    _, base = scenario
    app = overview(new_context, base)
    for name in [
        "Advisories waiting",
        "Cases and their SLA",
        "Nonconformances and holds",
        "Quality watches",
        "CAPA and the closing gate",
        "SPC charts",
        "Audit chain",
    ]:
        expect(section(app, name)).to_be_visible()
    expect(section(app, "Quality watches")).to_contain_text("QW-0001")
    expect(section(app, "Quality watches")).to_contain_text("Nelson 3")
    capa = section(app, "CAPA and the closing gate")
    expect(capa).to_contain_text("CAPA-0077")
    expect(capa).to_contain_text("Effectiveness passed")
    expect(capa).to_contain_text(re.compile(r"Gate open\s*NC-0142 may close"))
    # CS-1005 was resolved after 96 h against a 72 h SLA: the demo's one red SLA.
    expect(section(app, "Cases and their SLA")).to_contain_text("CS-1005")
    audit = section(app, "Audit chain")
    expect(audit.get_by_role("status")).to_contain_text("Intact")
    expect(audit.get_by_role("status")).to_contain_text(re.compile(r"[\d,]+ events verified end to end"))

    # The chart of C1 on L2 marks the subgroups where the server's run rules fired.
    signals = app.page.get_by_role("list", name="Run-rule signals of C1 on line L2")
    expect(signals.get_by_role("listitem").filter(has_text=QW_0001_SUBGROUP)).to_contain_text("Nelson 3")
    chart = app.page.get_by_role("figure", name=re.compile(r"^C1 Conformal-coating thickness · CN-SZ line L2"))
    expect(chart.get_by_role("img", name=re.compile("signalled"))).to_be_visible()
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_contain_text("Cpk")
    assert app.errors == []


def test_an_advisory_drafted_by_an_inspection_is_approved_from_the_overview(
    scenario: tuple[Any, str], new_context: NewContext
) -> None:
    _, base = scenario
    app = overview(new_context, base)
    held = pulled(base, "wang.lei")
    [batch] = [row for row in held["batch"] if row["lot_no"] == LOT_017]
    [plan] = held["inspection_plan"]
    # An audit of retained samples finds lot 017 thin: the loop drafts an advisory.
    with api_as(base, "wang.lei") as http:
        answer = http.post(
            "/inspections",
            json={
                "id": str(uuid.uuid4()),
                "batch_id": batch["id"],
                "plan_id": plan["id"],
                "kind": "audit",
                "captured_at": "2024-06-20T08:00:00Z",
                "measurements": [{"characteristic": "C1", "value": v} for v in [23.0, 24.0, 22.5, 26.0, 21.5]],
            },
        )
        assert answer.status_code == 201, answer.text
    [draft] = [a for a in pulled(base, "qa.manager")["advisory"] if batch["id"] in a["batch_ids"]]
    assert draft["status"] == "draft"

    # It arrives live; approving is the row's one action.
    waiting = app.page.get_by_role("list", name="Waiting for approval")
    row = waiting.get_by_role("listitem").filter(has_text=draft["number"])
    expect(row).to_be_visible()
    expect(row).to_contain_text(LOT_017)
    row.get_by_role("button", name="Approve advisory", exact=True).click()
    expect(row).to_have_count(0)
    approved = app.page.get_by_role("list", name="Approved, not sent yet").get_by_role("listitem")
    expect(approved.filter(has_text=draft["number"]).get_by_role("button", name="Send advisory")).to_be_visible()
    expect(app.unsent_status()).to_contain_text("All changes sent")

    [held_now] = [a for a in pulled(base, "qa.manager")["advisory"] if a["id"] == draft["id"]]
    assert held_now["status"] == "approved"
    assert app.errors == []


@pytest.mark.parametrize("device", ["desktop", "tablet"])
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_overview_fits_a_desk_and_a_tablet(
    scenario: tuple[Any, str], new_context: NewContext, device: str, locale: str
) -> None:
    _, base = scenario
    app = overview(new_context, base, device, locale)
    expect(app.page.locator(".overview__signals li").first).to_be_visible()
    expect(app.page.locator(".overview__plot canvas").first).to_be_visible()
    expect(app.page.locator("#ov-audit + [role=status] .chip")).to_be_visible()
    app.shoot("supervisor", "overview", device, locale)
    check_layout(app)
    assert app.errors == []
