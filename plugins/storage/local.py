"""The plugin ``storage.local``: file bytes on this machine's disk (the embedded default).

Objects live under ``root`` (default ``<data_dir>/files``) at a path derived from a hash of
the key, so no key can name a place outside the root and keys never clash with each
other's folders; a JSON file beside each object keeps its key, type and checksum. Signed
upload and download URLs point at this plugin's own routes (:mod:`plugins.storage.routes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kernel import ObjectInfo, PluginInfo, SignedRequest, StorageBackend, check_key, hookimpl
from plugins.storage.routes import PREFIX, local_storage_router
from plugins.storage.signing import UrlSigner

PLUGIN = "storage.local"
CHUNK_BYTES = 64 * 1024


class LocalStorageConfig(BaseModel):
    """``[plugins.config."storage.local"]``."""

    model_config = ConfigDict(extra="forbid")

    #: Folder of the stored files; unset: ``<data_dir>/files``.
    root: Path | None = None
    #: Prepended to signed URLs (``https://api.example.com``); empty: relative to the API.
    base_url: str = ""


class LocalBackend(StorageBackend):
    name = "local"

    def __init__(self, tessera: Any) -> None:
        super().__init__(tessera)
        config = tessera.plugins.config(PLUGIN)
        root = config.root or Path(tessera.settings.data_dir) / "files"
        self.root = root.resolve()
        self.base_url = config.base_url.rstrip("/")
        self.signer = UrlSigner(tessera.secret_key, PLUGIN)

    def path_of(self, key: str) -> Path:
        """Where the bytes of ``key`` are (or would be) stored; ``ValueError`` for a bad key."""
        digest = hashlib.sha256(check_key(key).encode()).hexdigest()
        return self.root / digest[:2] / digest

    def _url(self, action: str, claims: dict[str, Any], expires_in: int) -> tuple[str, datetime]:
        expires_at = time.time() + expires_in
        token = self.signer.sign({"act": action, **claims}, expires_at)
        return (
            f"{self.base_url}{PREFIX}/{action}?token={quote(token)}",
            datetime.fromtimestamp(int(expires_at), UTC),
        )

    async def upload_url(
        self, key: str, *, project_id: str, content_type: str, size: int, expires_in: int
    ) -> SignedRequest:
        check_key(key)
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        claims = {"key": key, "project": project_id, "type": content_type, "size": size}
        url, expires_at = self._url("upload", claims, expires_in)
        return SignedRequest("PUT", url, {"Content-Type": content_type}, expires_at)

    async def download_url(self, key: str, *, expires_in: int, filename: str) -> SignedRequest:
        check_key(key)
        url, expires_at = self._url("download", {"key": key, "filename": filename}, expires_in)
        return SignedRequest("GET", url, {}, expires_at)

    async def head(self, key: str) -> ObjectInfo | None:
        path = self.path_of(key)
        try:
            meta = orjson.loads(await asyncio.to_thread(_meta_path(path).read_bytes))
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        return ObjectInfo(key, size, meta["content_type"], meta["checksum_sha256"])

    async def open(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path_of(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> ObjectInfo:
        path = self.path_of(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        # Written beside the target, then renamed over it: a reader never sees half a file
        # and a failed upload leaves what was there.
        partial = path.with_name(f"{path.name}.{secrets.token_hex(8)}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            handle = await asyncio.to_thread(partial.open, "wb")
            with handle:
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(handle.write, chunk)
            info = ObjectInfo(key, size, content_type, digest.hexdigest())
            meta = {
                "key": key,
                "content_type": content_type,
                "checksum_sha256": info.checksum_sha256,
            }
            await asyncio.to_thread(_write_meta, path, meta)
            await asyncio.to_thread(os.replace, partial, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(partial.unlink)
        return info

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        for stored in (path, _meta_path(path)):
            await asyncio.to_thread(stored.unlink, missing_ok=True)


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    partial = path.with_name(f"{path.name}.{secrets.token_hex(8)}.json.part")
    partial.write_bytes(orjson.dumps(meta))
    os.replace(partial, _meta_path(path))


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="File storage on this machine's disk (the default storage backend)",
        config=LocalStorageConfig,
    )


@hookimpl
def register_storage_backends() -> list[type[StorageBackend]]:
    return [LocalBackend]


@hookimpl
def register_routes(tessera: Any) -> list[APIRouter]:
    """The signed-URL routes, only when this backend is the deployment's choice."""
    if tessera.storage_class is not LocalBackend:
        return []
    return [local_storage_router(tessera)]
