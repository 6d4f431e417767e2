"""Connections to PostgreSQL: a SQLAlchemy async engine and a raw asyncpg pool.

The control plane (catalog, DDL, admin) goes through the SQLAlchemy engine. The data plane
(record reads and writes) runs statements that SQLAlchemy Core built and compiled once, on
a plain asyncpg pool with prepared statements: no ORM or greenlet hop on the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How many connections a process opens and how they are used (the ``db_*`` settings).

    ``pool_size`` bounds the data-plane pool, ``control_pool_size`` SQLAlchemy's pool (no
    overflow beyond it); ``acquire_timeout`` bounds a wait for a free connection in either;
    ``lifetime`` (None: for ever) retires a connection that old when it is given back;
    ``statement_cache_size`` is asyncpg's per-connection prepared statement cache (0 turns
    named prepared statements off, for PgBouncer in transaction mode before 1.21).
    """

    pool_size: int
    connect_timeout: float
    control_pool_size: int = 5
    acquire_timeout: float = 10.0
    lifetime: float | None = None
    statement_cache_size: int = 100
    application_name: str = "tessera"


async def _open_connection(dsn: str, limits: ConnectionLimits) -> asyncpg.Connection:
    connection = await asyncpg.connect(
        dsn,
        timeout=limits.connect_timeout,
        statement_cache_size=limits.statement_cache_size,
        server_settings={"application_name": limits.application_name},
    )
    await _init_connection(connection)
    return connection


def _sqlalchemy_connect_args(limits: ConnectionLimits) -> dict[str, Any]:
    """asyncpg arguments for SQLAlchemy's connections. SQLAlchemy prepares every statement
    under a name of its own; without a statement cache those names are made unique, so
    that a PgBouncer in transaction mode never sees one name on two server connections."""
    arguments: dict[str, Any] = {
        "timeout": limits.connect_timeout,
        "statement_cache_size": limits.statement_cache_size,
        "server_settings": {"application_name": limits.application_name},
    }
    if limits.statement_cache_size == 0:
        arguments["prepared_statement_cache_size"] = 0
        arguments["prepared_statement_name_func"] = lambda: f"__tessera_{uuid.uuid4().hex}__"
    return arguments


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
        self,
        url: str,
        engine: AsyncEngine,
        pool: ConnectionPool,
        limits: ConnectionLimits,
        session_url: str | None = None,
    ) -> None:
        self.url = url
        self.session_url = session_url or url
        self.engine = engine
        self.pool = pool
        self.limits = limits

    @property
    def connect_timeout(self) -> float:
        return self.limits.connect_timeout

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        pool_size: int,
        connect_timeout: float,
        control_pool_size: int = 5,
        acquire_timeout: float = 10.0,
        lifetime: float | None = None,
        statement_cache_size: int = 100,
        session_url: str | None = None,
    ) -> Database:
        """Open the pool and the engine; raise :class:`DatabaseUnavailable` quickly if the
        server cannot be reached (never hang).

        The limits are those of :class:`ConnectionLimits`; ``session_url`` is where
        :meth:`dedicated_connection` connects (default ``url``)."""
        limits = ConnectionLimits(
            pool_size,
            connect_timeout,
            control_pool_size,
            acquire_timeout,
            lifetime,
            statement_cache_size,
        )
        dsn = asyncpg_dsn(url)

        async def connect() -> asyncpg.Connection:
            return await _open_connection(dsn, limits)

        try:
            pool = await asyncio.wait_for(
                ConnectionPool.open(
                    connect,
                    limits.pool_size,
                    acquire_timeout=limits.acquire_timeout,
                    lifetime=limits.lifetime,
                ),
                timeout=limits.connect_timeout + 1,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            reason = str(error) or type(error).__name__
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL at {redact(url)}: {reason}"
            ) from None
        engine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=limits.control_pool_size,
            max_overflow=0,
            pool_timeout=limits.acquire_timeout,
            pool_recycle=-1 if limits.lifetime is None else int(limits.lifetime),
            pool_pre_ping=True,
            connect_args=_sqlalchemy_connect_args(limits),
            json_serializer=_json_text,
            json_deserializer=decode_stored_json,
        )
        return cls(url, engine, pool, limits, session_url)

    async def dedicated_connection(self) -> asyncpg.Connection:
        """A new connection outside the pools, to ``session_url``, for session state (LISTEN,
        a session advisory lock) held as long as the connection; the caller closes it."""
        return await _open_connection(asyncpg_dsn(self.session_url), self.limits)

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
