"""Schema ops whose process died are marked ``failed`` (``interrupted``); ops being applied
right now are never touched (kernel/ddl/reconcile.py). Killed real servers: test_faults.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from kernel.config import Settings
from kernel.ddl.reconcile import OpReconciler, hold_in_transaction, op_lease
from kernel.errors import Conflict
from kernel.runtime import Tessera
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running
from tests.tcp_proxy import PostgresProxy
from tests.test_admin import admin_cookie
from tests.test_jobs import eventually


def tessera_of(client: httpx.AsyncClient) -> Tessera:
    return client.app.state.tessera  # type: ignore[attr-defined]


async def abandoned_op(pg: asyncpg.Connection, project: str, status: str = "pending") -> int:
    """An op row as a killed process leaves it: unfinished, nobody holding its lock."""
    transitions = [{"status": "pending", "at": "2026-01-01T00:00:00+00:00"}]
    if status == "running":
        transitions.append({"status": "running", "at": "2026-01-01T00:00:01+00:00"})
    return await pg.fetchval(
        "INSERT INTO tessera.schema_ops (project_id, op, args, status, transitions, actor)"
        " VALUES ($1, 'add_field', '{}', $2, $3::text::jsonb, '{}') RETURNING id",
        project,
        status,
        orjson.dumps(transitions).decode(),
    )


async def op_row(pg: asyncpg.Connection, op_id: int) -> dict[str, Any]:
    row = await pg.fetchrow(
        "SELECT status, error::text, transitions::text, finished_at FROM tessera.schema_ops"
        " WHERE id = $1",
        op_id,
    )
    assert row is not None
    return {
        "status": row["status"],
        "error": orjson.loads(row["error"]) if row["error"] else None,
        "transitions": [step["status"] for step in orjson.loads(row["transitions"])],
        "finished_at": row["finished_at"],
    }


def interrupted_code(op: dict[str, Any]) -> str | None:
    return (op["error"] or {"errors": [{}]})["errors"][0].get("code")


async def test_ops_left_pending_or_running_are_marked_failed_interrupted(
    api: Api, pg: asyncpg.Connection
) -> None:
    pending = await abandoned_op(pg, api.project, "pending")
    running_op = await abandoned_op(pg, api.project, "running")
    reconciler = tessera_of(api.client).op_reconciler
    await reconciler.reconcile()

    for op_id, before in ((pending, ["pending"]), (running_op, ["pending", "running"])):
        op = await op_row(pg, op_id)
        assert op["status"] == "failed"
        assert op["transitions"] == [*before, "failed"]
        assert interrupted_code(op) == "interrupted"
        assert "rolled the change back" in op["error"]["errors"][0]["message"]
        assert op["finished_at"] is not None
        shown = await api.client.get(api.url(f"/schema/ops/{op_id}"), headers=api.headers)
        assert shown.status_code == 200
        assert shown.json()["status"] == "failed"
        assert shown.json()["error"]["errors"][0]["code"] == "interrupted"

    again = await reconciler.reconcile()
    assert not {pending, running_op} & set(again)
    assert (await op_row(pg, running_op))["transitions"] == ["pending", "running", "failed"]


async def test_an_op_whose_lease_is_held_is_left_alone_until_the_lease_ends(
    api: Api, pg: asyncpg.Connection
) -> None:
    """The window between recording ``pending`` and the apply transaction is covered."""
    tessera = tessera_of(api.client)
    async with op_lease(tessera.db) as op_id:
        await pg.execute(
            "INSERT INTO tessera.schema_ops (id, project_id, op, args, status, actor)"
            " VALUES ($1, $2, 'add_field', '{}', 'pending', '{}')",
            op_id,
            api.project,
        )
        assert op_id not in await tessera.op_reconciler.reconcile()
        assert (await op_row(pg, op_id))["status"] == "pending"

    async def reconciled() -> bool:  # the lease's backend ends a moment after it closes
        await tessera.op_reconciler.reconcile()
        return (await op_row(pg, op_id))["status"] == "failed"

    await eventually(reconciled, within=10)
    assert interrupted_code(await op_row(pg, op_id)) == "interrupted"


async def test_reconcilers_of_several_processes_mark_each_op_once(
    api: Api, pg: asyncpg.Connection
) -> None:
    ops = [await abandoned_op(pg, api.project) for _ in range(20)]
    db = tessera_of(api.client).db
    passes = await asyncio.gather(*(OpReconciler(db, 60).reconcile() for _ in range(3)))
    marked = [op_id for found in passes for op_id in found if op_id in ops]
    assert len(marked) == len(set(marked))
    for op_id in ops:
        assert (await op_row(pg, op_id))["transitions"] == ["pending", "failed"]


async def test_an_op_marked_interrupted_is_never_applied_afterwards(
    api: Api, pg: asyncpg.Connection
) -> None:
    """Should its lease be lost and a reconciler mark it before its apply transaction takes
    the op's lock, that transaction stops there (409 ``interrupted``)."""
    tessera = tessera_of(api.client)
    running_op = await abandoned_op(pg, api.project, "running")
    async with tessera.db.engine.begin() as conn:
        await hold_in_transaction(conn, running_op)  # unfinished: goes on
    await tessera.op_reconciler.reconcile()
    async with tessera.db.engine.begin() as conn:
        with pytest.raises(Conflict) as refused:
            await hold_in_transaction(conn, running_op)
    assert refused.value.items[0].code == "interrupted"


