"""The ``tessera`` command line."""

from __future__ import annotations

from pathlib import Path

from tests.server import run_tessera, tessera_env


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


def test_migrate_and_admin_create(database_url: str, tmp_path: Path) -> None:
    env = tessera_env(TESSERA_DATABASE_URL=database_url, TESSERA_DATA_DIR=str(tmp_path))
    migrated = run_tessera(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "platform schema at 0002" in migrated.stdout
    created = run_tessera(
        ["admin", "create", "--email", "cli@tessera.test", "--password", "cli-password-1"], env
    )
    assert created.returncode == 0, created.stderr
    duplicate = run_tessera(
        ["admin", "create", "--email", "cli@tessera.test", "--password", "cli-password-1"], env
    )
    assert duplicate.returncode == 1
    assert "an admin with email cli@tessera.test exists" in duplicate.stderr
