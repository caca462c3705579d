"""The photo pipeline: what it refuses (and why), and what the served copies look like.

Every input is generated here with Pillow (or by hand, byte by byte, for headers Pillow
will not write); no binary fixtures.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageFile, ImageOps

from loopline.media.images import (
    REJECTION_CODES,
    SIZES,
    ImageInfo,
    ImageLimits,
    ImageRejected,
    jpeg_copy,
    process_image,
)

RED = (255, 0, 0)
WHITE = (255, 255, 255)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FUZZ_SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Pillow warns about the damaged EXIF blocks the fuzzers make; the pipeline ignores such metadata anyway.
QUIET_PILLOW = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

ORIENTATION, MAKE, MODEL, DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x0112, 0x010F, 0x0110, 0x9003, 0x9011
EXIF_IFD, GPS_IFD = 0x8769, 0x8825

# How a camera stores an upright scene for each EXIF orientation: the transform a viewer
# must undo (EXIF 2.32, Orientation). Checked against Pillow's own reading in `stored_for`.
STORED_AS: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # counter-clockwise; the viewer turns it clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# --- builders ----------------------------------------------------------------------------------


def red_corner(size: tuple[int, int]) -> Image.Image:
    """White, with a red block over the top-left quarter: any flip or turn moves the block."""
    img = Image.new("RGB", size, WHITE)
    img.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    return img


def gradient_photo(size: tuple[int, int]) -> Image.Image:
    """Cheap to make, yet not flat: each channel a gradient at a different angle."""
    channels = [Image.linear_gradient("L").rotate(angle).resize(size) for angle in (0, 90, 45)]
    return Image.merge("RGB", channels)


def camera_exif(orientation: int = 1) -> Image.Exif:
    """What a phone writes: orientation, make and model, capture time with offset, and a GPS fix."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Apple"
    exif[MODEL] = "iPhone 15 Pro"
    details = exif.get_ifd(EXIF_IFD)
    details[DATETIME_ORIGINAL] = "2024:06:01 10:20:30"
    details[OFFSET_TIME_ORIGINAL] = "+08:00"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (22.0, 32.0, 10.5), 3: "E", 4: (113.0, 56.0, 1.25)})
    return exif


XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="22,32.175N"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def save(img: Image.Image, path: Path, fmt: str, **params: Any) -> Path:
    img.save(path, fmt, **params)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_by_hand(width: int, height: int, *extra_chunks: bytes) -> bytes:
    """An 8-bit RGB PNG header declaring any size, followed by a tiny IDAT that is not that image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + b"".join(extra_chunks)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def with_chunk_after_ihdr(png: bytes, chunk: bytes) -> bytes:
    end_of_ihdr = len(PNG_SIGNATURE) + 25
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def with_chunk_before_iend(png: bytes, chunk: bytes) -> bytes:
    return png[:-12] + chunk + png[-12:]


def text_bomb_chunk() -> bytes:
    """A zTXt comment of 16 KB that inflates to 64 MB."""
    return png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 * 1024 * 1024), 9))


def webp_chunks(path: Path) -> list[bytes]:
    """The RIFF chunk types of a WebP file, in order (metadata would appear as EXIF, XMP  or ICCP)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    kinds, pos = [], 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        kinds.append(kind)
        pos += 8 + size + (size & 1)
    return kinds


# --- helpers -----------------------------------------------------------------------------------


def process(original: Path, tmp_path: Path, limits: ImageLimits = ImageLimits()) -> tuple[ImageInfo, Path]:
    derived = tmp_path / "derived"
    before = original.read_bytes(), original.stat().st_mtime_ns
    info = process_image(original, derived, limits)
    assert (original.read_bytes(), original.stat().st_mtime_ns) == before, "the original was modified"
    return info, derived


