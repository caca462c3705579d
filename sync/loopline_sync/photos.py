"""The photo queue: photos go up by content hash, apart from the mutation queue.

Photos never travel inside mutations (see "Blobs (photos)" in the protocol). The app
hands a photo file to `add()`, references the SHA-256 it returns from its mutations, and
lets `upload()` send queued photos whenever it likes. The queue is separate from the
engine's outbox on purpose: an 8 MB photo on a poor connection, or one the server
refuses, must never hold back the small mutations queued behind it, and the server links
a photo to its record whichever arrives first. Both share the local store and the
sign-in, nothing else; a failing upload never touches the outbox.

Per photo: `POST /blobs` (when the server has the bytes already, from this device or any
other, nothing is sent), then chunks of 1 MiB by `PATCH`, each with its checksum, from
the offset the server holds. After a failure the upload resumes from `HEAD`'s offset,
so a dropped connection costs at most the chunk that was on its way; a chunk corrupted
on the way (460) is sent again. A photo the server refuses leaves the queue with the
server's reason.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError

from loopline_sync.auth import Auth
from loopline_sync.backoff import Attempts, Backoff, parse_retry_after
from loopline_sync.engine import encode_json
from loopline_sync.errors import NetworkError, RetriesExhausted, SyncError, TransientError
from loopline_sync.ids import Clock, iso_utc, utc_now
from loopline_sync.store import BlobEntry, BlobUpload, LocalStore
from loopline_sync.transport import BlobTransport, TransportResponse

log = logging.getLogger("loopline_sync.photos")

BLOBS_PATH = "/api/v1/blobs"
CHUNK_SIZE = 1024 * 1024
# Answers to the announcement that no resend can change: the photo leaves the queue.
_REFUSED_FOR_GOOD = frozenset({400, 413, 415, 422})
# An upload's next step: the offset to send a chunk from, _START (announce it, None) or _DONE.
_START: int | None = None
_DONE = -1

P = ParamSpec("P")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class _BlobStatus(BaseModel):
    state: str
    offset: int


@dataclass
class PhotoStats:
    """Counters for tests, benchmarks and a status screen."""

    uploaded: int = 0
    # Photos the server already had: not one byte of them was sent.
    deduplicated: int = 0
    rejected: int = 0
    chunks_sent: int = 0
    # Chunk bytes handed to the network, including chunks lost on the way.
    bytes_sent: int = 0
    corrupted_chunks: int = 0
    retries: int = 0
    token_renewals: int = 0


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while block := file.read(CHUNK_SIZE):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _read_chunk(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(length)


def _checksum(chunk: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode()


class PhotoQueue:
    def __init__(
        self,
        store: LocalStore,
        transport: BlobTransport,
        auth: Auth,
        *,
        chunk_size: int = CHUNK_SIZE,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
    ) -> None:
        if not 1 <= chunk_size <= CHUNK_SIZE:
            raise ValueError(f"chunk_size must be within 1..{CHUNK_SIZE}")
        self.store = store
        self.transport = transport
        self.auth = auth
        self.chunk_size = chunk_size
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._lock = asyncio.Lock()
        self.stats = PhotoStats()
        self.last_error: SyncError | None = None

    async def add(self, path: str | Path, mime: str) -> str:
        """Queue a photo file (works offline) and return its SHA-256, to reference from mutations.

        The file must stay where it is, unchanged, until the photo is uploaded.
        """
        source = Path(path)
        sha256, size = await asyncio.to_thread(_hash_file, source)
        await self._io(self.store.queue_blob, sha256, str(source), size, mime, iso_utc(self._clock()))
        return sha256

    async def upload(self, *, max_attempts: int | None = None) -> int:
        """Upload the queued photos, oldest first; return how many are still queued.

        Transient failures are retried on a backoff timer, forever unless `max_attempts`
        bounds the consecutive failures of one photo: then that photo waits for the next
        call and the others go on.
        """
        async with self._lock:
            for entry in await self._io(self.store.pending_blobs):
                try:
                    await self._upload(entry, Attempts(max_attempts))
                except RetriesExhausted as exc:
                    log.info("photo %s: %s; it stays queued", entry.sha256, exc.message)
            return len(await self._io(self.store.pending_blobs))

    # -- one photo -------------------------------------------------------------------

    async def _upload(self, entry: BlobEntry, attempts: Attempts) -> None:
        await self._io(self.store.blob_attempted, entry.sha256)
        sent_before = self.stats.bytes_sent
        step: int | None = _START
        while step != _DONE:
            if step is None:
                step = await self._start(entry, attempts, deduplicated=self.stats.bytes_sent == sent_before)
            else:
                step = await self._send_chunk(entry, step, attempts)

    async def _start(self, entry: BlobEntry, attempts: Attempts, *, deduplicated: bool) -> int | None:
        body = encode_json({"sha256": entry.sha256, "size": entry.size, "mime": entry.mime})
        response = await self._call(attempts, "POST", BLOBS_PATH, body, {"Content-Type": "application/json"})
        if response is None:
            return _START
        if response.status not in (200, 201):
            return await self._refused(entry, response, attempts)
        try:
            status = _BlobStatus.model_validate_json(response.body)
        except ValidationError:
            await self._fail(
                attempts, TransientError("POST /blobs answered without a status", code="not_protocol_json")
            )
            return _START
        if status.state == "complete":
            if deduplicated:
                self.stats.deduplicated += 1
            return await self._settle(entry, BlobUpload.UPLOADED)
        if not 0 <= status.offset < entry.size:
            await self._fail(attempts, TransientError(f"the server holds {status.offset} bytes", code="bad_offset"))
            return _START
        return status.offset

    async def _send_chunk(self, entry: BlobEntry, offset: int, attempts: Attempts) -> int | None:
        try:
            chunk = await asyncio.to_thread(_read_chunk, entry.path, offset, self.chunk_size)
        except FileNotFoundError:
            return await self._settle(entry, BlobUpload.REJECTED, "file_missing", "The photo's file is gone.")
        headers = {
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": _checksum(chunk),
        }
        self.stats.chunks_sent += 1
        self.stats.bytes_sent += len(chunk)
        response = await self._call(attempts, "PATCH", f"{BLOBS_PATH}/{entry.sha256}", chunk, headers)
        if response is None:
            return await self._resume(entry, attempts)
        if response.status == 204:
            attempts.progressed()
            if response.headers.get("blob-state") == "complete":
                return await self._settle(entry, BlobUpload.UPLOADED)
            return _int(response.headers.get("upload-offset"))
        code, details = response.error()
        if response.status == 460:
            self.stats.corrupted_chunks += 1
            await self._fail(attempts, TransientError("the chunk arrived corrupted", code=code or "checksum_mismatch"))
            return offset
        if response.status == 409:
            # Someone (maybe our own lost request) moved the upload on: continue from there.
            await self._fail(attempts, TransientError("the upload is elsewhere", code=code or "offset_mismatch"))
            if details.get("state") == "complete":
                return await self._settle(entry, BlobUpload.UPLOADED)
            return _int(details.get("offset"))
        if response.status == 404:
            await self._fail(attempts, TransientError("the server forgot the upload", code=code or "not_found"))
            return _START
        return await self._refused(entry, response, attempts)

    async def _resume(self, entry: BlobEntry, attempts: Attempts) -> int | None:
        """After a failure: the offset the server holds (`HEAD`), or _START if it cannot say."""
        response = await self._call(attempts, "HEAD", f"{BLOBS_PATH}/{entry.sha256}", b"", {})
        if response is None or response.status != 200:
            return _START
        state = response.headers.get("blob-state")
        if state == "complete":
            return await self._settle(entry, BlobUpload.UPLOADED)
        offset = _int(response.headers.get("upload-offset"))
        # A rejected upload (or an odd answer) is explained by announcing it again.
        return offset if state == "partial" and offset is not None and offset < entry.size else _START

    async def _refused(self, entry: BlobEntry, response: TransportResponse, attempts: Attempts) -> int | None:
        code, details = response.error()
        if response.status in _REFUSED_FOR_GOOD:
            reason_code = details.get("reason_code") or code or f"http_{response.status}"
            reason = details.get("reason") or _message(response)
            log.warning("photo %s refused: %s %s", entry.sha256, reason_code, reason)
            return await self._settle(entry, BlobUpload.REJECTED, str(reason_code), reason)
        await self._fail(
            attempts, TransientError(f"blob upload answered {response.status}", code=code, details=details)
        )
        return _START

    async def _settle(
        self, entry: BlobEntry, state: BlobUpload, reason_code: str | None = None, reason: str | None = None
    ) -> int:
        await self._io(self.store.blob_settled, entry.sha256, state, reason_code, reason)
        if state is BlobUpload.UPLOADED:
            self.stats.uploaded += 1
        else:
            self.stats.rejected += 1
        return _DONE

    # -- one exchange ------------------------------------------------------------------

    async def _call(
        self, attempts: Attempts, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> TransportResponse | None:
        """Send once; None after a failure that was handled (backoff slept, token renewed)."""
        try:
            auth = await self.auth.headers()
        except (NetworkError, TransientError) as exc:
            await self._fail(attempts, exc)
            return None
        try:
            response = await self.transport.request(method, path, body, {**headers, **auth})
        except NetworkError as exc:
            await self._fail(attempts, exc)
            return None
        if response.status == 401:
            attempts.unauthorized += 1
            if attempts.unauthorized > 1:
                await self._fail(attempts, SyncError("access token rejected again", code="unauthorized"))
            try:
                await self.auth.handle_unauthorized(auth["Authorization"].removeprefix("Bearer "))
            except (NetworkError, TransientError) as exc:
                await self._fail(attempts, exc)
            else:
                self.stats.token_renewals += 1
            return None
        attempts.unauthorized = 0
        if response.status == 429 or response.status >= 500:
            code, details = response.error()
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            error = TransientError(
                f"{method} {path} answered {response.status}",
                code=code or f"http_{response.status}",
                details=details,
                retry_after=retry_after,
            )
            await self._fail(attempts, error)
            return None
        return response

    async def _fail(self, attempts: Attempts, error: SyncError) -> None:
        """Count a failure and sleep the backoff delay, or give up at the limit."""
        attempts.failures += 1
        self.last_error = error
        if attempts.limit is not None and attempts.failures >= attempts.limit:
            raise RetriesExhausted(
                f"gave up after {attempts.failures} consecutive failures; last: {error.code}: {error.message}",
                details={"last_error": error.code},
            )
        self.stats.retries += 1
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        await self._sleep(self._backoff.delay(attempts.failures, self._rng, retry_after))

    @staticmethod
    async def _io(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a store call in a worker thread (commits fsync; see store.py)."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def _int(value: Any) -> int | None:
    """An offset from a header or an error's details; None (announce again) if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _message(response: TransportResponse) -> str:
    try:
        payload = response.json()
        return str(payload["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"the server answered {response.status}"
