"""Deployment settings: ``tessera.toml`` overlaid by ``TESSERA_*`` environment variables.

Precedence, highest first: values passed to :func:`load_settings`, environment variables
(``TESSERA_DATABASE_URL``; nested keys with ``__``, e.g. ``TESSERA_PLUGINS__DISABLED``),
the TOML file (``--config`` or ``TESSERA_CONFIG``), then the defaults below. Every value has
a default, so a first start needs no file at all. This is the only module that reads the
environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kernel.errors import ConfigError
from kernel.json_values import RENDER_DEPTH


class PluginSettings(BaseModel):
    """Which plugins run, and each plugin's own config section.

    ``enabled`` and ``disabled`` hold plugin names or glob patterns (``storage.*``); a plugin
    runs when it matches ``enabled`` and not ``disabled``. Plugins are registered so that
    hooks are called in the order of ``enabled`` (a glob expands in name order).
    """

    model_config = {"extra": "forbid"}

    enabled: list[str] = Field(default_factory=lambda: ["*"])
    disabled: list[str] = Field(default_factory=list)
    config: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Every setting of a Tessera deployment; see docs/configuration.md for each one."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset starts the embedded server"
    )
    session_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL for connections holding session state (LISTEN, leader "
        "lock); unset: database_url",
    )
    redis_url: str | None = Field(default=None, description="Redis URL; unset means no Redis")
    data_dir: Path = Field(default=Path(".tessera"), description="embedded database, local files")
    secret_key: SecretStr | None = Field(
        default=None, description="signs tokens and cursors; unset: generated once in data_dir"
    )
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    event_bus: str | None = Field(
        default=None, description="event bus driver; unset: 'redis' with redis_url, else 'postgres'"
    )
    storage_backend: str | None = Field(
        default=None,
        description="storage backend driver; unset: 'local', or none when no backend is registered",
    )
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_control_pool_size: int = Field(default=5, ge=1, le=100)
    db_acquire_timeout: float = Field(default=10.0, gt=0)
    db_connection_lifetime: float = Field(default=3600.0, ge=0, description="0: for ever")
    db_statement_cache_size: int = Field(default=100, ge=0)
    db_connect_timeout: float = Field(default=10.0, gt=0)
    catalog_cache_size: int = Field(default=1000, ge=1)
    events_retention_days: float = Field(default=7.0, gt=0)
    events_prune_interval_seconds: float = Field(default=600.0, gt=0)
    schema_ops_reconcile_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how often each process marks schema ops whose process died 'interrupted'",
    )
    shutdown_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="seconds stopping waits for each group of background tasks and worker threads",
    )
    plugin_shutdown_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "seconds stopping waits for each plugin's shutdown hook and for the event bus to "
            "stop (each may itself wait shutdown_timeout_seconds for its tasks, more than once)"
        ),
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    cors_origins: list[str] = Field(
        default_factory=list, description="browser origins allowed to call the API; '*' for any"
    )
    cors_max_age: int = Field(default=600, ge=0, description="seconds a browser keeps a preflight")
    json_max_depth: int = Field(
        default=64, ge=1, le=RENDER_DEPTH, description="nesting levels of one JSON value"
    )
    json_max_bytes: int = Field(
        default=1024 * 1024, ge=16, description="bytes of one JSON value written compactly"
    )
    default_page_limit: int = Field(default=25, ge=1)
    max_page_limit: int = Field(default=200, ge=1)
    max_filters: int = Field(default=10, ge=1)
    max_includes: int = Field(default=5, ge=1, description="includes per records request")
    include_per_parent: int = Field(
        default=25, ge=1, le=1000, description="records a reverse include lists per record"
    )
    ddl_lock_timeout_ms: int = Field(default=5000, ge=1)
    ddl_concurrent_index_rows: int = Field(
        default=100_000,
        ge=0,
        description="estimated rows (pg_class.reltuples) from which a schema op builds its "
        "index with CREATE INDEX CONCURRENTLY, writes going on, instead of in its transaction",
    )
    token_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    token_cache_size: int = Field(
        default=10_000, ge=1, description="verified tokens each process keeps (least recent out)"
    )
    realtime_queue_size: int = Field(
        default=1000, ge=1, description="live events held per subscriber before it is dropped"
    )
    realtime_poll_interval: float = Field(
        default=2.0, gt=0, description="seconds between outbox reads without a bus message"
    )
    trace_plugins: bool = False

    plugins: PluginSettings = Field(default_factory=PluginSettings)

    @field_validator("database_url", "session_database_url", "redis_url", "storage_backend")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def effective_event_bus(self) -> str:
        """The event bus driver name to use: the configured one, else redis or postgres."""
        if self.event_bus:
            return self.event_bus
        return "redis" if self.redis_url else "postgres"

    def effective_storage_backend(self) -> str:
        """The storage backend driver name to use: the configured one, else ``local``."""
        return self.storage_backend or "local"


def config_path_from_env() -> Path | None:
    """The TOML file named by ``TESSERA_CONFIG``, if any."""
    value = os.environ.get("TESSERA_CONFIG")
    return Path(value) if value else None


def load_settings(config_file: str | Path | None = None, **values: Any) -> Settings:
    """Read settings from ``config_file`` (or ``TESSERA_CONFIG``), the environment and ``values``.

    Raises :class:`ConfigError` naming the offending key, e.g.
    ``config: plugins.enabled: Input should be a valid list``.
    """
    path = Path(config_file) if config_file else config_path_from_env()
    settings_cls: type[Settings] = Settings
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config: file {path} not found")
        settings_cls = type(
            "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
        )
    try:
        return settings_cls(**values)
    except ValidationError as error:
        raise ConfigError(describe_validation_error("config", error)) from None
    except ValueError as error:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"config: {path}: {error}") from None


def describe_validation_error(prefix: str, error: ValidationError) -> str:
    """One line per problem: ``<prefix>: <dotted.key>: <message>``."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(root)"
        lines.append(f"{prefix}: {key}: {problem['msg']}")
    return "; ".join(lines)