def rejection(original: Path, tmp_path: Path, limits: ImageLimits = ImageLimits()) -> ImageRejected:
    derived = tmp_path / "derived"
    derived.mkdir(exist_ok=True)
    before = original.read_bytes()
    with pytest.raises(ImageRejected) as caught:
        process_image(original, derived, limits)
    assert list(derived.iterdir()) == [], "a refused file left something in the derived directory"
    assert original.read_bytes() == before
    assert caught.value.code in REJECTION_CODES
    assert caught.value.message.endswith(".")
    return caught.value


def opened(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img


def assert_no_metadata(path: Path) -> None:
    img = opened(path)
    assert len(img.getexif()) == 0
    assert not {"exif", "xmp", "icc_profile"} & set(img.info)
    assert set(webp_chunks(path)) <= {b"VP8 ", b"VP8L"}


def rgb(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = img.getpixel(xy)
    assert isinstance(value, tuple)
    return value[:3]


def is_red(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel
    return r > 200 and g < 70 and b < 70


def assert_red_corner_upright(img: Image.Image) -> None:
    """Red in the top-left quarter only, judged well inside each quarter to allow for resampling."""
    w, h = img.size
    assert is_red(rgb(img, (w // 16, h // 16)))
    for corner in [(w - 1 - w // 16, h // 16), (w // 16, h - 1 - h // 16), (w - 1 - w // 16, h - 1 - h // 16)]:
        assert not is_red(rgb(img, corner)), corner


def fresh_attempt(data: bytes, workdir: Path) -> None:
    """Process `data` in a clean directory: it is refused with nothing written, or both copies appear."""
    original, derived = workdir / "upload", workdir / "derived"
    shutil.rmtree(derived, ignore_errors=True)
    original.write_bytes(data)
    code = None
    try:
        process_image(original, derived)
    except ImageRejected as rejected:
        code = rejected.code
    if code is None:
        assert sorted(p.name for p in derived.iterdir()) == ["display.webp", "thumb.webp"]
    else:
        assert code in REJECTION_CODES
        assert not derived.exists()


# --- refusals ----------------------------------------------------------------------------------


def truncated_jpeg(tmp: Path) -> Path:
    data = save(Image.effect_noise((400, 300), 60).convert("RGB"), tmp / "x.jpg", "JPEG").read_bytes()
    (tmp / "x.jpg").write_bytes(data[: len(data) // 2])
    return tmp / "x.jpg"


def truncated(fmt: str, suffix: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = save(Image.effect_noise((300, 200), 60).convert("RGB"), tmp / f"x.{suffix}", fmt)
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
        return path

    return build


def zip_named_jpg(tmp: Path) -> Path:
    path = tmp / "photo.jpg"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.jpg", b"\xff\xd8\xff" + b"not really" * 100)
    return path


def written(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return build


def pillow_file(name: str, img: Image.Image, fmt: str, **params: Any) -> Callable[[Path], Path]:
    return lambda tmp: save(img, tmp / name, fmt, **params)


def animated_webp(tmp: Path) -> Path:
    frames = [Image.new("RGB", (64, 48), color) for color in (RED, WHITE, (0, 0, 255))]
    return save(frames[0], tmp / "anim.webp", "WEBP", save_all=True, append_images=frames[1:], duration=100)


def animated_png(tmp: Path) -> Path:
    frames = [Image.new("RGB", (64, 48), color) for color in (RED, WHITE)]
    return save(frames[0], tmp / "anim.png", "PNG", save_all=True, append_images=frames[1:], duration=100)


def png_with_broken_crc(tmp: Path) -> Path:
    data = bytearray(save(red_corner((40, 30)), tmp / "x.png", "PNG").read_bytes())
    data[len(PNG_SIGNATURE) + 21] ^= 0xFF  # inside IHDR's CRC
    (tmp / "x.png").write_bytes(bytes(data))
    return tmp / "x.png"


BAD_INPUTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("empty", written("x.jpg", b""), "image_empty"),
    ("truncated-jpeg", truncated_jpeg, "image_corrupt"),
    ("truncated-png", truncated("PNG", "png"), "image_corrupt"),
    ("truncated-webp", truncated("WEBP", "webp"), "image_corrupt"),
    ("truncated-heic", truncated("HEIF", "heic"), "image_corrupt"),
    ("png-broken-crc", png_with_broken_crc, "image_corrupt"),
    (
        "jpeg-garbage-after-marker",
        written("x.jpg", b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x13" * 200),
        "image_corrupt",
    ),
    ("zip-named-jpg", zip_named_jpg, "image_format_unsupported"),
    (
        "html-named-jpg",
        written("x.jpg", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"),
        "image_format_unsupported",
    ),
    (
        "text-named-jpg",
        written("x.jpg", b"just some notes about lot CN-SZ-L2-2406-018\n" * 20),
        "image_format_unsupported",
    ),
    ("gif", pillow_file("x.gif", red_corner((40, 30)), "GIF"), "image_format_unsupported"),
    ("bmp", pillow_file("x.jpg", red_corner((40, 30)), "BMP"), "image_format_unsupported"),
    ("tiff", pillow_file("x.tif", red_corner((40, 30)), "TIFF"), "image_format_unsupported"),
    ("png-ztxt-bomb-in-header", written("x.png", png_by_hand(8, 8, text_bomb_chunk())), "image_decompression_bomb"),
    (
        "cmyk-jpeg",
        pillow_file("x.jpg", Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"),
        "image_mode_unsupported",
    ),
    ("16-bit-png", pillow_file("x.png", Image.new("I;16", (40, 30), 40_000), "PNG"), "image_mode_unsupported"),
    ("animated-webp", animated_webp, "image_animated"),
    ("animated-png", animated_png, "image_animated"),
]


@pytest.mark.parametrize(("build", "code"), [(b, c) for _, b, c in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_files_are_refused_with_a_clear_code_and_nothing_written(
    tmp_path: Path, build: Callable[[Path], Path], code: str
) -> None:
    assert rejection(build(tmp_path), tmp_path).code == code


def test_a_text_bomb_after_the_pixels_is_refused_while_decoding(tmp_path: Path) -> None:
    png = save(red_corner((40, 30)), tmp_path / "x.png", "PNG").read_bytes()
    (tmp_path / "x.png").write_bytes(with_chunk_before_iend(png, text_bomb_chunk()))
    assert rejection(tmp_path / "x.png", tmp_path).code == "image_decompression_bomb"


def test_a_huge_declared_size_is_refused_from_the_header_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[object] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> Any:
        decoded.append(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    (tmp_path / "huge.png").write_bytes(png_by_hand(30_000, 30_000))
    assert (tmp_path / "huge.png").stat().st_size < 100
    rejected = rejection(tmp_path / "huge.png", tmp_path)
    assert rejected.code == "image_too_many_pixels"
    assert "50 megapixels" in rejected.message
    assert decoded == []


@pytest.mark.parametrize("size", [(1100, 1000), (4000, 4000)], ids=["just-over", "far-over"])
def test_more_pixels_than_the_limit_is_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    # A flat image compresses to almost nothing: the limit is on pixels, not on bytes.
    path = save(Image.new("RGB", size, WHITE), tmp_path / "flat.png", "PNG", optimize=True)
    assert path.stat().st_size < 100_000
    pillow_default = Image.MAX_IMAGE_PIXELS
    rejected = rejection(path, tmp_path, ImageLimits(max_pixels=1_000_000))
    assert rejected.code == "image_too_many_pixels"
    assert "1 megapixels" in rejected.message
    assert pillow_default == Image.MAX_IMAGE_PIXELS, "the call's limit leaked into Pillow's global"
    assert process(path, tmp_path, ImageLimits(max_pixels=size[0] * size[1]))[0].width == size[0]


def test_more_bytes_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = save(gradient_photo((400, 300)), tmp_path / "x.jpg", "JPEG")
    rejected = rejection(path, tmp_path, ImageLimits(max_bytes=path.stat().st_size - 1))
    assert rejected.code == "image_too_large"
    assert process(path, tmp_path, ImageLimits(max_bytes=path.stat().st_size))[0].format == "JPEG"


def test_a_refused_file_does_not_even_create_the_derived_directory(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"<html></html>")
    with pytest.raises(ImageRejected):
        process_image(tmp_path / "x.jpg", tmp_path / "not" / "there")
    assert not (tmp_path / "not").exists()


def test_a_missing_original_is_the_callers_error_not_a_rejection(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        process_image(tmp_path / "nowhere.jpg", tmp_path / "derived")


def test_rejections_survive_the_trip_back_from_a_worker_process(tmp_path: Path) -> None:
    copy = pickle.loads(pickle.dumps(ImageRejected("image_corrupt", "Broken.")))
    assert (copy.code, copy.message, str(copy)) == ("image_corrupt", "Broken.", "image_corrupt: Broken.")

    good = save(red_corner((64, 48)), tmp_path / "good.jpg", "JPEG")
    (tmp_path / "bad.jpg").write_bytes(b"%PDF-1.7")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        info = pool.submit(process_image, good, tmp_path / "good").result()
        failure = pool.submit(process_image, tmp_path / "bad.jpg", tmp_path / "bad").exception()
    assert (info.width, info.height) == (64, 48)
    assert isinstance(failure, ImageRejected)
    assert failure.code == "image_format_unsupported"


# --- orientation and metadata ------------------------------------------------------------------


def stored_for(upright: Image.Image, orientation: int) -> Image.Image:
    transform = STORED_AS[orientation]
    stored = upright if transform is None else upright.transpose(transform)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored.info["exif"] = exif.tobytes()
    assert ImageOps.exif_transpose(stored).tobytes() == upright.tobytes()
    del stored.info["exif"]
    return stored


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_upright_copies_without_metadata(tmp_path: Path, orientation: int) -> None:
    # Big enough that a JPEG drawn sideways still decodes at half scale for the 1600 px copy.
    upright = red_corner((3200, 1600))
    stored = stored_for(upright, orientation)
    path = save(stored, tmp_path / "photo.jpg", "JPEG", quality=92, exif=camera_exif(orientation), xmp=XMP)
    assert opened(path).getexif().get_ifd(GPS_IFD), "the fixture should carry GPS"

    info, derived = process(path, tmp_path)

    assert info == ImageInfo(
        format="JPEG",
        mime="image/jpeg",
        width=3200,
        height=1600,
        captured_at=datetime(2024, 6, 1, 10, 20, 30, tzinfo=timezone(timedelta(hours=8))),
        device="Apple iPhone 15 Pro",
    )
    display, thumb = opened(derived / "display.webp"), opened(derived / "thumb.webp")
    assert (display.size, thumb.size) == ((1600, 800), (320, 160))
    assert (display.mode, thumb.mode) == ("RGB", "RGB")
    assert_red_corner_upright(display)
    assert_red_corner_upright(thumb)
    assert_no_metadata(derived / "display.webp")
    assert_no_metadata(derived / "thumb.webp")


def jpeg_with(tmp_path: Path, make: object = None, model: object = None, **exif_ifd: object) -> Path:
    exif = Image.Exif()
    if make is not None:
        exif[MAKE] = make
    if model is not None:
        exif[MODEL] = model
    tags = {"taken": DATETIME_ORIGINAL, "offset": OFFSET_TIME_ORIGINAL}
    for name, value in exif_ifd.items():
        exif.get_ifd(EXIF_IFD)[tags[name]] = value
    return save(red_corner((64, 48)), tmp_path / "meta.jpg", "JPEG", exif=exif)


@pytest.mark.parametrize(
    ("tags", "captured_at"),
    [
        ({}, None),
        ({"taken": "2024:06:01 10:20:30"}, datetime(2024, 6, 1, 10, 20, 30, tzinfo=UTC)),
        ({"taken": "2024:06:01 10:20:30", "offset": "-05:30"}, datetime(2024, 6, 1, 15, 50, 30, tzinfo=UTC)),
        ({"taken": "2024:06:01 10:20:30", "offset": "local"}, datetime(2024, 6, 1, 10, 20, 30, tzinfo=UTC)),
        ({"taken": "0000:00:00 00:00:00"}, None),
        ({"taken": "    :  :     :  :  "}, None),
        ({"taken": "yesterday"}, None),
    ],
    ids=["absent", "naive-is-utc", "with-offset", "bad-offset", "zeros", "blank", "words"],
)
def test_capture_time(tmp_path: Path, tags: dict[str, str], captured_at: datetime | None) -> None:
    info, _ = process(jpeg_with(tmp_path, **tags), tmp_path)
    assert info.captured_at == captured_at
    assert info.captured_at is None or info.captured_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("make", "model", "device"),
    [
        (None, None, None),
        ("Apple", "iPhone 15 Pro", "Apple iPhone 15 Pro"),
        ("  Xiaomi ", " 23049PCD8G\x00", "Xiaomi 23049PCD8G"),
        (None, "EOS R5", "EOS R5"),
        ("Canon", None, "Canon"),
        ("Canon", "Canon EOS R5", "Canon EOS R5"),
        ("   ", "", None),
    ],
)
def test_device(tmp_path: Path, make: str | None, model: str | None, device: str | None) -> None:
    assert process(jpeg_with(tmp_path, make, model), tmp_path)[0].device == device


# --- formats and modes -------------------------------------------------------------------------


def test_png_with_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 50, 25))
    info, derived = process(save(img, tmp_path / "x.png", "PNG"), tmp_path)
    assert (info.format, info.mime, info.width, info.height) == ("PNG", "image/png", 200, 100)
    display = opened(derived / "display.webp")
    assert display.mode == "RGB"
    assert_red_corner_upright(display)
    assert min(rgb(display, (150, 75))) > 245  # transparent became white, not black


def test_webp_input(tmp_path: Path) -> None:
    path = save(red_corner((300, 200)), tmp_path / "x.webp", "WEBP", quality=90, exif=camera_exif(1))
    info, derived = process(path, tmp_path)
    assert (info.format, info.mime, info.width, info.height) == ("WEBP", "image/webp", 300, 200)
    assert info.device == "Apple iPhone 15 Pro"
    assert_red_corner_upright(opened(derived / "display.webp"))
    assert_no_metadata(derived / "display.webp")


def test_heic_input_is_upright_and_keeps_its_facts(tmp_path: Path) -> None:
    # pillow-heif stores the orientation as a HEIF transform; it must be applied exactly once.
    upright = red_corner((640, 320))
    path = save(stored_for(upright, 6), tmp_path / "x.heic", "HEIF", quality=90, exif=camera_exif(6).tobytes())
    info, derived = process(path, tmp_path)
    assert (info.format, info.mime, info.width, info.height) == ("HEIF", "image/heif", 640, 320)
    assert info.device == "Apple iPhone 15 Pro"
    assert info.captured_at == datetime(2024, 6, 1, 2, 20, 30, tzinfo=UTC)
    display = opened(derived / "display.webp")
    assert display.size == (640, 320)
    assert_red_corner_upright(display)
    assert_no_metadata(derived / "display.webp")


def test_a_jpeg_with_an_embedded_second_picture_is_one_photo(tmp_path: Path) -> None:
    # Phones add previews and depth maps as MPO frames; Pillow then reports the JPEG as "MPO".
    path = save(red_corner((400, 300)), tmp_path / "x.jpg", "MPO", save_all=True, append_images=[red_corner((80, 60))])
    assert opened(path).format == "MPO"
    info, derived = process(path, tmp_path)
    assert (info.format, info.mime, info.width) == ("JPEG", "image/jpeg", 400)
    assert_red_corner_upright(opened(derived / "display.webp"))


def palette_with_transparency() -> Image.Image:
    img = red_corner((200, 100)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    img.info["transparency"] = img.getpixel((199, 99))  # the white becomes transparent
    return img


@pytest.mark.parametrize(
    ("name", "img", "fmt"),
    [
        ("grey.jpg", red_corner((200, 100)).convert("L"), "JPEG"),
        ("grey.png", red_corner((200, 100)).convert("LA"), "PNG"),
        ("palette.png", red_corner((200, 100)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "PNG"),
        ("palette-transparent.png", palette_with_transparency(), "PNG"),
        ("bilevel.png", red_corner((200, 100)).convert("1"), "PNG"),
    ],
)
def test_other_accepted_modes_become_rgb(tmp_path: Path, name: str, img: Image.Image, fmt: str) -> None:
    info, derived = process(save(img, tmp_path / name, fmt), tmp_path)
    assert (info.width, info.height) == (200, 100)
    display = opened(derived / "display.webp")
    assert (display.mode, display.size) == ("RGB", (200, 100))
    assert min(rgb(display, (150, 75))) > 245


def swapped_primaries_profile() -> bytes:
    """sRGB with its red and blue colorants exchanged (and renamed), so converting visibly swaps them."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", icc[128:132])
    entries = {bytes(icc[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    icc[red + 4 : red + 12], icc[blue + 4 : blue + 12] = icc[blue + 4 : blue + 12], icc[red + 4 : red + 12]
    name = "sRGB".encode("utf-16-be")
    assert name in icc
    return bytes(icc.replace(name, "wide".encode("utf-16-be")))


def test_an_embedded_colour_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    path = save(red_corner((200, 100)), tmp_path / "x.png", "PNG", icc_profile=swapped_primaries_profile())
    _, derived = process(path, tmp_path)
    r, _, b = rgb(opened(derived / "display.webp"), (10, 10))
    assert b > 150 > r, "the red block was not read through its profile"
    assert_no_metadata(derived / "display.webp")


@pytest.mark.parametrize(
    "icc",
    [ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(), b"not a colour profile" * 10],
    ids=["srgb", "garbage"],
)
def test_srgb_or_unusable_profiles_leave_the_colours_alone(tmp_path: Path, icc: bytes) -> None:
    _, derived = process(save(red_corner((200, 100)), tmp_path / "x.jpg", "JPEG", icc_profile=icc), tmp_path)
    display = opened(derived / "display.webp")
    assert_red_corner_upright(display)
    assert_no_metadata(derived / "display.webp")


# --- sizes -------------------------------------------------------------------------------------


def test_a_12_megapixel_jpeg_is_decoded_at_reduced_scale_into_1600_and_320(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resized_from: list[tuple[int, int]] = []
    real_resize = Image.Image.resize

    def spy(self: Image.Image, *args: Any, **kwargs: Any) -> Image.Image:
        resized_from.append(self.size)
        return real_resize(self, *args, **kwargs)

    path = save(gradient_photo((4000, 3000)), tmp_path / "big.jpg", "JPEG", quality=90)
    monkeypatch.setattr(Image.Image, "resize", spy)
    info, derived = process(path, tmp_path)
    assert (info.width, info.height) == (4000, 3000)
    assert opened(derived / "display.webp").size == (1600, 1200)
    assert opened(derived / "thumb.webp").size == (320, 240)
    # Half-scale DCT decoding for the display copy, and the thumbnail made from that copy.
    assert resized_from == [(2000, 1500), (1600, 1200)]


@pytest.mark.parametrize("size", [(200, 100), (100, 300), (SIZES["display"], 10)])
def test_small_images_are_never_upscaled(tmp_path: Path, size: tuple[int, int]) -> None:
    _, derived = process(save(gradient_photo(size), tmp_path / "small.png", "PNG"), tmp_path)
    assert opened(derived / "display.webp").size == size
    thumb = opened(derived / "thumb.webp").size
    assert max(thumb) == min(SIZES["thumb"], max(size))


@pytest.mark.parametrize(
    ("size", "display", "thumb"), [((20_000, 2), (1600, 1), (320, 1)), ((3, 9_000), (1, 1600), (1, 320))]
)
def test_extreme_aspect_ratios_still_give_both_copies(
    tmp_path: Path, size: tuple[int, int], display: tuple[int, int], thumb: tuple[int, int]
) -> None:
    _, derived = process(save(gradient_photo(size), tmp_path / "strip.png", "PNG"), tmp_path)
    assert opened(derived / "display.webp").size == display
    assert opened(derived / "thumb.webp").size == thumb


def test_reprocessing_replaces_the_copies_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    process(save(red_corner((400, 200)), tmp_path / "a.jpg", "JPEG"), tmp_path)
    _, derived = process(save(red_corner((200, 400)), tmp_path / "b.jpg", "JPEG"), tmp_path)
    assert sorted(p.name for p in derived.iterdir()) == ["display.webp", "thumb.webp"]
    assert opened(derived / "display.webp").size == (200, 400)


def test_jpeg_copy_is_a_plain_jpeg_of_the_served_copy(tmp_path: Path) -> None:
    stored = stored_for(red_corner((3200, 1600)), 3)
    path = save(stored, tmp_path / "x.jpg", "JPEG", exif=camera_exif(3), xmp=XMP)
    _, derived = process(path, tmp_path)
    data = jpeg_copy(derived / "display.webp")
    img = Image.open(io.BytesIO(data))
    img.load()
    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (1600, 800))
    assert len(img.getexif()) == 0
    assert not {"exif", "xmp", "icc_profile"} & set(img.info)
    assert_red_corner_upright(img)


# --- properties --------------------------------------------------------------------------------

MAGIC_PREFIXES = [
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe1\x00\x40Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08",
    PNG_SIGNATURE,
    PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"RIFF\x00\x01\x00\x00WEBPVP8X",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
]


def small_samples() -> list[bytes]:
    """One small valid file per format (the JPEG with an EXIF block), to be damaged at random."""
    img = red_corner((48, 32))
    samples = []
    formats: list[tuple[str, dict[str, Any]]] = [
        ("JPEG", {"exif": camera_exif(6), "quality": 80}),
        ("PNG", {}),
        ("WEBP", {"quality": 80}),
        ("HEIF", {"quality": 50}),
    ]
    for fmt, params in formats:
        out = io.BytesIO()
        img.save(out, fmt, **params)
        samples.append(out.getvalue())
    return samples


SAMPLES = small_samples()


@QUIET_PILLOW
@FUZZ_SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_only_ever_refused(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    fresh_attempt(data, tmp_path_factory.getbasetemp())


@QUIET_PILLOW
@FUZZ_SETTINGS
@given(prefix=st.sampled_from(MAGIC_PREFIXES), tail=st.binary(max_size=2048))
def test_random_bytes_behind_a_real_signature_are_only_ever_refused(
    tmp_path_factory: pytest.TempPathFactory, prefix: bytes, tail: bytes
) -> None:
    fresh_attempt(prefix + tail, tmp_path_factory.getbasetemp())


@QUIET_PILLOW
@settings(FUZZ_SETTINGS, max_examples=300)
@given(data=st.data())
def test_damaged_real_photos_are_refused_or_processed_but_never_crash(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    sample = bytearray(data.draw(st.sampled_from(SAMPLES), label="sample"))
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        at = data.draw(st.integers(0, len(sample) - 1), label="at")
        sample[at] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(1, len(sample)), label="length")
    fresh_attempt(bytes(sample[:cut]), tmp_path_factory.getbasetemp())


def test_heif_support_is_registered_on_import() -> None:
    assert "HEIF" in Image.OPEN
    assert pillow_heif.__version__
