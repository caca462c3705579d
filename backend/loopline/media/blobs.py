"""Resumable, content-addressed photo uploads: the server side of the protocol's blob queue.

An upload is announced (`start`), sent in chunks of at most 1 MiB at the offset the
server holds (`receive`), and finished when its last byte arrives: the whole file's
SHA-256 is checked, the image is validated and its copies made in the worker pool, and in
one transaction the blob is marked `complete` (or `rejected`) and every attachment that
references it follows, so devices hear of it through the change log. Content is named by
its hash, so a blob the server holds is never sent twice.

Chunks of one blob are serialised by a lock per hash in this process; the store's own
check of the offset (under a file lock) covers several processes on a shared volume.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from weakref import WeakValueDictionary

from litestar import Litestar
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.errors import AppError, Conflict, NotFound
from loopline.core.periodic import every
from loopline.core.runtime import Runtime
from loopline.media.images import ImageInfo, ImageLimits, ImageRejected
from loopline.media.models import Attachment, AttachmentState, Blob, BlobState, Sha256Hex
from loopline.media.pool import ImagePool
from loopline.media.service import apply_outcome
from loopline.media.store import ORIGINAL, BlobStore, OffsetMismatch, StoredFile, open_store

log = logging.getLogger("loopline.blobs")

CHUNK_SIZE = 1024 * 1024
MAX_BLOB_BYTES = ImageLimits().max_bytes
ACCEPTED_MIME = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
# Partial uploads expire, and attachments whose bytes never came are marked missing, after this.
GRACE = timedelta(days=14)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# A rejection that says nothing about the content: the right bytes may still be sent.
HASH_MISMATCH = "hash_mismatch"
SWEEP_ACTOR = "system:blob-sweep"

Size = Literal["thumb", "display", "original"]
# Why a blob is refused: a stable code and a message for the uploader.
Rejection = tuple[str, str]


class BlobStart(BaseModel):
    """`POST /blobs`: the blob a device is about to send."""

    model_config = ConfigDict(extra="forbid")

    sha256: Sha256Hex
    size: int = Field(ge=0, le=2**53)
    mime: str = Field(max_length=100)


class BlobStatus(BaseModel):
    sha256: str
    state: BlobState
    size: int
    offset: int


class BlobRejected(AppError):
    """The blob is rejected for good; the reason says why (a stable code and a message)."""

    def __init__(self, blob: Blob, *, status_code: int = 422) -> None:
        super().__init__(
            "blob_rejected",
            f"The photo was rejected: {blob.reason}",
            status_code=status_code,
            details={
                "sha256": blob.sha256,
                "state": BlobState.REJECTED.value,
                "reason_code": blob.reason_code,
                "reason": blob.reason,
            },
        )


@dataclass(frozen=True)
class ServedBlob:
    file: StoredFile
    mime: str
    etag: str


@dataclass(frozen=True)
class SweepReport:
    missing: int
    settled: int
    expired_uploads: int


def parse_checksum(header: str) -> bytes:
    """The digest in `Upload-Checksum: sha256 <base64>`."""
    algorithm, _, encoded = header.strip().partition(" ")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if algorithm.lower() != "sha256" or len(digest) != hashlib.sha256().digest_size:
        raise AppError(
            "invalid_checksum_header",
            "Upload-Checksum must be 'sha256 <base64 of the chunk's SHA-256 digest>'.",
            details={"header": "Upload-Checksum"},
        )
    return digest


def _digest(chunk: bytes) -> bytes:
    return hashlib.sha256(chunk).digest()


class BlobService:
    """The blob endpoints' logic, with the store and the image pool the application owns."""

    def __init__(self, runtime: Runtime, store: BlobStore, pool: ImagePool) -> None:
        self.runtime = runtime
        self.store = store
        self.pool = pool
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def _lock(self, sha256: str) -> asyncio.Lock:
        lock = self._locks.get(sha256)
        if lock is None:
            lock = self._locks[sha256] = asyncio.Lock()
        return lock

    async def _get(self, sha256: str) -> Blob | None:
        async with self.runtime.db.read_session() as session:
            return await session.get(Blob, sha256)

    # -- uploading -----------------------------------------------------------------

    async def start(self, principal: Principal, request: BlobStart) -> BlobStatus:
        """Announce an upload: `complete` if the server holds the blob, else where to resume."""
        if request.size > MAX_BLOB_BYTES:
            raise AppError(
                "blob_too_large",
                f"A photo is at most {MAX_BLOB_BYTES} bytes.",
                status_code=413,
                details={"max_bytes": MAX_BLOB_BYTES},
            )
        if request.mime not in ACCEPTED_MIME:
            raise AppError(
                "unsupported_media_type",
                f"Photos are sent as one of: {', '.join(sorted(ACCEPTED_MIME))}.",
                status_code=415,
                details={"accepted": sorted(ACCEPTED_MIME)},
            )
        if request.size == 0 and request.sha256 != EMPTY_SHA256:
            raise AppError("size_mismatch", "Only the empty file has size 0, and this is not its hash.")
        async with self._lock(request.sha256):
            blob = await self._get(request.sha256)
            if blob is None or (blob.state is BlobState.REJECTED and blob.reason_code == HASH_MISMATCH):
                blob = await self._open_upload(principal, request)
                if request.size == 0:
                    blob = await self._settle(principal, blob.sha256, ("image_empty", "The file is empty."))
            elif blob.state is BlobState.PARTIAL and blob.size != request.size:
                raise Conflict(
                    "size_mismatch", "An upload of this hash with another size is under way.", {"size": blob.size}
                )
            return await self._progress(principal, blob)

    async def _open_upload(self, principal: Principal, request: BlobStart) -> Blob:
        async with self.runtime.unit_of_work(actor=principal.user_id, command="blob.start") as session:
            blob = await session.get(Blob, request.sha256, with_for_update=True) or Blob(
                sha256=request.sha256, size=request.size, mime=request.mime, created_at=self.runtime.clock.now()
            )
            blob.size, blob.mime, blob.state = request.size, request.mime, BlobState.PARTIAL
            blob.reason_code = blob.reason = None
            blob.uploaded_by, blob.created_at = principal.user_id, self.runtime.clock.now()
            session.add(blob)
        return blob

    async def _progress(self, principal: Principal, blob: Blob) -> BlobStatus:
        """Where the upload stands; one whose bytes all arrived before a crash is finished now."""
        if blob.state is BlobState.REJECTED:
            raise BlobRejected(blob)
        if blob.state is BlobState.COMPLETE:
            return BlobStatus(sha256=blob.sha256, state=blob.state, size=blob.size, offset=blob.size)
        offset = await self.store.received(blob.sha256, blob.size)
        if offset == blob.size:
            return await self._finish(principal, blob)
        return BlobStatus(sha256=blob.sha256, state=blob.state, size=blob.size, offset=offset)

    async def status(self, sha256: str) -> BlobStatus:
        """`HEAD`: the offset to resume from (the whole size once complete, 0 once rejected)."""
        blob = await self._get(sha256)
        if blob is None:
            raise NotFound("blob", sha256)
        offset = {
            BlobState.COMPLETE: blob.size,
            BlobState.REJECTED: 0,
            BlobState.PARTIAL: await self.store.received(sha256, blob.size),
        }[blob.state]
        return BlobStatus(sha256=sha256, state=blob.state, size=blob.size, offset=offset)

    async def receive(self, principal: Principal, sha256: str, offset: int, checksum: str, chunk: bytes) -> BlobStatus:
        """`PATCH`: append one chunk at `offset`; the last one finishes the blob."""
        expected = parse_checksum(checksum)
        # Hashing a megabyte takes milliseconds: not on the event loop.
        actual = await asyncio.to_thread(_digest, chunk)
        async with self._lock(sha256):
            blob = await self._get(sha256)
            if blob is None:
                raise NotFound("blob", sha256)
            if blob.state is BlobState.REJECTED:
                raise BlobRejected(blob)
            if blob.state is BlobState.COMPLETE:
                raise _offset_conflict(blob.size, blob.state)
            if actual != expected:
                raise AppError(
                    "checksum_mismatch",
                    "The chunk does not match its Upload-Checksum; it was discarded. Send it again.",
                    status_code=460,
                    details={"offset": offset},
                )
            if offset + len(chunk) > blob.size:
                raise AppError(
                    "chunk_past_end",
                    "The chunk reaches past the size announced for this blob.",
                    status_code=413,
                    details={"size": blob.size, "offset": offset, "length": len(chunk)},
                )
            try:
                received = await self.store.append(sha256, offset, chunk)
            except OffsetMismatch as wrong:
                raise _offset_conflict(wrong.current, blob.state) from None
            if received < blob.size:
                return BlobStatus(sha256=sha256, state=blob.state, size=blob.size, offset=received)
            return await self._finish(principal, blob)

    async def _finish(self, principal: Principal, blob: Blob) -> BlobStatus:
        """Every byte is here: verify, validate, derive, and settle the blob and its attachments."""
        sha256 = blob.sha256
        if not await self.store.seal(sha256):
            mismatch = (HASH_MISMATCH, "The bytes received do not match the SHA-256 they were sent as.")
            raise BlobRejected(await self._settle(principal, sha256, mismatch))
        try:
            async with self.store.processing(sha256) as (original, staging):
                info = await self._derive(original, staging)
        except ImageRejected as rejected:
            # Nothing is served from a rejected file, and nothing of it is kept.
            await self.store.discard(sha256)
            raise BlobRejected(await self._settle(principal, sha256, (rejected.code, rejected.message))) from None
        done = await self._settle(principal, sha256, info)
        return BlobStatus(sha256=sha256, state=done.state, size=done.size, offset=done.size)

    async def _derive(self, original: Path, staging: Path) -> ImageInfo:
        try:
            return await self.pool.derive(original, staging)
        except (ImageRejected, OSError):
            raise
        except Exception as exc:
            # A file the pipeline did not foresee must not leave the upload hanging or answer 500.
            log.exception("image pipeline failed on %s", original)
            raise ImageRejected("processing_failed", "The image could not be processed.") from exc

    async def _settle(self, principal: Principal, sha256: str, outcome: ImageInfo | Rejection) -> Blob:
        """Mark the blob complete (with what the image is) or rejected, and its attachments alike."""
        verb = "complete" if isinstance(outcome, ImageInfo) else "reject"
        uow = self.runtime.unit_of_work(actor=principal.user_id, command=f"blob.{verb}")
        async with uow as session:
            blob = await session.get(Blob, sha256, with_for_update=True)
            if blob is None:
                raise NotFound("blob", sha256)  # expired by the sweep meanwhile; the device starts again
            blob.completed_at = self.runtime.clock.now()
            if isinstance(outcome, ImageInfo):
                blob.state = BlobState.COMPLETE
                blob.mime, blob.format, blob.width, blob.height = (
                    outcome.mime,
                    outcome.format,
                    outcome.width,
                    outcome.height,
                )
                blob.captured_at, blob.device = outcome.captured_at, outcome.device
            else:
                blob.state = BlobState.REJECTED
                blob.reason_code, blob.reason = outcome
            for attachment in await session.scalars(select(Attachment).where(col(Attachment.sha256) == sha256)):
                apply_outcome(attachment, blob)
            # The chain seals what the evidence is, so a swapped original would show.
            uow.audit(entity="blob", entity_id=sha256, action=f"blob.{verb}", diff=_evidence(blob))
        return blob

    # -- serving -------------------------------------------------------------------

    async def fetch(
        self, session: AsyncSession, principal: Principal, sha256: str, size: Size, *, webp: bool
    ) -> ServedBlob:
        """A copy for a user who can read a record the blob is attached to (404 for everyone else)."""
        readable = await session.scalar(
            select(col(Attachment.id))
            .where(col(Attachment.sha256) == sha256, Attachment.read_filter(principal))
            .limit(1)
        )
        if readable is None:
            raise NotFound("blob", sha256)
        blob = await session.get(Blob, sha256)
        if blob is None or blob.state is BlobState.PARTIAL:
            raise Conflict("blob_pending", "The photo has not arrived yet.", {"state": AttachmentState.PENDING.value})
        if blob.state is BlobState.REJECTED:
            raise BlobRejected(blob, status_code=409)
        if size == "original":
            name, mime, etag = ORIGINAL, blob.mime, sha256
        else:
            extension, mime = ("webp", "image/webp") if webp else ("jpg", "image/jpeg")
            name = f"{size}.{extension}"
            etag = f"{sha256}-{name}"
        file = await self.store.open(sha256, name)
        if file is None:
            log.error("blob %s is complete but its %s is not in the store", sha256, name)
            raise NotFound("blob", sha256)
        return ServedBlob(file, mime, f'"{etag}"')

    # -- lifecycle -----------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        """Sweeps on a timer while the application runs; the worker pool ends with it."""
        interval = self.runtime.settings.blob_sweep_interval_s
        try:
            async with every(interval, functools.partial(mark_missing, self.runtime, self.store), what="blob sweep"):
                yield
        finally:
            await self.pool.close()


