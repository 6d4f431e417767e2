"""The ``tessera`` command line."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.server import TesseraServer, run_tessera, tessera_env
from tests.services import create_database, drop_database


def test_plugins_list_prints_the_builtins() -> None:
    result = run_tessera(["plugins", "list"], tessera_env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["PLUGIN", "STATE", "VERSION", "DISTRIBUTION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    for name in ("field_types.core", "operators.core", "schema.core", "transports.postgres"):
        assert rows[name][1:4] == ["enabled", "0.1.0", "tessera"]


def test_plugins_list_shows_disabled_plugins(tmp_path: Path) -> None:
    result = run_tessera(
        ["plugins", "list"], tessera_env(TESSERA_PLUGINS__DISABLED='["transports.redis"]')
    )
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["transports.redis"][1] == "disabled"


def test_unknown_plugin_stops_the_cli_in_one_line() -> None:
    result = run_tessera(["plugins", "list"], tessera_env(TESSERA_PLUGINS__ENABLED='["no.such"]'))
    assert result.returncode == 2
    assert result.stderr.startswith("tessera: plugins.enabled: no installed plugin named 'no.such'")
    assert "Traceback" not in result.stderr


@pytest.fixture
async def empty_database(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own: the admin this file creates must not become the shared test
    database's first admin (a server started later would then not create its own)."""
    url = await create_database(postgres_server, "tessera_cli")
    try:
        yield url
    finally:
        await drop_database(postgres_server, url)


def test_migrate_and_admin_create(empty_database: str, tmp_path: Path) -> None:
    env = tessera_env(TESSERA_DATABASE_URL=empty_database, TESSERA_DATA_DIR=str(tmp_path))
    migrated = run_tessera(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "platform schema at 0003" in migrated.stdout
    created = run_tessera(
        ["admin", "create", "--email", "cli@tessera.test", "--password", "cli-password-1"], env
    )
    assert created.returncode == 0, created.stderr
    duplicate = run_tessera(
        ["admin", "create", "--email", "cli@tessera.test", "--password", "cli-password-1"], env
    )
    assert duplicate.returncode == 1
    assert "an admin with email cli@tessera.test exists" in duplicate.stderr
    listed = run_tessera(["admin", "list"], env)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["EMAIL", "ADDED", "LAST", "SIGN-IN"]
    assert row.split()[0] == "cli@tessera.test"
    assert row.endswith("never")


def test_a_refused_admin_create_prints_only_its_error(database_url: str, tmp_path: Path) -> None:
    env = tessera_env(TESSERA_DATABASE_URL=database_url, TESSERA_DATA_DIR=str(tmp_path))
    result = run_tessera(
        ["admin", "create", "--email", "short@tessera.test", "--password", "x"], env
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "tessera: password must be 8 to 1024 characters\n"


def _serve_output(database_url: str, data_dir: Path, *args: str) -> str:
    """What ``tessera serve`` prints from its start until it is stopped."""
    env = tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY="cli-test-secret",
    )
    with TesseraServer(env, *args) as server:
        url = server.url
    assert server.process is not None and server.process.stdout is not None
    return server.process.stdout.read().replace(url, "http://HOST")


def test_serve_prints_a_short_banner(database_url: str, tmp_path: Path) -> None:
    output = _serve_output(database_url, tmp_path)
    assert output.splitlines() == [
        "Tessera is serving http://HOST",
        "  admin     http://HOST/admin",
        "  API docs  http://HOST/docs",
        f"  data      {database_url} (local files in {tmp_path.resolve()})",
        "Stop it with Ctrl-C.",
    ]


def test_serve_verbose_brings_the_libraries_logs_back(database_url: str, tmp_path: Path) -> None:
    output = _serve_output(database_url, tmp_path, "--verbose")
    assert "Tessera is serving http://HOST" in output
    assert "INFO alembic.runtime.migration" in output
    assert "Application startup complete" in output  # uvicorn's
    assert "embedded PostgreSQL" not in output


async def test_plugins_list_agrees_with_the_api(client: httpx.AsyncClient) -> None:
    """Same plugins, versions, distributions, kinds and hooks; every plugin provides some
    kind of thing (the admin: routes)."""
    result = run_tessera(["plugins", "list"], tessera_env())
    listed = {}
    for line in result.stdout.splitlines()[1:]:
        name, _state, version, distribution, rest = line.split(maxsplit=4)
        kinds, hooks = re.split(r"\s{2,}", rest)
        listed[name] = (version, distribution, kinds.split(", "), hooks.split(", "))
    served = (await client.get("/api/plugins")).json()["data"]
    assert {
        plugin["name"]: (
            plugin["version"],
            plugin["distribution"],
            plugin["kinds"],
            plugin["hooks"],
        )
        for plugin in served
    } == listed
    assert all(plugin["kinds"] for plugin in served)
    assert listed["admin"][2] == ["routes"]