async def test_a_starting_process_reconciles_at_once_and_then_every_interval(
    make_settings: Callable[..., Settings], api: Api, pg: asyncpg.Connection
) -> None:
    before_start = await abandoned_op(pg, api.project, "running")
    settings = make_settings(schema_ops_reconcile_interval_seconds=0.2)
    async with running(settings):
        assert (await op_row(pg, before_start))["status"] == "failed"
        later = await abandoned_op(pg, api.project, "pending")

        async def reconciled() -> bool:
            return (await op_row(pg, later))["status"] == "failed"

        await eventually(reconciled, within=10)


async def _blocked_on(pg: asyncpg.Connection, table: str) -> bool:
    """True when some transaction waits for a lock on ``table``."""
    return await pg.fetchval(
        "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)",
        table,
    )


@pytest.mark.parametrize("cut_lease", [False, True], ids=["lease", "transaction-only"])
async def test_an_op_being_applied_is_not_touched(
    make_settings: Callable[..., Settings],
    api: Api,
    pg: asyncpg.Connection,
    database_url: str,
    cut_lease: bool,
) -> None:
    """Its DDL waits for a table lock the test holds; the reconciler leaves it running —
    also once its lease connection is cut, since its transaction holds the op's lock."""
    await api.create_collection("items", [{"name": "title", "type": "string"}])
    table = f"p_{api.project}.items"
    async with running(make_settings(ddl_lock_timeout_ms=30000)) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        slow = Api(client, {"Authorization": f"Bearer {login.json()['token']}"}, api.project)
        holder = await asyncpg.connect(database_url)
        try:
            lock = holder.transaction()
            await lock.start()
            await holder.execute(f"LOCK TABLE {table} IN ACCESS SHARE MODE")
            applying = asyncio.create_task(
                slow.apply("add_field", collection="items", field={"name": "n", "type": "integer"})
            )
            await eventually(lambda: _blocked_on(pg, table), within=20)
            op_id = await pg.fetchval(
                "SELECT max(id) FROM tessera.schema_ops WHERE project_id = $1", api.project
            )
            if cut_lease:
                cut = await pg.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE query LIKE 'SELECT pg_advisory_lock_shared%' AND pid <> pg_backend_pid()"
                    " AND datname = current_database()"
                )
                assert cut == 1
            assert op_id not in await tessera_of(client).op_reconciler.reconcile()
            assert (await op_row(pg, op_id))["status"] == "running"
            await lock.rollback()
            response = await asyncio.wait_for(applying, 30)
        finally:
            await holder.close()
    assert response.status_code == 200, response.text
    assert (await op_row(pg, op_id))["transitions"] == ["pending", "running", "applied"]


async def test_the_admin_schema_log_shows_why_an_op_failed(
    api: Api, pg: asyncpg.Connection
) -> None:
    op_id = await abandoned_op(pg, api.project, "running")
    await tessera_of(api.client).op_reconciler.reconcile()
    page = await api.client.get(
        f"/admin/p/{api.project}/logs?status=failed", headers=admin_cookie(api.headers)
    )
    assert page.status_code == 200
    assert f"#{op_id}" in page.text
    assert 'badge-warning">interrupted</span>' in page.text
    assert "the process applying this change stopped before it finished" in page.text


async def test_the_lease_is_held_over_the_session_database_url(
    make_settings: Callable[..., Settings], api: Api, database_url: str
) -> None:
    """Behind PgBouncer in transaction mode a pooled connection cannot keep a session lock."""
    await api.create_collection("items", [{"name": "title", "type": "string"}])
    proxy = PostgresProxy(database_url)
    await proxy.start()
    try:
        async with running(make_settings(session_database_url=proxy.url())) as client:
            await eventually(lambda: asyncio.sleep(0, result=proxy.opened >= 2), within=10)
            before = proxy.opened  # LISTEN and the jobs leader lock
            response = await client.post(
                api.url("/schema/apply"),
                json={
                    "op": "add_field",
                    "args": {"collection": "items", "field": {"name": "n", "type": "integer"}},
                },
                headers=api.headers,
            )
            assert response.status_code == 200, response.text
            assert proxy.opened == before + 1
    finally:
        await proxy.cut()
