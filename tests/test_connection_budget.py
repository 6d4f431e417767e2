"""How many PostgreSQL connections one Tessera process opens (docs/configuration.md,
"Connections and memory per process"), counted in pg_stat_activity, and what a client gets
when every connection is busy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import sqlalchemy.exc

from kernel.config import Settings
from kernel.db.pool import PoolTimeout
from kernel.runtime import Tessera
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, migrated_database, running, unique_id
from tests.tcp_proxy import PostgresProxy


@pytest.fixture(scope="module")
async def own_url(postgres_server: str) -> AsyncIterator[str]:
    """A database only these tests connect to, so every ``tessera`` session in it is ours."""
    async with migrated_database(postgres_server, "tessera_budget") as url:
        yield url


async def tessera_sessions(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = $1 AND application_name = 'tessera'",
            urlsplit(url).path.lstrip("/"),
        )
    finally:
        await conn.close()


async def every_connection_in_use(url: str, tessera: Tessera, expected: int) -> int:
    """Hold every pooled connection of both pools (checking that neither lends one more);
    the session count once it is stable."""
    async with AsyncExitStack() as held:
        for _ in range(tessera.settings.db_pool_size):
            await held.enter_async_context(tessera.db.pool.acquire())
        for _ in range(tessera.settings.db_control_pool_size):
            await held.enter_async_context(tessera.db.engine.connect())
        with pytest.raises(PoolTimeout):
            await tessera.db.pool.fetchval("SELECT 1")
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            async with tessera.db.engine.connect():
                pass
        # The jobs plugin opens its leader-lock connection on its first poll (within 1 s).
        for _ in range(100):
            if await tessera_sessions(url) >= expected:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        return await tessera_sessions(url)


async def test_a_process_opens_both_pools_plus_listen_plus_the_jobs_leader(
    own_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        database_url=own_url, db_pool_size=3, db_control_pool_size=2, db_acquire_timeout=0.2
    )
    async with running(settings) as client:
        tessera = client.app.state.tessera  # type: ignore[attr-defined]
        assert await every_connection_in_use(own_url, tessera, 3 + 2 + 2) == 3 + 2 + 2
    assert await tessera_sessions(own_url) == 0  # all closed at stop


async def test_with_the_redis_bus_no_connection_listens(
    own_url: str, redis_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        database_url=own_url,
        redis_url=redis_url,
        db_pool_size=2,
        db_control_pool_size=1,
        db_acquire_timeout=0.2,
    )
    async with running(settings) as client:
        tessera = client.app.state.tessera  # type: ignore[attr-defined]
        assert await every_connection_in_use(own_url, tessera, 2 + 1 + 1) == 2 + 1 + 1


async def only_error(response: httpx.Response) -> dict[str, str | None]:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    [error] = response.json()["errors"]
    return error


async def test_a_request_waiting_too_long_for_a_records_connection_gets_a_503(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings(db_pool_size=1, db_acquire_timeout=0.3)) as client:
        api = Api(client, admin_headers, unique_id())
        created = await client.post(
            "/api/projects", json={"id": api.project, "name": "Busy"}, headers=admin_headers
        )
        assert created.status_code == 201, created.text
        await api.create_collection("notes", [{"name": "text", "type": "string"}])
        url = api.url("/collections/notes/records")
        assert (await client.get(url, headers=admin_headers)).status_code == 200
        tessera = client.app.state.tessera  # type: ignore[attr-defined]
        async with tessera.db.pool.acquire():
            error = await only_error(await client.get(url, headers=admin_headers))
        assert error["code"] == "database_busy"
        assert error["field"] is None
        assert "0.3 s" in str(error["message"])
        assert (await client.get(url, headers=admin_headers)).status_code == 200


async def test_a_request_waiting_too_long_for_a_control_connection_gets_a_503(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    settings = make_settings(db_control_pool_size=1, db_acquire_timeout=0.3)
    async with running(settings) as client:
        tessera = client.app.state.tessera  # type: ignore[attr-defined]
        body = {"id": unique_id(), "name": "Busy"}
        async with tessera.db.engine.connect():
            response = await client.post("/api/projects", json=body, headers=admin_headers)
            assert (await only_error(response))["code"] == "database_busy"
        response = await client.post("/api/projects", json=body, headers=admin_headers)
        assert response.status_code == 201, response.text


async def test_session_state_goes_over_the_session_database_url(
    own_url: str, make_settings: Callable[..., Settings]
) -> None:
    proxy = PostgresProxy(own_url)
    await proxy.start()
    try:
        settings = make_settings(database_url=own_url, session_database_url=proxy.url())
        async with running(settings) as client:
            for _ in range(50):  # LISTEN at start, the jobs leader lock on its first poll
                if proxy.opened >= 2:
                    break
                await asyncio.sleep(0.1)
            # An admin token names an account of the database it was issued by.
            login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            token = (await client.post("/api/admin/login", json=login)).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            response = await client.get("/api/projects", headers=headers)
            assert response.status_code == 200, response.text
            assert proxy.opened == 2  # the pools connect to database_url
    finally:
        await proxy.cut()
