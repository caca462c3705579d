"""The image pipeline for uploaded photos: validate an original with a real decoder, make the served copies.

`process_image` runs once per blob, when its last byte has arrived (see "Blobs (photos)" in
the sync protocol). It is synchronous and CPU-bound, so the server calls it in a process pool:

1. Size: the file's byte count against `ImageLimits.max_bytes`; an empty file is refused.
2. Identify: `Image.open` with only the JPEG, PNG, WebP and HEIF parsers, so no other of
   Pillow's parsers ever sees uploaded bytes. Only the header is read here.
3. Header checks, before any pixel buffer exists: pixel count (Pillow's decompression-bomb
   guard is set to `ImageLimits.max_pixels`, and its warning is made an error), frame count
   (no animations) and colour mode (8-bit greyscale, palette and RGB, with or without alpha).
4. Decode for real. A JPEG is decoded at a reduced DCT scale (`draft`) that is still at
   least as large as the display copy, which is most of the speed on phone photos.
5. Served copies: flatten alpha onto white, resize to the display size (never upscale), turn
   upright from the EXIF orientation, convert an embedded ICC profile to sRGB, make the
   thumbnail from the display copy, and encode both as WebP without any metadata.
6. Write `thumb.webp` and `display.webp` atomically. Nothing is written for a refused file,
   and the original is only ever read.

`full_size_copy` makes the copy served in place of the original, on first request: the
same steps at full size, as a JPEG without metadata. The original itself is evidence and
is never served: its EXIF may hold where it was taken and on which device.

Refusals raise `ImageRejected` with a stable `code` (one of `REJECTION_CODES`) and a sentence
for the uploader. A header declaring more pixels than allowed, however absurd the number, is
`image_too_many_pixels`; `image_decompression_bomb` is for data that inflates past Pillow's
budgets while being parsed (compressed PNG text or ICC chunks) or trips its guard mid-decode.
Errors that are not the file's fault (the original missing or unreadable, the derived
directory not writable) propagate as the usual `OSError`.

Limits of the approach: a multi-frame JPEG (MPO, e.g. a photo carrying a depth map) is
reduced to its primary image, but every other multi-frame file is refused as animated,
including a HEIF holding several top-level images. Served copies keep no metadata at all:
the capture time and device are returned in `ImageInfo` instead. Pillow's decompression-bomb
threshold and the warning filters are process-wide (set for the call, then restored), so
the function is meant for worker processes, not for several threads of one process.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import IO

import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

# Thumbnails, depth maps and auxiliary images inside a HEIF are never used: not parsing
# them saves work and keeps those parsers away from uploaded bytes.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000


class ImageRejected(Exception):
    """The upload is not an acceptable photo; `message` is meant for the uploader."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        # Both go to Exception.args so the exception survives pickling back from a worker process.
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class ImageInfo:
    format: str
    mime: str
    width: int
    height: int
    captured_at: datetime | None
    device: str | None


SIZES: dict[str, int] = {"thumb": 320, "display": 1600}
FULL_SIZE = "full.jpg"

REJECTION_CODES = (
    "image_empty",
    "image_too_large",
    "image_format_unsupported",
    "image_too_many_pixels",
    "image_decompression_bomb",
    "image_corrupt",
    "image_animated",
    "image_mode_unsupported",
)

FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heif"}

# Chosen by measurement on a 1600 x 1200 photo-like image: method 2 encodes about 3x faster
# than the default 4 for about 3 % more bytes at the same PSNR.
WEBP_QUALITY = 80
WEBP_METHOD = 2
JPEG_COPY_QUALITY = 85
# Higher for the full-size copy: it is asked for to see detail (a crack, a label) at 100 %.
FULL_SIZE_QUALITY = 92
RESAMPLE = Image.Resampling.LANCZOS
# A reducing gap of 2 keeps the result indistinguishable from a full Lanczos resize at a
# fraction of the cost when shrinking by large factors.
REDUCING_GAP = 2.0

_ACCEPTED_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})
_WHITE = (255, 255, 255)

