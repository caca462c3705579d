"""Every persona's first screens on every device, in English and Chinese: screenshots for
people to look at, and the layout rules a screenshot cannot prove (no sideways scrolling,
touch targets of at least 48 px)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import DEVICES, WebApp, accessibility_violations, check_layout

PERSONAS = {"inspector": "wang.lei", "rep": "lucia.martin", "supervisor": "qa.manager"}
LANGUAGES = ["en", "zh-CN"]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("device", list(DEVICES))
def test_first_screens(new_context: NewContext, server: str, device: str, lang: str) -> None:
    app = WebApp(new_context(server, device=device, locale=lang).new_page(), server)
    app.open()
    assert app.page.evaluate("document.documentElement.lang") == lang
    check_layout(app)
    app.shoot("guest", "signin", device, lang)

    app.sign_in("wang.lei", "not-the-password")
    expect(app.alert()).to_be_visible()
    app.shoot("guest", "signin-error", device, lang)

    for persona, username in PERSONAS.items():
        app.sign_in_as(username)
        check_layout(app)
        app.shoot(persona, "home", device, lang)
        app.page.locator(".topbar__signout").click()
        expect(app.page.locator(".statusbar")).to_have_count(0)
    assert app.errors == []


@pytest.mark.parametrize("device", list(DEVICES))
def test_unsent_changes_and_the_sign_out_question(new_context: NewContext, server: str, device: str) -> None:
    app = WebApp(new_context(server, device=device).new_page(), server)
    app.open()
    app.sign_in_as("wang.lei")
    app.page.context.set_offline(True)
    app.page.evaluate(
        """async () => {
            const { client } = await import(`/app/${document.documentElement.dataset.build}/app/state/client.js`);
            for (const body of ['Scratch on housing', 'Label misprint']) {
                await client.enqueue('message.post', { thread_id: crypto.randomUUID(), body });
            }
        }"""
    )
    expect(app.unsent_status()).to_contain_text("2 unsent changes")
    check_layout(app)
    app.shoot("inspector", "offline-unsent", device, "en")
    app.page.get_by_role("button", name="Sign out").click()
    expect(app.page.get_by_role("dialog")).to_be_visible()
    assert accessibility_violations(app.page) == []
    app.shoot("inspector", "signout-dialog", device, "en")
