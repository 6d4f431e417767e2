"""The storage backend contract (kernel.testing) run against ``storage.local``, and what
is particular to it: its settings, its folder, its quota checks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from kernel.config import Settings
from kernel.errors import PluginError
from kernel.runtime import Tessera
from kernel.storage import StorageBackend
from kernel.testing import StorageBackendContract
from tests.conftest import running
from tests.fake_plugins import FakeDistributions


class TestLocalStorage(StorageBackendContract):
    @pytest.fixture
    def storage_backend(self, client: httpx.AsyncClient) -> StorageBackend:
        tessera: Tessera = client.app.state.tessera  # type: ignore[attr-defined]
        assert tessera.storage is not None and tessera.storage.name == "local"
        return tessera.storage

    @pytest.fixture
    def storage_http(self, client: httpx.AsyncClient) -> httpx.AsyncClient:
        return client


UPLOAD_QUOTA = """
    from kernel import QuotaExceeded, QuotaPolicy, hookimpl

    checked = []

    class SmallUploads(QuotaPolicy):
        name = "small_uploads"

        async def check_upload(self, project_id, size):
            checked.append((project_id, size))
            if size > 5:
                raise QuotaExceeded("uploads are limited to 5 bytes", headers={"Retry-After": "1"})

    @hookimpl
    def register_quota_policies():
        return [SmallUploads]
"""


async def test_an_upload_over_a_quota_is_refused_before_its_bytes_are_stored(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    fake_distributions.add(
        "tests-upload-quota", {"probe.quota": "upload_quota"}, {"upload_quota": UPLOAD_QUOTA}
    )
    settings = make_settings(
        plugins={"config": {"storage.local": {"root": str(tmp_path / "files")}}}
    )
    async with running(settings) as client:
        storage = client.app.state.tessera.storage
        small = await storage.upload_url(
            "p1/small", project_id="p1", content_type="text/plain", size=5, expires_in=60
        )
        big = await storage.upload_url(
            "p1/big", project_id="p1", content_type="text/plain", size=6, expires_in=60
        )
        accepted = await client.put(small.url, headers=small.headers, content=b"12345")
        refused = await client.put(big.url, headers=big.headers, content=b"123456")
        assert accepted.status_code == 200, accepted.text
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["code"] == "quota_exceeded"
        assert await storage.head("p1/big") is None
        assert await storage.head("p1/small") is not None
    assert sys.modules["upload_quota"].checked == [("p1", 5), ("p1", 6)]
    assert list((tmp_path / "files").rglob("*")), "the configured root holds the files"


async def test_upload_errors_use_the_error_body(client: httpx.AsyncClient) -> None:
    storage = client.app.state.tessera.storage
    upload = await storage.upload_url(
        "p1/typed", project_id="p1", content_type="image/png", size=3, expires_in=60
    )
    wrong_type = await client.put(upload.url, headers={"Content-Type": "text/html"}, content=b"abc")
    too_big = await client.put(upload.url, headers=upload.headers, content=b"abcd")
    forged = await client.put(upload.url.replace("upload?", "download?"), content=b"abc")
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0] == {
        "field": "content_type",
        "code": "content_type_mismatch",
        "message": "the signed content type is 'image/png'",
    }
    assert (too_big.status_code, too_big.json()["errors"][0]["code"]) == (422, "size_mismatch")
    assert (forged.status_code, forged.json()["errors"][0]["code"]) == (405, "method_not_allowed")


async def test_a_download_url_cannot_upload(client: httpx.AsyncClient) -> None:
    storage = client.app.state.tessera.storage
    download = await storage.download_url("p1/any", expires_in=60, filename="a.txt")
    token = download.url.split("token=")[1]
    response = await client.put(
        f"/api/storage/local/upload?token={token}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "invalid_signature"


def test_storage_backend_unset_picks_local(make_settings: Callable[..., Settings]) -> None:
    assert Tessera.build(make_settings()).storage_class.name == "local"


def test_storage_backend_unset_without_any_backend_means_no_storage(
    make_settings: Callable[..., Settings],
) -> None:
    tessera = Tessera.build(make_settings(plugins={"disabled": ["storage.*"]}))
    assert tessera.storage_class is None


def test_an_unknown_storage_backend_stops_startup_listing_the_available_ones(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(PluginError) as error:
        Tessera.build(make_settings(storage_backend="s3"))
    assert str(error.value) == (
        "storage_backend: no storage backend named 's3'; available: local (storage.local)"
    )


def test_a_chosen_backend_that_is_disabled_stops_startup(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(PluginError, match="available: none"):
        Tessera.build(make_settings(storage_backend="local", plugins={"disabled": ["storage.*"]}))
