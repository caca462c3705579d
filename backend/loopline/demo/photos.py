"""The two photos of INS-88213 (thin coating at a connector edge), drawn here because the demo has no camera.

They reach the server the way a tablet's photo queue sends them: announced, sent with a
chunk checksum, hashed, decoded and re-encoded by the image pipeline in its process pool.
Their EXIF says when and on what they were taken, so the pipeline records the capture
time (08:10, in the dead zone) just as it would for a real photo.
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import datetime

from PIL import Image, ImageDraw, ImageFont
from PIL.ExifTags import Base

from loopline.core.access import Principal
from loopline.core.runtime import Runtime
from loopline.media.blobs import BlobService, BlobStart
from loopline.media.pool import ImagePool
from loopline.media.store import open_store

SIZE = (1600, 1200)
BOARD, COATING, THIN, CONNECTOR, INK = "#1f5d3a", "#6fbf8e", "#d9e8c4", "#8a8d91", "#ffffff"


def thin_coating_photo(taken_at: datetime, view: int) -> bytes:
    """A JPEG of a driver board whose coating thins out at the connector edge, with the reading on it."""
    image = Image.new("RGB", SIZE, BOARD)
    draw = ImageDraw.Draw(image)
    width, height = SIZE
    edge = width - 420 + 60 * view  # the second view is taken a little further along the edge
    draw.rectangle((120, 160, edge, height - 160), fill=COATING)
    for step in range(12):  # the coating fades towards the connector
        x = edge - 240 + step * 20
        draw.rectangle((x, 160, x + 20, height - 160), fill=THIN if step > 5 else COATING)
    draw.rectangle((edge, 300, width - 60, height - 300), fill=CONNECTOR)
    font = ImageFont.load_default(size=44)
    draw.text((140, 60), f"INS-88213 · lot CN-SZ-L2-2406-018 · view {view}", fill=INK, font=font)
    reading = "C1 = 21 µm" if view == 1 else "C1 = 22 µm"
    draw.text((140, height - 120), f"{reading} at the connector edge (LSL 25 µm)", fill=INK, font=font)
    exif = Image.Exif()
    exif[Base.Make] = "Loopline"
    exif[Base.Model] = "Demo tablet"
    exif_ifd = exif.get_ifd(0x8769)  # the Exif sub-IFD holds the capture time
    exif_ifd[Base.DateTimeOriginal] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
    exif_ifd[Base.OffsetTimeOriginal] = "+00:00"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


async def upload(runtime: Runtime, principal: Principal, photos: list[bytes]) -> list[str]:
    """Send each photo in one chunk through the blob service; their SHA-256 hashes."""
    pool = ImagePool(1)
    service = BlobService(runtime, open_store(runtime.settings), pool)
    hashes = []
    try:
        for photo in photos:
            digest = hashlib.sha256(photo)
            sha256 = digest.hexdigest()
            await service.start(principal, BlobStart(sha256=sha256, size=len(photo), mime="image/jpeg"))
            checksum = f"sha256 {base64.b64encode(digest.digest()).decode()}"
            await service.receive(principal, sha256, 0, checksum, photo)
            hashes.append(sha256)
    finally:
        await pool.close()
    return hashes
