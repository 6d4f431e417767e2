"""wrk as the load generator: a closed loop of ``concurrency`` connections, Lua scripts that
pick random ids, bodies and cursors, and latency percentiles from wrk's own histogram."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"


class LoadGeneratorMissing(Exception):
    """wrk is not installed."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    #: Connect, read, write and timeout errors and HTTP statuses >= 400, summed.
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadGeneratorMissing("wrk is not installed: apt-get install wrk")
    return path


def wrk_version() -> str:
    completed = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True)
    first = (completed.stdout or completed.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def start_wrk(
    base_url: str,
    *,
    script: str,
    path: str,
    credentials: tuple[str, str],
    data_file: Path | None,
    concurrency: int,
    threads: int,
    seconds: float,
) -> subprocess.Popen[str]:
    """Start wrk; read its result with :func:`finish_wrk` (the caller measures its CPU)."""
    env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_PATH": path,
        "BENCH_AUTH_HEADER": credentials[0],
        "BENCH_AUTH_VALUE": credentials[1],
        "BENCH_DATA": str(data_file) if data_file else "",
    }
    command = [
        wrk_path(),
        *("-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, math.ceil(seconds))}s"),
        *("--timeout", "10s", "-s", str(LUA_DIR / script), base_url),
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_wrk(process: subprocess.Popen[str], seconds: float) -> LoadResult:
    """Wait for wrk and parse the line the Lua ``done`` hook printed."""
    stdout, stderr = process.communicate(timeout=seconds + 60)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.strip() or stdout[-2000:]}")
    result = json.loads(line.removeprefix("BENCH "))
    return LoadResult(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=sum(result["errors"].values()),
    )
