"""Resumable, content-addressed photo uploads: the server side of the protocol's blob queue.

An upload is announced (`start`), sent in chunks of at most 1 MiB at the offset the
server holds (`receive`), and finished when its last byte arrives: the whole file's
SHA-256 is checked, the image is validated and its copies made in the worker pool (once
per content), and in one transaction the upload is marked `complete`, the blob
`complete` (or `rejected`), and the uploader's attachments of it follow, so devices hear
of it through the change log.

A hash is no capability. Each user uploads on their own (`BlobUpload`): a partial upload
belongs to whoever started it, and only bytes that match the hash prove that a user holds
the photo. To a user who may already see the bytes (`service.may_see`) the server answers
`complete` at once, so they never send them twice; to anyone else it answers exactly as
for a hash it has never seen, and they send the bytes. Copies are served only to readers
of a record where the photo is available; the original is never served, staff get a
full-size copy without its metadata.

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
from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from loopline.core.access import Principal
from loopline.core.errors import AppError, Conflict, NotFound
from loopline.core.periodic import every
from loopline.core.runtime import Runtime
from loopline.media.images import FULL_SIZE, ImageInfo, ImageLimits, ImageRejected
from loopline.media.models import Attachment, AttachmentState, Blob, BlobState, BlobUpload, Sha256Hex
from loopline.media.pool import ImagePool
from loopline.media.service import apply_outcome, may_see
from loopline.media.store import BlobStore, OffsetMismatch, StoredFile, open_store

log = logging.getLogger("loopline.blobs")

# Why a blob is refused: a stable code and a message for the uploader.
Rejection = tuple[str, str]

CHUNK_SIZE = 1024 * 1024
MAX_BLOB_BYTES = ImageLimits().max_bytes
ACCEPTED_MIME = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
# Partial uploads expire, and attachments whose bytes never came are marked missing, after this.
GRACE = timedelta(days=14)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# A rejection of one upload's bytes, not of the content: the right bytes may still be sent.
HASH_MISMATCH: Rejection = ("hash_mismatch", "The bytes received do not match the SHA-256 they were sent as.")
EMPTY: Rejection = ("image_empty", "The file is empty.")
SWEEP_ACTOR = "system:blob-sweep"

Size = Literal["thumb", "display", "original"]


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
    """The blob (or this upload of it) is rejected; the reason says why (a stable code and a message)."""

    def __init__(self, sha256: str, reason_code: str | None, reason: str | None, *, status_code: int = 422) -> None:
        super().__init__(
            "blob_rejected",
            f"The photo was rejected: {reason}",
            status_code=status_code,
            details={
                "sha256": sha256,
                "state": BlobState.REJECTED.value,
                "reason_code": reason_code,
                "reason": reason,
            },
        )

    @classmethod
    def of(cls, blob: Blob) -> BlobRejected:
        return cls(blob.sha256, blob.reason_code, blob.reason)


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

    async def _known(self, principal: Principal, sha256: str) -> tuple[Blob | None, BlobUpload | None]:
        """The blob if this user may see it (else None, as for a hash never seen), and their own upload of it."""
        async with self.runtime.db.read_session() as session:
            blob = await session.get(Blob, sha256) if await may_see(session, principal, sha256) else None
            return blob, await session.get(BlobUpload, (sha256, principal.user_id))

    # -- uploading -----------------------------------------------------------------

    async def start(self, principal: Principal, request: BlobStart) -> BlobStatus:
        """Announce an upload: `complete` if this user may see the blob already, else where to resume."""
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
            blob, upload = await self._known(principal, request.sha256)
            if blob is not None:
                return _settled(blob)
            if upload is None or upload.state is BlobState.REJECTED:
                upload = await self._open_upload(principal, request)
            elif upload.size != request.size:
                raise Conflict("size_mismatch", "Your upload of this hash has another size.", {"size": upload.size})
            return await self._progress(principal, upload)

    async def _open_upload(self, principal: Principal, request: BlobStart) -> BlobUpload:
        async with self.runtime.unit_of_work(actor=principal.user_id, command="blob.start") as session:
            key = (request.sha256, principal.user_id)
            upload = await session.get(BlobUpload, key, with_for_update=True) or BlobUpload(
                sha256=request.sha256,
                user_id=principal.user_id,
                size=request.size,
                mime=request.mime,
                created_at=self.runtime.clock.now(),
            )
            upload.size, upload.mime, upload.state = request.size, request.mime, BlobState.PARTIAL
            upload.created_at = self.runtime.clock.now()
            session.add(upload)
        await self.store.discard_upload(request.sha256, principal.user_id)
        return upload

    async def _progress(self, principal: Principal, upload: BlobUpload) -> BlobStatus:
        """Where the upload stands; one whose bytes all arrived before a crash is finished now."""
        offset = await self.store.received(upload.sha256, principal.user_id)
        if offset == upload.size:
            return await self._finish(principal, upload)
        return BlobStatus(sha256=upload.sha256, state=upload.state, size=upload.size, offset=offset)

    async def status(self, principal: Principal, sha256: str) -> BlobStatus:
        """`HEAD`: the offset to resume from (the whole size once complete, 0 once rejected).

        Only for a blob this user may see, or their own upload of it: to anyone else a hash
        the server holds looks like one it has never seen.
        """
        blob, upload = await self._known(principal, sha256)
        if blob is not None:
            return BlobStatus(
                sha256=sha256,
                state=blob.state,
                size=blob.size,
                offset=blob.size if blob.state is BlobState.COMPLETE else 0,
            )
        if upload is None:
            raise NotFound("blob", sha256)
        offset = await self.store.received(sha256, principal.user_id) if upload.state is BlobState.PARTIAL else 0
        return BlobStatus(sha256=sha256, state=upload.state, size=upload.size, offset=offset)

    async def receive(self, principal: Principal, sha256: str, offset: int, checksum: str, chunk: bytes) -> BlobStatus:
        """`PATCH`: append one chunk at `offset` to this user's upload; the last one finishes it."""
        expected = parse_checksum(checksum)
        # Hashing a megabyte takes milliseconds: not on the event loop.
        actual = await asyncio.to_thread(_digest, chunk)
        async with self._lock(sha256):
            _, upload = await self._known(principal, sha256)
            if upload is None:
                raise NotFound("blob", sha256)
            if upload.state is BlobState.REJECTED:
                raise BlobRejected(sha256, *HASH_MISMATCH)
            if upload.state is BlobState.COMPLETE:
                raise _offset_conflict(upload.size, upload.state)
            if actual != expected:
                raise AppError(
                    "checksum_mismatch",
                    "The chunk does not match its Upload-Checksum; it was discarded. Send it again.",
                    status_code=460,
                    details={"offset": offset},
                )
            if offset + len(chunk) > upload.size:
                raise AppError(
                    "chunk_past_end",
                    "The chunk reaches past the size announced for this blob.",
                    status_code=413,
                    details={"size": upload.size, "offset": offset, "length": len(chunk)},
                )
            try:
                received = await self.store.append(sha256, principal.user_id, offset, chunk)
            except OffsetMismatch as wrong:
                raise _offset_conflict(wrong.current, upload.state) from None
            if received < upload.size:
                return BlobStatus(sha256=sha256, state=upload.state, size=upload.size, offset=received)
            return await self._finish(principal, upload)

    async def _finish(self, principal: Principal, upload: BlobUpload) -> BlobStatus:
        """Every byte of this upload is here: verify it, examine the content once, settle."""
        sha256 = upload.sha256
        # Nothing to send or store: everyone holds the empty file, and it is no photo.
        if upload.size > 0 and not await self.store.seal(sha256, principal.user_id):
            raise await self._refuse_upload(principal, upload)
        async with self.runtime.db.read_session() as session:
            examined = await session.get(Blob, sha256)
        outcome: Blob | ImageInfo | Rejection = examined or (await self._examine(sha256) if upload.size > 0 else EMPTY)
        blob = await self._settle(principal, upload, outcome)
        if examined is not None and examined.state is BlobState.REJECTED:
            # These bytes only proved the user holds them: refused content keeps nothing on disk.
            await self.store.discard(sha256)
        return _settled(blob)

    async def _examine(self, sha256: str) -> ImageInfo | Rejection:
        """Validate the original and make its copies; a refused file leaves nothing behind."""
        try:
            async with self.store.processing(sha256) as (original, staging):
                return await self._derive(original, staging)
        except ImageRejected as rejected:
            await self.store.discard(sha256)
            return rejected.code, rejected.message

    async def _derive(self, original: Path, staging: Path) -> ImageInfo:
        try:
            return await self.pool.derive(original, staging)
        except (ImageRejected, OSError):
            raise
        except Exception as exc:
            # A file the pipeline did not foresee must not leave the upload hanging or answer 500.
            log.exception("image pipeline failed on %s", original)
            raise ImageRejected("processing_failed", "The image could not be processed.") from exc

    async def _settle(self, principal: Principal, upload: BlobUpload, outcome: Blob | ImageInfo | Rejection) -> Blob:
        """The upload is complete; the blob is recorded (once), and the uploader's attachments follow it."""
        sha256 = upload.sha256
        uow = self.runtime.unit_of_work(actor=principal.user_id, command="blob.upload")
        async with uow as session:
            mine = await session.get(BlobUpload, (sha256, principal.user_id), with_for_update=True)
            if mine is None:
                raise NotFound("blob", sha256)  # expired by the sweep meanwhile; the device starts again
            mine.state, mine.completed_at = BlobState.COMPLETE, self.runtime.clock.now()
            blob = await session.get(Blob, sha256, with_for_update=True)
            if blob is None:
                blob = self._record(principal, upload, outcome)
                session.add(blob)
                verb = "complete" if blob.state is BlobState.COMPLETE else "reject"
                # The chain seals what the evidence is, so a swapped original would show.
                uow.audit(entity="blob", entity_id=sha256, action=f"blob.{verb}", diff=_evidence(blob))
            for attachment in await self._awaiting(session, principal, sha256):
                apply_outcome(attachment, blob)
        return blob

    def _record(self, principal: Principal, upload: BlobUpload, outcome: Blob | ImageInfo | Rejection) -> Blob:
        now = self.runtime.clock.now()
        blob = Blob(
            sha256=upload.sha256,
            size=upload.size,
            mime=upload.mime,
            state=BlobState.COMPLETE,
            uploaded_by=principal.user_id,
            created_at=now,
            completed_at=now,
        )
        if isinstance(outcome, ImageInfo):
            blob.mime, blob.format, blob.width, blob.height = (
                outcome.mime,
                outcome.format,
                outcome.width,
                outcome.height,
            )
            blob.captured_at, blob.device = outcome.captured_at, outcome.device
        elif not isinstance(outcome, Blob):
            blob.state = BlobState.REJECTED
            blob.reason_code, blob.reason = outcome
        return blob

    async def _refuse_upload(self, principal: Principal, upload: BlobUpload) -> BlobRejected:
        """The bytes do not match their hash: this upload, and the uploader's waiting links, are refused."""
        sha256 = upload.sha256
        async with self.runtime.unit_of_work(actor=principal.user_id, command="blob.mismatch") as session:
            mine = await session.get(BlobUpload, (sha256, principal.user_id), with_for_update=True)
            if mine is not None:
                mine.state = BlobState.REJECTED
            for attachment in await self._awaiting(session, principal, sha256):
                attachment.state = AttachmentState.REJECTED
                attachment.reason_code, attachment.reason = HASH_MISMATCH
        return BlobRejected(sha256, *HASH_MISMATCH)

    @staticmethod
    async def _awaiting(session: AsyncSession, principal: Principal, sha256: str) -> list[Attachment]:
        """The user's links of this hash that wait for their bytes (pending, or refused for a mismatch)."""
        waiting = or_(
            col(Attachment.state) == AttachmentState.PENDING,
            and_(col(Attachment.state) == AttachmentState.REJECTED, col(Attachment.reason_code) == HASH_MISMATCH[0]),
        )
        query = select(Attachment).where(
            col(Attachment.sha256) == sha256, col(Attachment.uploaded_by) == principal.user_id, waiting
        )
        return list(await session.scalars(query))

    # -- serving -------------------------------------------------------------------

    async def fetch(
        self, session: AsyncSession, principal: Principal, sha256: str, size: Size, *, webp: bool
    ) -> ServedBlob:
        """A copy for a user who can read a record the photo is attached to (404 for everyone else).

        The answer is what those records say: the photo is available, rejected or pending.
        The original is never served; staff get a full-size copy without its metadata.
        """
        attached = (
            await session.execute(
                select(col(Attachment.state), col(Attachment.reason_code), col(Attachment.reason)).where(
                    col(Attachment.sha256) == sha256, Attachment.read_filter(principal)
                )
            )
        ).all()
        if not attached:
            raise NotFound("blob", sha256)
        states = {state for state, _, _ in attached}
        if AttachmentState.AVAILABLE not in states:
            rejected = [(code, reason) for state, code, reason in attached if state == AttachmentState.REJECTED]
            if rejected:
                raise BlobRejected(sha256, *rejected[0], status_code=409)
            raise Conflict("blob_pending", "The photo has not arrived yet.", {"state": AttachmentState.PENDING.value})
        if size == "original":
            if not principal.is_staff:
                raise AppError("original_staff_only", "Only staff see a photo at full size.", status_code=403)
            return ServedBlob(await self._full_size(sha256), "image/jpeg", f'"{sha256}-{FULL_SIZE}"')
        extension, mime = ("webp", "image/webp") if webp else ("jpg", "image/jpeg")
        name = f"{size}.{extension}"
        return ServedBlob(await self._copy(sha256, name), mime, f'"{sha256}-{name}"')

    async def _full_size(self, sha256: str) -> StoredFile:
        """The full-size copy, made on its first request: few photos are ever looked at at 100 %."""
        file = await self.store.open(sha256, FULL_SIZE)
        if file is not None:
            return file
        async with self.store.adding(sha256) as (original, staging):
            await self.pool.full_size(original, staging)
        return await self._copy(sha256, FULL_SIZE)

    async def _copy(self, sha256: str, name: str) -> StoredFile:
        file = await self.store.open(sha256, name)
        if file is None:
            log.error("blob %s is complete but its %s is not in the store", sha256, name)
            raise NotFound("blob", sha256)
        return file

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


