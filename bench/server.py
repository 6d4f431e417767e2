"""Tessera under test: ``tessera serve`` as a subprocess on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_EMAIL = "bench@example.com"
ADMIN_PASSWORD = "bench-password-not-secret"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class ServerFailed(Exception):
    """Tessera did not start; the message ends with the tail of its log."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    base_url: str
    #: The ``tessera serve`` process (the supervisor of the workers when there are several).
    pid: int
    log_path: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerFailed(
                    f"tessera serve exited with {process.returncode}:\n{_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base_url}/readyz").status_code == 200:
                    return
            time.sleep(0.2)
    raise ServerFailed(f"tessera serve not ready after {START_TIMEOUT:.0f} s:\n{_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        # uvicorn's workers are in the server's process group (started with its own group).
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def tessera_server(
    database_url: str,
    data_dir: Path,
    *,
    workers: int,
    pool_size: int,
    secret_key: str | None = None,
) -> Iterator[RunningServer]:
    """Start Tessera (it migrates, creates the bench admin, serves), yield it, stop it.

    ``secret_key``: the deployment's secret (random when None); another process given the
    same one accepts the tokens and cursors this server issued."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "tessera.log"
    env = {
        **os.environ,
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_SECRET_KEY": secret_key or os.urandom(32).hex(),
        "TESSERA_ADMIN_EMAIL": ADMIN_EMAIL,
        "TESSERA_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TESSERA_DB_POOL_SIZE": str(pool_size),
        "TESSERA_LOG_LEVEL": "warning",
    }
    env.pop("TESSERA_CONFIG", None)
    command = [
        sys.executable,
        *("-m", "kernel.cli", "serve"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_ready(process, base_url, log_path)
        print(f"bench: Tessera on {base_url} (pid {process.pid})", file=sys.stderr)
        yield RunningServer(base_url, process.pid, log_path)
    finally:
        _stop(process)
