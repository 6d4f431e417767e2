"""``swap_fields`` on a large table: from ``ddl_concurrent_index_rows`` rows the unique
indexes and ``CHECK`` constraints the swap carries are built before its transaction —
constraints added ``NOT VALID`` then validated, indexes built concurrently, each under a
transient name — and the transaction only renames them; writes go on meanwhile. A build
that fails, or a transaction that fails after it, is undone; what a dead process leaves,
the reconciler drops (kernel/ddl/prebuilt.py, kernel/ddl/reconcile.py).

As in tests/test_rules_concurrent.py, the tests set a threshold of a few rows and make each
long step wait — an index build for a snapshot older than it, a step taking the table's
``SHARE UPDATE EXCLUSIVE`` lock for a session holding that lock — so what happens *during*
it is observed, not timed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from kernel import transient_name, unique_index_name
from kernel.config import Settings
from kernel.ddl.reconcile import LOCK_NAMESPACE, OpReconciler, drop_orphaned_transients, lock_key
from tests.catalog_state import catalog_mismatches, snapshot
from tests.conftest import Api
from tests.test_interrupted_ops import abandoned_op, tessera_of
from tests.test_jobs import eventually
from tests.test_rules import codes, post
from tests.test_rules_concurrent import (
    THRESHOLD,
    finished,
    last_op,
    small_threshold_api,
)
from tests.test_schema_evolution import set_settings

ORDERS = [
    {"name": "region", "type": "string"},
    {
        "name": "qty",
        "type": "float",
        "required": True,
        "unique": True,
        "rules": [{"type": "min", "value": 1}, {"type": "max", "value": 1000}],
    },
    {"name": "note", "type": "string", "rules": [{"type": "required_if", "value": "qty > 50"}]},
]
CODES = [{"name": "code", "type": "text", "unique": True}]


def table(api: Api, collection: str) -> str:
    return f'"p_{api.project}".{collection}'


async def wizard(api: Api, collection: str, field: str, new_type: str) -> dict[str, Any]:
    """Apply the wizard's ``add_field`` and ``copy_field``; the ``swap_fields`` args."""
    preview = await api.preview(
        "change_field_type", collection=collection, field=field, new_type=new_type
    )
    assert preview.status_code == 200, preview.text
    add, copy, swap = preview.json()["wizard"]["steps"]
    for step in (add, copy):
        applied = await api.apply(step["op"], **step["args"])
        assert applied.status_code == 200, applied.text
    return swap["args"]


async def orders(api: Api, rows: int = THRESHOLD * 2) -> dict[str, Any]:
    """``orders``: ``qty`` float, required, unique, with rules (and ``note``'s rule naming
    it), in a compound unique rule; ``rows`` records; ready to swap ``qty`` for an
    integer."""
    await api.create_collection("orders", ORDERS)
    added = await api.apply(
        "add_unique", collection="orders", fields=["region", "qty"], name="one_qty_per_region"
    )
    assert added.status_code == 200, added.text
    for number in range(1, rows + 1):
        await api.create("orders", {"region": "eu" if number % 2 else "us", "qty": number})
    return await wizard(api, "orders", "qty", "integer")


async def codes_table(api: Api) -> dict[str, Any]:
    """``m``: a unique text ``code`` of ``THRESHOLD * 2`` records, ready to swap for an
    integer (the swap builds one index and no constraint)."""
    await api.create_collection("m", CODES)
    for number in range(1, THRESHOLD * 2 + 1):
        await api.create("m", {"code": str(number)})
    return await wizard(api, "m", "code", "integer")


async def constraints(pg: asyncpg.Connection, api: Api, collection: str) -> list[tuple[str, bool]]:
    """The table's ``CHECK`` constraints: ``(name, validated)``."""
    rows = await pg.fetch(
        "SELECT conname, convalidated FROM pg_constraint"
        " WHERE conrelid = to_regclass($1) AND contype = 'c' ORDER BY 1",
        table(api, collection),
    )
    return [(row["conname"], row["convalidated"]) for row in rows]


async def state(pg: asyncpg.Connection, api: Api, collection: str) -> dict[str, Any]:
    """What a swap could change: catalog, columns, indexes (with their validity) and the
    table's ``CHECK`` constraints."""
    validity = await pg.fetch(
        "SELECT c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE x.indrelid = to_regclass($1) ORDER BY 1",
        table(api, collection),
    )
    return {
        **await snapshot(pg, api.project),
        "validity": [tuple(row) for row in validity],
        "constraints": await constraints(pg, api, collection),
    }


