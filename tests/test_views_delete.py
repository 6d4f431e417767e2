"""Deleting a saved view (issue 17): ``DELETE /api/projects/{p}/views/{v}`` removes it with
every version, audited, in every process's cache and from the project's OpenAPI document —
and a collection it held may be purged afterwards; the admin asks to confirm first."""

from __future__ import annotations

import html
import json
from collections.abc import Callable

import asyncpg

from admin import cookies
from kernel.config import Settings
from plugins.views.cache import view_cache
from tests.conftest import Api
from tests.test_catalog_cache import eventually, new_project
from tests.test_policies import error_code, signed_in
from tests.test_views import (
    ORDERS_BY_CUSTOMER,
    create_view,
    purge_orders_under_a_view,
    run,
    shop,
    views,
)
from tests.test_views_admin import PAGE, AdminPage
from tests.test_views_cache import put_definition, two_processes

NAME = ORDERS_BY_CUSTOMER["name"]


async def delete(api: Api, headers: dict[str, str] | None = None, name: str = NAME) -> int:
    response = await api.client.delete(views(api, f"/{name}"), headers=headers or api.headers)
    if response.status_code != 204:
        return response.status_code
    assert response.content == b""
    return 204


async def test_a_deleted_view_is_gone_with_every_version_and_audited(
    api: Api, pg: asyncpg.Connection
) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    await put_definition(api, {**ORDERS_BY_CUSTOMER, "projection": ["title"]})
    params = {"customer_id": customers[1]["id"]}
    assert (await run(api, NAME, params)).status_code == 200  # the cache is warm
    view_id = await pg.fetchval(
        "SELECT id FROM tessera.views WHERE project_id = $1 AND name = $2", api.project, NAME
    )

    assert await delete(api) == 204

    ran = await run(api, NAME, params)
    assert ran.status_code == 404 and error_code(ran) == "view_not_found"
    for path in ("/definition", "/versions", "/meta"):
        gone = await api.client.get(views(api, f"/{NAME}{path}"), headers=api.headers)
        assert gone.status_code == 404, (path, gone.text)
    listed = await api.client.get(views(api), headers=api.headers)
    assert listed.json()["data"] == []
    versions = "SELECT count(*) FROM tessera.view_versions WHERE view_id = $1"
    assert await pg.fetchval(versions, view_id) == 0
    event = await pg.fetchrow(
        "SELECT target_type, target, before, after FROM tessera.audit_events "
        "WHERE project_id = $1 AND action = 'view.delete'",
        api.project,
    )
    assert (event["target_type"], event["target"], json.loads(event["after"])) == (
        "view",
        NAME,
        None,
    )
    before = json.loads(event["before"])
    assert (before["version"], before["versions"]) == (2, 2)
    assert before["definition"]["projection"] == ["title"]

    document = (await api.client.get(api.url("/openapi.json"), headers=api.headers)).json()
    assert views(api, f"/{NAME}") not in document["paths"]

    again = await create_view(api, ORDERS_BY_CUSTOMER)  # the name is free again
    assert again["version"] == 1


async def test_only_admins_and_schema_writers_of_the_project_delete_views(
    api: Api, admin_headers: dict[str, str]
) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    _, user = await signed_in(api, "dora@example.com")
    reader = await api.key(["records:read", "records:write"])
    other = await new_project(api.client, admin_headers)
    other_writer = await other.key(["schema:write"])
    for headers, code in ((user, "missing_scope"), (reader, "missing_scope")):
        refused = await api.client.delete(views(api, f"/{NAME}"), headers=headers)
        assert refused.status_code == 403 and error_code(refused) == code, refused.text
    foreign = await api.client.delete(views(api, f"/{NAME}"), headers=other_writer)
    assert foreign.status_code == 403 and error_code(foreign) == "wrong_project"
    anonymous = await api.client.delete(views(api, f"/{NAME}"))
    assert anonymous.status_code == 401
    assert (await api.client.get(views(api, f"/{NAME}/definition"), headers=api.headers)).is_success

    writer = await api.key(["schema:write"])
    assert await delete(api, writer) == 204


async def test_deleting_an_unknown_view_is_a_404(api: Api) -> None:
    await shop(api)
    response = await api.client.delete(views(api, "/nothing_here"), headers=api.headers)
    assert response.status_code == 404 and error_code(response) == "view_not_found"
    missing = await api.client.delete("/api/projects/no_such_project/views/x", headers=api.headers)
    assert missing.status_code == 404


async def test_a_collection_held_by_a_view_is_purged_once_the_view_is_deleted(api: Api) -> None:
    refused = await purge_orders_under_a_view(api)
    assert refused.status_code == 409 and error_code(refused) == "has_dependents"

    assert await delete(api) == 204
    purged = await api.apply("purge_collection", collection="orders", confirm="orders")
    assert purged.status_code == 200, purged.text


async def test_another_process_forgets_a_deleted_view(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with two_processes(make_settings, admin_headers) as (via_a, via_b, params):
        cache_b = view_cache(via_b.client.app.state.tessera)  # type: ignore[attr-defined]
        assert len(cache_b) == 1
        assert await delete(via_a) == 204

        async def forgotten() -> bool:
            return len(cache_b) == 0

        await eventually(forgotten)
        ran = await run(via_b, NAME, params)
        assert ran.status_code == 404 and error_code(ran) == "view_not_found"


async def test_the_admin_deletes_a_view_after_the_name_is_typed_back(
    api: Api, admin_headers: dict[str, str]
) -> None:
    admin = AdminPage(api, admin_headers)
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    page = await admin.get(view=NAME)
    assert page.status_code == 200, page.text
    assert "delete=1" in page.text and "Delete view" in page.text

    confirm = await admin.get(view=NAME, delete=1)
    assert confirm.status_code == 200, confirm.text
    text = html.unescape(confirm.text)
    assert "data-view-delete" in text and "Its 1 version go with it" in text
    assert "<script" not in text.split("data-view-delete")[1]

    mistyped = await admin.post(PAGE, [("action", "delete"), ("confirm", "orders")], view=NAME)
    assert mistyped.status_code == 200, mistyped.text
    assert f"Type {NAME} exactly" in html.unescape(mistyped.text)
    kept = await api.client.get(views(api, f"/{NAME}/definition"), headers=api.headers)
    assert kept.status_code == 200

    deleted = await admin.post(PAGE, [("action", "delete"), ("confirm", NAME)], view=NAME)
    assert deleted.status_code == 303, deleted.text
    location = deleted.headers["location"]
    assert f"project={api.project}" in location and "view=" not in location
    flash = deleted.cookies[cookies.FLASH]
    shown = {"Cookie": f"{admin.cookie['Cookie']}; {cookies.FLASH}={flash}"}
    listing = await api.client.get(location, headers=shown)
    assert f"View {NAME} and its versions deleted." in html.unescape(listing.text)
    assert "No views yet" in listing.text
    gone = await api.client.get(views(api, f"/{NAME}/definition"), headers=api.headers)
    assert gone.status_code == 404
