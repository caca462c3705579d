"""Each user's upload of a hash is their own: nobody can claim it, spoil it, or read past it."""

from __future__ import annotations

import io
from typing import Any

from litestar.testing import AsyncTestClient
from PIL import Image

from loopline.core.runtime import Runtime
from loopline.media.blobs import CHUNK_SIZE
from tests.blob_helpers import BLOBS, fetch, send, sha, start, upload
from tests.conftest import Login
from tests.photo_helpers import gps_exif, photo
from tests.test_content_addressing import (
    AROUND_A_CASE,
    ON_THE_SHOP_FLOOR,
    Attached,
    Scene,
    attachment_state,
)


async def test_a_wrong_size_claimed_first_does_not_block_the_true_bytes(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, world_login: Login
) -> None:
    scene = Scene(world_client, world_runtime, world_login)
    data = photo(2001, 1400, 1100, quality=95)
    customer, wang = await world_login("gil.workshop"), await scene.as_(ON_THE_SHOP_FLOOR.owner)
    claim = {"sha256": sha(data), "size": len(data) + 7, "mime": "image/jpeg"}
    assert (await world_client.post(BLOBS, json=claim, headers=customer)).status_code == 201

    status, defect_id = await scene.defect(ON_THE_SHOP_FLOOR.owner, [sha(data)])
    done = await upload(world_client, wang, data)
    assert (done.status_code, done.headers["blob-state"]) == (204, "complete")
    on_defect = Attached(status, "defect", defect_id)
    assert await attachment_state(world_runtime, on_defect, sha(data)) == "available"
    # The claim is still the customer's alone, and still asks them for every byte.
    again = await world_client.post(BLOBS, json=claim, headers=customer)
    assert (again.status_code, again.json()["offset"]) == (201, 0)


async def test_only_the_uploader_appends_to_an_upload(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, world_login: Login
) -> None:
    data = photo(2002, 1400, 1100, quality=95)
    digest = sha(data)
    wang, customer = await world_login("wang.lei"), await world_login("gil.workshop")
    assert (await start(world_client, wang, data)).status_code == 201
    assert (await send(world_client, wang, digest, 0, data[:CHUNK_SIZE])).status_code == 204

    junk = b"\x00" * 100
    for offset in (0, CHUNK_SIZE):
        spoiled = await send(world_client, customer, digest, offset, junk)
        assert (spoiled.status_code, spoiled.json()["error"]["code"]) == (404, "not_found")
    head = await world_client.head(f"{BLOBS}/{digest}", headers=customer)
    assert head.status_code == 404

    resumed = await world_client.head(f"{BLOBS}/{digest}", headers=wang)
    assert resumed.headers["upload-offset"] == str(CHUNK_SIZE)
    last = await send(world_client, wang, digest, CHUNK_SIZE, data[CHUNK_SIZE:])
    assert (last.status_code, last.headers["blob-state"]) == (204, "complete")


async def test_the_original_is_served_to_staff_only_and_as_a_full_size_copy_without_exif(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, world_login: Login
) -> None:
    scene = Scene(world_client, world_runtime, world_login)
    data = photo(2003, 1800, 1200, exif=gps_exif())
    customer, rep = await scene.as_(AROUND_A_CASE.owner), await scene.as_(AROUND_A_CASE.reader)
    assert (await upload(world_client, customer, data)).headers["blob-state"] == "complete"
    on_case = await scene.link(AROUND_A_CASE.owner, "case", sha(data))
    assert await attachment_state(world_runtime, on_case, sha(data)) == "available"

    assert (await fetch(world_client, customer, sha(data), "display")).status_code == 200
    refused = await fetch(world_client, customer, sha(data), "original")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "original_staff_only")
    full_size = await fetch(world_client, rep, sha(data), "original")
    assert full_size.status_code == 200
    image = Image.open(io.BytesIO(full_size.content))
    assert (image.format, image.size) == ("JPEG", (1800, 1200))
    assert dict(image.getexif()) == {}
    assert full_size.content != data
