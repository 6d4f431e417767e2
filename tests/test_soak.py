"""``make soak`` keeps working: ten seconds of it, as ``python -m soak``, against the test
PostgreSQL server; every kind of request is sent and answered as expected, and the report
holds what the README promises (errors by status, p50/p99, the server's memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from soak.traffic import KINDS
from tests.server import REPO


def test_ten_seconds_of_soak_send_every_kind_without_an_error(
    postgres_server: str, tmp_path: Path
) -> None:
    results = tmp_path / "soak.json"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("TESSERA_")},
        "SOAK_DATABASE_URL": postgres_server,
        "SOAK_DURATION": "10",
        "SOAK_RATE": "20",
        "SOAK_JSON": str(results),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "soak"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    report = finished.stdout
    assert "errors by status: none" in report
    assert "server RSS: start" in report
    outcome = json.loads(results.read_text())
    assert outcome["errors"] == {}
    assert outcome["requests"] == 200  # 10 s at 20 a second: the rate holds
    assert {name for name, kind in outcome["kinds"].items() if kind["sent"]} == {
        kind.name for kind in KINDS
    }
    assert {kind["served_by"] for kind in outcome["kinds"].values()} == {"fast path", "fastapi"}
    assert 0 < outcome["p50_ms"] <= outcome["p99_ms"]
    assert outcome["rss_start"] > 0 and outcome["rss_end"] > 0
