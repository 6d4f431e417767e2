"""Connections to PostgreSQL: a SQLAlchemy async engine and a raw asyncpg pool.

The control plane (catalog, DDL, admin) goes through the SQLAlchemy engine. The data plane
(record reads and writes) runs statements that SQLAlchemy Core built and compiled once, on
a plain asyncpg pool with prepared statements: no ORM or greenlet hop on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.db.pool import ConnectionPool
from kernel.json_values import decode_stored_json

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached; the message says where and why."""


def asyncpg_dsn(url: str) -> str:
    """``postgresql://...`` for asyncpg, whatever driver suffix the configured URL has."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def sqlalchemy_url(url: str) -> str:
    """``postgresql+asyncpg://...`` for SQLAlchemy."""
    return asyncpg_dsn(url).replace("postgresql://", "postgresql+asyncpg://", 1)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return decode_stored_json(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "json",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=decode_stored_json,
        schema="pg_catalog",
    )


class Database:
    """The deployment's database: ``engine`` (SQLAlchemy) and ``pool``
    (:class:`~kernel.db.pool.ConnectionPool` of asyncpg connections).

    Pool contract: a connection goes back to the pool as it is, not reset (no round trip
    per request), and prepared statements stay cached per connection, which is the point.
    Code using the pool keeps its state transaction-scoped (``SET LOCAL``,
    ``pg_advisory_xact_lock``, transactions closed by ``async with conn.transaction()``);
    session state such as ``LISTEN``, ``SET`` or session advisory locks belongs on
    :meth:`dedicated_connection`. A connection given back inside a transaction, closed, or
    from a cancelled block is terminated rather than reused.
    """

    def __init__(
        self, url: str, engine: AsyncEngine, pool: ConnectionPool, connect_timeout: float
    ) -> None:
        self.url = url
        self.engine = engine
        self.pool = pool
        self.connect_timeout = connect_timeout

    @classmethod
    async def connect(cls, url: str, *, pool_size: int, connect_timeout: float) -> Database:
        """Open the pool and the engine; raise :class:`DatabaseUnavailable` quickly if the
        server cannot be reached (never hang)."""
        dsn = asyncpg_dsn(url)

        async def connect() -> asyncpg.Connection:
            connection = await asyncpg.connect(dsn, timeout=connect_timeout)
            await _init_connection(connection)
            return connection

        try:
            pool = await asyncio.wait_for(
                ConnectionPool.open(connect, pool_size), timeout=connect_timeout + 1
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            reason = str(error) or type(error).__name__
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL at {redact(url)}: {reason}"
            ) from None
        engine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=5,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args={"timeout": connect_timeout},
            json_serializer=_json_text,
            json_deserializer=decode_stored_json,
        )
        return cls(url, engine, pool, connect_timeout)

    async def dedicated_connection(self) -> asyncpg.Connection:
        """A new connection outside the pool (for LISTEN, which holds its connection);
        the caller closes it."""
        connection = await asyncpg.connect(asyncpg_dsn(self.url), timeout=self.connect_timeout)
        await _init_connection(connection)
        return connection

    async def ping(self, within: float = 2.0) -> bool:
        """True when a trivial query answers within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                async with self.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()
        await self.pool.close(grace=5)

    async def scalar(self, statement: sa.Executable) -> Any:
        """Run one control-plane statement in its own transaction and return its scalar."""
        async with self.engine.begin() as conn:
            return (await conn.execute(statement)).scalar()
