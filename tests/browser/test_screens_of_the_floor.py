"""Every screen of the inspector's capture and of the threads, in its device's viewport and in
both languages: screenshots for people to look at, and the layout rules a screenshot cannot
prove (no sideways scrolling, touch targets of at least 48 px, no axe-core findings)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp, check_layout
from tests.browser.worlds import pulled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LOT_018 = "CN-SZ-L2-2406-018"
LANGUAGES = ["en", "zh-CN"]


def visit(app: WebApp, route: str, ready: Any) -> None:
    app.page.evaluate("route => { location.hash = route; }", route)
    expect(ready(app.page)).to_be_visible()


def screens(scenario: tuple[Any, str]) -> dict[str, str]:
    """Each screen's route in the demo world."""
    _, base = scenario
    held = pulled(base, "wang.lei")
    [batch] = [row for row in held["batch"] if row["lot_no"] == LOT_018]
    [thread] = [row for row in held["thread"] if row["title"].startswith("NC-0142")]
    return {
        "batches": "#/batches",
        "batch": f"#/batches/{batch['id']}",
        "inspection-form": f"#/batches/{batch['id']}/inspect",
        "defect-form": f"#/batches/{batch['id']}/defect",
        "threads": "#/threads",
        "thread": f"#/threads/{thread['id']}",
        "outbox": "#/outbox",
    }


# What shows once a screen has its data (by structure, so in any language).
READY = {
    "batches": lambda page: page.locator(".rows .row").first,
    "batch": lambda page: page.get_by_role("heading", name=LOT_018, exact=True),
    "inspection-form": lambda page: page.locator(".characteristic").first,
    "defect-form": lambda page: page.locator("#defect-code"),
    "threads": lambda page: page.locator(".rows .row").first,
    "thread": lambda page: page.locator(".message").first,
    "outbox": lambda page: page.locator("main h2").first,
}

PEOPLE = {
    # The inspector's tablet, held either way, and the rep's phone (the same thread screens).
    ("inspector", "tablet"): ("wang.lei", list(READY)),
    ("inspector", "tablet-portrait"): ("wang.lei", list(READY)),
    ("rep", "phone"): ("lucia.martin", ["threads", "thread", "outbox"]),
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(("persona", "device"), list(PEOPLE))
def test_every_screen_in_its_viewport_and_language(
    scenario: tuple[Any, str], new_context: NewContext, persona: str, device: str, lang: str
) -> None:
    _, base = scenario
    username, names = PEOPLE[(persona, device)]
    routes = screens(scenario)
    app = WebApp(new_context(base, device=device, locale=lang).new_page(), base)
    app.open()
    app.sign_in_as(username)
    for name in names:
        visit(app, routes[name], READY[name])
        check_layout(app)
        app.shoot(persona, name, device, lang)
    visit(app, routes["batches"] if persona == "inspector" else routes["threads"], READY["batches"])
    if persona == "inspector":
        app.page.locator(".finder button[type=button]").click()  # scan: no camera in this browser
        expect(app.page.get_by_role("dialog")).to_be_visible()
        expect(app.page.get_by_role("dialog").get_by_role("alert")).to_be_visible()
        check_layout(app)
        app.shoot(persona, "scan-no-camera", device, lang)
    assert app.errors == []
    assert not re.search(r"\b(undefined|NaN)\b", app.page.inner_text("body"))
