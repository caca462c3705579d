"""Photo processing time beside a bare-Pillow baseline measured in the same run (prints JSON).

The input is a photo-like 12 MP JPEG (4000 x 3000, gradients under sensor-like noise,
quality 90) stored sideways with EXIF orientation 6, as phones write portrait shots.

- process: `loopline.media.images.process_image`, i.e. everything the server does per
  upload: byte and pixel limits, the real decode, metadata, upright sRGB copies and two
  atomic (fsynced) WebP writes.
- baseline: the least Pillow can do for the same copies: open, `draft`, `exif_transpose`,
  a 1600 px and a 320 px resize, and two WebP saves with the same settings.

Each run times both, alternating which goes first; the medians are reported.
Target: process at most 1.2 times the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "backend"))

from PIL import Image, ImageOps  # noqa: E402

from loopline.media.images import (  # noqa: E402
    REDUCING_GAP,
    RESAMPLE,
    SIZES,
    WEBP_METHOD,
    WEBP_QUALITY,
    process_image,
)

TARGET_RATIO = 1.2
WIDTH, HEIGHT = 4000, 3000


def photo_like_jpeg(path: Path) -> None:
    """Smooth gradients under per-channel noise: compresses and decodes like a real phone photo."""

    def channel(sigma: float, angle: float) -> Image.Image:
        gradient = Image.linear_gradient("L").rotate(angle).resize((WIDTH, HEIGHT))
        return Image.blend(gradient, Image.effect_noise((WIDTH, HEIGHT), sigma), 0.35)

    photo = Image.merge("RGB", [channel(40, 0), channel(50, 90), channel(60, 45)])
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    photo.save(path, "JPEG", quality=90, exif=exif)


def fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def baseline(original: Path, out_dir: Path) -> None:
    with Image.open(original) as img:
        img.draft("RGB", fit(img.size, SIZES["display"]))
        upright = ImageOps.exif_transpose(img)
    display = upright.resize(fit(upright.size, SIZES["display"]), RESAMPLE, reducing_gap=REDUCING_GAP)
    thumb = display.resize(fit(display.size, SIZES["thumb"]), RESAMPLE, reducing_gap=REDUCING_GAP)
    display.save(out_dir / "display.webp", "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    thumb.save(out_dir / "thumb.webp", "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)


def timed_ms(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def run(tmp: Path, runs: int) -> dict[str, Any]:
    original = tmp / "photo.jpg"
    photo_like_jpeg(original)
    (tmp / "process").mkdir()
    (tmp / "baseline").mkdir()

    def process() -> object:
        return process_image(original, tmp / "process")

    def bare() -> object:
        baseline(original, tmp / "baseline")
        return None

    process()  # warm-up: plugin imports, first-call allocations
    bare()
    process_times, baseline_times = [], []
    for n in range(runs):
        if n % 2:
            process_times.append(timed_ms(process))
            baseline_times.append(timed_ms(bare))
        else:
            baseline_times.append(timed_ms(bare))
            process_times.append(timed_ms(process))
    process_ms, baseline_ms = statistics.median(process_times), statistics.median(baseline_times)
    ratio = process_ms / baseline_ms
    return {
        "process_ms": round(process_ms, 1),
        "baseline_ms": round(baseline_ms, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "runs": runs,
        "original_bytes": original.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), args.runs), indent=2))


if __name__ == "__main__":
    main()
