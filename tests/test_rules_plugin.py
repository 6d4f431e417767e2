"""A third party adds a validation rule type with pip and no kernel change: the example
``docs/examples/tessera-rule-even`` is installed and used by a real server."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, unique_id
from tests.server import REPO, TesseraServer
from tests.test_example_plugin import install_example, server_env

EXAMPLE = REPO / "docs" / "examples" / "tessera-rule-even"


@pytest.fixture(scope="module")
def installed_even(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_example(EXAMPLE, tmp_path_factory)


async def test_an_installed_rule_type_is_enforced_by_the_api_and_the_database(
    installed_even: Path, database_url: str, tmp_path: Path
) -> None:
    env = server_env(
        database_url,
        tmp_path,
        installed_even,
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    project = unique_id("even")
    with TesseraServer(env) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            login = await client.post(
                "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            plugins = (await client.get("/api/plugins")).json()["data"]
            even = next(p for p in plugins if p["name"] == "rules.even")
            assert even["distribution"] == "tessera-rule-even"
            assert "rule type" in even["kinds"]
            response = await client.post(
                "/api/projects", json={"id": project, "name": "Even"}, headers=headers
            )
            assert response.status_code == 201, response.text
            fields = [{"name": "n", "type": "integer", "rules": [{"type": "even", "value": True}]}]
            response = await client.post(
                f"/api/projects/{project}/collections",
                json={"name": "pairs", "fields": fields},
                headers=headers,
            )
            assert response.status_code == 201, response.text
            records = f"/api/projects/{project}/collections/pairs/records"
            odd = await client.post(records, json={"n": 3}, headers=headers)
            assert odd.status_code == 422, odd.text
            assert odd.json()["errors"] == [
                {"field": "n", "code": "even", "message": "must be an even number"}
            ]
            assert (await client.post(records, json={"n": 4}, headers=headers)).status_code == 201
            document = await client.get(f"/api/projects/{project}/openapi.json", headers=headers)
            create = document.json()["components"]["schemas"]["PairsCreate"]
            # Its JSON Schema form shows in the project's document, with no kernel change.
            assert create["properties"]["n"]["anyOf"][0]["multipleOf"] == 2
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(f'INSERT INTO "p_{project}".pairs (n) VALUES (5)')
    finally:
        await conn.close()
