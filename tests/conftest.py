"""Fixtures: a fresh PostgreSQL database per session, the app over it, projects per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.api.app import create_app
from kernel.config import Settings
from kernel.db.engine import Database
from kernel.db.migrate import migrate, plugin_migrations
from kernel.plugins import load_plugins
from tests.fake_plugins import FakeDistributions
from tests.receiver import Receiver
from tests.services import PostgresServer, RedisServer, create_database, drop_database

ADMIN_EMAIL = "admin@tessera.test"
ADMIN_PASSWORD = "correct-horse-battery"
#: One deployment secret for every app and server a test session starts: they share the
#: database, so any of their job workers may sign a webhook delivery another one created.
SECRET_KEY = "test-secret-key-not-for-production"

#: A test past its timeout prints every asyncio task's stack (tests/timeouts.py).
pytest_plugins = ["tests.timeouts"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    server = PostgresServer()
    yield server.start()
    server.stop()


@asynccontextmanager
async def migrated_database(postgres_server: str, prefix: str) -> AsyncIterator[str]:
    """A fresh database at the platform schema's head, dropped after the block."""
    url = await create_database(postgres_server, prefix)
    db = await Database.connect(url, pool_size=1, connect_timeout=10)
    try:
        await migrate(db.engine, plugin_migrations(load_plugins(Settings())))
    finally:
        await db.close()
    try:
        yield url
    finally:
        await drop_database(postgres_server, url)


@pytest.fixture(scope="session")
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_server, "tessera_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = RedisServer()
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def make_settings(database_url: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": data_dir,
            "secret_key": SECRET_KEY,
            "admin_email": ADMIN_EMAIL,
            "admin_password": ADMIN_PASSWORD,
            "db_pool_size": 10,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app for ``settings``, started, with a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture(scope="session")
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(make_settings()) as client:
        yield client


@pytest.fixture(scope="session")
async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def unique_id(prefix: str = "p") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


@pytest.fixture
async def project(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> str:
    """A fresh project for one test."""
    project_id = unique_id()
    response = await client.post(
        "/api/projects", json={"id": project_id, "name": "Test project"}, headers=admin_headers
    )
    assert response.status_code == 201, response.text
    return project_id


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the session database, to look at PostgreSQL directly."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def jobs_db(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own for one test, so its deployment is the only one dispatching
    jobs (one leader per database) and its job settings are the ones that apply."""
    async with migrated_database(postgres_server, "tessera_jobs") as url:
        yield url


@pytest.fixture
def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def fake_distributions(tmp_path: Path) -> Iterator[FakeDistributions]:
    """Install throwaway plugin distributions (real entry points) for one test."""
    distributions = FakeDistributions(tmp_path / "site")
    distributions.root.mkdir()
    distributions.activate()
    yield distributions
    distributions.deactivate()


class Api:
    """Shorthands for the calls most tests make first."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], project: str) -> None:
        self.client = client
        self.headers = headers
        self.project = project

    def url(self, path: str) -> str:
        return f"/api/projects/{self.project}{path}"

    async def create_collection(self, name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
        response = await self.client.post(
            self.url("/collections"), json={"name": name, "fields": fields}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def set_policies(self, collection: str, **rules: str | None) -> None:
        response = await self.client.put(
            self.url(f"/collections/{collection}/policies"), json=rules, headers=self.headers
        )
        assert response.status_code == 200, response.text

    async def create(
        self, collection: str, record: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(
            self.url(f"/collections/{collection}/records"),
            json=record,
            headers=headers or self.headers,
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def key(self, scopes: list[str], **extra: Any) -> dict[str, str]:
        response = await self.client.post(
            self.url("/api-keys"),
            json={"name": "test key", "scopes": scopes, **extra},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        return {"X-API-Key": response.json()["key"]}

    async def apply(self, op: str, **args: Any) -> httpx.Response:
        return await self.client.post(
            self.url("/schema/apply"), json={"op": op, "args": args}, headers=self.headers
        )

    async def preview(self, op: str, **args: Any) -> httpx.Response:
        return await self.client.post(
            self.url("/schema/preview"), json={"op": op, "args": args}, headers=self.headers
        )

    async def user(self, email: str, password: str = "user-password-1") -> dict[str, str]:
        response = await self.client.post(
            self.url("/auth/signup"), json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        response = await self.client.post(
            self.url("/auth/login"), json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def api(client: httpx.AsyncClient, admin_headers: dict[str, str], project: str) -> Api:
    return Api(client, admin_headers, project)
