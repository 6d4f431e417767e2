"""The routes behind ``storage.local``'s signed URLs: a PUT that stores, a GET that serves.

The token in the query string is the whole authorisation: it names the key, and for an
upload the project, the content type and the exact size. An upload is checked against
every quota policy before a byte is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from kernel import NotFound, PayloadTooLarge, ValidationFailed, check_upload_quota
from kernel.api.responses import Shape, error_responses

PREFIX = "/api/storage/local"


async def exactly(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """``chunks``, refused as soon as they pass ``size`` bytes, or at the end if short."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > size:
            raise PayloadTooLarge(f"the upload is larger than the signed {size} bytes")
        yield chunk
    if received < size:
        raise ValidationFailed(
            f"the upload has {received} bytes, the signed size is {size}",
            code="size_mismatch",
            field="size",
        )


class Stored(Shape):
    key: str
    size: int
    checksum_sha256: str


def local_storage_router(tessera: Any) -> APIRouter:
    """Routes serving the signed requests of the deployment's local backend."""
    router = APIRouter(prefix=PREFIX, tags=["storage"])

    @router.put("/upload", response_model=Stored, responses=error_responses(403, 413, 422, 429))
    async def upload(request: Request, token: str) -> dict[str, Any]:
        backend = tessera.storage
        claims = backend.signer.verify(token, "upload")
        size = claims["size"]
        if request.headers.get("content-type") != claims["type"]:
            raise ValidationFailed(
                f"the signed content type is {claims['type']!r}",
                code="content_type_mismatch",
                field="content_type",
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared != str(size):
            raise ValidationFailed(
                f"Content-Length is {declared}, the signed size is {size}",
                code="size_mismatch",
                field="size",
            )
        await check_upload_quota(tessera, claims["project"], size)
        info = await backend.put(
            claims["key"], exactly(request.stream(), size), content_type=claims["type"]
        )
        return {"key": info.key, "size": info.size, "checksum_sha256": info.checksum_sha256}

    @router.get(
        "/download",
        response_class=FileResponse,
        responses={
            200: {"description": "the stored bytes, as the signed content type"},
            **error_responses(403, 404),
        },
    )
    async def download(token: str) -> FileResponse:
        backend = tessera.storage
        claims = backend.signer.verify(token, "download")
        info = await backend.head(claims["key"])
        if info is None:
            raise NotFound("nothing is stored at this URL", code="object_not_found")
        return FileResponse(
            backend.path_of(info.key),
            media_type=info.content_type,
            filename=claims["filename"],
            content_disposition_type="attachment",
        )

    return router
