"""``add_unique`` on a large table (issue 18): from ``ddl_concurrent_index_rows`` rows the
unique index is built with ``CREATE UNIQUE INDEX CONCURRENTLY`` before the op's transaction,
writes going on; a build that fails is undone, and an invalid index left by a dead process
is dropped by the reconciler (kernel/ddl/concurrent.py, kernel/ddl/reconcile.py).

The tests set a threshold of a few rows, and make the build wait for a transaction they hold
open on the table (PostgreSQL's concurrent build waits for every writer that started before
it), so what happens *during* the build is observed, not timed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from kernel.config import Settings
from kernel.ddl.reconcile import (
    LOCK_NAMESPACE,
    OpReconciler,
    drop_orphaned_rule_indexes,
    lock_key,
)
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running, unique_id
from tests.test_interrupted_ops import abandoned_op, tessera_of
from tests.test_jobs import eventually
from tests.test_rules import post
from tests.test_schema_evolution import set_settings

THRESHOLD = 5
#: Seconds a background apply or build may take once nothing holds it back any more.
WITHIN = 60

T = TypeVar("T")
FIELDS = [{"name": "region", "type": "string"}, {"name": "number", "type": "integer"}]


@asynccontextmanager
async def small_threshold_api(
    make_settings: Callable[..., Settings], lock_timeout_ms: int = 30_000
) -> AsyncIterator[Api]:
    """An app whose ops build indexes concurrently from ``THRESHOLD`` rows, signed in as
    the admin, with a fresh project holding ``tickets`` of ``THRESHOLD * 2`` records."""
    settings = make_settings(
        ddl_concurrent_index_rows=THRESHOLD, ddl_lock_timeout_ms=lock_timeout_ms
    )
    async with running(settings) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        project = unique_id()
        created = await client.post(
            "/api/projects", json={"id": project, "name": "Big"}, headers=headers
        )
        assert created.status_code == 201, created.text
        api = Api(client, headers, project)
        await api.create_collection("tickets", FIELDS)
        for number in range(THRESHOLD * 2):
            await api.create("tickets", {"region": "eu", "number": number})
        yield api


def table(api: Api, collection: str = "tickets") -> str:
    return f'"p_{api.project}".{collection}'


async def indexes(
    pg: asyncpg.Connection, api: Api, collection: str = "tickets"
) -> list[tuple[str, bool]]:
    """The table's indexes but its primary key: ``(name, valid)``."""
    rows = await pg.fetch(
        "SELECT c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE x.indrelid = to_regclass($1) AND NOT x.indisprimary ORDER BY 1",
        table(api, collection),
    )
    return [(row["relname"], row["indisvalid"]) for row in rows]


async def build_waiting(pg: asyncpg.Connection, kind: str = "CREATE UNIQUE INDEX") -> int | None:
    """The pid of a concurrent index build waiting for a lock, if any."""
    return await pg.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE $1 AND wait_event_type = 'Lock'",
        f"{kind} CONCURRENTLY%",
    )


@asynccontextmanager
async def writer_held_open(
    api: Api, values: dict[str, Any], collection: str = "tickets"
) -> AsyncIterator[None]:
    """A transaction (on a connection of its own) that has written to the table and stays
    open: a concurrent build waits for it. Commits when the block ends without error."""
    writer = await asyncpg.connect(tessera_of(api.client).settings.database_url)
    try:
        async with writer.transaction():
            await writer.execute(
                f"INSERT INTO {table(api, collection)} (region, number) VALUES ($1, $2)",
                values["region"],
                values["number"],
            )
            yield
    finally:
        await writer.close(timeout=10)


async def build_started(
    api: Api, pg: asyncpg.Connection
) -> tuple[asyncio.Task[httpx.Response], int]:
    """Apply ``add_unique`` on tickets' region and number in the background, once its build
    waits for a writer: the apply's task, and the build's pid."""
    applying = asyncio.create_task(
        api.apply("add_unique", collection="tickets", fields=["region", "number"])
    )
    try:
        return applying, await eventually(lambda: build_waiting(pg), within=30)
    except BaseException:
        applying.cancel()
        raise