async def transients(pg: asyncpg.Connection, api: Api, collection: str) -> list[tuple[str, bool]]:
    """The table's indexes and constraints of a transient name: ``(name, valid)``."""
    rows = await pg.fetch(
        "SELECT c.relname AS name, x.indisvalid AS valid FROM pg_index x"
        " JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = to_regclass($1)"
        " UNION ALL SELECT conname, convalidated FROM pg_constraint"
        " WHERE conrelid = to_regclass($1) ORDER BY 1",
        table(api, collection),
    )
    return [(row["name"], row["valid"]) for row in rows if row["name"].startswith("tmp_c")]


async def waiting(pg: asyncpg.Connection, query: str) -> int | None:
    """The pid of a session whose statement is like ``query`` and waits for a lock."""
    return await pg.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE $1 AND wait_event_type = 'Lock'",
        query,
    )


async def connect(api: Api) -> asyncpg.Connection:
    return await asyncpg.connect(tessera_of(api.client).settings.database_url)


class Gates:
    """Sessions that hold an op's long steps back, each until released; the block that
    opened them closes what is left."""

    def __init__(self, api: Api, pg: asyncpg.Connection) -> None:
        self.api, self.pg = api, pg
        self.sessions: list[asyncpg.Connection] = []
        self.locks: dict[asyncpg.Connection, asyncio.Task[str]] = {}

    async def _session(self) -> asyncpg.Connection:
        session = await connect(self.api)
        self.sessions.append(session)
        return session

    async def old_snapshot(self) -> asyncpg.Connection:
        """A transaction holding a snapshot and no lock on any project table: an index
        build started meanwhile waits for it before it finishes (nothing else does)."""
        session = await self._session()
        await session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await session.fetchval("SELECT 1")
        return session

    async def reading(self, collection: str) -> asyncpg.Connection:
        """A transaction that read the table and stays open: a step taking the table's
        ``ACCESS EXCLUSIVE`` lock (adding a constraint) waits for it."""
        session = await self._session()
        await session.execute("BEGIN")
        await session.fetchval(f"SELECT count(*) FROM {table(self.api, collection)}")
        return session

    async def next_in_line(self, collection: str) -> asyncpg.Connection:
        """A session queued for the table's ``SHARE UPDATE EXCLUSIVE`` lock behind the step
        holding it now: once that step ends it holds the lock, and the op's next step
        taking it (a validation) waits. Writes never wait for it. Queued only while an
        index build waits for an old snapshot: a build that starts while it queues waits
        for its catalog snapshot, and it for the build — a deadlock."""
        session = await self._session()
        await session.execute("BEGIN")
        self.locks[session] = asyncio.create_task(
            session.execute(
                f"LOCK TABLE {table(self.api, collection)} IN SHARE UPDATE EXCLUSIVE MODE"
            )
        )
        pid = session.get_server_pid()
        await eventually(lambda: locked_out(self.pg, pid), within=30)
        return session

    async def release(self, session: asyncpg.Connection) -> None:
        """End the session (a queued lock must have been granted: its step ended)."""
        if session in self.locks:
            await finished(self.locks.pop(session))
        await session.close(timeout=10)

    def close(self) -> None:
        for locking in self.locks.values():
            locking.cancel()
        for session in self.sessions:
            if not session.is_closed():
                session.terminate()


@asynccontextmanager
async def gates(api: Api, pg: asyncpg.Connection) -> AsyncIterator[Gates]:
    opened = Gates(api, pg)
    try:
        yield opened
    finally:
        opened.close()


async def locked_out(pg: asyncpg.Connection, pid: int) -> bool:
    return await pg.fetchval(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
    )


@asynccontextmanager
async def writer_held_open(
    api: Api, collection: str, values: dict[str, Any]
) -> AsyncIterator[None]:
    """A transaction that wrote ``values`` to the table and stays open (a concurrent
    build waits for it); it commits when the block ends without error."""
    writer = await connect(api)
    columns = ", ".join(values)
    marks = ", ".join(f"${index}" for index in range(1, len(values) + 1))
    try:
        async with writer.transaction():
            await writer.execute(
                f"INSERT INTO {table(api, collection)} ({columns}) VALUES ({marks})",
                *values.values(),
            )
            yield
    finally:
        await writer.close(timeout=10)


async def writes_land(api: Api, qty: int) -> None:
    """A record written through the API while a step runs (it sets the replacement too, as
    a client migrating to it does)."""
    created = await post(
        api, "orders", {"region": "asia", "qty": qty, "qty_integer": qty, "note": "busy"}
    )
    assert created.status_code == 201, created.text


