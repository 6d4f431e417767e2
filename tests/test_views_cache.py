"""Compiled views are kept per process (issue 17): a warm view costs no view-table query,
no catalog load and no compilation, and every change — a new version, an activation, a
rename, a drop — reaches the next request in this process and in every other one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

import kernel.catalog.cache
import plugins.views.cache
from kernel import Principal
from kernel.config import Settings
from plugins.views.cache import ViewCache, view_cache
from plugins.views.definition import Definition
from plugins.views.runner import ViewRunner
from tests.conftest import Api, running
from tests.test_catalog_cache import Counter, eventually, new_project
from tests.test_views import (
    ORDERS_BY_CUSTOMER,
    create_view,
    owners_shop,
    run,
    shop,
    views,
)


class CountingCompile:
    """Wraps :func:`compile_definition`, counting calls and keeping its behaviour."""

    def __init__(self, wrapped: Callable[..., Any]) -> None:
        self.wrapped = wrapped
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.wrapped(*args, **kwargs)


def count_compiles(monkeypatch: pytest.MonkeyPatch) -> CountingCompile:
    """Count every view compilation of the view cache from now on (for this test)."""
    counter = CountingCompile(plugins.views.cache.compile_definition)
    monkeypatch.setattr(plugins.views.cache, "compile_definition", counter)
    return counter


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> CountingCompile:
    return count_compiles(monkeypatch)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter(kernel.catalog.cache.load_catalog)
    monkeypatch.setattr(kernel.catalog.cache, "load_catalog", counter)
    return counter


class Statements:
    """Every SQL statement an app sends through its SQLAlchemy engine, while listening."""

    def __init__(self, engine: Any) -> None:
        self.sync_engine = engine.sync_engine
        self.seen: list[str] = []
        sa.event.listen(self.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def naming(self, table: str) -> list[str]:
        return [text for text in self.seen if f"tessera.{table}" in text]

    def close(self) -> None:
        sa.event.remove(self.sync_engine, "before_cursor_execute", self._record)


@pytest.fixture
def statements(api: Api) -> Iterator[Statements]:
    listening = Statements(api.client.app.state.tessera.db.engine)  # type: ignore[attr-defined]
    yield listening
    listening.close()


async def titles(api: Api, params: dict[str, Any]) -> list[dict[str, Any]]:
    response = await run(api, "orders_by_customer", params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_a_warm_view_reads_no_view_table_loads_no_catalog_and_compiles_nothing(
    api: Api, statements: Statements, loads: Counter, compiles: CountingCompile
) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"]}
    first = await titles(api, params)
    assert statements.naming("view_versions")  # the cold request read the definition
    statements.seen.clear()
    loads.calls = compiles.calls = 0

    for index in range(20):
        other = {"customer_id": customers[index % 3]["id"], "sort": "title:asc", "limit": 5}
        assert (await run(api, "orders_by_customer", other)).status_code == 200
        assert await titles(api, params) == first
    assert statements.naming("views") == []
    assert statements.naming("view_versions") == []
    assert (loads.calls, compiles.calls) == (0, 0)


async def put_definition(api: Api, definition: dict[str, Any]) -> None:
    body = {key: value for key, value in definition.items() if key != "name"}
    response = await api.client.put(
        views(api, "/orders_by_customer/definition"), json=body, headers=api.headers
    )
    assert response.status_code == 200, response.text


async def test_the_next_request_after_a_change_uses_the_new_definition(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"]}
    assert set((await titles(api, params))[0]) == {
        "title",
        "amount",
        "customer_id",
        "customer.name",
    }

    await put_definition(api, {**ORDERS_BY_CUSTOMER, "projection": ["title"]})
    assert set((await titles(api, params))[0]) == {"title"}

    activated = await api.client.post(
        views(api, "/orders_by_customer/versions/1/activate"), headers=api.headers
    )
    assert activated.status_code == 200, activated.text
    assert "customer.name" in (await titles(api, params))[0]

    await api.apply("rename_field", collection="customers", field="name", new_name="full_name")
    assert "customer.full_name" in (await titles(api, params))[0]

    await api.apply("drop_field", collection="orders", field="title")
    rows = await titles(api, params)
    assert rows and all("title" not in row for row in rows)


@asynccontextmanager
async def two_processes(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> AsyncIterator[tuple[Api, Api, dict[str, Any]]]:
    """Two apps on one database and bus; the view made through the first and run through
    the second (so its cache is warm); yields both and the view's parameters."""
    async with running(make_settings()) as a, running(make_settings()) as b:
        via_a = await new_project(a, admin_headers)
        via_b = Api(b, admin_headers, via_a.project)
        customers = await shop(via_a)
        await create_view(via_a, ORDERS_BY_CUSTOMER)
        params = {"customer_id": customers[1]["id"]}
        assert len((await titles(via_b, params))[0]) == 4
        yield via_a, via_b, params


