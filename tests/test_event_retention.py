"""Outbox retention (kernel/events/retention.py): old events go, events the jobs dispatcher
has not read yet stay however old, and recent ones stay.

These tests run on a database of their own, where they hold the jobs leader lock so that
no dispatcher moves its cursor behind their back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from kernel.config import Settings
from kernel.events import retention
from kernel.events.reader import Position
from kernel.runtime import Tessera
from plugins.jobs.leader import LOCK_KEY as JOBS_LEADER_LOCK
from tests.conftest import migrated_database, running

DAY = 86400.0


@pytest.fixture(scope="module")
async def own_url(postgres_server: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_server, "tessera_retention") as url:
        yield url


@pytest.fixture
async def conn(own_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding the jobs leader lock, on an empty outbox."""
    conn = await asyncpg.connect(own_url)
    await conn.execute("DELETE FROM tessera.events")
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LEADER_LOCK)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def settings(own_url: str, make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        return make_settings(database_url=own_url, events_retention_days=1, **overrides)

    return make


@pytest.fixture
async def tessera(
    conn: asyncpg.Connection, settings: Callable[..., Settings]
) -> AsyncIterator[Tessera]:
    """The app (jobs plugin included, never leading), its pruner idle until asked."""
    async with running(settings()) as client:
        yield client.app.state.tessera  # type: ignore[attr-defined]


async def add_event(conn: asyncpg.Connection, age_days: float) -> Position:
    """An outbox event written ``age_days`` ago (in its own transaction)."""
    row = await conn.fetchrow(
        "INSERT INTO tessera.events"
        " (project_id, collection_id, collection, record_id, type, changed_fields, created_at)"
        " VALUES ('p', 1, 'notes', 1, 'insert', '{}', now() - make_interval(secs => $1))"
        " RETURNING id, xact_id::text::bigint AS xact",
        age_days * DAY,
    )
    return Position(row["xact"], row["id"])


async def dispatched_up_to(conn: asyncpg.Connection, position: Position) -> None:
    status = await conn.execute(
        "UPDATE tessera.job_cursors SET xact_id = $1, event_id = $2 WHERE name = 'dispatcher'",
        position.xact_id,
        position.id,
    )
    assert status == "UPDATE 1"


async def remaining(conn: asyncpg.Connection) -> list[int]:
    return [row["id"] for row in await conn.fetch("SELECT id FROM tessera.events ORDER BY id")]


async def test_old_dispatched_events_go_undispatched_and_recent_ones_stay(
    conn: asyncpg.Connection, tessera: Tessera
) -> None:
    _, second, undispatched = [await add_event(conn, age_days=3) for _ in range(3)]
    recent = await add_event(conn, age_days=0)
    await dispatched_up_to(conn, second)

    assert await tessera.event_retention.prune() == 2
    assert await remaining(conn) == [undispatched.id, recent.id]

    await dispatched_up_to(conn, recent)  # everything dispatched: the window alone decides
    assert await tessera.event_retention.prune() == 1
    assert await remaining(conn) == [recent.id]


async def test_nothing_goes_while_the_dispatcher_has_no_position(
    conn: asyncpg.Connection, tessera: Tessera
) -> None:
    old = await add_event(conn, age_days=3)
    await conn.execute("DELETE FROM tessera.job_cursors WHERE name = 'dispatcher'")
    assert await tessera.event_retention.prune() == 0
    assert await remaining(conn) == [old.id]


async def test_a_pass_deletes_in_batches_until_done(
    conn: asyncpg.Connection, tessera: Tessera
) -> None:
    events = [await add_event(conn, age_days=2) for _ in range(5)]
    await dispatched_up_to(conn, events[-1])
    tessera.event_retention.batch = 2
    assert await tessera.event_retention.prune() == 5
    assert await remaining(conn) == []


async def test_a_pass_is_skipped_while_another_process_prunes(
    conn: asyncpg.Connection, tessera: Tessera
) -> None:
    old = await add_event(conn, age_days=3)
    await dispatched_up_to(conn, old)
    await conn.execute("SELECT pg_advisory_lock($1)", retention.LOCK_KEY)
    assert await tessera.event_retention.prune() == 0
    await conn.execute("SELECT pg_advisory_unlock($1)", retention.LOCK_KEY)
    assert await tessera.event_retention.prune() == 1


async def test_every_process_prunes_in_the_background(
    conn: asyncpg.Connection, settings: Callable[..., Settings]
) -> None:
    old = await add_event(conn, age_days=1.5)
    young = await add_event(conn, age_days=0.5)
    await dispatched_up_to(conn, young)
    async with running(settings(events_prune_interval_seconds=0.1)):
        for _ in range(100):
            if old.id not in await remaining(conn):
                break
            await asyncio.sleep(0.05)
    assert await remaining(conn) == [young.id]


async def test_without_outbox_readers_the_window_alone_decides(
    conn: asyncpg.Connection, tessera: Tessera
) -> None:
    pruner = retention.EventRetention(tessera.db, retention_days=1, interval=60)
    old = await add_event(conn, age_days=1.5)
    young = await add_event(conn, age_days=0.5)
    await dispatched_up_to(conn, Position())  # the jobs plugin's cursor: not consulted here
    assert await pruner.prune() == 1
    assert await remaining(conn) == [young.id]
    assert old.id not in await remaining(conn)