# What Pillow's and libheif's parsers raise on malformed input. Anything else is a bug
# here or an environment failure (such as MemoryError) and must not be reported as the
# uploader's fault.
_DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    RuntimeError,
    ZeroDivisionError,
    OverflowError,
    NotImplementedError,
    struct.error,
    zlib.error,
)
_COLOUR_ERRORS: tuple[type[BaseException], ...] = (ImageCms.PyCMSError, *_DECODER_ERRORS)

# Pillow refuses compressed PNG text and ICC chunks that inflate beyond a fixed budget with
# a plain ValueError; its message is the only way to tell that apart from other damage. If a
# Pillow upgrade rewords it, such files fall back to `image_corrupt` (still refused).
_INFLATION_GUARD = re.compile(r"decompressed data too large|too much memory used in text chunks", re.IGNORECASE)

# EXIF orientation -> the transpose that turns the stored pixels upright (EXIF 2.32, 4.6.4A);
# the same table as ImageOps.exif_transpose, applied here to the small display copy instead
# of the whole decoded photo, which is cheaper.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_QUARTER_TURNS = frozenset({5, 6, 7, 8})

_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_DEVICE_MAX_CHARS = 120


def process_image(original: Path, derived_dir: Path, limits: ImageLimits = ImageLimits()) -> ImageInfo:
    """Decode `original` for real, validate it, and write derived_dir/thumb.webp and derived_dir/display.webp.

    The copies are upright sRGB RGB without EXIF, GPS, XMP or ICC data, written atomically
    (temp file + fsync + os.replace). Raises ImageRejected for anything that is not an
    acceptable photo; never any other exception for bad input.
    """
    info, display = _decode_original(original, limits, SIZES["display"])
    thumb = _shrink(display, SIZES["thumb"])
    encoded = {"display.webp": _encode_webp(display), "thumb.webp": _encode_webp(thumb)}
    _write_all_atomically(derived_dir, encoded)
    return info


def full_size_copy(original: Path, derived_dir: Path, limits: ImageLimits = ImageLimits()) -> None:
    """Write derived_dir/full.jpg: the original's pixels at full size, upright sRGB, without any metadata."""
    _, full = _decode_original(original, limits, longest=None)
    _write_all_atomically(derived_dir, {FULL_SIZE: _encode_jpeg(full, FULL_SIZE_QUALITY)})


def jpeg_copy(derived: Path) -> bytes:
    """A JPEG encoding of a derived WebP (for clients that cannot take WebP), no metadata."""
    with Image.open(derived, formats=["WEBP"]) as img:
        return _encode_jpeg(img.convert("RGB"), JPEG_COPY_QUALITY)


def _decode_original(original: Path, limits: ImageLimits, longest: int | None) -> tuple[ImageInfo, Image.Image]:
    with open(original, "rb") as fp:
        _check_byte_size(os.fstat(fp.fileno()).st_size, limits)
        with _decompression_guard(limits), _open(fp, limits) as img:
            return _decode_upright(img, limits, longest)


# --- validation --------------------------------------------------------------------------------


def _check_byte_size(size: int, limits: ImageLimits) -> None:
    if size == 0:
        raise ImageRejected("image_empty", "The file is empty.")
    if size > limits.max_bytes:
        raise ImageRejected(
            "image_too_large",
            f"The file is {_megabytes(size)} MB; photos can be at most {_megabytes(limits.max_bytes)} MB.",
        )


