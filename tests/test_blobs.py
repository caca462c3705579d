"""Photo uploads over HTTP against the real app and database: resumable, content-addressed, validated.

Photos are made with Pillow in the tests. Records that reference them are created through
`/sync/push`, as devices do; the upload endpoints are driven by hand so that every status
code of the protocol can be provoked.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from PIL import ExifTags, Image
from sqlmodel import col, select

from loopline.app import create_app
from loopline.core.changelog import ChangeLog
from loopline.core.clock import FrozenClock
from loopline.core.runtime import Runtime
from loopline.core.settings import Settings
from loopline.media.blobs import CHUNK_SIZE, mark_missing
from loopline.media.models import Attachment, AttachmentState, Blob, BlobState
from loopline.media.store import LocalBlobStore
from loopline.quality.models import Batch
from loopline.threads.models import Thread
from tests.blob_helpers import BLOBS, checksum, fetch, send, sha, start, upload
from tests.conftest import Headers, Login
from tests.photo_helpers import encode, gps_exif, noise, photo
from tests.support import cli
from tests.sync_helpers import Device, new_id
from tests.sync_world import world

LOT_018 = "CN-SZ-L2-2406-018"  # Suzhou, where wang.lei inspects


# -- making photos ---------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, extra: bytes = b"") -> bytes:
    """A PNG whose header declares `width` x `height` but that carries almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def bad_files() -> Iterator[Any]:
    """Files that must be refused, each with a different reason, through the whole HTTP path."""
    good = photo(90, 640, 480)
    yield pytest.param(good[: len(good) // 2], "image/jpeg", id="truncated-jpeg")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("photo.jpg", b"not really")
    yield pytest.param(zipped.getvalue(), "image/jpeg", id="zip-named-jpg")
    yield pytest.param(b"<!DOCTYPE html><html><body>hello</body></html>", "image/jpeg", id="html-named-jpg")
    yield pytest.param(png_claiming(30_000, 30_000), "image/png", id="30000x30000-png-header")
    bomb = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"\x00" * (64 * 1024 * 1024)))
    yield pytest.param(png_claiming(4, 4, bomb), "image/png", id="decompression-bomb")
    yield pytest.param(encode(noise(64, 64, 91, "CMYK"), "JPEG"), "image/jpeg", id="cmyk")
    yield pytest.param(encode(Image.new("I;16", (64, 64), 40_000), "PNG"), "image/png", id="16-bit")
    frames = [noise(64, 64, seed) for seed in (92, 93, 94)]
    animated = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    yield pytest.param(animated, "image/webp", id="animated-webp")


# -- the world ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def batch_id(world_runtime: Runtime) -> str:
    async with world_runtime.db.read_session() as session:
        return (await session.scalars(select(Batch.id).where(Batch.lot_no == LOT_018))).one()


@pytest.fixture(scope="module")
async def wang(world_login: Login) -> Headers:
    return await world_login("wang.lei")


async def report_defect(client: AsyncTestClient[Any], headers: Headers, batch: str, hashes: list[str]) -> str:
    """A defect with photos, reported as a device does; returns its id."""
    defect_id = new_id()
    device = Device(client, headers)
    args = {
        "id": defect_id,
        "batch_id": batch,
        "defect_code": "CC-THIN",
        "severity": "major",
        "description": "thin coating",
        "captured_at": "2024-06-17T08:12:00Z",
        "photo_hashes": hashes,
    }
    body = await device.push_ok(device.mutation("defect.report", args))
    assert body["results"][0]["status"] == "applied", body
    return defect_id


async def attachments(runtime: Runtime, digest: str) -> list[Attachment]:
    async with runtime.db.read_session() as session:
        return list(
            await session.scalars(select(Attachment).where(Attachment.sha256 == digest).order_by(col(Attachment.id)))
        )


async def blob_row(runtime: Runtime, digest: str) -> Blob | None:
    async with runtime.db.read_session() as session:
        return await session.get(Blob, digest)


