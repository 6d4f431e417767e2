"""Projects: create (with schema ``p_<id>``), list, read, rename, settings, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Api, unique_id


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def schema_exists(pg: asyncpg.Connection, project: str) -> bool:
    return bool(
        await pg.fetchval(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            f"p_{project}",
        )
    )


def first_error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["errors"][0]


async def create_project(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    body.setdefault("id", unique_id())
    body.setdefault("name", "A project")
    return await client.post("/api/projects", json=body, headers=headers)


DEFAULT_SETTINGS = {
    "timezone": "UTC",
    "alias_grace_days": 30,
    "purge_retention_days": 7,
    "max_page_limit": None,
    "allow_signup": True,
    "maintenance": False,
}


async def test_create_project_makes_its_schema(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pg: asyncpg.Connection
) -> None:
    project_id = unique_id("shop_")
    assert not await schema_exists(pg, project_id)
    response = await create_project(client, admin_headers, id=project_id, name="The shop")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == project_id
    assert body["name"] == "The shop"
    assert body["schema"] == f"p_{project_id}"
    assert body["catalog_version"] == 1
    assert body["settings"] == DEFAULT_SETTINGS
    assert body["created_at"] and body["updated_at"]
    assert await schema_exists(pg, project_id)
    row = await pg.fetchrow(
        "SELECT name, catalog_version FROM tessera.projects WHERE id = $1", project_id
    )
    assert (row["name"], row["catalog_version"]) == ("The shop", 1)


async def test_create_project_with_settings(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await create_project(
        client, admin_headers, settings={"timezone": "Europe/Paris", "allow_signup": False}
    )
    assert response.status_code == 201, response.text
    assert response.json()["settings"] == {
        **DEFAULT_SETTINGS,
        "timezone": "Europe/Paris",
        "allow_signup": False,
    }


async def test_list_and_read_projects(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    first = (await create_project(client, admin_headers, name="First")).json()
    second = (await create_project(client, admin_headers, name="Second")).json()
    listed = await client.get("/api/projects", headers=admin_headers)
    assert listed.status_code == 200
    ids = [project["id"] for project in listed.json()["data"]]
    assert first["id"] in ids
    assert second["id"] in ids
    assert ids == sorted(ids)

    read = await client.get(f"/api/projects/{first['id']}", headers=admin_headers)
    assert read.status_code == 200
    assert read.json() == first

    missing = await client.get(f"/api/projects/{unique_id()}", headers=admin_headers)
    assert missing.status_code == 404
    assert first_error(missing)["code"] == "project_not_found"


async def test_project_credentials_see_only_their_project(api: Api) -> None:
    key = await api.key(["records:read"])
    user = await api.user("member@example.com")
    other = (await create_project(api.client, api.headers)).json()["id"]
    for headers in (key, user):
        listed = await api.client.get("/api/projects", headers=headers)
        assert listed.status_code == 200
        assert [project["id"] for project in listed.json()["data"]] == [api.project]
        own = await api.client.get(f"/api/projects/{api.project}", headers=headers)
        assert own.status_code == 200
        assert own.json()["id"] == api.project
        foreign = await api.client.get(f"/api/projects/{other}", headers=headers)
        assert foreign.status_code == 403
        assert first_error(foreign)["code"] == "wrong_project"
    anonymous = await api.client.get("/api/projects")
    assert anonymous.status_code == 401
    assert first_error(anonymous)["code"] == "unauthorized"
    assert (await api.client.get(f"/api/projects/{api.project}")).status_code == 401


async def test_rename_does_not_move_the_catalog_version(api: Api) -> None:
    before = (await api.client.get(api.url(""), headers=api.headers)).json()
    response = await api.client.patch(api.url(""), json={"name": "Renamed"}, headers=api.headers)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["catalog_version"] == before["catalog_version"]
    assert response.json()["settings"] == before["settings"]
    assert response.json()["updated_at"] > before["updated_at"]
    read = await api.client.get(api.url(""), headers=api.headers)
    assert read.json()["name"] == "Renamed"


async def test_settings_change_bumps_the_catalog_version_and_takes_effect(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    before = (await api.client.get(api.url(""), headers=api.headers)).json()
    response = await api.client.patch(
        api.url(""), json={"settings": {"max_page_limit": 2}}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["catalog_version"] == before["catalog_version"] + 1
    assert response.json()["settings"] == {**before["settings"], "max_page_limit": 2}

    # Settings merge: a later change keeps the earlier one.
    response = await api.client.patch(
        api.url(""), json={"settings": {"allow_signup": False}}, headers=api.headers
    )
    assert response.status_code == 200
    assert response.json()["catalog_version"] == before["catalog_version"] + 2
    assert response.json()["settings"]["max_page_limit"] == 2
    assert response.json()["settings"]["allow_signup"] is False

    # Both take effect at once (the catalog cache saw the new version).
    page = await api.client.get(
        api.url("/collections/orders/records?limit=50"), headers=api.headers
    )
    assert page.status_code == 400, page.text
    signup = await api.client.post(
        api.url("/auth/signup"), json={"email": "late@example.com", "password": "user-password-1"}
    )
    assert signup.status_code == 403
    assert first_error(signup)["code"] == "signup_closed"


@pytest.mark.parametrize(
    "project_id",
    ["ab", "Shop", "1shop", "shop-1", "a" * 41, "shop;drop", "", "shop one"],
    ids=["too short", "uppercase", "digit first", "hyphen", "too long", "sql", "empty", "space"],
)
async def test_invalid_project_id_is_a_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    pg: asyncpg.Connection,
    project_id: str,
) -> None:
    before = await pg.fetchval("SELECT count(*) FROM tessera.projects")
    response = await create_project(client, admin_headers, id=project_id)
    assert response.status_code == 422, response.text
    assert first_error(response)["code"] == "invalid_name"
    assert first_error(response)["field"] == "id"
    assert await pg.fetchval("SELECT count(*) FROM tessera.projects") == before


async def test_longest_valid_project_id_is_accepted(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pg: asyncpg.Connection
) -> None:
    project_id = unique_id("a").ljust(40, "x")
    response = await create_project(client, admin_headers, id=project_id)
    assert response.status_code == 201, response.text
    assert await schema_exists(pg, project_id)


async def test_duplicate_project_is_a_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pg: asyncpg.Connection
) -> None:
    project_id = unique_id()
    assert (await create_project(client, admin_headers, id=project_id)).status_code == 201
    response = await create_project(client, admin_headers, id=project_id, name="Again")
    assert response.status_code == 409
    assert first_error(response)["code"] == "duplicate"
    assert first_error(response)["field"] == "id"
    name = await pg.fetchval("SELECT name FROM tessera.projects WHERE id = $1", project_id)
    assert name == "A project"


@pytest.mark.parametrize(
    "settings",
    [
        {"alias_grace_days": -1},
        {"max_page_limit": 0},
        {"allow_signup": "perhaps"},
        {"colour": "blue"},
    ],
    ids=["negative", "zero limit", "not a bool", "unknown key"],
)
async def test_invalid_settings_are_a_422(
    api: Api, pg: asyncpg.Connection, settings: dict[str, Any]
) -> None:
    project_id = unique_id()
    response = await create_project(api.client, api.headers, id=project_id, settings=settings)
    assert response.status_code == 422, response.text
    assert first_error(response)["code"] == "invalid_settings"
    assert not await schema_exists(pg, project_id)
    assert await pg.fetchval("SELECT count(*) FROM tessera.projects WHERE id = $1", project_id) == 0

    before = (await api.client.get(api.url(""), headers=api.headers)).json()
    response = await api.client.patch(api.url(""), json={"settings": settings}, headers=api.headers)
    assert response.status_code == 422, response.text
    assert first_error(response)["code"] == "invalid_settings"
    assert (await api.client.get(api.url(""), headers=api.headers)).json() == before


async def test_patch_of_unknown_project_is_a_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.patch(
        f"/api/projects/{unique_id()}", json={"name": "x"}, headers=admin_headers
    )
    assert response.status_code == 404
    assert first_error(response)["code"] == "project_not_found"


async def test_delete_needs_confirmation(api: Api, pg: asyncpg.Connection) -> None:
    for suffix in ("", "?confirm=", "?confirm=someone_else", f"?confirm={api.project.upper()}"):
        response = await api.client.delete(api.url(suffix), headers=api.headers)
        assert response.status_code == 422, (suffix, response.text)
        assert first_error(response)["code"] == "confirmation_required"
        assert first_error(response)["field"] == "confirm"
    assert await schema_exists(pg, api.project)
    assert (await api.client.get(api.url(""), headers=api.headers)).status_code == 200


async def test_delete_removes_schema_catalog_keys_and_events_but_keeps_the_audit(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "qty", "type": "integer"}]
    )
    await api.set_policies("orders", list="", read="")
    await api.create("orders", {"title": "a", "qty": 1})
    key = await api.key(["records:read"])
    await api.user("member@example.com")
    project = api.project

    counts = {
        "collections": "SELECT count(*) FROM tessera.collections WHERE project_id = $1",
        "fields": "SELECT count(*) FROM tessera.fields f JOIN tessera.collections c"
        " ON c.id = f.collection_id WHERE c.project_id = $1",
        "api_keys": "SELECT count(*) FROM tessera.api_keys WHERE project_id = $1",
        "project_users": "SELECT count(*) FROM tessera.project_users WHERE project_id = $1",
        "schema_ops": "SELECT count(*) FROM tessera.schema_ops WHERE project_id = $1",
        "events": "SELECT count(*) FROM tessera.events WHERE project_id = $1",
        "projects": "SELECT count(*) FROM tessera.projects WHERE id = $1",
    }
    fields_before = await pg.fetchval(
        "SELECT array_agg(f.id) FROM tessera.fields f JOIN tessera.collections c"
        " ON c.id = f.collection_id WHERE c.project_id = $1",
        project,
    )
    for name, query in counts.items():
        assert await pg.fetchval(query, project) > 0, name

    response = await api.client.delete(api.url(f"?confirm={project}"), headers=api.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""

    assert not await schema_exists(pg, project)
    for name, query in counts.items():
        assert await pg.fetchval(query, project) == 0, name
    orphans = await pg.fetchval(
        "SELECT count(*) FROM tessera.fields WHERE id = ANY($1::bigint[])", fields_before
    )
    assert orphans == 0

    assert (await api.client.get(api.url(""), headers=api.headers)).status_code == 404
    gone = await api.client.get(api.url("/collections/orders/records"), headers=api.headers)
    assert gone.status_code == 404
    assert first_error(gone)["code"] == "project_not_found"
    assert (
        await api.client.get(api.url("/collections/orders/records"), headers=key)
    ).status_code == 401
    again = await api.client.delete(api.url(f"?confirm={project}"), headers=api.headers)
    assert again.status_code == 404

    audit = await pg.fetch(
        "SELECT action, target, actor, before FROM tessera.audit_events"
        " WHERE project_id = $1 ORDER BY id",
        project,
    )
    actions = [row["action"] for row in audit]
    assert actions[0] == "project.create"
    assert actions[-1] == "project.delete"
    assert {
        "schema.create_collection",
        "schema.set_policies",
        "api_key.create",
        "user.create",
    } <= set(actions)
    deleted = audit[-1]
    assert deleted["target"] == project
    assert '"kind": "admin"' in deleted["actor"]
    assert f'"id": "{project}"' in deleted["before"]

    # The id is free again: a new project starts empty.
    response = await create_project(api.client, api.headers, id=project)
    assert response.status_code == 201, response.text
    assert response.json()["catalog_version"] == 1
    listed = await api.client.get(api.url("/collections"), headers=api.headers)
    assert listed.json()["data"] == []


async def test_keys_of_a_deleted_project_stop_working_at_once(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.set_policies("orders", list="", read="")
    key = await api.key(["records:read"])
    assert (await api.client.get(api.url(""), headers=key)).status_code == 200
    response = await api.client.delete(api.url(f"?confirm={api.project}"), headers=api.headers)
    assert response.status_code == 204
    response = await api.client.get(api.url(""), headers=key)
    assert response.status_code == 401, response.text
    assert first_error(response)["code"] == "invalid_api_key"

    # A new project with the same id does not inherit the old project's keys.
    assert (await create_project(api.client, api.headers, id=api.project)).status_code == 201
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.set_policies("orders", list="")
    for path in ("", "/collections", "/collections/orders/records"):
        response = await api.client.get(api.url(path), headers=key)
        assert response.status_code == 401, (path, response.text)


async def test_only_admins_manage_projects(api: Api, pg: asyncpg.Connection) -> None:
    key = await api.key(["records:read", "records:write", "schema:write"])
    user = await api.user("member@example.com")
    before = await pg.fetchrow("SELECT * FROM tessera.projects WHERE id = $1", api.project)
    new_id = unique_id()
    for headers, status in ((key, 403), (user, 403), ({}, 401)):
        calls = [
            await api.client.post(
                "/api/projects", json={"id": new_id, "name": "Mine"}, headers=headers
            ),
            await api.client.patch(api.url(""), json={"name": "Taken over"}, headers=headers),
            await api.client.patch(
                api.url(""), json={"settings": {"allow_signup": False}}, headers=headers
            ),
            await api.client.delete(api.url(f"?confirm={api.project}"), headers=headers),
        ]
        for response in calls:
            assert response.status_code == status, (headers, response.request.method, response.text)
            if status == 403:
                assert first_error(response)["code"] == "admin_only"
    assert await pg.fetchrow("SELECT * FROM tessera.projects WHERE id = $1", api.project) == before
    assert await schema_exists(pg, api.project)
    assert not await schema_exists(pg, new_id)
    assert await pg.fetchval("SELECT count(*) FROM tessera.projects WHERE id = $1", new_id) == 0


async def test_project_changes_are_audited(api: Api) -> None:
    await api.client.patch(
        api.url(""),
        json={"name": "New name", "settings": {"timezone": "Asia/Tokyo"}},
        headers=api.headers,
    )
    response = await api.client.get(
        api.url("/audit"), params={"action": "project."}, headers=api.headers
    )
    updated, created = response.json()["data"]
    assert created["action"] == "project.create"
    assert created["before"] is None
    assert created["after"]["id"] == api.project
    assert updated["action"] == "project.update"
    assert updated["target_type"] == "project"
    assert updated["target"] == api.project
    assert updated["actor"]["kind"] == "admin"
    assert updated["before"]["name"] == "Test project"
    assert updated["after"]["name"] == "New name"
    assert updated["before"]["settings"]["timezone"] == "UTC"
    assert updated["after"]["settings"]["timezone"] == "Asia/Tokyo"
    assert updated["after"]["catalog_version"] == updated["before"]["catalog_version"] + 1
