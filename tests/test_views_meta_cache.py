"""A view's meta and its part of the project's OpenAPI document come from the compiled
views each process keeps (plugins/views/cache.py), as running the view does: a warm
request compiles nothing and reads no view definition, the caller is checked on every
request, and every change — a new version, an activation, a rename, a drop, a deletion —
reaches the next answer in this process and in every other one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from kernel.config import Settings
from tests.conftest import Api
from tests.test_catalog_cache import eventually, new_project
from tests.test_policies import error_code, signed_in
from tests.test_views import ORDERS_BY_CUSTOMER, create_view, run, shop, views
from tests.test_views_cache import (
    CountingCompile,
    Statements,
    count_compiles,
    make_every_change,
    put_definition,
    two_processes,
)

NAME = ORDERS_BY_CUSTOMER["name"]
ALL_FIELDS = {"title", "amount", "customer_id", "customer.name"}


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> CountingCompile:
    return count_compiles(monkeypatch)


@pytest.fixture
def statements(api: Api) -> Iterator[Statements]:
    listening = Statements(api.client.app.state.tessera.db.engine)  # type: ignore[attr-defined]
    yield listening
    listening.close()


async def meta(api: Api, headers: dict[str, str] | None = None) -> httpx.Response:
    return await api.client.get(views(api, f"/{NAME}/meta"), headers=headers or api.headers)


async def meta_fields(api: Api) -> set[str]:
    """The fields the view's meta says a row has."""
    response = await meta(api)
    assert response.status_code == 200, response.text
    return set(response.json()["response"]["fields"])


async def document(api: Api, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await api.client.get(api.url("/openapi.json"), headers=headers or api.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def openapi_fields(api: Api, headers: dict[str, str] | None = None) -> set[str] | None:
    """The row fields of the view's path in the project's OpenAPI document (None: the
    document has no such path)."""
    path = (await document(api, headers))["paths"].get(views(api, f"/{NAME}"))
    if path is None:
        return None
    page = path["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return set(page["properties"]["data"]["items"]["properties"])


async def test_warm_meta_and_openapi_compile_nothing_and_meta_reads_no_view_table(
    api: Api, statements: Statements, compiles: CountingCompile
) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    await create_view(api, {**ORDERS_BY_CUSTOMER, "name": "titles", "projection": ["title"]})
    first_meta = (await meta(api)).json()
    first_paths = (await document(api))["paths"]
    assert compiles.calls == 2  # meta compiled one view; the document, only the other
    statements.seen.clear()
    compiles.calls = 0

    for _ in range(10):
        assert (await meta(api)).json() == first_meta
    assert statements.naming("views") == statements.naming("view_versions") == []
    for _ in range(10):
        assert (await document(api))["paths"] == first_paths
    assert compiles.calls == 0
    assert len(statements.naming("view_versions")) == 10  # one listing per document


async def test_the_document_warms_the_views_it_lists_for_running_and_meta(
    api: Api, compiles: CountingCompile
) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    assert await openapi_fields(api) == ALL_FIELDS
    assert compiles.calls == 1
    assert (await run(api, NAME, {"customer_id": customers[0]["id"]})).status_code == 200
    assert await meta_fields(api) == ALL_FIELDS
    assert compiles.calls == 1


async def test_meta_and_openapi_follow_every_change(api: Api, compiles: CountingCompile) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    assert await meta_fields(api) == await openapi_fields(api) == ALL_FIELDS

    await put_definition(api, {**ORDERS_BY_CUSTOMER, "projection": ["title", "amount"]})
    assert await meta_fields(api) == await openapi_fields(api) == {"title", "amount"}

    activated = await api.client.post(
        views(api, f"/{NAME}/versions/1/activate"), headers=api.headers
    )
    assert activated.status_code == 200, activated.text
    assert await meta_fields(api) == await openapi_fields(api) == ALL_FIELDS

    await api.apply("rename_field", collection="customers", field="name", new_name="full_name")
    renamed = {"title", "amount", "customer_id", "customer.full_name"}
    assert await meta_fields(api) == await openapi_fields(api) == renamed

    compiles.calls = 0
    await api.apply("rename_collection", collection="orders", new_name="purchases")
    assert await meta_fields(api) == await openapi_fields(api) == renamed
    assert compiles.calls == 1  # compiled again against the renamed collection, once

    await api.apply("drop_field", collection="purchases", field="title")
    without_title = {"amount", "customer_id", "customer.full_name"}
    assert await meta_fields(api) == await openapi_fields(api) == without_title

    await api.apply("drop_field", collection="purchases", field="amount")  # the default sort
    outdated = await meta(api)
    assert outdated.status_code == 409 and error_code(outdated) == "view_outdated"
    assert await openapi_fields(api) is None  # a view that no longer fits is left out

    await put_definition(
        api, {**ORDERS_BY_CUSTOMER, "projection": ["customer_id"], "sort": "customer_id:asc"}
    )
    assert await meta_fields(api) == await openapi_fields(api) == {"customer_id"}
    deleted = await api.client.delete(views(api, f"/{NAME}"), headers=api.headers)
    assert deleted.status_code == 204, deleted.text
    gone = await meta(api)
    assert gone.status_code == 404 and error_code(gone) == "view_not_found"
    assert await openapi_fields(api) is None


async def test_a_view_made_again_under_its_name_is_described_anew(api: Api) -> None:
    """Deleted and created again, a view is at version 1 again: the document tells the
    kept entry from the new view by its id."""
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    assert await openapi_fields(api) == ALL_FIELDS
    deleted = await api.client.delete(views(api, f"/{NAME}"), headers=api.headers)
    assert deleted.status_code == 204, deleted.text
    await create_view(api, {**ORDERS_BY_CUSTOMER, "projection": ["title"]})
    assert await openapi_fields(api) == await meta_fields(api) == {"title"}


async def test_the_caller_is_checked_on_every_warm_request(
    api: Api, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    assert await meta_fields(api) == await openapi_fields(api) == ALL_FIELDS  # warm
    other = await new_project(client, admin_headers)
    other_key = await other.key(["records:read"])
    orders_only = await api.key(["records:read"], collections=["orders"])
    _, user = await signed_in(api, "meta-user@example.com")

    for _ in range(2):
        refused = await meta(api, other_key)
        assert refused.status_code == 403 and error_code(refused) == "wrong_project"
        anonymous = await client.get(views(api, f"/{NAME}/meta"))
        assert anonymous.status_code == 401
        assert (await meta(api, orders_only)).status_code == 200
        assert (await meta(api, user)).status_code == 200
        assert await openapi_fields(api, orders_only) is None  # it joins customers
        assert await openapi_fields(api, user) == ALL_FIELDS


async def test_another_process_describes_every_change(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with two_processes(make_settings, admin_headers) as (via_a, via_b, _):
        assert await meta_fields(via_b) == await openapi_fields(via_b) == ALL_FIELDS

        async def described_on_b(expected: set[str] | None) -> None:
            async def check() -> bool:
                response = await meta(via_b)
                fields = (
                    set(response.json()["response"]["fields"])
                    if response.status_code == 200
                    else None
                )
                return fields == expected and await openapi_fields(via_b) == expected

            await eventually(check)

        await make_every_change(via_a, described_on_b)
        deleted = await via_a.client.delete(views(via_a, f"/{NAME}"), headers=admin_headers)
        assert deleted.status_code == 204, deleted.text
        await described_on_b(None)
        gone = await meta(via_b)
        assert gone.status_code == 404 and error_code(gone) == "view_not_found"