def store_of(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(settings.data_dir / "blobs")


def partial_uploads(settings: Settings, digest: str) -> list[Path]:
    """Every user's partial upload of the blob."""
    return list((settings.data_dir / "blobs" / "partial").glob(f"{digest}.*"))


# -- uploading --------------------------------------------------------------------------------


async def test_a_photo_goes_up_in_chunks_and_its_attachment_becomes_available_through_the_change_log(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, world_settings: Settings, wang: Headers, batch_id: str
) -> None:
    data = photo(1, 1400, 1100, quality=95, exif=gps_exif())
    digest = sha(data)
    assert 2 * CHUNK_SIZE > len(data) > CHUNK_SIZE
    defect_id = await report_defect(world_client, wang, batch_id, [digest])
    [pending] = await attachments(world_runtime, digest)
    assert (pending.entity_id, pending.state) == (defect_id, AttachmentState.PENDING)

    started = await start(world_client, wang, data)
    assert (started.status_code, started.json()) == (
        201,
        {"sha256": digest, "state": "partial", "size": len(data), "offset": 0},
    )
    first = await send(world_client, wang, digest, 0, data[:CHUNK_SIZE])
    assert (first.status_code, first.headers["upload-offset"], first.headers["blob-state"]) == (
        204,
        str(CHUNK_SIZE),
        "partial",
    )
    head = await world_client.head(f"{BLOBS}/{digest}", headers=wang)
    assert (head.status_code, head.headers["upload-offset"], head.headers["upload-length"]) == (
        200,
        str(CHUNK_SIZE),
        str(len(data)),
    )
    # A device that lost the answer announces the upload again and hears where to resume.
    assert (await start(world_client, wang, data)).json()["offset"] == CHUNK_SIZE
    last = await send(world_client, wang, digest, CHUNK_SIZE, data[CHUNK_SIZE:])
    assert (last.status_code, last.headers["upload-offset"], last.headers["blob-state"]) == (
        204,
        str(len(data)),
        "complete",
    )

    [available] = await attachments(world_runtime, digest)
    assert (available.state, available.version) == (AttachmentState.AVAILABLE, pending.version + 1)
    async with world_runtime.db.read_session() as session:
        logged = (
            await session.scalars(
                select(ChangeLog).where(ChangeLog.entity_id == available.id).order_by(col(ChangeLog.seq).desc())
            )
        ).first()
    assert logged is not None
    assert logged.data is not None
    assert (logged.scope_key, logged.data["state"]) == (pending.scope_key, "available")

    blob = await blob_row(world_runtime, digest)
    assert blob is not None
    assert (blob.state, blob.size, blob.mime, blob.format, blob.width, blob.height) == (
        BlobState.COMPLETE,
        len(data),
        "image/jpeg",
        "JPEG",
        1400,
        1100,
    )
    assert (blob.captured_at, blob.device) == (datetime(2024, 6, 17, 8, 12, tzinfo=UTC), "Nordlicht Inspector Tab 7")
    original = store_of(world_settings).original_path(digest)
    assert original.parent.relative_to(world_settings.data_dir / "blobs") == Path("originals", digest[:2], digest[2:4])
    assert stat.S_IMODE(original.stat().st_mode) == 0o444
    assert original.read_bytes() == data
    assert partial_uploads(world_settings, digest) == []


async def test_a_corrupted_chunk_gets_460_and_a_wrong_offset_409_and_neither_moves_the_upload(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, wang: Headers, batch_id: str
) -> None:
    data = photo(2, 1200, 1000, quality=95)
    digest = sha(data)
    await report_defect(world_client, wang, batch_id, [digest])
    assert (await start(world_client, wang, data)).status_code == 201
    head, tail = data[:CHUNK_SIZE], data[CHUNK_SIZE:]

    damaged = bytes([head[0] ^ 0xFF]) + head[1:]
    corrupted = await send(world_client, wang, digest, 0, damaged, sent_as=head)
    assert (corrupted.status_code, corrupted.json()["error"]["code"]) == (460, "checksum_mismatch")
    offset = await world_client.head(f"{BLOBS}/{digest}", headers=wang)
    assert offset.headers["upload-offset"] == "0"

    assert (await send(world_client, wang, digest, 0, head)).status_code == 204
    for wrong in (0, CHUNK_SIZE + 1):
        conflict = await send(world_client, wang, digest, wrong, tail[:100])
        assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "offset_mismatch")
        assert conflict.json()["error"]["details"]["offset"] == CHUNK_SIZE

    assert (await send(world_client, wang, digest, CHUNK_SIZE, tail)).headers["blob-state"] == "complete"
    [attachment] = await attachments(world_runtime, digest)
    assert attachment.state is AttachmentState.AVAILABLE
    after = await send(world_client, wang, digest, CHUNK_SIZE, tail)
    assert (after.status_code, after.json()["error"]["details"]) == (
        409,
        {"offset": len(data), "state": "complete"},
    )


