"""Speaking the blob protocol by hand over the test client, so that every answer can be provoked."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from litestar.testing import AsyncTestClient

from loopline.media.blobs import CHUNK_SIZE
from tests.conftest import Headers

BLOBS = "/api/v1/blobs"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum(chunk: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode()


async def start(client: AsyncTestClient[Any], headers: Headers, data: bytes, mime: str = "image/jpeg") -> Any:
    return await client.post(BLOBS, json={"sha256": sha(data), "size": len(data), "mime": mime}, headers=headers)


async def send(
    client: AsyncTestClient[Any], headers: Headers, digest: str, offset: int, chunk: bytes, sent_as: bytes | None = None
) -> Any:
    """PATCH one chunk; `sent_as` is what the checksum was computed on (the chunk itself by default)."""
    return await client.patch(
        f"{BLOBS}/{digest}",
        content=chunk,
        headers={**headers, "Upload-Offset": str(offset), "Upload-Checksum": checksum(sent_as or chunk)},
    )


async def upload(client: AsyncTestClient[Any], headers: Headers, data: bytes, mime: str = "image/jpeg") -> Any:
    """POST, then every chunk; the last response."""
    response = await start(client, headers, data, mime)
    if response.status_code != 201:
        return response
    offset = response.json()["offset"]
    while offset < len(data):
        response = await send(client, headers, sha(data), offset, data[offset : offset + CHUNK_SIZE])
        if response.status_code != 204:
            return response
        offset = int(response.headers["upload-offset"])
    return response


async def fetch(client: AsyncTestClient[Any], headers: Headers, digest: str, size: str, **extra: str) -> Any:
    return await client.get(f"{BLOBS}/{digest}", params={"size": size}, headers={**headers, **extra})