async def finished(task: asyncio.Task[T]) -> T:
    """The background ``task``'s result; past ``WITHIN`` seconds it is cancelled and the
    test fails (a lost wakeup must fail the test, not hang the run)."""
    try:
        return await asyncio.wait_for(task, WITHIN)
    except TimeoutError:
        pytest.fail(f"the background {task.get_coro()!r} did not finish within {WITHIN}s")


async def rules_of(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get(api.url("/collections/tickets/rules"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def last_op(api: Api) -> dict[str, Any]:
    response = await api.client.get(api.url("/schema/ops?limit=1"), headers=api.headers)
    return response.json()["data"][0]


async def test_the_preview_says_which_build_the_table_gets(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        preview = await api.preview("add_unique", collection="tickets", fields=["region", "number"])
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["impact"]["index_build"] == {
            "concurrently": True,
            "estimated_rows": THRESHOLD,  # a table never analyzed is counted up to the threshold
            "threshold": THRESHOLD,
        }
        assert body["ddl"][0].startswith("CREATE UNIQUE INDEX CONCURRENTLY")
        assert "concurrently" in body["steps"][0]
        # After ANALYZE the planner's estimate (pg_class.reltuples) decides.
        await pg.execute(f"ANALYZE {table(api)}")
        again = (
            await api.preview("add_unique", collection="tickets", fields=["region", "number"])
        ).json()
        assert again["impact"]["index_build"]["estimated_rows"] == THRESHOLD * 2
        # A table below the threshold gets its index inside the op's transaction.
        await api.create_collection("small", FIELDS)
        small = (await api.preview("add_unique", collection="small", fields=["region"])).json()
        assert small["impact"]["index_build"]["concurrently"] is False
        assert small["ddl"][0].startswith("CREATE UNIQUE INDEX uq_")


async def test_writes_go_on_while_the_unique_index_is_built(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        async with writer_held_open(api, {"region": "us", "number": 1}):
            applying, _ = await build_started(api, pg)
            # The build is under way (its index exists, not yet valid): writes still land.
            index = f"uq_c{await collection_id(pg, api)}_unique_region_number"
            assert await indexes(pg, api) == [(index, False)]
            for number in range(100, 110):
                response = await post(api, "tickets", {"region": "asia", "number": number})
                assert response.status_code == 201, response.text
            assert not applying.done()
        applied = await finished(applying)
        assert applied.status_code == 200, applied.text
        assert applied.json()["ddl"][0].startswith("CREATE UNIQUE INDEX CONCURRENTLY")
        assert applied.json()["impact"]["index_build"] == {"concurrently": True}
        assert [valid for _, valid in await indexes(pg, api)] == [True]
        assert await rules_of(api) == [
            {"name": "unique_region_number", "unique": ["region", "number"]}
        ]
        duplicate = await post(api, "tickets", {"region": "asia", "number": 100})
        assert duplicate.status_code == 409, duplicate.text
        message = duplicate.json()["errors"][0]["message"]
        assert "region" in message and "number" in message
        with pytest.raises(asyncpg.UniqueViolationError):
            await pg.execute(f"INSERT INTO {table(api)} (region, number) VALUES ('us', 1)")


async def collection_id(pg: asyncpg.Connection, api: Api) -> int:
    return await pg.fetchval(
        "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = 'tickets'",
        api.project,
    )


async def assert_nothing_changed(pg: asyncpg.Connection, api: Api, code: str) -> None:
    assert await indexes(pg, api) == []
    assert await rules_of(api) == []
    op = await last_op(api)
    assert (op["op"], op["status"], op["error"]["errors"][0]["code"]) == (
        "add_unique",
        "failed",
        code,
    )


async def test_duplicates_written_during_the_build_fail_it_and_leave_nothing(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        async with writer_held_open(api, {"region": "eu", "number": 3}):  # eu 3 exists
            applying, _ = await build_started(api, pg)
        refused = await finished(applying)
        assert refused.status_code == 409, refused.text
        error = refused.json()["errors"][0]
        assert error["code"] == "duplicates_exist"
        assert "region, number" in error["message"]
        assert "region='eu', number=3 (2 records)" in error["message"]
        await assert_nothing_changed(pg, api, "duplicates_exist")
        # Once the duplicate is gone, the same op goes through.
        await pg.execute(f"DELETE FROM {table(api)} WHERE id = (SELECT max(id) FROM {table(api)})")
        applied = await api.apply("add_unique", collection="tickets", fields=["region", "number"])
        assert applied.status_code == 200, applied.text


async def test_a_cancelled_build_is_undone_with_a_409_naming_the_fields(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        async with writer_held_open(api, {"region": "us", "number": 1}):
            applying, pid = await build_started(api, pg)
            assert await pg.fetchval("SELECT pg_cancel_backend($1)", pid)
        # The undo (DROP INDEX CONCURRENTLY) waits for the writer too, which has ended.
        refused = await finished(applying)
        assert refused.status_code == 409, refused.text
        error = refused.json()["errors"][0]
        assert error["code"] == "concurrent_step_failed"
        assert "region, number" in error["message"] and "canceling" in error["message"]
        await assert_nothing_changed(pg, api, "concurrent_step_failed")


async def test_a_build_that_waits_past_the_lock_timeout_is_undone(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings, lock_timeout_ms=300) as api:
        async with writer_held_open(api, {"region": "us", "number": 1}):
            refused = await api.apply(
                "add_unique", collection="tickets", fields=["region", "number"]
            )
            # Its undo waited for the writer as long and gave up too: the index it began
            # is left invalid (never used) for the reconciler's next pass.
            assert [valid for _, valid in await indexes(pg, api)] == [False]
        assert refused.status_code == 409, refused.text
        error = refused.json()["errors"][0]
        assert error["code"] == "table_busy"
        assert "region, number" in error["message"]
        await OpReconciler(tessera_of(api.client).db, 60).reconcile()
        await assert_nothing_changed(pg, api, "table_busy")


async def test_maintenance_mode_refuses_before_any_build(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        await set_settings(api, maintenance=True)
        # A build would wait for this writer; the refusal comes while it is still open.
        async with writer_held_open(api, {"region": "us", "number": 1}):
            refused = await api.apply(
                "add_unique", collection="tickets", fields=["region", "number"]
            )
            assert refused.status_code == 409, refused.text
            assert await indexes(pg, api) == []
        await assert_nothing_changed(pg, api, "maintenance_mode")
        op = await last_op(api)
        assert op["ddl"] == []


async def test_a_change_refused_after_the_build_drops_the_index_it_built(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        async with writer_held_open(api, {"region": "us", "number": 1}):
            applying, _ = await build_started(api, pg)
            # Switched on during the build: the op's transaction checks again and refuses.
            await set_settings(api, maintenance=True)
        refused = await applying
        assert refused.status_code == 409, refused.text
        await assert_nothing_changed(pg, api, "maintenance_mode")


async def test_the_reconciler_drops_an_invalid_index_nobody_is_building(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """What a process killed mid-build leaves: an invalid index (a real kill -9:
    tests/test_faults.py). One being built right now is invalid too, and left alone."""
    async with small_threshold_api(make_settings) as api:
        # A concurrent build that fails leaves its index behind, invalid.
        with pytest.raises(asyncpg.UniqueViolationError):
            await pg.execute(f"CREATE UNIQUE INDEX CONCURRENTLY leftover ON {table(api)} (region)")
        assert await indexes(pg, api) == [("leftover", False)]
        await api.create_collection("others", FIELDS)
        others = table(api, "others")
        builder = await asyncpg.connect(tessera_of(api.client).settings.database_url)
        try:
            async with writer_held_open(api, {"region": "us", "number": 1}, "others"):
                building = asyncio.create_task(
                    builder.execute(f"CREATE INDEX CONCURRENTLY in_progress ON {others} (id)")
                )
                await eventually(lambda: build_waiting(pg, "CREATE INDEX"), within=30)
                await OpReconciler(tessera_of(api.client).db, 60).reconcile()
                assert await indexes(pg, api) == []
                assert await indexes(pg, api, "others") == [("in_progress", False)]
            await finished(building)
        finally:
            await builder.close(timeout=10)
        assert await indexes(pg, api, "others") == [("in_progress", True)]


async def unique_indexes(pg: asyncpg.Connection, api: Api, collection: str) -> list[str]:
    return [name for name, valid in await indexes(pg, api, collection) if valid]


async def test_the_reconciler_drops_a_valid_unique_index_no_rule_names(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    """What a build whose undo failed leaves: a valid index in a rule's shape, no rule.
    The reconciler drops it — never while an op may be building it, and never an index
    the catalog knows (a rule's, a unique field's, one Tessera did not name)."""
    async with small_threshold_api(make_settings) as api:
        tessera = tessera_of(api.client)
        applied = await api.apply("add_unique", collection="tickets", fields=["number"])
        assert applied.status_code == 200, applied.text
        tickets = await collection_id(pg, api)
        orphan = f"uq_c{tickets}_unique_region_number"
        await pg.execute(f"CREATE UNIQUE INDEX {orphan} ON {table(api)} (region, number)")
        await pg.execute(f"CREATE UNIQUE INDEX not_tesseras ON {table(api)} (number, region)")
        # A collection named c<its own id>: its unique field's index has a rule's shape.
        next_id = await pg.fetchval(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END"
            " FROM tessera.collections_id_seq"
        )
        twin = f"c{next_id}"
        await api.create_collection(
            twin, [{"name": "unique_code", "type": "string", "unique": True}]
        )
        assert await unique_indexes(pg, api, twin) == [f"uq_c{next_id}_unique_code"]
        kept = [f"uq_c{tickets}_unique_number", "not_tesseras"]

        # An op of the project unfinished, its applier alive (its lease held): left alone.
        op_id = await abandoned_op(pg, api.project, "running")
        lease = await asyncpg.connect(tessera.settings.database_url)
        try:
            await lease.execute(
                "SELECT pg_advisory_lock_shared($1, $2)", LOCK_NAMESPACE, lock_key(op_id)
            )
            await OpReconciler(tessera.db, 60).reconcile()
            assert orphan in await unique_indexes(pg, api, "tickets")
        finally:
            await lease.close()
        # An op holding the collection's lock (its concurrent step): left alone.
        holder = await asyncpg.connect(tessera.settings.database_url)
        try:
            await holder.execute(
                "SELECT pg_advisory_lock(hashtext($1), hashtext($2))", api.project, "tickets"
            )
            assert await OpReconciler(tessera.db, 60).reconcile() == [op_id]  # interrupted
            assert orphan in await unique_indexes(pg, api, "tickets")
        finally:
            await holder.close()

        dropped = await drop_orphaned_rule_indexes(tessera.db)
        assert dropped == [f'"p_{api.project}"."{orphan}"']
        assert sorted(await unique_indexes(pg, api, "tickets")) == sorted(kept)
        assert await unique_indexes(pg, api, twin) == [f"uq_c{next_id}_unique_code"]
        assert await rules_of(api) == [{"name": "unique_number", "unique": ["number"]}]
        # The name is free again: the same rule on both fields can be added.
        again = await api.apply("add_unique", collection="tickets", fields=["region", "number"])
        assert again.status_code == 200, again.text


async def test_only_admins_and_schema_keys_add_a_unique_rule(
    make_settings: Callable[..., Settings], pg: asyncpg.Connection
) -> None:
    async with small_threshold_api(make_settings) as api:
        reader = await api.key(["records:read", "records:write"])
        refused = await api.client.post(
            api.url("/schema/apply"),
            json={"op": "add_unique", "args": {"collection": "tickets", "fields": ["region"]}},
            headers=reader,
        )
        assert refused.status_code == 403, refused.text
        assert await indexes(pg, api) == []
        writer = await api.key(["schema:write"])
        applied = await api.client.post(
            api.url("/schema/apply"),
            json={"op": "add_unique", "args": {"collection": "tickets", "fields": ["number"]}},
            headers=writer,
        )
        assert applied.status_code == 200, applied.text
        assert [valid for _, valid in await indexes(pg, api)] == [True]