@contextlib.contextmanager
def _decompression_guard(limits: ImageLimits) -> Iterator[None]:
    """Pillow's decompression-bomb guard at our pixel limit, its warning an error; both restored after.

    Restoring keeps the limit of one call (a test's, say) from leaking into other Pillow users
    of the same process.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _open(fp: IO[bytes], limits: ImageLimits) -> ImageFile.ImageFile:
    """Parse the header with our four parsers only; refuse a declared size over the pixel limit."""
    try:
        return Image.open(fp, formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's guard runs on the header's dimensions inside Image.open, before any pixel
        # buffer exists, and its threshold is our limit: this is exactly "declares too many pixels".
        raise ImageRejected(
            "image_too_many_pixels",
            f"The photo has more than {_megapixels(limits.max_pixels)} megapixels, the most we accept.",
        ) from exc
    except UnidentifiedImageError as exc:
        if _looks_like_supported_format(fp):
            raise _corrupt() from exc
        raise ImageRejected(
            "image_format_unsupported", "This file is not a photo in a supported format (JPEG, PNG, WebP or HEIC)."
        ) from exc
    except _DECODER_ERRORS as exc:
        raise _decode_failure(exc) from exc


def _decode_upright(
    img: ImageFile.ImageFile, limits: ImageLimits, longest: int | None
) -> tuple[ImageInfo, Image.Image]:
    """Validate the parsed header, decode, and return the photo's facts with an upright copy.

    The copy's longest edge is at most `longest`; None keeps the full size.
    """
    fmt = _canonical_format(img)
    stored_width, stored_height = img.size
    _check_pixels(stored_width, stored_height, limits)
    _check_still(img, fmt)
    _check_mode(img.mode)
    try:
        if fmt == "JPEG" and longest is not None:
            # The longest-edge box is the same for both orientations of the photo, so it is
            # computed on the stored (un-rotated) dimensions that the decoder works in.
            img.draft("RGB", _fit(img.size, longest))
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb() from exc
    except _DECODER_ERRORS as exc:
        raise _decode_failure(exc) from exc

    exif = _read_exif(img)
    orientation = _orientation(exif)
    upright = _flatten_to_rgb(img)
    if longest is not None:
        upright = _shrink(upright, longest)
    if orientation in _UPRIGHT:
        upright = upright.transpose(_UPRIGHT[orientation])
    upright = _to_srgb(upright, img.info.get("icc_profile"))
    if upright is img:
        # The caller closes `img`; the copy outlives it and gets its own, empty, info.
        upright = img.copy()
    upright.info.clear()

    width, height = (stored_height, stored_width) if orientation in _QUARTER_TURNS else (stored_width, stored_height)
    info = ImageInfo(
        format=fmt,
        mime=MIME_TYPES[fmt],
        width=width,
        height=height,
        captured_at=_captured_at(exif),
        device=_device(exif),
    )
    return info, upright


def _canonical_format(img: ImageFile.ImageFile) -> str:
    # A JPEG carrying extra pictures (a preview or a depth map, common on phones) opens as MPO.
    fmt = "JPEG" if img.format == "MPO" else img.format
    if fmt not in MIME_TYPES:
        raise ImageRejected(
            "image_format_unsupported", "This file is not a photo in a supported format (JPEG, PNG, WebP or HEIC)."
        )
    return fmt


def _check_pixels(width: int, height: int, limits: ImageLimits) -> None:
    # Pillow's guard in _open refuses these first; this keeps the limit independent of it.
    if width <= 0 or height <= 0:
        raise _corrupt()
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "image_too_many_pixels",
            f"The photo is {width} x {height} pixels ({_megapixels(width * height)} megapixels); "
            f"the limit is {_megapixels(limits.max_pixels)} megapixels.",
        )


def _check_still(img: ImageFile.ImageFile, fmt: str) -> None:
    # An MPO's extra frames are not animation; only its primary image is decoded.
    if fmt != "JPEG" and getattr(img, "n_frames", 1) > 1:
        raise ImageRejected("image_animated", "Animated images are not accepted; please upload a single still photo.")


def _check_mode(mode: str) -> None:
    if mode in _ACCEPTED_MODES:
        return
    if mode == "CMYK":
        message = "The photo is in CMYK (print) colours; please upload it as an RGB photo."
    else:
        message = f"The photo's pixel format ({mode}) is not supported; please upload an 8-bit RGB or greyscale photo."
    raise ImageRejected("image_mode_unsupported", message)


def _looks_like_supported_format(fp: IO[bytes]) -> bool:
    """Whether the file starts like one of our formats, so a failed parse means damage, not a wrong type."""
    fp.seek(0)
    head = fp.read(12)
    return (
        head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"})
    )


def _decode_failure(exc: BaseException) -> ImageRejected:
    return _bomb() if _INFLATION_GUARD.search(str(exc)) else _corrupt()


def _corrupt() -> ImageRejected:
    return ImageRejected("image_corrupt", "The photo could not be decoded: the file is damaged or incomplete.")


def _bomb() -> ImageRejected:
    return ImageRejected(
        "image_decompression_bomb",
        "The file expands to far more data than a photo of its size can hold, so it was refused.",
    )


# --- pixels ------------------------------------------------------------------------------------


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """`size` scaled so its longest edge is at most `longest`; never larger than `size`."""
    width, height = size
    scale = longest / max(width, height)
    if scale >= 1:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(img: Image.Image, longest: int) -> Image.Image:
    target = _fit(img.size, longest)
    if target == img.size:
        return img
    return img.resize(target, RESAMPLE, reducing_gap=REDUCING_GAP)


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    """RGB pixels; transparency (alpha channel or palette/tRNS transparency) is composited on white."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in {"RGBA", "LA"} or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def _to_srgb(img: Image.Image, icc_profile: object) -> Image.Image:
    """Convert from an embedded RGB profile (e.g. Display P3 on phones), since the copies carry none.

    A profile that cannot be used is ignored rather than refusing the photo: the pixels are
    still a faithful record, only their colours are slightly off.
    """
    if not isinstance(icc_profile, bytes) or not icc_profile:
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        description = source.profile.profile_description or ""
        if source.profile.xcolor_space.strip() != "RGB" or description.startswith("sRGB"):
            return img
        converted = ImageCms.profileToProfile(img, source, _srgb_profile(), outputMode="RGB")
    except _COLOUR_ERRORS:
        return img
    return converted if converted is not None else img


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    # No exif= or icc_profile= arguments: the JPEG writer only embeds what it is given.
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _encode_webp(img: Image.Image) -> bytes:
    # No exif=, xmp= or icc_profile= arguments: the WebP writer only embeds what it is given.
    out = io.BytesIO()
    img.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue()


