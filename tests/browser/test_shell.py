"""The shell: it loads, installs as an app, works offline, and the API docs need no CDN."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.web import WebApp


def test_the_shell_loads_with_its_build_and_language(app: WebApp, server: str) -> None:
    expect(app.page.get_by_role("heading", name="Sign in to Loopline")).to_be_visible()
    expect(app.page.get_by_label("Username")).to_be_visible()
    expect(app.page.get_by_label("Password")).to_have_attribute("type", "password")
    expect(app.page.get_by_role("button", name="Sign in")).to_be_visible()
    assert app.page.evaluate("document.documentElement.lang") == "en"
    assert app.build_id == httpx.get(server).headers["X-Loopline-Build"]
    assert app.errors == []


def test_the_manifest_and_service_worker_make_it_installable(app: WebApp) -> None:
    manifest = app.page.request.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    fields = manifest.json()
    assert fields["display"] == "standalone"
    assert fields["start_url"] == "/"
    assert fields["scope"] == "/"
    assert fields["theme_color"] == "#0b3d6e"
    assert fields["background_color"] == "#f6f7f9"
    assert fields["name"] == "Loopline"
    sizes = {(icon["sizes"], icon["purpose"]) for icon in fields["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in fields["icons"]:
        image = app.page.request.get(icon["src"])
        assert image.status == 200, icon
        assert image.headers["content-type"] == "image/png", icon

    app.wait_for_service_worker()
    cdp = app.page.context.new_cdp_session(app.page)
    errors = [error["errorId"] for error in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]]
    # Playwright's contexts are off-the-record profiles, where Chromium never offers to install.
    assert [error for error in errors if error != "in-incognito"] == []
    assert cdp.send("Page.getAppManifest")["errors"] == []


def test_an_offline_reload_serves_the_shell_and_the_session(app: WebApp) -> None:
    app.sign_in_as("wang.lei")
    app.wait_for_service_worker()
    app.page.context.set_offline(True)
    app.page.reload()
    expect(app.page.get_by_role("navigation", name="Main").get_by_role("link", name="Batches")).to_be_visible()
    expect(app.page.get_by_text("Offline", exact=True)).to_be_visible()
    assert app.errors == []


def test_api_docs_render_from_this_server_only(new_context: NewContext, server: str) -> None:
    page = new_context(server, device="desktop").new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/schema")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Loopline API")
    expect(page.locator(".opblock").first).to_be_visible()
    origin = urlsplit(server).netloc
    assert requested, "the docs page made no requests"
    assert [url for url in requested if not _same_origin(url, origin)] == []


def _same_origin(url: str, netloc: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "data" or parts.netloc == netloc


def test_swagger_is_also_at_its_own_path(new_context: NewContext, server: str) -> None:
    page: Any = new_context(server, device="desktop").new_page()
    page.goto("/schema/swagger")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Loopline API")


def test_the_barcode_polyfill_loads_its_reader_from_this_build(app: WebApp, server: str) -> None:
    requested: list[str] = []
    app.page.on("request", lambda request: requested.append(request.url))
    found = app.page.evaluate(
        """async () => {
            const { BarcodeDetector } = await import('barcode-detector');
            const canvas = new OffscreenCanvas(64, 64);
            canvas.getContext('2d').fillRect(0, 0, 64, 64);
            return new BarcodeDetector({ formats: ['qr_code'] }).detect(await createImageBitmap(canvas));
        }"""
    )
    assert found == []
    assert f"{server}/app/{app.build_id}/vendor/zxing-wasm/zxing_reader.wasm" in requested
    assert [url for url in requested if not url.startswith(server)] == []