async def test_malformed_uploads_get_clear_errors(world_client: AsyncTestClient[Any], wang: Headers) -> None:
    data = photo(3, 1200, 1000, quality=95)
    digest = sha(data)

    async def code(response: Any) -> tuple[int, str]:
        return response.status_code, response.json()["error"]["code"]

    too_big = {"sha256": digest, "size": 25 * 1024 * 1024 + 1, "mime": "image/jpeg"}
    assert await code(await world_client.post(BLOBS, json=too_big, headers=wang)) == (413, "blob_too_large")
    pdf = {"sha256": digest, "size": len(data), "mime": "application/pdf"}
    assert await code(await world_client.post(BLOBS, json=pdf, headers=wang)) == (415, "unsupported_media_type")
    empty_but_not = {"sha256": digest, "size": 0, "mime": "image/jpeg"}
    assert await code(await world_client.post(BLOBS, json=empty_but_not, headers=wang)) == (400, "size_mismatch")
    not_a_hash = {"sha256": "abc", "size": 10, "mime": "image/jpeg"}
    assert await code(await world_client.post(BLOBS, json=not_a_hash, headers=wang)) == (400, "validation_error")
    assert await code(await send(world_client, wang, digest, 0, data[:10])) == (404, "not_found")
    assert (await world_client.head(f"{BLOBS}/{digest}", headers=wang)).status_code == 404

    assert (await start(world_client, wang, data)).status_code == 201
    other_size = {"sha256": digest, "size": len(data) + 1, "mime": "image/jpeg"}
    assert await code(await world_client.post(BLOBS, json=other_size, headers=wang)) == (409, "size_mismatch")
    oversized = data[: CHUNK_SIZE + 1]
    assert await code(await send(world_client, wang, digest, 0, oversized)) == (413, "chunk_too_large")
    assert await code(await send(world_client, wang, digest, len(data) - 10, data[-10:] + b"x")) == (
        413,
        "chunk_past_end",
    )
    no_checksum = await world_client.patch(
        f"{BLOBS}/{digest}", content=data[:10], headers={**wang, "Upload-Offset": "0"}
    )
    assert await code(no_checksum) == (400, "validation_error")
    md5 = await world_client.patch(
        f"{BLOBS}/{digest}", content=data[:10], headers={**wang, "Upload-Offset": "0", "Upload-Checksum": "md5 xx"}
    )
    assert await code(md5) == (400, "invalid_checksum_header")
    head = await world_client.head(f"{BLOBS}/{digest}", headers=wang)
    assert head.headers["upload-offset"] == "0"


