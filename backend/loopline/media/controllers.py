"""`/blobs`: resumable photo uploads (POST, HEAD, PATCH) and serving their copies (GET)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, MediaType, Request, Response, get, head, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from loopline.core.access import Principal
from loopline.core.api import PrincipalDep, SessionDep
from loopline.core.errors import AppError
from loopline.core.input_guard import BINARY_BODY
from loopline.media.blobs import CHUNK_SIZE, BlobService, BlobStart, BlobStatus, Size
from loopline.media.models import BlobState

BlobsDep = NamedDependency[BlobService]
Sha256Path = Annotated[str, PathParameter(pattern=r"^[0-9a-fA-F]{64}$", description="The blob's SHA-256 in hex.")]
UploadOffset = Annotated[int, HeaderParameter(name="Upload-Offset", ge=0, le=2**53)]
UploadChecksum = Annotated[
    str, HeaderParameter(name="Upload-Checksum", max_length=200, description="`sha256 <base64 digest of the chunk>`")
]
SizeQuery = Annotated[Size, QueryParameter(description="Which copy: thumb (320 px), display (1600 px) or original.")]

# Copies never change under their URL (the hash names the content), but only readers may see them.
CACHE_CONTROL = "private, max-age=31536000, immutable"


def provide_blobs(state: State) -> BlobService:
    blobs: BlobService = state.blobs
    return blobs


def _upload_headers(status: BlobStatus) -> dict[str, str]:
    return {"Upload-Offset": str(status.offset), "Upload-Length": str(status.size), "Blob-State": status.state.value}


async def _read_chunk(request: Request[Principal, Any, Any]) -> bytes:
    try:
        return await request.body()
    except RequestEntityTooLarge:
        raise AppError(
            "chunk_too_large",
            f"A chunk is at most {CHUNK_SIZE} bytes.",
            status_code=413,
            details={"max_bytes": CHUNK_SIZE},
        ) from None
    except InternalServerException:
        # The device went away mid-chunk; nothing of it is written, and nobody reads this answer.
        raise AppError("upload_interrupted", "The connection closed before the whole chunk arrived.") from None


class BlobController(Controller):
    path = "/blobs"
    tags = ["blobs"]
    dependencies = {"blobs": Provide(provide_blobs, sync_to_thread=False)}

    @post("/", operation_id="blob_start", request_max_body_size=4096)
    async def start(self, blobs: BlobsDep, principal: PrincipalDep, data: JSONBody[BlobStart]) -> Response[BlobStatus]:
        """Announce an upload: 200 if you may already see the blob (send nothing), else 201 with the offset.

        To a user who neither uploaded the blob nor can read a record showing it, a blob the
        server holds is answered as one it has never seen: they prove they hold it by
        sending the bytes.
        """
        status = await blobs.start(principal, data)
        return Response(status, status_code=200 if status.state is BlobState.COMPLETE else 201)

    @head("/{sha256:str}", operation_id="blob_upload_offset")
    async def offset(self, blobs: BlobsDep, principal: PrincipalDep, sha256: Sha256Path) -> Response[None]:
        """The offset to resume from, in `Upload-Offset` (and the state in `Blob-State`).

        404 unless the caller has an upload of this hash or may already see the photo.
        """
        status = await blobs.status(principal, sha256.lower())
        return Response(None, media_type=MediaType.TEXT, headers=_upload_headers(status))

    @patch(
        "/{sha256:str}",
        operation_id="blob_upload_chunk",
        status_code=204,
        request_max_body_size=CHUNK_SIZE,
        opt={BINARY_BODY: True},
    )
    async def chunk(
        self,
        request: Request[Principal, Any, Any],
        blobs: BlobsDep,
        principal: PrincipalDep,
        sha256: Sha256Path,
        upload_offset: UploadOffset,
        upload_checksum: UploadChecksum,
    ) -> Response[None]:
        """One chunk (raw bytes, at most 1 MiB) at `Upload-Offset`; 204 with the new offset."""
        body = await _read_chunk(request)
        status = await blobs.receive(principal, sha256.lower(), upload_offset, upload_checksum, body)
        return Response(None, status_code=204, media_type=MediaType.TEXT, headers=_upload_headers(status))

    @get("/{sha256:str}", operation_id="get_blob")
    async def fetch(
        self,
        request: Request[Principal, Any, Any],
        blobs: BlobsDep,
        session: SessionDep,
        principal: PrincipalDep,
        sha256: Sha256Path,
        size: SizeQuery = "display",
    ) -> Stream:
        """A copy of the photo, for users who can read a record where it is available.

        Thumb and display copies are WebP when the `Accept` header allows it, else JPEG.
        `original` is a full-size JPEG, for staff only (403 `original_staff_only` for
        customers); the original file itself is kept as evidence and never served. No copy
        carries EXIF (no GPS position, no device).
        """
        served = await blobs.fetch(session, principal, sha256.lower(), size, webp=request.accept.accepts("image/webp"))
        return Stream(
            served.file.chunks,
            media_type=served.mime,
            headers={
                "Content-Length": str(served.file.size),
                "Cache-Control": CACHE_CONTROL,
                "ETag": served.etag,
                "Vary": "Accept",
                "X-Content-Type-Options": "nosniff",
            },
        )


controllers = [BlobController]