def _offset_conflict(current: int, state: BlobState) -> AppError:
    return Conflict(
        "offset_mismatch",
        f"The upload is at offset {current}; send the chunk that starts there.",
        {"offset": current, "state": state.value},
    )


def _evidence(blob: Blob) -> dict[str, Any]:
    fields: tuple[str, ...] = ("size", "mime", "format", "width", "height", "captured_at", "device", "uploaded_by")
    if blob.state is BlobState.REJECTED:
        fields = ("size", "mime", "reason_code", "reason", "uploaded_by")
    return {name: getattr(blob, name) for name in fields}


async def mark_missing(runtime: Runtime, store: BlobStore | None = None) -> SweepReport:
    """The sweep: attachments pending past the grace period become `missing`, partial uploads expire.

    It also settles pending attachments whose blob did arrive: on PostgreSQL a link
    committed while its blob was completing can miss the completion's update.
    """
    store = store or open_store(runtime.settings)
    horizon = runtime.clock.now() - GRACE
    missing = settled = 0
    async with runtime.unit_of_work(actor=SWEEP_ACTOR, command="blobs.sweep") as session:
        overdue = await session.execute(
            select(Attachment, Blob)
            .outerjoin(Blob, col(Blob.sha256) == col(Attachment.sha256))
            .where(
                col(Attachment.state) == AttachmentState.PENDING,
                or_(col(Attachment.created_at) < horizon, col(Blob.state) != BlobState.PARTIAL),
            )
        )
        for attachment, blob in overdue:
            if blob is not None and blob.state is not BlobState.PARTIAL:
                apply_outcome(attachment, blob)
                settled += 1
            else:
                attachment.state = AttachmentState.MISSING
                attachment.reason_code = "not_received"
                attachment.reason = f"The photo did not arrive within {GRACE.days} days."
                missing += 1
        expired = list(
            await session.scalars(
                select(Blob).where(col(Blob.state) == BlobState.PARTIAL, col(Blob.created_at) < horizon)
            )
        )
        for blob in expired:
            await session.delete(blob)
    for blob in expired:
        await store.discard(blob.sha256)
    return SweepReport(missing=missing, settled=settled, expired_uploads=len(expired))
