"""Where blob bytes live: partial uploads, immutable originals and derived copies.

The service talks to a `BlobStore`, so an S3-compatible store can stand beside the local
one. `LocalBlobStore` keeps everything under `<data dir>/blobs`:

    partial/<sha256>.<uploader>       one user's upload in progress; its length is the offset
    originals/ab/cd/<sha256>          the verified original, read-only (evidence)
    derived/<sha256>/thumb.webp, …    the copies served to devices

Durability: every appended chunk is fsynced before it is acknowledged, an original
arrives by an atomic rename of its verified partial file followed by an fsync of the
directory, and derived copies are written to a staging directory that is renamed into
place only when all of them are on disk. A crash therefore leaves either the partial
upload (the device resumes it) or the sealed original, never a half-written original.

Every user sends their own bytes of a hash (see `BlobUpload`), so partial uploads are
kept per uploader; the first that matches its hash becomes the original, and later
matching ones are dropped once checked.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from loopline.core.settings import Settings

ORIGINAL = "original"
READ_CHUNK = 1024 * 1024


class OffsetMismatch(Exception):
    """A chunk was offered at an offset other than the end of the partial upload."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the upload is at offset {current}")
        self.current = current


@dataclass(frozen=True)
class StoredFile:
    size: int
    chunks: AsyncIterator[bytes]


class BlobStore(Protocol):
    async def received(self, sha256: str, uploader: str) -> int:
        """How many bytes of this uploader's upload of the blob are here."""
        ...

    async def append(self, sha256: str, uploader: str, offset: int, chunk: bytes) -> int:
        """Durably add `chunk` at `offset`, which must be the partial upload's end; return the new length.

        Raises `OffsetMismatch` with the actual length otherwise.
        """
        ...

    async def seal(self, sha256: str, uploader: str) -> bool:
        """Check this uploader's whole-file SHA-256; the first match becomes the immutable original.

        False if the bytes do not match; True if they do. The partial upload is gone after either.
        """
        ...

    def processing(self, sha256: str) -> AbstractAsyncContextManager[tuple[Path, Path]]:
        """Local paths for the image pipeline: the original, and an empty directory for the copies.

        The copies replace any earlier ones when the block exits cleanly and are dropped otherwise.
        """
        ...

    def adding(self, sha256: str) -> AbstractAsyncContextManager[tuple[Path, Path]]:
        """As `processing`, but the copies made join those already published."""
        ...

    async def open(self, sha256: str, name: str) -> StoredFile | None:
        """The original (`ORIGINAL`) or a derived copy by file name, or None if it is not here."""
        ...

    async def discard(self, sha256: str) -> None:
        """Forget the blob's content: original and copies."""
        ...

    async def discard_upload(self, sha256: str, uploader: str) -> None:
        """Forget this uploader's partial upload of the blob."""
        ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs as files under one directory (a local disk, or a shared volume when scaled out)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._partial = root / "partial"
        self._originals = root / "originals"
        self._derived = root / "derived"

    def partial_path(self, sha256: str, uploader: str) -> Path:
        # The user id goes into a file name: hashed, so no id can name another path.
        return self._partial / f"{sha256}.{hashlib.sha256(uploader.encode()).hexdigest()[:32]}"

    def original_path(self, sha256: str) -> Path:
        return self._originals / sha256[:2] / sha256[2:4] / sha256

    def derived_path(self, sha256: str) -> Path:
        return self._derived / sha256

    async def received(self, sha256: str, uploader: str) -> int:
        return await asyncio.to_thread(self._received, self.partial_path(sha256, uploader))

    @staticmethod
    def _received(partial: Path) -> int:
        try:
            return partial.stat().st_size
        except FileNotFoundError:
            return 0

    async def append(self, sha256: str, uploader: str, offset: int, chunk: bytes) -> int:
        return await asyncio.to_thread(self._append, self.partial_path(sha256, uploader), offset, chunk)

    def _append(self, partial: Path, offset: int, chunk: bytes) -> int:
        self._partial.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # Other server processes may share this volume: the file lock makes check-and-append atomic.
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = os.fstat(fd).st_size
            if current != offset:
                raise OffsetMismatch(current)
            view = memoryview(chunk)
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            os.fsync(fd)
            return offset
        finally:
            os.close(fd)

    async def seal(self, sha256: str, uploader: str) -> bool:
        return await asyncio.to_thread(self._seal, sha256, self.partial_path(sha256, uploader))

    def _seal(self, sha256: str, partial: Path) -> bool:
        digest = hashlib.sha256()
        with partial.open("rb") as file:
            while block := file.read(READ_CHUNK):
                digest.update(block)
        original = self.original_path(sha256)
        if digest.hexdigest() != sha256 or original.exists():
            partial.unlink()
            return digest.hexdigest() == sha256
        partial.chmod(0o444)
        original.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, original)
        _fsync_dir(original.parent)
        return True

    def processing(self, sha256: str) -> AbstractAsyncContextManager[tuple[Path, Path]]:
        return self._staged(sha256, self._publish)

    def adding(self, sha256: str) -> AbstractAsyncContextManager[tuple[Path, Path]]:
        return self._staged(sha256, self._add)

    @asynccontextmanager
    async def _staged(self, sha256: str, publish: Callable[[str, Path], None]) -> AsyncIterator[tuple[Path, Path]]:
        staging = self._derived / f".staging-{sha256}-{uuid.uuid4().hex}"
        await asyncio.to_thread(staging.mkdir, parents=True)
        try:
            yield self.original_path(sha256), staging
            await asyncio.to_thread(publish, sha256, staging)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _publish(self, sha256: str, staging: Path) -> None:
        for path in staging.iterdir():
            _fsync_file(path)
        final = self.derived_path(sha256)
        # Copies from an attempt that crashed before its database commit are made again.
        shutil.rmtree(final, ignore_errors=True)
        os.rename(staging, final)
        _fsync_dir(self._derived)

    def _add(self, sha256: str, staging: Path) -> None:
        final = self.derived_path(sha256)
        for path in staging.iterdir():
            _fsync_file(path)
            os.replace(path, final / path.name)
        _fsync_dir(final)

    async def open(self, sha256: str, name: str) -> StoredFile | None:
        path = self.original_path(sha256) if name == ORIGINAL else self.derived_path(sha256) / name
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        return StoredFile(size, _read_chunks(path))

    async def discard(self, sha256: str) -> None:
        await asyncio.to_thread(self._discard, sha256)

    def _discard(self, sha256: str) -> None:
        self.original_path(sha256).unlink(missing_ok=True)
        shutil.rmtree(self.derived_path(sha256), ignore_errors=True)

    async def discard_upload(self, sha256: str, uploader: str) -> None:
        await asyncio.to_thread(self.partial_path(sha256, uploader).unlink, True)


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while block := await asyncio.to_thread(file.read, READ_CHUNK):
            yield block
    finally:
        file.close()


def open_store(settings: Settings) -> BlobStore:
    """The store the settings choose; the local one under the data directory is the only one yet."""
    return LocalBlobStore(settings.data_dir / "blobs")
