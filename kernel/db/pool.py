"""The data plane's connection pool: asyncpg connections, handed out and taken back cheaply.

asyncpg's own pool does a lot on every acquire and release (a proxy object, an acquire
timeout, a shielded release task, an inactivity timer, a reset hook); on a request that
costs about 20 µs of CPU, as much as the query's own client work. This pool does only what
the pool contract (:class:`kernel.db.engine.Database`) needs:

- at most ``size`` connections, opened on demand (``min_size`` at start), reused last-in
  first-out so the busiest connections keep their prepared statements warm;
- waiters are served in arrival order;
- a connection goes back as it is (no reset query), unless it cannot be trusted: it is
  closed, it is inside a transaction, or the block using it was interrupted by something
  other than an ordinary exception (a cancellation). Such a connection is terminated and a
  new one is opened when next needed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")
_FETCH = asyncpg.Connection.fetch
_FETCHROW = asyncpg.Connection.fetchrow
_FETCHVAL = asyncpg.Connection.fetchval


class PoolClosed(asyncpg.InterfaceError):
    """The pool was closed; no connection can be acquired from it."""


class ConnectionPool:
    """At most ``size`` asyncpg connections made by ``connect``; use ``async with
    pool.acquire() as conn``."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int) -> None:
        if size < 1:
            raise ValueError("a pool holds at least one connection")
        self._connect = connect
        self.size = size
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
    ) -> ConnectionPool:
        """A pool with ``min_size`` connections already open (errors propagate)."""
        pool = cls(connect, size)
        try:
            for _ in range(min(min_size, size)):
                pool._idle.append(await connect())
                pool._open += 1
        except BaseException:
            pool.terminate()
            raise
        return pool

    def acquire(self) -> Lease:
        """An async context manager lending one connection for the block."""
        return Lease(self)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """``conn.fetch(query, *args)`` on a connection lent for just that statement
        (what ``async with pool.acquire() as conn`` does around it, in fewer steps: this is
        the records API's path)."""
        return await self._one_statement(_FETCH, query, args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        """``conn.fetchrow(query, *args)`` on a connection lent for just that statement."""
        return await self._one_statement(_FETCHROW, query, args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        """``conn.fetchval(query, *args)`` on a connection lent for just that statement."""
        return await self._one_statement(_FETCHVAL, query, args)

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
            connection.terminate()
            self._gone()
            raise PoolClosed("the connection pool is closed")
        return connection

    async def _new_connection(self) -> asyncpg.Connection:
        """Open a connection for a slot already counted in ``_open``."""
        try:
            return await self._connect()
        except BaseException:
            self._free_slot()
            raise

    async def _wait(self) -> asyncpg.Connection:
        waiter: asyncio.Future[asyncpg.Connection | None]
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            connection = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection (or a slot) just as we were cancelled: pass it on.
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self._give_back(handed)
            else:
                self._waiters.remove(waiter)
            raise
        if connection is None:
            return await self._new_connection()
        return connection

    def _give_back(self, connection: asyncpg.Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if self._closed:
            connection.terminate()
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
            connection.terminate()
            self._free_slot()
        else:
            self._give_back(connection)

    async def close(self, grace: float = 5.0) -> None:
        """Stop lending, close idle connections, and give lent ones ``grace`` seconds to
        come back (each is closed as it does) before terminating them."""
        self._closed = True
        self._fail_waiters()
        idle, self._idle = list(self._idle), deque()
        for connection in idle:
            self._gone()
            try:
                await asyncio.wait_for(connection.close(), grace)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                connection.terminate()
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
            connection.terminate()
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
