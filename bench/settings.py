"""The benchmark's knobs, read from ``BENCH_*`` environment variables (and one ``TESSERA_*``).

Every knob has a default that suits a small machine; bench/README.md lists them all.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


class SettingsError(Exception):
    """A ``BENCH_*`` variable holds a value the benchmark cannot use."""


def env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r}: must be positive")
    return value


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """One run's configuration."""

    #: PostgreSQL server to create the bench database on; None: the embedded server.
    database_url: str | None
    #: Whether ``database_url`` was named explicitly (then it must be reachable).
    database_url_explicit: bool
    ops: tuple[str, ...]
    workers: int
    concurrency: int
    #: asyncpg pool size of each Tessera worker; the floor's pool is ``workers`` times it.
    pool_size: int
    duration: float
    warmup: float
    rows: int
    wrk_threads: int
    profile: bool
    results_dir: Path

    @property
    def floor_pool_size(self) -> int:
        return self.pool_size * self.workers


def load(known_ops: tuple[str, ...]) -> BenchSettings:
    """Settings from the environment; raises :class:`SettingsError` naming the variable."""
    explicit = os.environ.get("TESSERA_BENCH_DATABASE_URL", "").strip()
    ops_text = os.environ.get("BENCH_OPS", "").strip()
    ops = tuple(op.strip() for op in ops_text.split(",") if op.strip()) or known_ops
    unknown = [op for op in ops if op not in known_ops]
    if unknown:
        raise SettingsError(
            f"BENCH_OPS: unknown {', '.join(unknown)}; known: {', '.join(known_ops)}"
        )
    workers = env_int("BENCH_WORKERS", os.cpu_count() or 1)
    concurrency = env_int("BENCH_CONCURRENCY", 32)
    return BenchSettings(
        database_url=explicit or DEFAULT_DATABASE_URL,
        database_url_explicit=bool(explicit),
        ops=ops,
        workers=workers,
        concurrency=concurrency,
        pool_size=env_int("BENCH_POOL_SIZE", math.ceil(concurrency / workers)),
        duration=env_float("BENCH_DURATION", 10.0),
        warmup=env_float("BENCH_WARMUP", 3.0),
        rows=env_int("BENCH_ROWS", 100_000, minimum=1000),
        wrk_threads=min(env_int("BENCH_WRK_THREADS", 1), concurrency),
        profile=os.environ.get("BENCH_PROFILE", "") not in {"", "0"},
        results_dir=RESULTS_DIR,
    )
