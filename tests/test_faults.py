"""Fault tests: a real ``tessera serve`` killed with SIGKILL in the middle of work.

* during a burst of creates from several clients: every create answered 201 is there
  after a restart, nothing is stored twice;
* during each kind of schema op, at the last step of its transaction (the test holds the
  project row, so the op has run its DDL, data migration, catalog and audit writes and
  waits to bump the catalog version): after a restart PostgreSQL has rolled all of it
  back, the catalog agrees with information_schema, and the op is ``failed`` with code
  ``interrupted`` (kernel/ddl/reconcile.py);
* during a unique index built concurrently, before the op's transaction: the build stops
  with its process, and the restarted server drops the invalid index it left.

A ``tessera worker`` killed mid-delivery redelivers every webhook, signed:
``tests/test_jobs.py::test_a_killed_redis_worker_does_not_lose_the_delivery``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.catalog_state import catalog_mismatches, snapshot
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api
from tests.server import TesseraServer, tessera_env
from tests.test_jobs import eventually

#: Creates sent in the burst, by how many concurrent clients, and after how many 201s the
#: server is killed.
BURST, CLIENTS, KILL_AFTER = 300, 4, 100


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    return tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY="fault-test-secret",
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
        TESSERA_LOG_LEVEL="warning",
        # An op waits for the test's lock instead of giving up, and a restarted server
        # reconciles at once and then twice a second.
        TESSERA_DDL_LOCK_TIMEOUT_MS="60000",
        TESSERA_SCHEMA_OPS_RECONCILE_INTERVAL_SECONDS="0.5",
    )


def kill_9(server: TesseraServer) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


@asynccontextmanager
async def signed_in(server: TesseraServer, project: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        yield Api(client, {"Authorization": f"Bearer {login.json()['token']}"}, project)


async def new_project(api: Api) -> None:
    created = await api.client.post(
        "/api/projects", json={"id": api.project, "name": "Faults"}, headers=api.headers
    )
    assert created.status_code == 201, created.text


async def stored_numbers(api: Api) -> list[int]:
    """Every record's ``n``, read through the API page by page."""
    numbers: list[int] = []
    cursor: str | None = None
    for _ in range(BURST // 100 + 2):
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = await api.client.get(
            api.url("/collections/items/records"), params=params, headers=api.headers
        )
        assert page.status_code == 200, page.text
        numbers += [record["n"] for record in page.json()["data"]]
        cursor = page.json()["page"]["next_cursor"]
        if cursor is None:
            return numbers
    raise AssertionError("more pages than records")


async def test_every_acknowledged_create_survives_a_kill_9(jobs_db: str, tmp_path: Path) -> None:
    env = _env(jobs_db, tmp_path)
    project = f"f{secrets.token_hex(4)}"
    acknowledged: set[int] = set()
    to_send = iter(range(BURST))
    with TesseraServer(env) as server:
        async with signed_in(server, project) as api:
            await new_project(api)
            await api.create_collection("items", [{"name": "n", "type": "integer"}])

            async def client() -> None:
                for n in to_send:
                    try:
                        response = await api.client.post(
                            api.url("/collections/items/records"),
                            json={"n": n},
                            headers=api.headers,
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    assert response.status_code == 201, response.text
                    acknowledged.add(n)
                    if len(acknowledged) == KILL_AFTER:
                        kill_9(server)

            await asyncio.gather(*(client() for _ in range(CLIENTS)))
    assert len(acknowledged) >= KILL_AFTER
    with TesseraServer(env) as restarted:
        async with signed_in(restarted, project) as api:
            stored = await stored_numbers(api)
    assert len(stored) == len(set(stored))
    assert acknowledged <= set(stored)
    # Beyond the acknowledged ones, at most the requests in flight at the kill.
    assert len(set(stored) - acknowledged) <= CLIENTS


#: One op of each kind, on the collection ``things`` as :func:`things` makes it.
OPS: list[tuple[str, dict[str, Any]]] = [
    ("create_collection", {"name": "fresh", "fields": [{"name": "a", "type": "string"}]}),
    ("add_field", {"collection": "things", "field": {"name": "extra", "type": "text"}}),
    ("rename_field", {"collection": "things", "field": "title", "new_name": "heading"}),
    ("rename_collection", {"collection": "things", "new_name": "stuff"}),
    ("drop_field", {"collection": "things", "field": "qty"}),  # required: made nullable
    ("change_field_type", {"collection": "things", "field": "qty", "new_type": "float"}),
]


async def things(api: Api) -> None:
    await api.create_collection(
        "things",
        [
            {"name": "title", "type": "string"},
            {"name": "qty", "type": "integer", "required": True, "default": 0},
        ],
    )
    for title in ("a", "b", "c"):
        await api.create("things", {"title": title, "qty": 2})


@asynccontextmanager
async def project_row_held(database_url: str, project: str) -> AsyncIterator[None]:
    """Hold the project's row: an op's last statement, the catalog version bump, waits."""
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM tessera.projects WHERE id = $1 FOR NO KEY UPDATE", project
            )
            yield
    finally:
        await holder.close()


async def waiting_for_a_lock(pg: asyncpg.Connection) -> bool:
    return await pg.fetchval(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'tessera' AND wait_event_type = 'Lock'"
    )


async def unfinished_ops(pg: asyncpg.Connection) -> int:
    return await pg.fetchval(
        "SELECT count(*) FROM tessera.schema_ops WHERE status IN ('pending', 'running')"
    )


async def kill_during(
    server: TesseraServer,
    api: Api,
    pg: asyncpg.Connection,
    database_url: str,
    op: str,
    args: dict[str, Any],
) -> None:
    """Apply ``op`` through ``server`` and kill the server while the op waits at the end
    of its transaction."""
    async with project_row_held(database_url, api.project):
        applying = asyncio.create_task(api.apply(op, **args))
        await eventually(lambda: waiting_for_a_lock(pg), within=30)
        assert await unfinished_ops(pg) == 1, op
        kill_9(server)
        with pytest.raises(httpx.HTTPError):
            await applying


async def assert_reconciled(pg: asyncpg.Connection, project: str, op: str, before: Any) -> None:
    """The killed ``op`` is ``failed``/``interrupted`` and left nothing behind."""
    await eventually(lambda: _none_unfinished(pg), within=30)
    last = await pg.fetchrow(
        "SELECT op, status, error -> 'errors' -> 0 ->> 'code' AS code"
        " FROM tessera.schema_ops ORDER BY id DESC LIMIT 1"
    )
    assert (last["op"], last["status"], last["code"]) == (op, "failed", "interrupted")
    assert await snapshot(pg, project) == before, op
    assert await catalog_mismatches(pg, project) == [], op


async def _none_unfinished(pg: asyncpg.Connection) -> bool:
    return await unfinished_ops(pg) == 0


async def test_a_kill_9_during_each_schema_op_leaves_nothing_half_done(
    jobs_db: str, tmp_path: Path
) -> None:
    """Each server but the first checks the op its predecessor was killed during."""
    env = _env(jobs_db, tmp_path)
    project = f"f{secrets.token_hex(4)}"
    pg = await asyncpg.connect(jobs_db)
    try:
        before: Any = None
        for index in range(len(OPS) + 1):
            with TesseraServer(env) as server:
                async with signed_in(server, project) as api:
                    if index == 0:
                        await new_project(api)
                        await things(api)
                    else:
                        await assert_reconciled(pg, project, OPS[index - 1][0], before)
                    if index < len(OPS):
                        before = await snapshot(pg, project)
                        await kill_during(server, api, pg, jobs_db, *OPS[index])
    finally:
        await pg.close()


async def _building(pg: asyncpg.Connection) -> bool:
    return await pg.fetchval(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE 'CREATE UNIQUE INDEX CONCURRENTLY%' AND state = 'active'"
    )


async def _not_building(pg: asyncpg.Connection) -> bool:
    return not await _building(pg)


async def _invalid_indexes(pg: asyncpg.Connection, project: str) -> int:
    return await pg.fetchval(
        "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND NOT x.indisvalid",
        f"p_{project}",
    )


async def _no_invalid_index(pg: asyncpg.Connection, project: str) -> bool:
    return await _invalid_indexes(pg, project) == 0


async def test_a_kill_9_during_a_concurrent_index_build_leaves_no_index(
    jobs_db: str, tmp_path: Path
) -> None:
    env = {**_env(jobs_db, tmp_path), "TESSERA_DDL_CONCURRENT_INDEX_ROWS": "0"}
    project = f"f{secrets.token_hex(4)}"
    pg = await asyncpg.connect(jobs_db)
    writer = await asyncpg.connect(jobs_db)
    try:
        with TesseraServer(env) as server:
            async with signed_in(server, project) as api:
                await new_project(api)
                await things(api)
                before = await snapshot(pg, project)
                # An open writer makes the build wait after its index became visible.
                held = writer.transaction()
                await held.start()
                await writer.execute(f"INSERT INTO \"p_{project}\".things (title) VALUES ('x')")
                applying = asyncio.create_task(
                    api.apply("add_unique", collection="things", fields=["title"])
                )
                await eventually(lambda: waiting_for_a_lock(pg), within=30)
                assert await _building(pg)
                kill_9(server)
                with pytest.raises(httpx.HTTPError):
                    await applying
                # The build notices its process is gone and stops, its index left invalid.
                await eventually(lambda: _not_building(pg), within=30)
                await held.rollback()
        assert await _invalid_indexes(pg, project) == 1
        with TesseraServer(env):
            await eventually(lambda: _no_invalid_index(pg, project), within=30)
            await assert_reconciled(pg, project, "add_unique", before)
    finally:
        await writer.close()
        await pg.close()
