"""Migrations, the embedded-or-external database, and losing the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from kernel.config import Settings
from kernel.db.engine import Database, DatabaseUnavailable
from kernel.db.migrate import (
    current_revisions,
    migrate,
    missing_revisions,
    plugin_migrations,
    schema_drift,
)
from kernel.plugins import load_plugins
from kernel.runtime import SchemaOutOfDate, Tessera
from tests.conftest import running
from tests.server import run_tessera, tessera_env
from tests.services import create_database, drop_database, free_port
from tests.tcp_proxy import PostgresProxy


async def test_empty_database_migrates_to_head_without_drift(postgres_server: str) -> None:
    url = await create_database(postgres_server, "tessera_migrate")
    db = await Database.connect(url, pool_size=1, connect_timeout=10)
    try:
        plugins = plugin_migrations(load_plugins(Settings()))
        assert await current_revisions(db.engine) == set()
        await migrate(db.engine)
        assert await schema_drift(db.engine) == []  # the kernel alone
        await migrate(db.engine, plugins)
        await migrate(db.engine, plugins)  # idempotent
        assert missing_revisions(await current_revisions(db.engine), plugins) == set()
        assert await schema_drift(db.engine, plugins) == []  # kernel and plugin tables
    finally:
        await db.close()
        await drop_database(postgres_server, url)


async def test_concurrent_migrations_wait_for_each_other(postgres_server: str) -> None:
    url = await create_database(postgres_server, "tessera_migrate")
    dbs = [await Database.connect(url, pool_size=1, connect_timeout=10) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(db.engine) for db in dbs))
        assert missing_revisions(await current_revisions(dbs[0].engine)) == set()
    finally:
        for db in dbs:
            await db.close()
        await drop_database(postgres_server, url)


async def test_an_unmigrated_database_refuses_to_start(postgres_server: str) -> None:
    url = await create_database(postgres_server, "tessera_empty")
    tessera = Tessera.build(Settings(database_url=url, secret_key="x"))
    try:
        with pytest.raises(SchemaOutOfDate, match="run `tessera migrate`"):
            await tessera.start()
    finally:
        await tessera.db.close()
        await drop_database(postgres_server, url)


async def test_unreachable_database_fails_fast_with_a_clear_message() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(DatabaseUnavailable) as raised:
        await asyncio.wait_for(Database.connect(url, pool_size=1, connect_timeout=3), 10)
    assert str(raised.value).startswith(f"cannot connect to PostgreSQL at {url}")


def test_cli_exits_non_zero_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/nothing"
    env = tessera_env(
        TESSERA_DATABASE_URL=url, TESSERA_DATA_DIR=str(tmp_path), TESSERA_DB_CONNECT_TIMEOUT="3"
    )
    for command in (["migrate"], ["serve", "--port", str(free_port())]):
        result = run_tessera(command, env, timeout=30)
        assert result.returncode == 1, result.stderr
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith(
            "tessera: cannot connect to PostgreSQL at postgresql://postgres:***@"
        )
        assert "secret" not in result.stderr


async def test_readyz_is_503_while_the_database_is_down(
    postgres_server: str, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    proxy = PostgresProxy(database_url)
    await proxy.start()
    try:
        async with running(make_settings(database_url=proxy.url())) as client:
            assert (await client.get("/readyz")).status_code == 200
            await proxy.cut()
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"]["database"] is False
            await proxy.start()
            for _ in range(50):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail("readyz did not recover after the database came back")
    finally:
        await proxy.cut()
