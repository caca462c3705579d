"""Signing in and out: role-aware navigation, and clear words when something is wrong."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp
from tests.support import running_server


def nav_links(app: WebApp) -> Any:
    return app.page.get_by_role("navigation", name="Main").get_by_role("link")


def test_an_inspector_signs_in_sees_their_screens_and_signs_out(app: WebApp) -> None:
    app.sign_in_as("wang.lei")
    expect(nav_links(app)).to_have_text(["Batches", "Threads"])
    expect(app.page.get_by_role("heading", name="Batches")).to_be_visible()
    expect(app.unsent_status()).to_have_text("All changes sent")
    expect(app.page.get_by_text("Online", exact=True)).to_be_visible()
    expect(app.page.get_by_text("Synced just now")).to_be_visible()

    app.page.get_by_role("button", name="Sign out").click()
    expect(app.page.get_by_role("heading", name="Sign in to Loopline")).to_be_visible()
    app.page.reload()
    expect(app.page.get_by_role("heading", name="Sign in to Loopline")).to_be_visible()
    assert app.errors == []


def test_each_role_sees_its_own_navigation(app: WebApp) -> None:
    for username, screens in [("lucia.martin", ["Cases", "Threads"]), ("qa.manager", ["Overview", "Cases", "Threads"])]:
        app.sign_in_as(username)
        expect(nav_links(app)).to_have_text(screens)
        assert app.page.evaluate("location.hash") == f"#/{screens[0].lower()}"
        app.page.get_by_role("button", name="Sign out").click()


def test_a_wrong_password_says_so_and_signs_nobody_in(app: WebApp) -> None:
    app.sign_in("wang.lei", "not-the-password")
    expect(app.alert()).to_have_text("Wrong username or password. Check both and try again.")
    expect(app.page.get_by_role("button", name="Sign in")).to_be_enabled()
    expect(app.page.locator(".statusbar")).to_have_count(0)


def test_too_many_attempts_say_to_wait(new_context: NewContext, demo_data: Any) -> None:
    with running_server(replace(demo_data, login_attempts_per_user=2)) as base:
        app = WebApp(new_context(base).new_page(), base)
        app.open()
        for _ in range(3):
            app.sign_in("jana.novak", "not-the-password")
            expect(app.alert()).to_be_visible()
        expect(app.alert()).to_contain_text("Too many sign-in attempts")


def test_a_first_sign_in_offline_says_it_needs_the_network(app: WebApp) -> None:
    app.wait_for_service_worker()
    app.page.context.set_offline(True)
    app.page.reload()
    expect(app.page.get_by_text("You are offline. Signing in for the first time")).to_be_visible()
    app.sign_in("wang.lei")
    expect(app.alert()).to_have_text(
        "You are offline, and this device has not signed in before. Connect to the network and try again."
    )


def test_signing_out_with_unsent_changes_asks_first_and_says_what_is_at_stake(app: WebApp) -> None:
    app.sign_in_as("wang.lei")
    app.page.context.set_offline(True)
    # No screen creates records yet; queue one through the page's own sync client.
    app.page.evaluate(
        """async () => {
            const base = document.documentElement.dataset.build;
            const { client } = await import(`/app/${base}/app/state/client.js`);
            await client.enqueue('message.post', { thread_id: crypto.randomUUID(), body: 'Lot 018: see photos' });
        }"""
    )
    expect(app.unsent_status()).to_contain_text("1 unsent change, oldest under 1 min")

    app.page.get_by_role("button", name="Sign out").click()
    dialog = app.page.get_by_role("dialog", name="Sign out with unsent changes?")
    expect(dialog).to_contain_text("1 change made on this device has not reached the server.")
    expect(dialog).to_contain_text("sent only when you sign in here again")
    dialog.get_by_role("button", name="Stay signed in").click()
    expect(dialog).to_be_hidden()
    expect(app.unsent_status()).to_contain_text("1 unsent change")

    app.page.get_by_role("button", name="Sign out").click()
    dialog.get_by_role("button", name="Sign out anyway").click()
    expect(app.page.get_by_role("heading", name="Sign in to Loopline")).to_be_visible()
