"""Scanning a lot label: Chromium's fake camera plays a clip of the label's QR code, and
"Scan label" opens that batch (through the vendored zxing-wasm reader where the browser has
no BarcodeDetector of its own, as Chromium on Linux has none)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.web import DEVICES, WebApp

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOT_018 = "CN-SZ-L2-2406-018"
FRAME = (640, 480)


def label_clip(path: Path, text: str, frames: int = 10) -> Path:
    """A Y4M video (what Chromium's fake camera plays) of a label holding `text` as a QR code."""
    png = io.BytesIO()
    segno.make_qr(text, error="m").save(png, kind="png", scale=8, border=4)
    code = Image.open(png).convert("L")
    picture = Image.new("L", FRAME, 235)
    picture.paste(code, ((FRAME[0] - code.width) // 2, (FRAME[1] - code.height) // 2))
    y, cb, cr = picture.convert("RGB").convert("YCbCr").split()
    half = (FRAME[0] // 2, FRAME[1] // 2)
    frame = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with path.open("wb") as clip:
        clip.write(f"YUV4MPEG2 W{FRAME[0]} H{FRAME[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            clip.write(b"FRAME\n" + frame)
    return path


@pytest.fixture
def camera_page(browser: Any, scenario: tuple[Any, str], tmp_path: Path) -> Iterator[WebApp]:
    clip = label_clip(tmp_path / "label.y4m", LOT_018)
    camera = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"],
    )
    _, base = scenario
    context = camera.new_context(base_url=base, permissions=["camera"], **DEVICES["tablet"])
    yield WebApp(context.new_page(), base)
    camera.close()


def test_scan_label_opens_the_batch_on_the_label(camera_page: WebApp) -> None:
    app = camera_page
    app.open()
    app.sign_in_as("wang.lei")
    expect(app.page.get_by_role("link", name=LOT_018)).to_be_visible()
    app.page.get_by_role("button", name="Scan label").click()
    expect(app.page.get_by_role("dialog", name="Scan the lot label")).to_be_visible()
    expect(app.page.get_by_role("heading", name=LOT_018, exact=True)).to_be_visible()
    expect(app.page.get_by_role("dialog")).to_have_count(0)
    assert app.errors == []
