"""``StorageBackendContract``: what every storage backend must do (see
:class:`kernel.StorageBackend`)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from kernel.storage import SignedRequest, StorageBackend

INVALID_KEYS = ["", "../escape", "a/../../b", "/absolute", "a//b", "a/", ".hidden", "a\\b", "é"]


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing_after(part: bytes) -> AsyncIterator[bytes]:
    yield part
    raise ConnectionResetError("the client went away")


async def read_all(backend: StorageBackend, key: str) -> bytes:
    return b"".join([chunk async for chunk in backend.open(key)])


def new_key() -> str:
    return f"contract/{secrets.token_hex(6)}/file.bin"


class StorageBackendContract:
    """Subclass and provide two fixtures:

    - ``storage_backend``: a ready instance of your backend (its ``tessera`` set up so
      that its signed URLs are served, e.g. the running app's ``tessera.storage``);
    - ``storage_http``: an ``httpx.AsyncClient`` that reaches those URLs (for URLs relative
      to the API, a client whose ``base_url`` is the app).

    Upload URLs are issued for the project ``contract`` (quota policies see that id).
    """

    async def signed(
        self, client: httpx.AsyncClient, request: SignedRequest, body: bytes = b""
    ) -> httpx.Response:
        """Make the signed request as a client would."""
        return await client.request(
            request.method, request.url, headers=request.headers, content=body or None
        )

    async def test_put_head_open_round_trip(self, storage_backend: StorageBackend) -> None:
        key = new_key()
        info = await storage_backend.put(
            key, chunks_of(b"hello ", b"", b"world"), content_type="text/plain"
        )
        assert (info.key, info.size, info.content_type) == (key, 11, "text/plain")
        head = await storage_backend.head(key)
        assert head is not None
        assert (head.key, head.size, head.content_type) == (key, 11, "text/plain")
        assert head.checksum_sha256 in (None, hashlib.sha256(b"hello world").hexdigest())
        assert await read_all(storage_backend, key) == b"hello world"

    async def test_large_objects_survive_in_several_chunks(
        self, storage_backend: StorageBackend
    ) -> None:
        key = new_key()
        body = secrets.token_bytes(300_000)
        parts = [body[start : start + 70_000] for start in range(0, len(body), 70_000)]
        info = await storage_backend.put(key, chunks_of(*parts), content_type="image/png")
        assert info.size == len(body)
        assert await read_all(storage_backend, key) == body

    async def test_put_replaces_what_was_there(self, storage_backend: StorageBackend) -> None:
        key = new_key()
        await storage_backend.put(key, chunks_of(b"first"), content_type="text/plain")
        await storage_backend.put(key, chunks_of(b"second!"), content_type="text/csv")
        head = await storage_backend.head(key)
        assert head is not None and (head.size, head.content_type) == (7, "text/csv")
        assert await read_all(storage_backend, key) == b"second!"

    async def test_a_failed_put_keeps_what_was_there(self, storage_backend: StorageBackend) -> None:
        key = new_key()
        await storage_backend.put(key, chunks_of(b"kept"), content_type="text/plain")
        with pytest.raises(ConnectionResetError):
            await storage_backend.put(key, failing_after(b"partial"), content_type="text/plain")
        assert await read_all(storage_backend, key) == b"kept"

    async def test_a_failed_put_of_a_new_key_stores_nothing(
        self, storage_backend: StorageBackend
    ) -> None:
        key = new_key()
        with pytest.raises(ConnectionResetError):
            await storage_backend.put(key, failing_after(b"partial"), content_type="text/plain")
        assert await storage_backend.head(key) is None

    async def test_a_missing_key(self, storage_backend: StorageBackend) -> None:
        key = new_key()
        assert await storage_backend.head(key) is None
        with pytest.raises(FileNotFoundError):
            await read_all(storage_backend, key)

    async def test_delete_removes_and_is_idempotent(self, storage_backend: StorageBackend) -> None:
        key = new_key()
        await storage_backend.put(key, chunks_of(b"x"), content_type="text/plain")
        await storage_backend.delete(key)
        assert await storage_backend.head(key) is None
        await storage_backend.delete(key)
        await storage_backend.delete(new_key())

    async def test_keys_that_are_one_anothers_prefix_coexist(
        self, storage_backend: StorageBackend
    ) -> None:
        parent = new_key()
        child = f"{parent}/child"
        await storage_backend.put(parent, chunks_of(b"parent"), content_type="text/plain")
        await storage_backend.put(child, chunks_of(b"child"), content_type="text/plain")
        assert await read_all(storage_backend, parent) == b"parent"
        assert await read_all(storage_backend, child) == b"child"

    @pytest.mark.parametrize("key", INVALID_KEYS)
    async def test_invalid_keys_are_refused(self, storage_backend: StorageBackend, key) -> None:
        with pytest.raises(ValueError):
            await storage_backend.head(key)
        with pytest.raises(ValueError):
            await storage_backend.put(key, chunks_of(b"x"), content_type="text/plain")
        with pytest.raises(ValueError):
            await storage_backend.delete(key)
        with pytest.raises(ValueError):
            await read_all(storage_backend, key)
        with pytest.raises(ValueError):
            await storage_backend.download_url(key, expires_in=60, filename="f")

    async def test_signed_upload_then_signed_download(
        self, storage_backend: StorageBackend, storage_http: httpx.AsyncClient
    ) -> None:
        key, body = new_key(), b"%PDF-1.7 contract"
        upload = await storage_backend.upload_url(
            key,
            project_id="contract",
            content_type="application/pdf",
            size=len(body),
            expires_in=60,
        )
        assert upload.method == "PUT"
        assert (await self.signed(storage_http, upload, body)).status_code in (200, 201, 204)
        head = await storage_backend.head(key)
        assert head is not None and (head.size, head.content_type) == (len(body), "application/pdf")
        download = await storage_backend.download_url(key, expires_in=60, filename="report.pdf")
        assert download.method == "GET"
        response = await self.signed(storage_http, download)
        assert response.status_code == 200
        assert response.content == body
        assert "attachment" in response.headers["content-disposition"]
        assert "report.pdf" in response.headers["content-disposition"]

    async def test_an_upload_of_another_size_is_refused(
        self, storage_backend: StorageBackend, storage_http: httpx.AsyncClient
    ) -> None:
        key = new_key()
        upload = await storage_backend.upload_url(
            key, project_id="contract", content_type="text/plain", size=4, expires_in=60
        )
        for body in (b"toolong", b"abc"):
            response = await self.signed(storage_http, upload, body)
            assert 400 <= response.status_code < 500
        assert await storage_backend.head(key) is None

    async def test_an_upload_of_another_type_is_refused(
        self, storage_backend: StorageBackend, storage_http: httpx.AsyncClient
    ) -> None:
        key = new_key()
        upload = await storage_backend.upload_url(
            key, project_id="contract", content_type="image/png", size=3, expires_in=60
        )
        headers = {**upload.headers, "Content-Type": "text/html"}
        response = await storage_http.request("PUT", upload.url, headers=headers, content=b"<b>")
        assert 400 <= response.status_code < 500
        assert await storage_backend.head(key) is None

    async def test_a_tampered_url_is_refused(
        self, storage_backend: StorageBackend, storage_http: httpx.AsyncClient
    ) -> None:
        key = new_key()
        await storage_backend.put(key, chunks_of(b"secret"), content_type="text/plain")
        download = await storage_backend.download_url(key, expires_in=60, filename="s.txt")
        tampered = SignedRequest(download.method, download.url + "0", download.headers)
        response = await self.signed(storage_http, tampered)
        assert 400 <= response.status_code < 500
        assert response.content != b"secret"

    async def test_an_expired_url_is_refused(
        self, storage_backend: StorageBackend, storage_http: httpx.AsyncClient
    ) -> None:
        key = new_key()
        await storage_backend.put(key, chunks_of(b"old"), content_type="text/plain")
        download = await storage_backend.download_url(key, expires_in=1, filename="o.txt")
        await asyncio.sleep(2.1)
        response = await self.signed(storage_http, download)
        assert 400 <= response.status_code < 500
