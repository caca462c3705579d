"""Photos made in the tests with Pillow: no binary fixtures in the repository."""

from __future__ import annotations

import io
import random
from typing import Any

from PIL import ExifTags, Image


def noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Pixels no encoder can shrink much, so a photo has the size the test needs; distinct per seed."""
    channels = len(mode)
    return Image.frombytes(mode, (width, height), random.Random(seed).randbytes(width * height * channels))


def encode(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(seed: int, width: int = 320, height: int = 240, *, quality: int = 90, **options: Any) -> bytes:
    return encode(noise(width, height, seed), "JPEG", quality=quality, **options)


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Nordlicht"
    exif[ExifTags.Base.Model] = "Inspector Tab 7"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:06:17 08:12:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 18.0, 0.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (120.0, 35.0, 0.0)
    return exif
