"""A new deploy: the open app offers "Update", and taking it reloads into the new version whole."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp
from tests.support import ROOT, free_port, running_server

# A value in an IndexedDB database of its own, written by one version and read by the next.
PROBE = """async (value) => {
    const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open('update-probe', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('kv');
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
    });
    const store = db.transaction('kv', 'readwrite').objectStore('kv');
    const request = value ? store.put(value, 'probe') : store.get('probe');
    await new Promise((resolve) => { request.onsuccess = resolve; });
    return value ? null : request.result;
}"""


def test_a_new_version_is_offered_and_taking_it_reloads_into_it_with_data_intact(
    new_context: NewContext, demo_data: Any, tmp_path: Path
) -> None:
    pwa = tmp_path / "pwa"
    shutil.copytree(ROOT / "pwa", pwa)
    port = free_port()
    serve_this_tree = ("LOOPLINE_PWA_DIR", str(pwa))

    with running_server(demo_data, serve_this_tree, port=port) as base:
        app = WebApp(new_context(base).new_page(), base)
        app.open()
        app.sign_in_as("wang.lei")
        app.wait_for_service_worker()
        old_build = app.build_id
        app.page.evaluate(PROBE, "written by the old version")

    # The next deploy: one changed file is a new version.
    stylesheet = pwa / "app" / "styles" / "shell.css"
    stylesheet.write_text(stylesheet.read_text() + "\n/* v2 */\n")
    with running_server(demo_data, serve_this_tree, port=port) as base:
        new_build = httpx.get(base).headers["X-Loopline-Build"]
        assert new_build != old_build

        # Opening the app again starts the old version from its cache and finds the new one.
        app.page.reload()
        assert app.build_id == old_build
        update = app.page.get_by_role("button", name="Update")
        expect(update).to_be_visible()

        with app.page.expect_navigation():
            update.click()
        expect(app.page.locator(f'html[data-build="{new_build}"]')).to_be_attached()
        expect(app.page.locator(".statusbar")).to_be_visible()  # still signed in
        expect(update).to_have_count(0)
        assert app.page.evaluate(PROBE, "") == "written by the old version"
        assert app.page.evaluate("caches.keys()") == [f"loopline-shell-{new_build}"]
        assert app.errors == []
