"""Fixtures for the browser tests: Chromium, a demo server, and browser contexts per device.

Without Playwright or Chromium these tests skip on a developer machine and fail in CI
(`CI` set), so a CI image that lost its browser cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.web import DEVICES, WebApp
from tests.browser.worlds import scenario_server
from tests.support import demo_world, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A demo world of the browser tests' own (they sign in and out, which writes sessions)."""
    with demo_world(tmp_path_factory.mktemp("browser")) as settings:
        yield settings


@pytest.fixture(scope="module")
def browser(demo_data: Any) -> Iterator[Any]:
    # Playwright's sync API keeps an event loop running in this thread while it is open, and
    # building a demo world needs `asyncio.run`: so the world (`demo_data`) comes first, and
    # the browser closes after each module, leaving later modules free to build their own.
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The demo scenario played, served by its own process: (settings, base URL). Tests that
    use it add to it (an inspection, messages), never undo what another test relies on."""
    with scenario_server(tmp_path_factory.mktemp("scenario")) as running:
        yield running


@pytest.fixture(scope="session")
def server(demo_data: Any) -> Iterator[str]:
    with running_server(demo_data) as base:
        yield base


NewContext = Callable[..., Any]


@pytest.fixture
def new_context(browser: Any) -> Iterator[NewContext]:
    """`new_context(base, device="tablet", locale="en")` → a fresh browser context (own storage, own service worker)."""
    contexts: list[Any] = []

    def make(base: str, device: str = "tablet", locale: str = "en") -> Any:
        context = browser.new_context(base_url=base, locale=locale, service_workers="allow", **DEVICES[device])
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def app(new_context: NewContext, server: str) -> WebApp:
    """The web app open on a tablet, on the sign-in screen."""
    web = WebApp(new_context(server).new_page(), server)
    web.open()
    return web