def _settled(blob: Blob) -> BlobStatus:
    """The answer for a blob the user may see: complete, or its rejection."""
    if blob.state is BlobState.REJECTED:
        raise BlobRejected.of(blob)
    return BlobStatus(sha256=blob.sha256, state=blob.state, size=blob.size, offset=blob.size)


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
    """The sweep: attachments pending past the grace period become `missing`, unfinished uploads expire.

    It also settles pending attachments whose user's upload did complete: on PostgreSQL a
    link committed while that upload was completing can miss the completion's update.
    """
    store = store or open_store(runtime.settings)
    horizon = runtime.clock.now() - GRACE
    missing = settled = 0
    async with runtime.unit_of_work(actor=SWEEP_ACTOR, command="blobs.sweep") as session:
        linkers_upload = and_(
            col(BlobUpload.sha256) == col(Attachment.sha256),
            col(BlobUpload.user_id) == col(Attachment.uploaded_by),
            col(BlobUpload.state) == BlobState.COMPLETE,
        )
        overdue = await session.execute(
            select(Attachment, Blob)
            .outerjoin(BlobUpload, linkers_upload)
            .outerjoin(Blob, col(Blob.sha256) == col(BlobUpload.sha256))
            .where(
                col(Attachment.state) == AttachmentState.PENDING,
                or_(col(Attachment.created_at) < horizon, col(BlobUpload.sha256).is_not(None)),
            )
        )
        for attachment, blob in overdue:
            if blob is not None:
                apply_outcome(attachment, blob)
                settled += 1
            else:
                attachment.state = AttachmentState.MISSING
                attachment.reason_code = "not_received"
                attachment.reason = f"The photo did not arrive within {GRACE.days} days."
                missing += 1
        expired = list(
            await session.scalars(
                select(BlobUpload).where(
                    col(BlobUpload.state) != BlobState.COMPLETE, col(BlobUpload.created_at) < horizon
                )
            )
        )
        for upload in expired:
            await session.delete(upload)
    for upload in expired:
        await store.discard_upload(upload.sha256, upload.user_id)
    return SweepReport(missing=missing, settled=settled, expired_uploads=len(expired))
