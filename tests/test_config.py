"""Settings: TOML file, environment overlay, defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.config import load_settings
from kernel.errors import ConfigError
from tests.server import run_tessera, tessera_env


def test_every_setting_has_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("TESSERA_"):
            monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.database_url is None
    assert settings.plugins.enabled == ["*"]
    assert settings.effective_event_bus() == "postgres"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text(
        'port = 9000\nredis_url = "redis://127.0.0.1:6379/1"\n'
        '[plugins]\ndisabled = ["transports.redis"]\n'
        '[plugins.config."hello"]\ngreeting = "Hi"\n'
    )
    monkeypatch.setenv("TESSERA_PORT", "9100")
    monkeypatch.setenv("TESSERA_CONFIG", str(config))
    settings = load_settings()
    assert settings.port == 9100
    assert settings.redis_url == "redis://127.0.0.1:6379/1"
    assert settings.effective_event_bus() == "redis"
    assert settings.plugins.disabled == ["transports.redis"]
    assert settings.plugins.config == {"hello": {"greeting": "Hi"}}


def test_invalid_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_PORT", "not-a-port")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith("config: port: Input should be a valid integer")


def test_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text("prot = 9000\n")
    with pytest.raises(ConfigError, match="config: prot: Extra inputs are not permitted"):
        load_settings(config)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text('[plugins]\nenabled = "everything"\n')
    result = run_tessera(["plugins", "list", "--config", str(config)], tessera_env())
    assert result.returncode == 2
    assert result.stderr.strip() == "tessera: config: plugins.enabled: Input should be a valid list"
