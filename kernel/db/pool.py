"""The data plane's connection pool: asyncpg connections, handed out and taken back cheaply.

asyncpg's own pool does a lot on every acquire and release (a proxy object, an acquire
timeout, a shielded release task, an inactivity timer, a reset hook); on a request that
costs about 20 µs of CPU, as much as the query's own client work. This pool does only what
the pool contract (:class:`kernel.db.engine.Database`) needs:

- at most ``size`` connections, opened on demand (``min_size`` at start), reused last-in
  first-out so the busiest connections keep their prepared statements warm;
- waiters are served in arrival order, and give up with :class:`PoolTimeout` (a 503 for
  the client) after ``acquire_timeout`` seconds;
- a connection goes back as it is (no reset query), unless it cannot be trusted: it is
  closed, it is inside a transaction, or the block using it was interrupted by something
  other than an ordinary exception (a cancellation). Such a connection is terminated and a
  new one is opened when next needed;
- a connection given back more than ``lifetime`` seconds after it was opened is closed (in
  the background, with a proper goodbye) and replaced when next needed, so that a server
  failover, a PgBouncer or load balancer in between, or the server's per-session memory
  sees every connection renewed now and then.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from kernel.errors import ServiceUnavailable

T = TypeVar("T")
_FETCH = asyncpg.Connection.fetch
_FETCHROW = asyncpg.Connection.fetchrow
_FETCHVAL = asyncpg.Connection.fetchval


class PoolClosed(asyncpg.InterfaceError):
    """The pool was closed; no connection can be acquired from it."""


class PoolTimeout(ServiceUnavailable):
    """No connection became free within ``waited`` seconds (a 503 with ``Retry-After``)."""

    default_code = "database_busy"

    def __init__(self, waited: float) -> None:
        super().__init__(
            f"no database connection became free within {waited:g} s (the server is busy); "
            "try again shortly",
            headers={"Retry-After": "1"},
        )


class ConnectionPool:
    """At most ``size`` asyncpg connections made by ``connect``; use ``async with
    pool.acquire() as conn``.

    ``acquire_timeout`` (seconds, None: wait for ever) bounds the wait for a free
    connection; ``lifetime`` (seconds, None: for ever) how long a connection is reused."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        size: int,
        *,
        acquire_timeout: float | None = None,
        lifetime: float | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a pool holds at least one connection")
        self._connect = connect
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.lifetime = lifetime
        #: When each open connection is due to retire (only with a ``lifetime``).
        self._retire_at: dict[asyncpg.Connection, float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._idle: deque[asyncpg.Connection] = deque()
        #: Futures of acquirers waiting for a connection; a result of None means "a slot
        #: is free: open a connection yourself".
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._open = 0  # connections open, lent or being opened
        self._lent: set[asyncpg.Connection] = set()
        self._closed = False
        self._drained = asyncio.Event()

    @classmethod
    async def open(
        cls,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        size: int,
        min_size: int = 1,
        *,
        acquire_timeout: float | None = None,
        lifetime: float | None = None,
    ) -> ConnectionPool:
        """A pool with ``min_size`` connections already open (errors propagate)."""
        pool = cls(connect, size, acquire_timeout=acquire_timeout, lifetime=lifetime)
        try:
            for _ in range(min(min_size, size)):
                pool._idle.append(pool._born(await connect()))
                pool._open += 1
        except BaseException:
            pool.terminate()
            raise
        return pool

    def acquire(self) -> Lease:
        """An async context manager lending one connection for the block."""
        return Lease(self)

    # fetch, fetchrow and fetchval are plain methods returning the statement's coroutine:
    # awaited like coroutine methods, without a frame of their own on the records API's path.

    def fetch(self, query: str, *args: Any) -> Awaitable[list[asyncpg.Record]]:
        """``conn.fetch(query, *args)`` on a connection lent for just that statement
        (what ``async with pool.acquire() as conn`` does around it, in fewer steps: this is
        the records API's path)."""
        return self._one_statement(_FETCH, query, args)

    def fetchrow(self, query: str, *args: Any) -> Awaitable[asyncpg.Record | None]:
        """``conn.fetchrow(query, *args)`` on a connection lent for just that statement."""
        return self._one_statement(_FETCHROW, query, args)

    def fetchval(self, query: str, *args: Any) -> Awaitable[Any]:
        """``conn.fetchval(query, *args)`` on a connection lent for just that statement."""
        return self._one_statement(_FETCHVAL, query, args)

    async def _one_statement(
        self, method: Callable[..., Awaitable[T]], query: str, args: tuple[Any, ...]
    ) -> T:
        connection = self._idle.pop() if self._idle else await self._take_slowly()
        self._lent.add(connection)
        interrupted = True
        try:
            result = await method(connection, query, *args)
            interrupted = False
            return result
        except Exception:
            interrupted = False
            raise
        finally:
            self._release(connection, interrupted)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def open_connections(self) -> int:
        return self._open

    async def _take(self) -> asyncpg.Connection:
        connection = self._idle.pop() if self._idle else await self._take_slowly()
        self._lent.add(connection)
        return connection

    async def _take_slowly(self) -> asyncpg.Connection:
        """A connection when none is idle: a new one, or the next one given back."""
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        if self._open < self.size:
            self._open += 1
            connection = await self._new_connection()
        else:
            connection = await self._wait()
        if self._closed:  # closed while the connection was being opened
            self._terminate(connection)
            self._gone()
            raise PoolClosed("the connection pool is closed")
        return connection

    async def _new_connection(self) -> asyncpg.Connection:
        """Open a connection for a slot already counted in ``_open``."""
        try:
            return self._born(await self._connect())
        except BaseException:
            self._free_slot()
            raise

    def _born(self, connection: asyncpg.Connection) -> asyncpg.Connection:
        if self.lifetime is not None:
            self._retire_at[connection] = time.monotonic() + self.lifetime
        return connection

    def _terminate(self, connection: asyncpg.Connection) -> None:
        self._retire_at.pop(connection, None)
        connection.terminate()

    async def _wait(self) -> asyncpg.Connection:
        waiter: asyncio.Future[asyncpg.Connection | None]
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.acquire_timeout):
                connection = await waiter
        except TimeoutError:
            self._abandon(waiter)
            raise PoolTimeout(self.acquire_timeout) from None
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        if connection is None:
            return await self._new_connection()
        return connection

    def _abandon(self, waiter: asyncio.Future[asyncpg.Connection | None]) -> None:
        """A waiter gave up (cancelled or timed out)."""
        if waiter.done() and not waiter.cancelled():
            # Handed a connection (or a slot) just as it gave up: pass it on.
            handed = waiter.result()
            if handed is None:
                self._free_slot()
            else:
                self._give_back(handed)
        elif waiter in self._waiters:
            # Still queued. (A connection given back between the cancel and this step
            # has dropped the cancelled waiter from the queue already.)
            self._waiters.remove(waiter)

    def _give_back(self, connection: asyncpg.Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if self._closed:
            self._terminate(connection)
            self._gone()
        else:
            self._idle.append(connection)

    def _free_slot(self) -> None:
        """A connection is gone: let the first waiter open a new one in its place."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._gone()

    def _release(self, connection: asyncpg.Connection, interrupted: bool) -> None:
        if connection not in self._lent:
            return  # terminated with the pool meanwhile
        self._lent.remove(connection)
        if interrupted or connection.is_closed() or connection.is_in_transaction():
            self._terminate(connection)
            self._free_slot()
        elif self._retire_at and self._retire_at[connection] <= time.monotonic():
            self._retire(connection)
            self._free_slot()
        else:
            self._give_back(connection)

    def _retire(self, connection: asyncpg.Connection) -> None:
        """Close a connection that served its lifetime, without making anyone wait."""
        del self._retire_at[connection]
        task = asyncio.get_running_loop().create_task(_close_quietly(connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self, grace: float = 5.0) -> None:
        """Stop lending, close idle connections, and give lent ones ``grace`` seconds to
        come back (each is closed as it does) before terminating them."""
        self._closed = True
        self._fail_waiters()
        idle, self._idle = list(self._idle), deque()
        for connection in idle:
            self._gone()
            self._retire_at.pop(connection, None)
            await _close_quietly(connection, grace)
        if self._closing:
            await asyncio.wait(self._closing)
        if self._open:
            try:
                await asyncio.wait_for(self._drained.wait(), grace)
            except TimeoutError:
                self.terminate()

    def terminate(self) -> None:
        """Close every connection at once, without the graceful goodbye."""
        self._closed = True
        self._fail_waiters()
        for connection in [*self._idle, *self._lent]:
            self._terminate(connection)
        # Connections still being opened stay counted until they arrive (see _take).
        self._open -= len(self._idle) + len(self._lent)
        self._idle.clear()
        self._lent.clear()
        if self._open == 0:
            self._drained.set()

    def _fail_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(PoolClosed("the connection pool is closed"))
        self._waiters.clear()

    def _gone(self) -> None:
        self._open -= 1
        if self._open == 0 and self._closed:
            self._drained.set()


async def _close_quietly(connection: asyncpg.Connection, within: float = 5.0) -> None:
    """Close with a goodbye to the server; terminate when that fails or takes too long."""
    try:
        await asyncio.wait_for(connection.close(), within)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        connection.terminate()


class Lease:
    """``async with pool.acquire() as conn``: the connection is the pool's again after the
    block; do not keep it."""

    __slots__ = ("_connection", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._connection = await self._pool._take()
        return self._connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            interrupted = exc_type is not None and not issubclass(exc_type, Exception)
            self._pool._release(connection, interrupted)
