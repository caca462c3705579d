"""The inspector's capture in Chromium against a real server: offline exactly as online.

An inspector on a tablet in a Wi-Fi dead zone captures an out-of-spec inspection with two
photos; the page is closed and opened again, still offline, and nothing is lost; when the
network returns, everything syncs once and the loop's answer (the nonconformance, the hold)
appears on screen.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image
from playwright.sync_api import expect

from loopline.core.settings import Settings
from tests.browser.conftest import NewContext
from tests.browser.web import WebApp
from tests.browser.worlds import api_as, pulled
from tests.photo_helpers import encode, gps_exif

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOT_016 = "CN-SZ-L2-2406-016"
BELOW_LSL = [20.5, 21.0, 19.8, 22.4, 23.1]  # C1: LSL 25 µm
MAX_EDGE_PX = 2048


def camera_photo(path: Path, seed: int) -> Path:
    """A 12-megapixel-class JPEG as a tablet's camera writes it: larger than 2048 px, with GPS in its EXIF."""
    image = Image.effect_mandelbrot((3000, 2250), (-2.0 + seed / 10, -1.2, 0.8, 1.2), 60).convert("RGB")
    path.write_bytes(encode(image, "JPEG", quality=85, exif=gps_exif().tobytes()))
    return path


def open_lot(page: Any, lot: str) -> None:
    page.get_by_label("Lot number").fill(lot)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_role("heading", name=lot)).to_be_visible()


def test_an_inspection_captured_offline_survives_a_closed_page_and_syncs_with_its_photos(
    scenario: tuple[Settings, str], new_context: NewContext, tmp_path: Path
) -> None:
    _, base = scenario
    context = new_context(base, device="tablet")
    app = WebApp(context.new_page(), base)
    app.open()
    app.sign_in_as("wang.lei")
    lot_row = app.page.get_by_role("link", name=re.compile(LOT_016))
    expect(lot_row).to_contain_text("Released")  # the first sync is in
    app.wait_for_service_worker()

    context.set_offline(True)
    app.page.reload()
    expect(lot_row).to_be_visible()  # the shell and the batches, from this device alone
    expect(app.page.get_by_text("Offline", exact=True)).to_be_visible()

    open_lot(app.page, LOT_016)
    app.page.get_by_role("link", name="New inspection").click()
    for n, value in enumerate(BELOW_LSL, start=1):
        app.page.get_by_label(f"C1 sample {n}", exact=True).fill(str(value))
    expect(app.page.locator(".sample--out_of_spec")).to_have_count(len(BELOW_LSL))
    expect(app.page.get_by_role("status").filter(has_text="Result: fail")).to_contain_text("Out of spec: C1")
    app.page.get_by_label("Add photo").set_input_files([camera_photo(tmp_path / f"c1-{i}.jpg", i) for i in (1, 2)])
    expect(app.page.locator(".photos__item img")).to_have_count(2)
    app.shoot("inspector", "inspection-out-of-spec", "tablet", "en")
    app.page.get_by_role("button", name="Submit inspection").click()
    expect(app.page.get_by_text("Not sent yet")).to_be_visible()
    app.page.close()

    again = WebApp(context.new_page(), base)
    again.open()  # still offline: a new page from the service worker and IndexedDB
    expect(again.unsent_status()).to_contain_text("1 unsent change")
    expect(again.page.get_by_text("2 photos waiting to upload")).to_be_visible()
    again.shoot("inspector", "offline-waiting", "tablet", "en")

    context.set_offline(False)
    expect(again.unsent_status()).to_contain_text("All changes sent")
    expect(again.page.get_by_text("photos waiting to upload")).to_have_count(0)
    row = again.page.get_by_role("link", name=re.compile(LOT_016))
    expect(row).to_contain_text("On hold")
    expect(row).to_contain_text(re.compile(r"NC-\d+ Open"))
    again.shoot("inspector", "batches-after-sync", "tablet", "en")
    open_lot(again.page, LOT_016)
    expect(again.page.get_by_role("status").filter(has_text="on hold")).to_be_visible()
    expect(again.page.get_by_role("heading", name="Nonconformances")).to_be_visible()
    again.shoot("inspector", "batch-on-hold", "tablet", "en")
    assert again.errors == []

    held = pulled(base, "wang.lei")
    [batch] = [row for row in held["batch"] if row["lot_no"] == LOT_016]
    assert batch["status"] == "on_hold"
    [inspection] = [row for row in held["inspection"] if row["batch_id"] == batch["id"] and row["result"] == "fail"]
    [nc] = [row for row in held["nonconformance"] if batch["id"] in row["batch_ids"]]
    assert nc["source_ref"] == inspection["id"]
    photos = [row for row in held["attachment"] if row["entity_id"] == inspection["id"]]
    assert sorted(row["state"] for row in photos) == ["available", "available"]
    with api_as(base, "wang.lei") as http:
        for attachment in photos:
            served = http.get(f"/blobs/{attachment['sha256']}", params={"size": "original"})
            assert served.status_code == 200
            image = Image.open(io.BytesIO(served.content))
            assert max(image.size) <= MAX_EDGE_PX
            assert ExifTags.IFD.GPSInfo not in image.getexif()
