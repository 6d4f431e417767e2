"""A fresh database for one run: created on a PostgreSQL server and dropped afterwards, or
the embedded server when no server is reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """Where Tessera, the seeder and the floor connect."""

    url: str
    #: ``server`` (a database created for this run) or ``embedded``.
    kind: str


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def reachable(url: str) -> bool:
    """Whether a connection to ``url`` opens within a few seconds."""
    try:
        asyncio.run(_execute(url, "SELECT 1"))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[BenchDatabase]:
    """A new database ``tessera_bench_<hex>`` on the server at ``server_url``, dropped on exit
    (sessions still connected are terminated first)."""
    name = f"tessera_bench_{secrets.token_hex(4)}"
    asyncio.run(_execute(server_url, f"CREATE DATABASE {name}"))
    print(f"bench: database {name} on {redact(server_url)}", file=sys.stderr)
    try:
        yield BenchDatabase(with_database(server_url, name), "server")
    finally:
        asyncio.run(_execute(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextlib.contextmanager
def embedded_database(data_dir: Path) -> Iterator[BenchDatabase]:
    """The embedded server in ``data_dir`` (a temporary directory, so the data is fresh)."""
    from kernel.db.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(data_dir)
    print(f"bench: no PostgreSQL server reachable; embedded in {data_dir}", file=sys.stderr)
    url = embedded.start()
    try:
        yield BenchDatabase(url, "embedded")
    finally:
        embedded.stop()


@contextlib.contextmanager
def provision(url: str | None, explicit: bool, work_dir: Path) -> Iterator[BenchDatabase]:
    """A fresh database on the server at ``url``, else (``url`` not ``explicit``ly named and
    unreachable, or None) the embedded server in ``work_dir``."""
    if url is not None and (explicit or reachable(url)):
        with fresh_database(url) as database:
            yield database
    else:
        with embedded_database(work_dir / "embedded") as database:
            yield database