async def test_a_connection_lost_mid_chunk_writes_nothing(
    world_client: AsyncTestClient[Any], world_settings: Settings, wang: Headers
) -> None:
    data = photo(4, 640, 480)
    digest = sha(data)
    assert (await start(world_client, wang, data)).status_code == 201
    headers = [
        (b"authorization", wang["Authorization"].encode()),
        (b"upload-offset", b"0"),
        (b"upload-checksum", checksum(data).encode()),
        (b"content-length", str(len(data)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": f"{BLOBS}/{digest}",
        "raw_path": f"{BLOBS}/{digest}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    half: dict[str, Any] = {"type": "http.request", "body": data[: len(data) // 2], "more_body": True}
    events = iter([half, {"type": "http.disconnect"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(events)

    async def send_event(message: dict[str, Any]) -> None:
        sent.append(message)

    # The raw ASGI call runs on this test's event loop, so it needs an app whose database
    # connections are made here (asyncpg's are bound to the loop that made them).
    app = create_app(world_settings)
    try:
        await app(scope, receive, send_event)  # type: ignore[arg-type]
    finally:
        await app.state.runtime.db.close()
    # Nobody reads this answer, but it is not a server error either.
    statuses = [message["status"] for message in sent if message["type"] == "http.response.start"]
    assert statuses == [400]
    assert b"upload_interrupted" in sent[-1]["body"]
    assert partial_uploads(world_settings, digest) == []
    head = await world_client.head(f"{BLOBS}/{digest}", headers=wang)
    assert head.headers["upload-offset"] == "0"


async def test_the_same_photo_on_two_defects_is_stored_once_and_never_sent_again(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, world_settings: Settings, wang: Headers, batch_id: str
) -> None:
    data = photo(5, 640, 480)
    digest = sha(data)
    first = await report_defect(world_client, wang, batch_id, [digest])
    second = await report_defect(world_client, wang, batch_id, [digest])
    assert (await upload(world_client, wang, data)).headers["blob-state"] == "complete"

    again = await start(world_client, wang, data)
    assert (again.status_code, again.json()) == (
        200,
        {"sha256": digest, "state": "complete", "size": len(data), "offset": len(data)},
    )
    # A record that arrives after its photo links it as available at once.
    third = await report_defect(world_client, wang, batch_id, [digest])
    linked = await attachments(world_runtime, digest)
    assert sorted((a.entity_id, a.state) for a in linked) == sorted(
        (defect, AttachmentState.AVAILABLE) for defect in (first, second, third)
    )
    originals = list((world_settings.data_dir / "blobs" / "originals").rglob(digest))
    assert len(originals) == 1


# -- refusing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "mime"), list(bad_files()))
async def test_a_bad_file_is_rejected_with_its_reason_and_nothing_is_served_from_it(
    world_client: AsyncTestClient[Any],
    world_runtime: Runtime,
    world_settings: Settings,
    wang: Headers,
    batch_id: str,
    data: bytes,
    mime: str,
) -> None:
    digest = sha(data)
    await report_defect(world_client, wang, batch_id, [digest])
    refused = await upload(world_client, wang, data, mime)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "blob_rejected"
    assert error["details"]["reason_code"].startswith("image_")
    assert error["details"]["reason"]

    blob = await blob_row(world_runtime, digest)
    assert blob is not None
    assert (blob.state, blob.reason_code) == (BlobState.REJECTED, error["details"]["reason_code"])
    [attachment] = await attachments(world_runtime, digest)
    assert (attachment.state, attachment.reason_code, attachment.reason) == (
        AttachmentState.REJECTED,
        blob.reason_code,
        blob.reason,
    )
    for size in ("thumb", "display", "original"):
        served = await fetch(world_client, wang, digest, size)
        assert (served.status_code, served.json()["error"]["code"]) == (409, "blob_rejected")
    assert list((world_settings.data_dir / "blobs").rglob(f"*{digest}*")) == []
    # Sending it again changes nothing: the content is what it is.
    assert (await start(world_client, wang, data, mime)).json()["error"]["details"]["reason_code"] == blob.reason_code


async def test_the_empty_file_is_rejected_without_an_upload(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, wang: Headers, batch_id: str
) -> None:
    digest = sha(b"")
    await report_defect(world_client, wang, batch_id, [digest])
    refused = await start(world_client, wang, b"")
    assert (refused.status_code, refused.json()["error"]["details"]["reason_code"]) == (422, "image_empty")
    [attachment] = await attachments(world_runtime, digest)
    assert (attachment.state, attachment.reason_code) == (AttachmentState.REJECTED, "image_empty")


async def test_bytes_that_do_not_match_their_hash_are_rejected_until_the_right_bytes_come(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, wang: Headers, batch_id: str
) -> None:
    data = photo(6, 640, 480)
    digest = sha(data)
    impostor = bytes(reversed(data))
    await report_defect(world_client, wang, batch_id, [digest])
    assert (await start(world_client, wang, data)).status_code == 201
    refused = await send(world_client, wang, digest, 0, impostor)
    assert (refused.status_code, refused.json()["error"]["details"]["reason_code"]) == (422, "hash_mismatch")
    [attachment] = await attachments(world_runtime, digest)
    assert (attachment.state, attachment.reason_code) == (AttachmentState.REJECTED, "hash_mismatch")
    head = await world_client.head(f"{BLOBS}/{digest}", headers=wang)
    assert (head.headers["blob-state"], head.headers["upload-offset"]) == ("rejected", "0")
    served = await fetch(world_client, wang, digest, "display")
    assert (served.status_code, served.json()["error"]["code"]) == (409, "blob_rejected")

    # The hash names content nobody has seen yet: the right bytes are still welcome.
    assert (await upload(world_client, wang, data)).headers["blob-state"] == "complete"
    [attachment] = await attachments(world_runtime, digest)
    assert (attachment.state, attachment.reason_code) == (AttachmentState.AVAILABLE, None)


# -- serving ------------------------------------------------------------------------------------


async def test_served_copies_carry_no_exif_and_no_gps_and_the_original_is_kept_as_uploaded_but_never_served(
    world_client: AsyncTestClient[Any], world_settings: Settings, wang: Headers, batch_id: str
) -> None:
    data = photo(7, 2000, 1500, exif=gps_exif())
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    digest = sha(data)
    await report_defect(world_client, wang, batch_id, [digest])
    assert (await upload(world_client, wang, data)).headers["blob-state"] == "complete"

    for size, accept, fmt, longest in [
        ("thumb", "image/webp,*/*", "WEBP", 320),
        ("display", "image/avif,image/webp,*/*", "WEBP", 1600),
        ("thumb", "image/jpeg", "JPEG", 320),
        ("display", "image/png,image/jpeg;q=0.9", "JPEG", 1600),
    ]:
        served = await fetch(world_client, wang, digest, size, Accept=accept)
        assert served.status_code == 200, served.text
        assert served.headers["content-type"] == f"image/{fmt.lower()}"
        assert served.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert served.headers["etag"].strip('"').startswith(digest)
        image = Image.open(io.BytesIO(served.content))
        assert (image.format, max(image.size)) == (fmt, longest)
        assert "exif" not in image.info
        assert dict(image.getexif()) == {}

    # Asked for the original, staff get every pixel of it, upright, and none of its metadata.
    full_size = await fetch(world_client, wang, digest, "original")
    assert (full_size.status_code, full_size.headers["content-type"]) == (200, "image/jpeg")
    assert full_size.headers["etag"] == f'"{digest}-full.jpg"'
    image = Image.open(io.BytesIO(full_size.content))
    assert (image.format, image.size) == ("JPEG", (2000, 1500))
    assert "exif" not in image.info
    assert dict(image.getexif()) == {}
    assert store_of(world_settings).original_path(digest).read_bytes() == data


async def test_only_readers_of_a_referencing_record_can_fetch_a_photo(
    world_client: AsyncTestClient[Any], world_runtime: Runtime, world_login: Login, wang: Headers, batch_id: str
) -> None:
    on_defect, on_message, unlinked = photo(8), photo(9), photo(10)
    defect_id = await report_defect(world_client, wang, batch_id, [sha(on_defect)])
    async with world_runtime.db.read_session() as session:
        thread_id = (await session.scalars(select(Thread.id).where(Thread.subject_id == defect_id))).one()
    device = Device(world_client, wang)
    post = {"id": new_id(), "thread_id": thread_id, "body": "see photo", "photo_hashes": [sha(on_message)]}
    await device.push_ok(device.mutation("message.post", post))
    for data in (on_defect, on_message, unlinked):
        assert (await upload(world_client, wang, data)).headers["blob-state"] == "complete"

    readers = {"wang.lei": wang, "qa.manager": await world_login("qa.manager")}
    others = {name: await world_login(name) for name in ("jana.novak", "lena.fischer", "gil.workshop")}
    for headers in readers.values():
        for data in (on_defect, on_message):
            assert (await fetch(world_client, headers, sha(data), "thumb")).status_code == 200
    for name, headers in others.items():
        for data in (on_defect, on_message):
            response = await fetch(world_client, headers, sha(data), "original")
            assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), name
    # Having sent the bytes grants nothing: only a record that references them does.
    unlinked_response = await fetch(world_client, wang, sha(unlinked), "thumb")
    assert unlinked_response.status_code == 404


async def test_a_photo_that_never_arrives_is_pending_then_missing_and_sync_carries_on(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        wang = w.handset("wang.lei")
        headers = await wang.engine.auth.headers()
        async with w.runtime.db.read_session() as session:
            batch = (await session.scalars(select(Batch.id).where(Batch.lot_no == LOT_018))).one()
        never, partial, raced = photo(11), photo(12, 1200, 1000, quality=95), photo(13)
        report: dict[str, Any] = {
            "id": new_id(),
            "batch_id": batch,
            "defect_code": "CC-THIN",
            "severity": "minor",
            "captured_at": "2024-06-17T08:12:00Z",
            "photo_hashes": [sha(never), sha(partial)],
        }
        await wang.enqueue("defect.report", report)
        await wang.engine.sync()

        def on_device(data: bytes) -> tuple[str, str | None]:
            [(state, reason)] = [
                (row["state"], row["reason_code"])
                for (entity, _), (_, row) in wang.store.snapshot().items()
                if entity == "attachment" and row is not None and row["sha256"] == sha(data)
            ]
            return state, reason

        assert on_device(never) == ("pending", None)
        assert (await w.client.get(f"/api/v1/defects/{report['id']}", headers=headers)).status_code == 200
        assert (await start(w.client, headers, partial)).status_code == 201
        assert (await send(w.client, headers, sha(partial), 0, partial[:CHUNK_SIZE])).status_code == 204
        # A link that missed its blob's completion (possible on PostgreSQL): the sweep settles it.
        assert (await upload(w.client, headers, raced)).headers["blob-state"] == "complete"
        [linked] = await attachments(w.runtime, sha(never))
        async with w.runtime.unit_of_work(actor="test", command="test.race") as session:
            session.add(
                Attachment(
                    entity_type="defect",
                    entity_id=report["id"],
                    sha256=sha(raced),
                    scope_key=linked.scope_key,
                    uploaded_by=linked.uploaded_by,
                )
            )

        clock = FrozenClock(datetime.now(UTC))
        sweeper = Runtime(settings=w.runtime.settings, db=w.runtime.db, clock=clock)
        early = await mark_missing(sweeper)
        assert (early.missing, early.settled, early.expired_uploads) == (0, 1, 0)
        clock.advance(timedelta(days=15))
        late = await mark_missing(sweeper)
        assert (late.missing, late.settled, late.expired_uploads) == (2, 0, 1)

        await wang.engine.sync()
        assert on_device(never) == ("missing", "not_received")
        assert on_device(partial) == ("missing", "not_received")
        assert on_device(raced) == ("available", None)
        assert (await w.client.head(f"{BLOBS}/{sha(partial)}", headers=headers)).status_code == 404
        assert partial_uploads(w.runtime.settings, sha(partial)) == []

        # Sync never waited for the photos, and still does not.
        await wang.enqueue("defect.report", {**report, "id": new_id(), "photo_hashes": []})
        await wang.engine.sync()
        assert wang.store.outbox_size() == 0
        assert list(wang.engine.rejections) == []
        assert "0 attachments marked missing" in cli(w.runtime.settings, "blobs", "sweep").stdout
