"""Threads in real time across two browser contexts: an inspector on a tablet and a service
rep on a phone talk in the nonconformance's thread, each seeing the other's messages and
typing without a reload; a message sent offline arrives once, when its sender is back."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp
from tests.browser.worlds import pulled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NC_THREAD = re.compile(r"^NC-0142")


def open_thread(context: Any, base: str, username: str) -> WebApp:
    app = WebApp(context.new_page(), base)
    app.open()
    app.sign_in_as(username)
    app.page.get_by_role("link", name="Threads").click()
    app.page.get_by_role("link", name=NC_THREAD).click()
    expect(app.page.get_by_role("heading", name=NC_THREAD)).to_be_visible()
    return app


def send(app: WebApp, body: str) -> None:
    app.page.get_by_label("Message", exact=True).fill(body)
    app.page.get_by_role("button", name="Send").click()


def messages(app: WebApp) -> Any:
    return app.page.get_by_role("log", name="Messages").get_by_role("listitem")


def arrives(app: WebApp, body: str) -> None:
    """`body` shows in `app`'s thread, once, without a reload (within the suite's bounded wait)."""
    expect(messages(app).filter(has_text=body)).to_have_count(1)


def test_an_inspector_and_a_rep_talk_in_real_time_and_offline_messages_arrive_once(
    scenario: tuple[Any, str], new_context: NewContext
) -> None:
    _, base = scenario
    inspector = open_thread(new_context(base, device="tablet"), base, "wang.lei")
    rep_context = new_context(base, device="phone")
    rep = open_thread(rep_context, base, "lucia.martin")

    send(inspector, "Coating gauge on L2 re-zeroed, measuring again.")
    expect(messages(inspector).filter(has_text="re-zeroed").filter(has_text="Sending")).to_have_count(0)
    arrives(rep, "Coating gauge on L2 re-zeroed")

    rep.page.get_by_label("Message", exact=True).press_sequentially("Thanks, I")
    expect(inspector.page.get_by_text("Lucía Martín is typing…")).to_be_visible()
    inspector.shoot("inspector", "thread-typing", "tablet", "en")
    rep.page.get_by_role("button", name="Send").click()
    arrives(inspector, "Thanks, I")
    expect(inspector.page.get_by_text("is typing…")).to_have_count(0)
    rep.shoot("rep", "thread", "phone", "en")

    rep_context.set_offline(True)
    send(rep, "Sent from the warehouse, no signal here.")
    expect(messages(rep).filter(has_text="no signal here")).to_contain_text("Not sent yet")
    rep.shoot("rep", "thread-offline", "phone", "en")
    rep_context.set_offline(False)
    arrives(inspector, "no signal here")
    expect(messages(rep).filter(has_text="no signal here")).not_to_contain_text("Not sent yet")
    inspector.shoot("inspector", "thread", "tablet", "en")
    assert inspector.errors == []
    assert rep.errors == []

    bodies = [m["body"] for m in pulled(base, "wang.lei")["message"]]
    assert bodies.count("Sent from the warehouse, no signal here.") == 1
