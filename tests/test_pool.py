"""The data plane's connection pool (kernel/db/pool.py) against a real PostgreSQL: bounded,
fair, reusing what it can and replacing what it cannot trust."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import asyncpg
import pytest

from kernel.db.engine import asyncpg_dsn
from kernel.db.pool import ConnectionPool, PoolClosed, PoolTimeout

T = TypeVar("T")


class _Server:
    """Opens connections to the test database and counts them."""

    def __init__(self, url: str) -> None:
        self.dsn = asyncpg_dsn(url)
        self.opened = 0
        self.fail_next = False
        self.delay = 0.0

    async def connect(self) -> asyncpg.Connection:
        if self.fail_next:
            self.fail_next = False
            raise OSError("connection refused (test)")
        await asyncio.sleep(self.delay)
        self.opened += 1
        return await asyncpg.connect(self.dsn)


@pytest.fixture
def server(database_url: str) -> _Server:
    return _Server(database_url)


@pytest.fixture
async def pool(server: _Server) -> AsyncIterator[ConnectionPool]:
    pool = await ConnectionPool.open(server.connect, size=2)
    yield pool
    await pool.close(grace=1)


async def _backend(pool: ConnectionPool) -> int:
    async with pool.acquire() as conn:
        return conn.get_server_pid()


async def test_opens_lazily_and_reuses_the_warmest_connection(
    pool: ConnectionPool, server: _Server
) -> None:
    assert server.opened == 1
    first = await _backend(pool)
    assert await _backend(pool) == first
    assert server.opened == 1
    async with pool.acquire() as a, pool.acquire() as b:
        assert a.get_server_pid() != b.get_server_pid()
    assert server.opened == 2
    assert pool.open_connections == 2 and pool.idle == 2


async def test_never_lends_more_than_its_size_and_serves_waiters_in_order(
    server: _Server,
) -> None:
    # Both connections open first: a client that had to open one could come second to a
    # waiter served by a faster client's release, which is not an ordering fault.
    pool = await ConnectionPool.open(server.connect, size=2, min_size=2)
    order: list[int] = []
    busy = 0
    most = 0

    async def client(number: int) -> None:
        nonlocal busy, most
        async with pool.acquire() as conn:
            busy += 1
            most = max(most, busy)
            order.append(number)
            await conn.execute("SELECT pg_sleep(0.02)")
            busy -= 1

    try:
        await asyncio.gather(*(client(number) for number in range(8)))
    finally:
        await pool.close(grace=1)
    assert most == 2
    assert order == list(range(8))
    assert server.opened == 2


async def test_session_state_survives_release(pool: ConnectionPool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SET application_name = 'kept'")
        backend = conn.get_server_pid()
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == backend
        assert await conn.fetchval("SHOW application_name") == "kept"


async def test_a_connection_left_in_a_transaction_is_replaced(
    pool: ConnectionPool, server: _Server
) -> None:
    async with pool.acquire() as conn:
        backend = conn.get_server_pid()
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
    assert pool.open_connections == 0
    async with pool.acquire() as conn:
        assert conn.get_server_pid() != backend
        assert await conn.fetchval("SELECT to_regclass('left_open')") is None
        assert not conn.is_in_transaction()
    assert server.opened == 2


async def test_an_error_from_the_server_keeps_the_connection(pool: ConnectionPool) -> None:
    backend = await _backend(pool)
    with pytest.raises(asyncpg.UndefinedTableError):
        async with pool.acquire() as conn:
            await conn.execute("SELECT * FROM no_such_table")
    assert await _backend(pool) == backend


async def test_a_cancelled_query_retires_its_connection(
    pool: ConnectionPool, server: _Server
) -> None:
    backend = await _backend(pool)

    async def slow() -> None:
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(10)")

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with pool.acquire() as conn:
        assert conn.get_server_pid() != backend
        assert await conn.fetchval("SELECT 41 + 1") == 42


async def test_a_closed_connection_is_replaced(pool: ConnectionPool) -> None:
    async with pool.acquire() as conn:
        backend = conn.get_server_pid()
        await conn.close()
    assert await _backend(pool) != backend


async def test_a_waiter_cancelled_while_waiting_does_not_leak(pool: ConnectionPool) -> None:
    async with pool.acquire(), pool.acquire():
        waiter = asyncio.create_task(_backend(pool))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    await _both_connections_lendable(pool)


async def _both_connections_lendable(pool: ConnectionPool) -> None:
    assert pool.idle == 2
    async with pool.acquire(), pool.acquire():
        pass


async def _cancelled_as_a_connection_comes_back(
    pool: ConnectionPool, waiting: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """``waiting``'s task, left waiting for a connection of the full pool, then cancelled
    and a connection given back in the same step (before the task runs again)."""
    async with pool.acquire():
        held = pool.acquire()
        await held.__aenter__()
        task = asyncio.create_task(waiting)
        await asyncio.sleep(0.05)
        task.cancel()
        await held.__aexit__(None, None, None)
    return task


async def test_a_waiter_cancelled_just_as_a_connection_comes_back_stays_cancelled(
    pool: ConnectionPool,
) -> None:
    """The cancellation must reach whoever awaits the task (``stop()`` cancels its
    background tasks and awaits them), and the connection must stay lendable."""
    waiter = await _cancelled_as_a_connection_comes_back(pool, _backend(pool))
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await _both_connections_lendable(pool)


async def test_a_retrying_loop_cancelled_while_waiting_for_a_connection_stops(
    pool: ConnectionPool,
) -> None:
    """The background loops (jobs dispatcher, op reconciler, event retention) log an
    ``Exception`` and go on; ``stop()`` cancels them and awaits them. A cancellation lost
    in the pool (turned into an ordinary error) kept such a loop running, and ``stop()``
    awaiting it for ever: a hung test run with every connection idle."""

    async def retrying() -> None:
        while True:
            with suppress(Exception):  # logged and tried again, in the real loops
                await _backend(pool)
            await asyncio.sleep(0.01)

    loop = await _cancelled_as_a_connection_comes_back(pool, retrying())
    done, _ = await asyncio.wait({loop}, timeout=5)
    if not done:
        loop.cancel()  # a second cancellation lands in its sleep, ending the test's loop
    assert loop in done and loop.cancelled()


async def test_a_failed_connect_frees_its_slot(pool: ConnectionPool, server: _Server) -> None:
    server.fail_next = True
    async with pool.acquire():
        with pytest.raises(OSError, match="refused"):
            async with pool.acquire():
                pass
        assert pool.open_connections == 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    assert pool.open_connections == 2


async def test_a_waiter_takes_the_place_of_a_retired_connection(
    server: _Server,
) -> None:
    pool = await ConnectionPool.open(server.connect, size=1)
    try:
        release = asyncio.Event()

        async def holder() -> None:
            async with pool.acquire() as conn:
                await release.wait()
                await conn.execute("BEGIN")  # given back inside a transaction: retired

        held = asyncio.create_task(holder())
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(_backend(pool))
        await asyncio.sleep(0.05)
        release.set()
        await held
        assert isinstance(await asyncio.wait_for(waiting, 5), int)
        assert server.opened == 2
    finally:
        await pool.close(grace=1)


async def test_close_fails_waiters_and_refuses_new_acquires(pool: ConnectionPool) -> None:
    async with pool.acquire(), pool.acquire():
        waiter = asyncio.create_task(_backend(pool))
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(pool.close(grace=2))
        with pytest.raises(PoolClosed):
            await waiter
    await closing
    assert pool.open_connections == 0
    with pytest.raises(PoolClosed):
        await _backend(pool)


async def test_close_terminates_what_is_not_given_back_in_time(pool: ConnectionPool) -> None:
    lease = pool.acquire()
    conn = await lease.__aenter__()
    await pool.close(grace=0.1)
    assert conn.is_closed()
    assert pool.open_connections == 0
    await lease.__aexit__(None, None, None)  # a late release is harmless
    assert pool.open_connections == 0


async def test_a_connection_opened_after_the_pool_closed_is_not_lent(
    pool: ConnectionPool, server: _Server
) -> None:
    async with pool.acquire():
        server.delay = 0.3
        opening = asyncio.create_task(_backend(pool))  # the second slot: opens a connection
        await asyncio.sleep(0.05)
        pool.terminate()
    with pytest.raises(PoolClosed):
        await opening
    assert pool.open_connections == 0


async def test_one_statement_helpers_lend_and_take_back(
    pool: ConnectionPool, server: _Server
) -> None:
    rows = await pool.fetch("SELECT generate_series(1, $1::int) AS n", 3)
    assert [row["n"] for row in rows] == [1, 2, 3]
    row = await pool.fetchrow("SELECT $1::text AS word", "tessera")
    assert row is not None and row["word"] == "tessera"
    assert await pool.fetchrow("SELECT 1 WHERE false") is None
    assert await pool.fetchval("SELECT pg_backend_pid()") == await _backend(pool)
    assert pool.idle == 1 and server.opened == 1


async def test_one_statement_helper_keeps_the_connection_after_a_server_error(
    pool: ConnectionPool,
) -> None:
    backend = await _backend(pool)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await pool.fetchval("SELECT 1 / $1::int", 0)
    assert await pool.fetchval("SELECT pg_backend_pid()") == backend


async def test_one_statement_helper_retires_a_cancelled_connection(
    pool: ConnectionPool, server: _Server
) -> None:
    backend = await _backend(pool)
    statement = asyncio.ensure_future(pool.fetchval("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    statement.cancel()
    with pytest.raises(asyncio.CancelledError):
        await statement
    assert pool.open_connections == 0
    assert await pool.fetchval("SELECT pg_backend_pid()") != backend
    assert server.opened == 2


async def test_one_statement_helpers_wait_for_a_free_connection(pool: ConnectionPool) -> None:
    async with pool.acquire(), pool.acquire():
        waiting = asyncio.ensure_future(pool.fetchval("SELECT 42"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
    assert await waiting == 42


@asynccontextmanager
async def _opened(server: _Server, **options: Any) -> AsyncIterator[ConnectionPool]:
    pool = await ConnectionPool.open(server.connect, **options)
    try:
        yield pool
    finally:
        await pool.close(grace=1)


async def test_a_waiter_gives_up_after_the_acquire_timeout(server: _Server) -> None:
    async with _opened(server, size=1, acquire_timeout=0.2) as pool:
        async with pool.acquire():
            started = asyncio.get_running_loop().time()
            with pytest.raises(PoolTimeout) as raised:
                await pool.fetchval("SELECT 1")
            waited = asyncio.get_running_loop().time() - started
            assert 0.15 < waited < 2
            assert raised.value.status == 503
            assert raised.value.items[0].code == "database_busy"
            assert raised.value.headers == {"Retry-After": "1"}
        # The timed-out waiter left no trace: the connection is lent again at once.
        assert pool.open_connections == 1 and pool.idle == 1
        assert await asyncio.wait_for(pool.fetchval("SELECT 2"), 1) == 2


async def test_a_waiter_within_the_acquire_timeout_gets_the_connection(server: _Server) -> None:
    async with _opened(server, size=1, acquire_timeout=5) as pool:
        async with pool.acquire() as conn:
            waiting = asyncio.ensure_future(pool.fetchval("SELECT pg_backend_pid()"))
            await asyncio.sleep(0.05)
            backend = conn.get_server_pid()
        assert await waiting == backend


async def test_a_connection_past_its_lifetime_is_closed_and_replaced(
    server: _Server, pg: asyncpg.Connection
) -> None:
    async with _opened(server, size=2, lifetime=0.3) as pool:
        first = await pool.fetchval("SELECT pg_backend_pid()")
        assert await pool.fetchval("SELECT pg_backend_pid()") == first  # young: reused
        await asyncio.sleep(0.4)
        assert await pool.fetchval("SELECT pg_backend_pid()") == first  # used once more...
        assert pool.open_connections == 0  # ... and retired on its way back
        second = await pool.fetchval("SELECT pg_backend_pid()")
        assert second != first and server.opened == 2
        # Closed with a goodbye: the old backend is gone from the server.
        for _ in range(50):
            gone = not await pg.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first
            )
            if gone:
                break
            await asyncio.sleep(0.05)
        assert gone


async def test_a_retired_connection_frees_its_slot_for_a_waiter(server: _Server) -> None:
    async with _opened(server, size=1, lifetime=0.1) as pool:
        async with pool.acquire() as conn:
            old = conn.get_server_pid()
            waiting = asyncio.ensure_future(pool.fetchval("SELECT pg_backend_pid()"))
            await asyncio.sleep(0.2)
        assert await asyncio.wait_for(waiting, 5) != old
        assert pool.open_connections == 1
