"""The run's output: a table on stdout and ``bench/results/latest.json``."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import LoadResult

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "tessera",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "asyncpg",
    "sqlalchemy",
    "orjson",
    "pydantic",
)


@dataclass(frozen=True, slots=True)
class OpResult:
    name: str
    goal: float
    tessera: LoadResult
    floor: LoadResult
    #: CPU in percent of one core while Tessera was measured: server, postgres, generator,
    #: others (the rest of the machine) and machine (every core's busy time).
    tessera_cpu: dict[str, float]
    #: The same while the floor was measured: client (the floor's process), server (Tessera's
    #: background work), postgres, others, machine.
    floor_cpu: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.tessera.rps / self.floor.rps if self.floor.rps else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "rps": round(self.tessera.rps, 1),
            "p50_ms": round(self.tessera.p50_ms, 3),
            "p99_ms": round(self.tessera.p99_ms, 3),
            "floor_rps": round(self.floor.rps, 1),
            "ratio": round(self.ratio, 3),
            "goal": self.goal,
            "floor_p50_ms": round(self.floor.p50_ms, 3),
            "floor_p99_ms": round(self.floor.p99_ms, 3),
            "requests": self.tessera.requests,
            "errors": self.tessera.errors,
            "floor_errors": self.floor.errors,
            "cpu": {"tessera": self.tessera_cpu, "floor": self.floor_cpu},
            "server_cpu_ms_per_request": round(self.server_cpu_ms, 3),
        }

    @property
    def server_cpu_ms(self) -> float:
        """Server CPU time per request: steadier than rps when the machine is shared."""
        server = self.tessera_cpu.get("server", 0.0)
        return 10 * server / self.tessera.rps if self.tessera.rps else 0.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def versions(postgres: str, wrk: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "postgresql": postgres, "wrk": wrk}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def commit() -> str:
    """The checked-out commit, with ``-dirty`` when the tree has uncommitted changes."""
    try:
        completed = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return completed.stdout.strip() or "unknown"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _number(value: float) -> str:
    return f"{value:,.0f}"


def table(results: list[OpResult]) -> str:
    """The result table and the CPU table, as text."""
    header = ("op", "rps", "p50 ms", "p99 ms", "floor rps", "ratio", "goal", "")
    rows = [header]
    for result in results:
        rows.append(
            (
                result.name,
                _number(result.tessera.rps),
                f"{result.tessera.p50_ms:.2f}",
                f"{result.tessera.p99_ms:.2f}",
                _number(result.floor.rps),
                f"{result.ratio:.2f}",
                f"{result.goal:.2f}",
                "" if result.ratio >= result.goal else "below goal",
            )
        )
    cpu_header = ("CPU, % of one core", "server", "ms/req", "postgres", "wrk", "others", "machine")
    cpu_header += ("|", "floor client", "server", "postgres", "others", "machine")
    cpu_rows = [cpu_header]
    for result in results:
        tessera, floor = result.tessera_cpu, result.floor_cpu
        cpu_rows.append(
            (
                result.name,
                _cpu(tessera, "server"),
                f"{result.server_cpu_ms:.3f}",
                *(_cpu(tessera, key) for key in ("postgres", "generator", "others", "machine")),
                "|",
                *(
                    _cpu(floor, key)
                    for key in ("client", "server", "postgres", "others", "machine")
                ),
            )
        )
    text = _align(rows)
    by_name = {result.name: result for result in results}
    first, deep = by_name.get("list_filtered_first"), by_name.get("list_filtered_deep")
    if first is not None and deep is not None and first.tessera.rps and first.floor.rps:
        text += (
            f"\n\ndeep page / first page: {deep.tessera.rps / first.tessera.rps:.2f}, "
            f"floor {deep.floor.rps / first.floor.rps:.2f} (keyset: the cost does not grow with "
            "depth; bench/README.md says why both are below 1)"
        )
    token_vs_key = [
        f"{key.name} {user.tessera.rps / key.tessera.rps:.2f}"
        for key, user in _key_and_user(by_name)
    ]
    if token_vs_key:
        text += (
            f"\n\nuser token / API key, rps: {', '.join(token_vs_key)} "
            "(1.00: a token costs what a key does)"
        )
    plain, ruled = by_name.get("create"), by_name.get("create_ruled")
    if plain is not None and ruled is not None and plain.tessera.rps:
        text += (
            f"\n\nfive rules / no rules, create rps: {ruled.tessera.rps / plain.tessera.rps:.2f}"
        )
    plain_list, included = by_name.get("list_filtered_first"), by_name.get("list_include")
    if plain_list is not None and included is not None and plain_list.tessera.rps:
        text += (
            f"\n\ninclude=customer / no include, first page rps: "
            f"{included.tessera.rps / plain_list.tessera.rps:.2f}, "
            f"floor {included.floor.rps / plain_list.floor.rps:.2f}"
        )
    return text + "\n\n" + _align(cpu_rows)


def _key_and_user(by_name: dict[str, OpResult]) -> list[tuple[OpResult, OpResult]]:
    """Each operation measured with the API key and with a user token (``<name>_user``),
    both in the run and the key's with requests."""
    return [
        (key, user)
        for name, key in by_name.items()
        if (user := by_name.get(f"{name}_user")) is not None and key.tessera.rps
    ]


def _cpu(usage: dict[str, float], key: str) -> str:
    value = usage.get(key)
    return "n/a" if value is None else f"{value:.0f}"


def _align(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def write_json(path: Path, results: list[OpResult], meta: dict[str, Any]) -> None:
    document: dict[str, Any] = {result.name: result.as_json() for result in results}
    by_name = {result.name: result for result in results}
    for key, user in _key_and_user(by_name):
        document[user.name]["rps_vs_key"] = round(user.tessera.rps / key.tessera.rps, 3)
    first, deep = document.get("list_filtered_first"), document.get("list_filtered_deep")
    if first and deep and first["rps"] and first["floor_rps"]:
        deep["rps_vs_first_page"] = round(deep["rps"] / first["rps"], 3)
        deep["floor_rps_vs_first_page"] = round(deep["floor_rps"] / first["floor_rps"], 3)
    plain, ruled = document.get("create"), document.get("create_ruled")
    if plain and ruled and plain["rps"]:
        ruled["rps_vs_create"] = round(ruled["rps"] / plain["rps"], 3)
    plain_list, included = document.get("list_filtered_first"), document.get("list_include")
    if plain_list and included and plain_list["rps"] and plain_list["floor_rps"]:
        included["rps_vs_list"] = round(included["rps"] / plain_list["rps"], 3)
        included["floor_rps_vs_list"] = round(included["floor_rps"] / plain_list["floor_rps"], 3)
    document["meta"] = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