# --- metadata ----------------------------------------------------------------------------------


def _read_exif(img: Image.Image) -> Image.Exif:
    """The EXIF block, or an empty one: broken metadata never costs the uploader the photo."""
    try:
        return img.getexif()
    except _DECODER_ERRORS:
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _captured_at(exif: Image.Exif) -> datetime | None:
    """DateTimeOriginal with OffsetTimeOriginal; a time without an offset is taken as UTC."""
    try:
        details = exif.get_ifd(ExifTags.IFD.Exif)
    except _DECODER_ERRORS:
        return None
    raw = details.get(ExifTags.Base.DateTimeOriginal)
    if not isinstance(raw, str):
        return None
    text = raw.strip("\x00 ")
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            naive = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return naive.replace(tzinfo=_utc_offset(details.get(ExifTags.Base.OffsetTimeOriginal)) or UTC)
    return None


def _utc_offset(raw: object) -> timezone | None:
    match = _OFFSET.match(raw.strip("\x00 ")) if isinstance(raw, str) else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    if offset >= timedelta(hours=24) or int(minutes) >= 60:
        return None
    return timezone(-offset if sign == "-" else offset)


def _device(exif: Image.Exif) -> str | None:
    """Make and Model; the make is left out when the model already starts with it ("Canon Canon EOS R5")."""
    make, model = _exif_text(exif.get(ExifTags.Base.Make)), _exif_text(exif.get(ExifTags.Base.Model))
    if make and model.lower().startswith(make.lower()):
        make = ""
    device = f"{make} {model}".strip()
    return device[:_DEVICE_MAX_CHARS] or None


def _exif_text(value: object) -> str:
    if not isinstance(value, str):
        return ""
    printable = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(printable.split())


# --- output ------------------------------------------------------------------------------------


def _write_all_atomically(directory: Path, files: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        _write_atomically(directory / name, data)
    _fsync_directory(directory)


def _write_atomically(target: Path, data: bytes) -> None:
    """Readers see the old file or the complete new one, never a partial write."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    # Makes the renames themselves durable; not possible (nor needed) on every platform.
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")
