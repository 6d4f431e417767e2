"""The records hot path: the fast path dispatches records routes and nothing else, the
pool hands connections back unreset, and a process that does not lead the jobs keeps one
connection instead of opening one per question."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from kernel.api.fastpath import FastPath
from kernel.config import Settings
from kernel.db.engine import Database
from plugins.jobs.leader import LeaderLock
from tests.conftest import Api
from tests.services import create_database, drop_database


def _fast_path_of(app: Any) -> FastPath:
    assert isinstance(app.fast_path, FastPath), "the app has no fast path"
    return app.fast_path


async def test_records_requests_take_the_fast_path(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    records = api.url("/collections/orders/records")
    created = await api.create("orders", {"title": "first"})
    fast_path = _fast_path_of(api.client.app)  # type: ignore[attr-defined]
    served: list[str] = []
    original = fast_path.serve

    async def spying(route: Any, *args: Any) -> None:
        served.append(route.route.path)
        await original(route, *args)

    fast_path.serve = spying  # type: ignore[method-assign]
    try:
        read = await api.client.get(f"{records}/{created['id']}", headers=api.headers)
        listed = await api.client.get(records, headers=api.headers)
        fields = await api.client.get(api.url("/collections/orders"), headers=api.headers)
    finally:
        del fast_path.serve
    assert read.status_code == 200 and read.json()["title"] == "first"
    assert listed.status_code == 200 and len(listed.json()["data"]) == 1
    assert fields.status_code == 200
    template = "/api/projects/{project_id}/collections/{collection}/records"
    assert served == [f"{template}/{{record_id}}", template]


async def test_fast_path_errors_have_the_api_error_body(api: Api) -> None:
    await api.create_collection("orders", [{"name": "qty", "type": "integer"}])
    records = api.url("/collections/orders/records")
    unauthenticated = await api.client.get(records, headers={"X-API-Key": "tsk_not-a-key"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["errors"][0]["code"] == "invalid_api_key"
    malformed = await api.client.post(
        records, content=b"{not json", headers={**api.headers, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["code"] == "malformed_json"
    invalid = await api.client.post(records, json={"qty": "many"}, headers=api.headers)
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "qty"


async def test_fast_path_refuses_oversized_bodies_and_writes_nothing(api: Api) -> None:
    await api.create_collection("notes", [{"name": "text", "type": "string"}])
    records = api.url("/collections/notes/records")
    limit = 1024 * 1024
    body = b'{"text": "' + b"x" * limit + b'"}'
    declared = await api.client.post(
        records, content=body, headers={**api.headers, "Content-Type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    streamed = await api.client.post(
        records, content=chunks(), headers={**api.headers, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["errors"][0]["code"] == "payload_too_large"
    listed = await api.client.get(records, headers=api.headers)
    assert listed.json()["data"] == []


async def test_methods_the_fast_path_does_not_serve_reach_fastapi(api: Api) -> None:
    await api.create_collection("orders", [{"name": "qty", "type": "integer"}])
    response = await api.client.put(
        api.url("/collections/orders/records"), json={}, headers=api.headers
    )
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "method_not_allowed"


async def test_fast_path_requests_are_counted_by_route_template(api: Api) -> None:
    await api.create_collection("orders", [{"name": "qty", "type": "integer"}])
    await api.client.get(api.url("/collections/orders/records"), headers=api.headers)
    metrics = (await api.client.get("/metrics")).text
    template = "/api/projects/{project_id}/collections/{collection}/records"
    assert f'method="GET",route="{template}",status="200"' in metrics


async def test_a_connection_returns_to_the_pool_without_a_reset(
    make_settings: Callable[..., Settings],
) -> None:
    """The pool's contract (docs/plugins.md): session state is not reset on release."""
    settings = make_settings()
    database = await Database.connect(settings.database_url, pool_size=1, connect_timeout=5)
    try:
        async with database.pool.acquire() as conn:
            await conn.execute("SET application_name = 'kept'")
            backend = conn.get_server_pid()
        async with database.pool.acquire() as conn:
            assert conn.get_server_pid() == backend
            assert await conn.fetchval("SHOW application_name") == "kept"
    finally:
        await database.close()


class _Connections:
    """``db.dedicated_connection`` for a :class:`LeaderLock`, counting the connections."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.opened = 0

    async def dedicated_connection(self) -> asyncpg.Connection:
        self.opened += 1
        return await asyncpg.connect(self.database_url)


@pytest.fixture
async def lone_database(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own: the session's app leads the jobs in the shared one."""
    url = await create_database(postgres_server, prefix="tessera_leader")
    yield url
    await drop_database(postgres_server, url)


async def test_a_follower_keeps_one_connection_and_retries_the_lock_by_interval(
    lone_database: str,
) -> None:
    database_url = lone_database
    leader_db, follower_db = _Connections(database_url), _Connections(database_url)
    leader = LeaderLock(SimpleNamespace(db=leader_db), retry_interval=1.0)
    follower = LeaderLock(SimpleNamespace(db=follower_db), retry_interval=1.0)
    try:
        assert await leader.held()
        assert not await follower.held()
        for _ in range(50):
            assert not await follower.held()
            assert await leader.held()
        assert (leader_db.opened, follower_db.opened) == (1, 1)

        await leader.release()
        await asyncio.sleep(1.05)
        assert await follower.held()
        assert follower_db.opened == 1
    finally:
        await leader.release()
        await follower.release()


async def test_leadership_moves_on_when_the_leaders_connection_dies(lone_database: str) -> None:
    database_url = lone_database
    leader = LeaderLock(SimpleNamespace(db=_Connections(database_url)), retry_interval=0.05)
    follower = LeaderLock(SimpleNamespace(db=_Connections(database_url)), retry_interval=0.05)
    try:
        assert await leader.held()
        assert not await follower.held()
        assert leader._connection is not None
        leader._connection.terminate()
        for _ in range(100):  # the server notices the closed socket within moments
            await asyncio.sleep(0.05)
            if await follower.held():
                break
        assert await follower.held()
        await asyncio.sleep(0.06)
        assert not await leader.held()
    finally:
        await leader.release()
        await follower.release()