async def swap_building(
    api: Api, pg: asyncpg.Connection, swap: dict[str, Any]
) -> tuple[asyncio.Task[httpx.Response], int]:
    """Apply ``swap`` in the background, once its first index build waits: the apply's
    task, and the build's pid."""
    applying = asyncio.create_task(api.apply("swap_fields", **swap))
    try:
        build = await eventually(lambda: waiting(pg, "CREATE UNIQUE INDEX CONCURRENTLY tmp_c%"), 30)
    except BaseException:
        applying.cancel()
        raise
    return applying, build


async def refused_unchanged(
    pg: asyncpg.Connection,
    api: Api,
    collection: str,
    before: dict[str, Any],
    response: httpx.Response,
    status: int,
    code: str,
    op: str = "swap_fields",
) -> str:
    """Check the ``op`` was refused with ``status`` and ``code``, recorded ``failed``, and
    left the table and catalog as ``before`` with nothing transient behind; its message."""
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert error["code"] == code
    assert await state(pg, api, collection) == before
    assert await transients(pg, api, collection) == []
    recorded = await last_op(api)
    assert (recorded["op"], recorded["status"], recorded["error"]["errors"][0]["code"]) == (
        op,
        "failed",
        code,
    )
    return error["message"]


async def test_the_preview_says_which_way_the_swap_builds(
    make_settings: Callable[..., Settings],
) -> None:
    async with small_threshold_api(make_settings) as api:
        swap = await orders(api)
        preview = await api.preview("swap_fields", **swap)
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["impact"]["index_build"] == {
            "concurrently": True,
            "estimated_rows": THRESHOLD,
            "threshold": THRESHOLD,
        }
        ddl = body["ddl"]
        assert "ADD CONSTRAINT tmp_c" in ddl[1] and ddl[1].endswith("NOT VALID")
        assert sum("CREATE UNIQUE INDEX CONCURRENTLY tmp_c" in line for line in ddl) == 2
        assert sum("VALIDATE CONSTRAINT" in line for line in ddl) == 4
        # The transaction's steps as apply runs them: renames, no build, no scan.
        assert sum("RENAME CONSTRAINT tmp_c" in line for line in ddl) == 3
        assert sum("RENAME TO uq_" in line for line in ddl) == 3
        # SET NOT NULL, then the constraint that spares it its scan goes.
        set_not_null = [line.endswith("ALTER COLUMN qty SET NOT NULL") for line in ddl]
        assert "DROP CONSTRAINT IF EXISTS tmp_c" in ddl[-1] and ddl[-1].endswith("not_null_qty")
        assert set_not_null.index(True) < len(ddl) - 1
        assert not any(line.startswith("CREATE UNIQUE INDEX uq_") for line in ddl)
        assert not any("ADD CONSTRAINT rule_" in line for line in ddl)
        assert "concurrently (writes go on)" in " ".join(body["steps"])
        assert body["impact"]["duplicates"]["groups"] == 0
        assert body["impact"]["empty_values"] == 0

        # A small table gets everything inside the op's transaction, as always.
        await api.create_collection("small", CODES)
        await api.create("small", {"code": "1"})
        small = await api.preview("swap_fields", **(await wizard(api, "small", "code", "integer")))
        assert small.json()["impact"]["index_build"]["concurrently"] is False
        assert "CREATE UNIQUE INDEX uq_small_code ON" in " ".join(small.json()["ddl"])
        assert "tmp_c" not in " ".join(small.json()["ddl"])


