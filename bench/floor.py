"""The floor: an operation's SQL through asyncpg directly, at the same concurrency and pool
size as Tessera, with no HTTP, no framework and no JSON.

A closed loop of ``concurrency`` tasks on uvloop, each acquiring a pooled connection, running
the prepared statement (asyncpg prepares and caches it per connection), and the operation's
follow-up statement when it has one, on the same connection, and releasing. The
pool is built like Tessera's (orjson codecs for JSON), with one difference: releasing a
connection skips asyncpg's default reset query (``RESET ALL``, ``UNLISTEN *`` ...), a round
trip that none of these statements needs.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
import uvloop

from bench.cpu import CpuMeter
from bench.loadgen import LoadResult
from bench.ops import Operation


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + orjson.dumps(value),
        decoder=lambda data: orjson.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset query on release: the statements leave no session state behind."""


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _closed_loop(
    pool: asyncpg.Pool, op: Operation, concurrency: int, seconds: float, seed: int
) -> tuple[int, float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        nonlocal errors
        rng = random.Random(seed * 1000 + number)
        sql, then = op.floor_sql, op.floor_then
        while time.perf_counter() < deadline:
            args: Any = op.floor_args(rng)
            started = time.perf_counter()
            try:
                async with pool.acquire() as conn:
                    rows = await conn.fetch(sql, *args)
                    if then is not None:
                        await conn.fetch(then.sql, *then.args(rows))
            except asyncpg.PostgresError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(number) for number in range(concurrency)))
    return len(latencies), time.perf_counter() - started, latencies, errors


async def _measure(
    database_url: str,
    op: Operation,
    meter: CpuMeter,
    *,
    concurrency: int,
    pool_size: int,
    warmup: float,
    seconds: float,
) -> tuple[LoadResult, dict[str, float]]:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=pool_size,
        max_size=pool_size,
        init=_init_connection,
        reset=_keep_session,
    )
    try:
        await _closed_loop(pool, op, concurrency, warmup, seed=1)
        meter.start()
        count, elapsed, latencies, errors = await _closed_loop(
            pool, op, concurrency, seconds, seed=2
        )
        cpu = meter.stop()
    finally:
        await pool.close()
    latencies.sort()
    result = LoadResult(
        requests=count,
        seconds=elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        errors=errors,
    )
    return result, cpu


def run_floor(
    database_url: str,
    op: Operation,
    meter: CpuMeter,
    *,
    concurrency: int,
    pool_size: int,
    warmup: float,
    seconds: float,
) -> tuple[LoadResult, dict[str, float]]:
    """Warm up for ``warmup`` seconds, then measure for ``seconds`` (``meter`` around the
    measured part only); return the result and the meter's reading."""
    return uvloop.run(
        _measure(
            database_url,
            op,
            meter,
            concurrency=concurrency,
            pool_size=pool_size,
            warmup=warmup,
            seconds=seconds,
        )
    )


async def _rows_once(database_url: str, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        await _init_connection(conn)
        return [dict(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def floor_rows(database_url: str, op: Operation, args: Sequence[Any]) -> list[dict[str, Any]]:
    """The floor statement's rows for ``args``, once (what the probe compares with)."""
    return asyncio.run(_rows_once(database_url, op.floor_sql, args))
