"""The client's photo queue against the real server and database, through the fault-injecting transport."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from loopline.core.settings import Settings
from loopline.media.models import Blob, BlobState
from loopline.media.store import LocalBlobStore
from loopline.quality.models import Batch
from loopline_sync.photos import CHUNK_SIZE, PhotoQueue
from loopline_sync.store import BlobUpload
from loopline_sync.transport import Fault, FaultyTransport, HttpTransport, TransportResponse
from tests.photo_helpers import noise, photo
from tests.sync_helpers import new_id
from tests.sync_world import Handset, World, no_wait, world

LOT_018 = "CN-SZ-L2-2406-018"


@dataclass
class Device:
    """A handset with its photo queue: same store, same sign-in, a transport of its own."""

    handset: Handset
    transport: FaultyTransport
    photos: PhotoQueue


def device(w: World, username: str = "wang.lei", *, store_name: str | None = None, inner: Any = None) -> Device:
    handset = w.handset(username, store_name=store_name)
    http = inner or HttpTransport("http://testserver.local", client=w.client)
    faulty = FaultyTransport(http, random.Random(0), paths=("/api/v1/blobs",), sleep=no_wait)
    return Device(handset, faulty, PhotoQueue(handset.store, faulty, handset.engine.auth, sleep=no_wait))


async def report(w: World, handset: Handset, hashes: list[str]) -> str:
    async with w.runtime.db.read_session() as session:
        batch_id = (await session.scalars(select(Batch.id).where(Batch.lot_no == LOT_018))).one()
    defect_id = new_id()
    args = {
        "id": defect_id,
        "batch_id": batch_id,
        "defect_code": "CC-THIN",
        "severity": "major",
        "captured_at": "2024-06-17T08:12:00Z",
        "photo_hashes": hashes,
    }
    await handset.enqueue("defect.report", args)
    return defect_id


def attachment_states(handset: Handset, sha256: str) -> dict[str, str]:
    """The device's read model: the state of each record's attachment of this photo."""
    return {
        data["entity_id"]: data["state"]
        for (entity, _), (_, data) in handset.store.snapshot().items()
        if entity == "attachment" and data is not None and data["sha256"] == sha256
    }


async def server_blob(w: World, sha256: str) -> Blob | None:
    async with w.runtime.db.read_session() as session:
        return await session.get(Blob, sha256)


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("lost", "resent"),
    [
        pytest.param(Fault.DROP_REQUEST, CHUNK_SIZE, id="request-lost"),
        pytest.param(Fault.DROP_RESPONSE, 0, id="answer-lost"),
    ],
)
async def test_an_8mb_photo_cut_off_at_37_percent_resumes_and_resends_at_most_one_chunk(
    sync_template: Settings, tmp_path: Path, lost: Fault, resent: int
) -> None:
    async with world(sync_template, tmp_path) as w:
        tablet = device(w)
        path = tmp_path / "photo.png"
        noise(1680, 1680, seed=37).save(path, "PNG")
        size = path.stat().st_size
        assert 8 * 1024 * 1024 <= size < 9 * 1024 * 1024
        sha256 = await tablet.photos.add(path, "image/png")
        defect_id = await report(w, tablet.handset, [sha256])
        await tablet.handset.engine.sync()
        assert attachment_states(tablet.handset, sha256) == {defect_id: "pending"}

        # Chunks 1-3 go through; the connection drops on the fourth, which spans 37.5 % of the photo.
        tablet.transport.script(Fault.NONE, Fault.NONE, Fault.NONE, lost, path=f"/api/v1/blobs/{sha256}")
        assert await tablet.photos.upload() == 0

        stats = tablet.photos.stats
        assert stats.bytes_sent - size == resent
        assert (stats.uploaded, stats.deduplicated) == (1, 0)
        blob = await server_blob(w, sha256)
        assert blob is not None
        assert blob.state is BlobState.COMPLETE
        original = LocalBlobStore(w.runtime.settings.data_dir / "blobs").original_path(sha256)
        assert hashlib.sha256(original.read_bytes()).hexdigest() == sha256
        await tablet.handset.engine.sync()
        assert attachment_states(tablet.handset, sha256) == {defect_id: "available"}
        assert tablet.handset.store.blob(sha256) is not None
        assert tablet.handset.store.pending_blobs() == []


async def test_a_chunk_corrupted_on_the_way_is_sent_again(sync_template: Settings, tmp_path: Path) -> None:
    async with world(sync_template, tmp_path) as w:
        tablet = device(w)
        data = photo(21, 1400, 1100, quality=95)
        sha256 = await tablet.photos.add(write(tmp_path, "p.jpg", data), "image/jpeg")
        tablet.transport.script(Fault.NONE, Fault.CORRUPT, path=f"/api/v1/blobs/{sha256}")
        assert await tablet.photos.upload() == 0
        assert tablet.photos.stats.corrupted_chunks == 1
        assert tablet.photos.stats.chunks_sent == 3  # two chunks, the second one twice
        blob = await server_blob(w, sha256)
        assert blob is not None
        assert blob.state is BlobState.COMPLETE


async def test_a_photo_on_two_defects_is_stored_once_and_after_a_reinstall_sends_zero_bytes(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        tablet = device(w, store_name="tablet")
        path = write(tmp_path, "p.jpg", photo(22, 1200, 1000, quality=95))
        sha256 = await tablet.photos.add(path, "image/jpeg")
        assert await tablet.photos.add(path, "image/jpeg") == sha256
        defects = [await report(w, tablet.handset, [sha256]) for _ in range(2)]
        await tablet.handset.engine.sync()
        assert await tablet.photos.upload() == 0
        assert tablet.photos.stats.bytes_sent == path.stat().st_size

        # A reinstall: a new local store (and client id), the same photo queued again.
        reinstalled = device(w, store_name="reinstalled")
        assert await reinstalled.photos.add(path, "image/jpeg") == sha256
        assert await reinstalled.photos.upload() == 0
        stats = reinstalled.photos.stats
        assert (stats.bytes_sent, stats.chunks_sent, stats.deduplicated, stats.uploaded) == (0, 0, 1, 1)

        await reinstalled.handset.engine.sync()
        assert attachment_states(reinstalled.handset, sha256) == dict.fromkeys(defects, "available")
        originals = list((w.runtime.settings.data_dir / "blobs" / "originals").rglob(sha256))
        assert len(originals) == 1


class Gate:
    """An inner transport that holds every request until the gate opens: a photo stuck on the network."""

    def __init__(self, inner: HttpTransport) -> None:
        self.inner = inner
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        return await self.request("POST", path, body, headers)

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        self.waiting.set()
        await self.open.wait()
        return await self.inner.request(method, path, body, headers)


async def test_a_photo_stuck_on_the_network_never_holds_back_the_mutations(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        gate = Gate(HttpTransport("http://testserver.local", client=w.client))
        tablet = device(w, inner=gate)
        sha256 = await tablet.photos.add(write(tmp_path, "p.jpg", photo(23)), "image/jpeg")
        uploading = asyncio.create_task(tablet.photos.upload())
        await gate.waiting.wait()

        defect_id = await report(w, tablet.handset, [sha256])
        await tablet.handset.engine.sync()
        assert tablet.handset.store.outbox_size() == 0
        assert attachment_states(tablet.handset, sha256) == {defect_id: "pending"}
        assert not uploading.done()

        gate.open.set()
        assert await uploading == 0
        await tablet.handset.engine.pull()
        assert attachment_states(tablet.handset, sha256) == {defect_id: "available"}


async def test_a_photo_the_server_refuses_leaves_the_queue_with_its_reason_and_the_next_goes_up(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        tablet = device(w)
        good = photo(24)
        broken = await tablet.photos.add(write(tmp_path, "broken.jpg", good[: len(good) // 2]), "image/jpeg")
        fine = await tablet.photos.add(write(tmp_path, "fine.jpg", good), "image/jpeg")
        defect_id = await report(w, tablet.handset, [broken, fine])
        await tablet.handset.engine.sync()

        assert await tablet.photos.upload() == 0
        refused = tablet.handset.store.blob(broken)
        assert refused is not None
        assert (refused.state, refused.reason_code) == (BlobUpload.REJECTED, "image_corrupt")
        assert refused.reason
        uploaded = tablet.handset.store.blob(fine)
        assert uploaded is not None
        assert uploaded.state is BlobUpload.UPLOADED
        await tablet.handset.engine.pull()
        assert attachment_states(tablet.handset, broken) == {defect_id: "rejected"}
        assert attachment_states(tablet.handset, fine) == {defect_id: "available"}


async def test_a_photo_that_keeps_failing_stays_queued_and_is_resumed_later(
    sync_template: Settings, tmp_path: Path
) -> None:
    async with world(sync_template, tmp_path) as w:
        tablet = device(w)
        data = photo(25, 1400, 1100, quality=95)
        sha256 = await tablet.photos.add(write(tmp_path, "p.jpg", data), "image/jpeg")
        tablet.transport.script(Fault.NONE, *[Fault.UNAVAILABLE] * 3, path=f"/api/v1/blobs/{sha256}")
        assert await tablet.photos.upload(max_attempts=3) == 1
        entry = tablet.handset.store.blob(sha256)
        assert entry is not None
        assert (entry.state, entry.attempts) == (BlobUpload.PENDING, 1)

        before = tablet.photos.stats.bytes_sent
        assert await tablet.photos.upload() == 0
        # The first chunk arrived before the outage: the next round sends only the rest.
        assert tablet.photos.stats.bytes_sent - before == len(data) - CHUNK_SIZE