async def make_every_change(via_a: Api, seen_on_b: Callable[[set[str]], Awaitable[None]]) -> None:
    """Through A, change view ``orders_by_customer`` (made by :func:`two_processes`) every
    way but deleting it — a new version, an activation, a rename, a drop — awaiting
    ``seen_on_b(fields of a row)`` after each."""
    await put_definition(via_a, {**ORDERS_BY_CUSTOMER, "projection": ["title", "amount"]})
    await seen_on_b({"title", "amount"})
    activated = await via_a.client.post(
        views(via_a, "/orders_by_customer/versions/1/activate"), headers=via_a.headers
    )
    assert activated.status_code == 200, activated.text
    await seen_on_b({"title", "amount", "customer_id", "customer.name"})
    renamed = await via_a.apply(
        "rename_field", collection="orders", field="amount", new_name="total"
    )
    assert renamed.status_code == 200, renamed.text
    await seen_on_b({"title", "total", "customer_id", "customer.name"})
    dropped = await via_a.apply("drop_field", collection="orders", field="title")
    assert dropped.status_code == 200, dropped.text
    await seen_on_b({"total", "customer_id", "customer.name"})


async def test_another_process_sees_every_change(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with two_processes(make_settings, admin_headers) as (via_a, via_b, params):
        cache_b = view_cache(via_b.client.app.state.tessera)  # type: ignore[attr-defined]

        async def keys_on_b(expected: set[str]) -> None:
            async def check() -> bool:
                rows = await titles(via_b, params)
                return bool(rows) and set(rows[0]) == expected

            await eventually(check)

        started = time.monotonic()
        await make_every_change(via_a, keys_on_b)
        # Well before the safety-net revalidation: the bus did it.
        assert time.monotonic() - started < cache_b.revalidate_after


async def test_a_lost_bus_message_is_made_up_for_by_revalidation(
    make_settings: Callable[..., Settings],
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with two_processes(make_settings, admin_headers) as (via_a, via_b, params):
        tessera_b = via_b.client.app.state.tessera  # type: ignore[attr-defined]
        cache_b = view_cache(tessera_b)
        monkeypatch.setattr(cache_b, "on_bus_message", lambda payload: None)
        bus_b = tessera_b.bus
        bus_b._listeners[plugins.views.cache.CHANNEL] = [cache_b.on_bus_message]

        await put_definition(via_a, {**ORDERS_BY_CUSTOMER, "projection": ["title"]})
        await asyncio.sleep(0.2)
        assert len((await titles(via_b, params))[0]) == 4  # B never heard of it
        # The safety net's time has come (the clock the cache reads, moved on).
        later = time.monotonic() + cache_b.revalidate_after + 1
        monkeypatch.setattr(plugins.views.cache, "time", SimpleNamespace(monotonic=lambda: later))
        assert set((await titles(via_b, params))[0]) == {"title"}


async def test_a_bus_resync_drops_every_view_and_the_cache_is_bounded(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    config = {"views.core": {"cache_size": 2}}
    async with running(make_settings(plugins={"config": config})) as client:
        api = await new_project(client, admin_headers)
        customers = await shop(api)
        cache: ViewCache = view_cache(client.app.state.tessera)  # type: ignore[attr-defined]
        for name in ("one", "two", "three"):
            await create_view(api, {**ORDERS_BY_CUSTOMER, "name": name})
            response = await client.get(
                views(api, f"/{name}"),
                params={"customer_id": customers[0]["id"]},
                headers=admin_headers,
            )
            assert response.status_code == 200, response.text
        assert len(cache) == 2
        cache.on_bus_message("*")
        assert len(cache) == 0


async def test_a_project_deleted_and_made_again_never_runs_the_old_view(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    assert len((await titles(api, {"customer_id": customers[1]["id"]}))[0]) == 4

    deleted = await api.client.delete(
        api.url(""), params={"confirm": api.project}, headers=api.headers
    )
    assert deleted.status_code == 204, deleted.text
    made = await api.client.post(
        "/api/projects", json={"id": api.project, "name": "Again"}, headers=api.headers
    )
    assert made.status_code == 201, made.text
    customers = await shop(api)  # the same catalog version as before the deletion
    await create_view(api, {**ORDERS_BY_CUSTOMER, "projection": ["title"]})
    assert set((await titles(api, {"customer_id": customers[1]["id"]}))[0]) == {"title"}


async def test_an_unsaved_definition_runs_like_the_saved_view_and_is_kept_nowhere(
    api: Api,
) -> None:
    customers = await shop(api)
    tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    cache = view_cache(tessera)
    runner = ViewRunner(tessera, tessera.plugins.config("views.core"))
    definition = Definition.model_validate(
        {key: value for key, value in ORDERS_BY_CUSTOMER.items() if key != "name"}
    )
    query = [("customer_id", str(customers[1]["id"])), ("limit", "3")]
    kept = len(cache)
    unsaved = await runner.run_unsaved(
        api.project, definition, query, Principal(kind="admin", id=1)
    )
    assert len(cache) == kept
    await create_view(api, ORDERS_BY_CUSTOMER)
    saved = await run(api, "orders_by_customer", dict(query))
    assert unsaved["data"] == saved.json()["data"] and len(unsaved["data"]) == 3


async def readers_kept(api: Api) -> int:
    """How many accesses the warm view keeps its readable collections for."""
    cache = view_cache(api.client.app.state.tessera)  # type: ignore[attr-defined]
    _, active = await cache.active(api.project, "orders_by_customer")
    return len(active.readers)


async def test_the_readable_collections_kept_per_access_still_apply_every_check(
    api: Api,
) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"]}
    for collection in ("orders", "customers"):
        await api.set_policies(collection, list="", read="")
    both = await api.key(["records:read"])
    orders_only = await api.key(["records:read"], collections=["orders"])
    customers_only = await api.key(["records:read"], collections=["customers"])
    no_read = await api.key(["records:write"])

    for _ in range(2):  # the second round is served by what the first one kept
        rows = (await run(api, "orders_by_customer", params, headers=both)).json()["data"]
        assert {row["customer.name"] for row in rows} == {customers[1]["name"]}
        rows = (await run(api, "orders_by_customer", params, headers=orders_only)).json()["data"]
        assert rows and {row["customer.name"] for row in rows} == {None}
        refused = await run(api, "orders_by_customer", params, headers=customers_only)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "collection_not_allowed"
        refused = await run(api, "orders_by_customer", params, headers=no_read)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "missing_scope"
    assert await readers_kept(api) == 2  # both and orders_only; refusals are not kept

    # A policy change is a new catalog snapshot: the next request checks it.
    await api.set_policies("customers", list=None, read=None)
    rows = (await run(api, "orders_by_customer", params, headers=both)).json()["data"]
    assert rows and {row["customer.name"] for row in rows} == {None}
    await api.set_policies("orders", list=None, read=None)
    refused = await run(api, "orders_by_customer", params, headers=both)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "policy_denied"
    assert (await run(api, "orders_by_customer", params)).status_code == 200  # the admin


async def test_users_share_the_kept_access_and_each_sees_their_own_rows(api: Api) -> None:
    customers, users = await owners_shop(api, "owner")
    bob_id = users[1][0]
    params = {"customer_id": customers[1]["id"]}  # bob's customer

    for _ in range(2):
        for user_id, headers in users:
            response = await run(api, "orders_by_customer", params, headers=headers)
            rows = response.json()["data"]
            assert rows and {row["owner"] for row in rows} == {user_id}
            names = {row["customer.name"] for row in rows}
            assert names == ({customers[1]["name"]} if user_id == bob_id else {None})
    assert await readers_kept(api) == 1  # two users, one access: the rule reads @auth.id


async def test_an_entry_goes_stale_when_an_old_collection_name_expires(api: Api) -> None:
    """A key restricted to a collection's old name may read it until the name expires:
    the entry that keeps its access is compiled again then, even past the safety net."""
    await shop(api)
    renamed = await api.apply(
        "rename_collection", collection="orders", new_name="purchases", grace_days=1
    )
    assert renamed.status_code == 200, renamed.text
    tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    catalog = await tessera.catalog.get(api.project, fresh=True)
    cache = ViewCache(tessera, limit=1, revalidate_after=10.0**9)
    stored = {key: value for key, value in ORDERS_BY_CUSTOMER.items() if key != "name"}
    definition = Definition.model_validate({**stored, "base_collection": "purchases"})

    active = cache.compile(catalog, definition)

    (alias,) = catalog.old_names(active.view.base, datetime.now(UTC))
    remaining = (alias.expires_at - datetime.now(UTC)).total_seconds()
    assert 0 < active.stale_after - time.monotonic() <= remaining + 1
