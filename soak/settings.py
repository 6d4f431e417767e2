"""The soak's knobs, read from ``SOAK_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.settings import DEFAULT_DATABASE_URL, env_float, env_int


@dataclass(frozen=True, slots=True)
class SoakSettings:
    """One run's configuration."""

    #: PostgreSQL server to create the soak's database on (the embedded server when the
    #: default is not reachable).
    database_url: str
    database_url_explicit: bool
    #: Seconds of traffic.
    duration: float
    #: Requests started per second, whatever the answers' pace (an open loop).
    rate: float
    #: ``tessera serve`` workers.
    workers: int
    #: Where to write the results as JSON too (None: only the report on stdout).
    json_path: Path | None


def load() -> SoakSettings:
    """Settings from the environment; raises :class:`bench.settings.SettingsError`."""
    explicit = os.environ.get("SOAK_DATABASE_URL", "").strip()
    json_path = os.environ.get("SOAK_JSON", "").strip()
    return SoakSettings(
        database_url=explicit or DEFAULT_DATABASE_URL,
        database_url_explicit=bool(explicit),
        duration=env_float("SOAK_DURATION", 300.0),
        rate=env_float("SOAK_RATE", 50.0),
        workers=env_int("SOAK_WORKERS", 1),
        json_path=Path(json_path) if json_path else None,
    )
