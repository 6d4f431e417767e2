"""The example third-party plugin, installed with pip and seen by a real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import REPO, TesseraServer, tessera_env

EXAMPLE = REPO / "docs" / "examples" / "tessera-hello"


def install_example(example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` an example plugin into a folder of its own (put on PYTHONPATH)."""
    target = tmp_path_factory.mktemp(f"{example.name}-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(example),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path_factory.mktemp("build"),
    )
    return target


@pytest.fixture(scope="module")
def installed_hello(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield install_example(EXAMPLE, tmp_path_factory)


def server_env(database_url: str, data_dir: Path, site: Path, **extra: str) -> dict[str, str]:
    return tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY="example-plugin-test",
        PYTHONPATH=f"{site}:{REPO}",
        **extra,
    )


def test_installed_plugin_is_listed_and_its_route_answers(
    installed_hello: Path, database_url: str, tmp_path: Path
) -> None:
    env = server_env(
        database_url,
        tmp_path,
        installed_hello,
        TESSERA_PLUGINS__CONFIG='{"hello": {"greeting": "Bonjour"}}',
    )
    with TesseraServer(env) as server:
        plugins = {p["name"]: p for p in httpx.get(f"{server.url}/api/plugins").json()["data"]}
        assert plugins["hello"]["distribution"] == "tessera-hello"
        assert plugins["hello"]["version"] == "1.0.0"
        assert "register_routes" in plugins["hello"]["hooks"]
        response = httpx.get(f"{server.url}/api/hello", params={"name": "Ada"})
        assert response.json() == {"message": "Bonjour, Ada!"}


def test_disabled_plugin_is_gone(installed_hello: Path, database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, tmp_path, installed_hello, TESSERA_PLUGINS__DISABLED='["hello"]')
    with TesseraServer(env) as server:
        names = [p["name"] for p in httpx.get(f"{server.url}/api/plugins").json()["data"]]
        assert "hello" not in names
        assert httpx.get(f"{server.url}/api/hello").status_code == 404