async def test_writes_go_on_while_the_swap_builds_and_validates(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api, gates(api, pg) as gate:
        swap = await orders(api)
        snapshot_held = await gate.old_snapshot()
        applying, _ = await swap_building(api, pg, swap)
        # The constraints were added NOT VALID (a moment's lock each); the field's unique
        # index is being built: writes land.
        assert [valid for _, valid in await transients(pg, api, "orders")] == [False] * 5
        await writes_land(api, 101)
        # Already enforced on the replacement's column: what the swap is about to carry.
        refused = await post(api, "orders", {"qty": 500, "qty_integer": 5000, "note": "x"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["code"] == "check_failed"
        assert "a schema change in progress" in refused.json()["errors"][0]["message"]

        # A snapshot taken now: not one the first build waits for, but older than the second.
        second_snapshot = await gate.old_snapshot()
        await gate.release(snapshot_held)
        # The first build done, the second (the compound rule's) waits: writes land.
        await eventually(
            lambda: waiting(pg, "CREATE UNIQUE INDEX CONCURRENTLY%(region, qty_integer)%"), 30
        )
        await writes_land(api, 102)

        lock = await gate.next_in_line("orders")
        await gate.release(second_snapshot)
        # Both builds done, the validations wait for the lock: writes land.
        await eventually(lambda: waiting(pg, "ALTER TABLE%VALIDATE CONSTRAINT%"), 30)
        await writes_land(api, 103)
        assert not applying.done()
        await gate.release(lock)
        applied = await finished(applying)

        assert applied.status_code == 200, applied.text
        body = applied.json()
        assert body["impact"]["index_build"] == {"concurrently": True}
        assert "CREATE UNIQUE INDEX CONCURRENTLY" in " ".join(body["ddl"])
        assert await transients(pg, api, "orders") == []
        assert all(valid for _, valid in await constraints(pg, api, "orders"))
        assert await catalog_mismatches(pg, api.project) == []
        await assert_swapped_orders_enforce_their_rules(api, pg)


async def assert_swapped_orders_enforce_their_rules(api: Api, pg: asyncpg.Connection) -> None:
    """``qty`` is an integer now, its values and those written during the swap there, and
    every rule it carried holds — through the API and in the database."""
    listed = await api.client.get(
        api.url("/collections/orders/records?sort=qty&limit=100"), headers=api.headers
    )
    assert [record["qty"] for record in listed.json()["data"]][-3:] == [101, 102, 103]
    assert codes(await post(api, "orders", {"qty": 0})) == [("qty", "min")]
    assert codes(await post(api, "orders", {"qty": 60})) == [("note", "required_if")]
    duplicate = await post(api, "orders", {"region": "asia", "qty": 101, "note": "x"})
    assert duplicate.status_code == 409, duplicate.text
    orders_table = table(api, "orders")
    for statement, error in (
        (f"INSERT INTO {orders_table} (qty) VALUES (0)", asyncpg.CheckViolationError),
        (f"INSERT INTO {orders_table} (qty) VALUES (2000)", asyncpg.CheckViolationError),
        (f"INSERT INTO {orders_table} (qty) VALUES (70)", asyncpg.CheckViolationError),
        (f"INSERT INTO {orders_table} (qty) VALUES (3)", asyncpg.UniqueViolationError),
        (f"INSERT INTO {orders_table} (region) VALUES ('eu')", asyncpg.NotNullViolationError),
    ):
        with pytest.raises(error):
            await pg.execute(statement)


async def test_duplicates_written_during_the_build_fail_it_and_leave_nothing(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        swap = await codes_table(api)
        before = await state(pg, api, "m")
        async with writer_held_open(api, "m", {"code": "x", "code_integer": 3}):
            applying, _ = await swap_building(api, pg, swap)
        refused = await finished(applying)
        message = await refused_unchanged(pg, api, "m", before, refused, 409, "duplicates_exist")
        assert "code=3 (2 records)" in message


async def test_stored_records_that_break_what_the_swap_carries_refuse_it(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        swap = await orders(api)
        orders_table = table(api, "orders")
        before = await state(pg, api, "orders")
        cases = (
            ("qty_integer = 5000 WHERE qty = 1", 409, "existing_records_break_rule"),
            ("qty_integer = NULL WHERE qty = 1", 422, "has_empty_values"),
            ("qty_integer = 4 WHERE qty = 2", 409, "duplicates_exist"),
        )
        for change, status, code in cases:
            await pg.execute(f"UPDATE {orders_table} SET {change}")
            refused = await api.apply("swap_fields", **swap)
            await refused_unchanged(pg, api, "orders", before, refused, status, code)
            await pg.execute(f"UPDATE {orders_table} SET qty_integer = qty")
        applied = await api.apply("swap_fields", **swap)
        assert applied.status_code == 200, applied.text


async def cancel_build(api: Api, pg: asyncpg.Connection, build: int) -> None:
    assert await pg.fetchval("SELECT pg_cancel_backend($1)", build)


async def switch_maintenance_on(api: Api, pg: asyncpg.Connection, build: int) -> None:
    """The op's transaction, after the build, checks again and refuses (a catalog change:
    one more catalog version)."""
    await set_settings(api, maintenance=True)


@pytest.mark.parametrize(
    ("interrupt", "code", "said", "versions"),
    [
        (cancel_build, "concurrent_step_failed", "canceling", 0),
        (switch_maintenance_on, "maintenance_mode", "maintenance", 1),
    ],
)
async def test_a_swap_stopped_during_its_build_undoes_every_step(
    make_settings: Callable[..., Settings],
    pg: asyncpg.Connection,
    interrupt: Callable[[Api, asyncpg.Connection, int], Awaitable[None]],
    code: str,
    said: str,
    versions: int,
) -> None:
    """The constraints added before the build, the build itself: all dropped."""
    async with small_threshold_api(make_settings) as api:
        swap = await orders(api)
        before = await state(pg, api, "orders")
        async with gates(api, pg) as gate:
            snapshot_held = await gate.old_snapshot()
            applying, build = await swap_building(api, pg, swap)
            await interrupt(api, pg, build)
            await gate.release(snapshot_held)
        refused = await finished(applying)
        version = before["version"][0]["catalog_version"] + versions
        before["version"] = [{"catalog_version": version}]
        message = await refused_unchanged(pg, api, "orders", before, refused, 409, code)
        assert said in message


async def test_a_build_past_the_lock_timeout_is_undone_or_left_to_the_reconciler(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings, lock_timeout_ms=300) as api:
        swap = await codes_table(api)
        before = await state(pg, api, "m")
        async with writer_held_open(api, "m", {"code": "x", "code_integer": 99}):
            refused = await api.apply("swap_fields", **swap)
            # Its undo waited for the writer as long and gave up too: the index it began
            # is left invalid for the reconciler.
            assert [valid for _, valid in await transients(pg, api, "m")] == [False]
        await OpReconciler(tessera_of(api.client).db, 60).reconcile()
        await refused_unchanged(pg, api, "m", before, refused, 409, "table_busy")


async def test_the_reconciler_drops_what_a_dead_swap_left_and_a_retry_rebuilds_it(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """A process killed between the builds and the transaction leaves valid transient
    indexes and constraints (each refusing writes no rule explains): dropped once no op of
    the project is unfinished, never while one may be building them."""
    async with small_threshold_api(make_settings) as api:
        tessera = tessera_of(api.client)
        swap = await codes_table(api)
        collection_id = await pg.fetchval(
            "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'm'",
            api.project,
        )
        # Named as the swap names its index, but over another column: never trusted.
        index = transient_name(collection_id, unique_index_name("m", ["code"]), "code_integer")
        check = transient_name(collection_id, "left_over", "code_integer > 0")
        await pg.execute(f"CREATE UNIQUE INDEX {index} ON {table(api, 'm')} (code)")
        await pg.execute(
            f"ALTER TABLE {table(api, 'm')} ADD CONSTRAINT {check} CHECK (code_integer > 0)"
            " NOT VALID"
        )
        left = sorted([(index, True), (check, False)])
        assert await transients(pg, api, "m") == left

        # A retry rebuilds an index of its own name from scratch.
        applied = await api.apply("swap_fields", **swap)
        assert applied.status_code == 200, applied.text
        assert await transients(pg, api, "m") == [(check, False)]
        ok = await post(api, "m", {"code": 11})
        assert ok.status_code == 201, ok.text
        assert (await post(api, "m", {"code": 11})).status_code == 409

        # An op of the project unfinished, its applier alive: left alone.
        op_id = await abandoned_op(pg, api.project, "running")
        lease = await connect(api)
        try:
            await lease.execute(
                "SELECT pg_advisory_lock_shared($1, $2)", LOCK_NAMESPACE, lock_key(op_id)
            )
            await OpReconciler(tessera.db, 60).reconcile()
            assert await transients(pg, api, "m") == [(check, False)]
        finally:
            await lease.close()
        assert await OpReconciler(tessera.db, 60).reconcile() == [op_id]  # interrupted
        assert await transients(pg, api, "m") == []
        assert await drop_orphaned_transients(tessera.db) == []


async def test_only_admins_and_schema_keys_swap_fields(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        swap = await codes_table(api)
        request = {"op": "swap_fields", "args": swap}
        reader = await api.key(["records:read", "records:write"])
        writer = await api.key(["schema:write"])
        before = await state(pg, api, "m")
        for call in ("/schema/preview", "/schema/apply"):
            refused = await api.client.post(api.url(call), json=request, headers=reader)
            assert refused.status_code == 403, refused.text
        assert await state(pg, api, "m") == before
        applied = await api.client.post(api.url("/schema/apply"), json=request, headers=writer)
        assert applied.status_code == 200, applied.text
        assert applied.json()["impact"]["index_build"] == {"concurrently": True}
        assert await transients(pg, api, "m") == []
