"""The in-process catalog cache: shared-nothing processes see schema changes at once, and
the request path never queries the catalog while nothing changes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import kernel.catalog.cache
from kernel.catalog.model import ProjectCatalog
from kernel.config import Settings
from tests.conftest import Api, running, unique_id


class Counter:
    """Wraps an async callable, counting calls and keeping its behaviour."""

    def __init__(self, wrapped: Callable[..., Any]) -> None:
        self.wrapped = wrapped
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.wrapped(*args, **kwargs)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts catalog loads from the database by any app in this process."""
    counter = Counter(kernel.catalog.cache.load_catalog)
    monkeypatch.setattr(kernel.catalog.cache, "load_catalog", counter)
    return counter


async def new_project(client: httpx.AsyncClient, headers: dict[str, str]) -> Api:
    project_id = unique_id()
    response = await client.post(
        "/api/projects", json={"id": project_id, "name": "Cache test"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return Api(client, headers, project_id)


async def test_a_field_added_through_one_process_is_usable_through_another_at_once(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings()) as a, running(make_settings()) as b:
        via_a = await new_project(a, admin_headers)
        via_b = Api(b, admin_headers, via_a.project)
        await via_a.create_collection("orders", [{"name": "title", "type": "string"}])
        # B has the collection in its cache before the change.
        first = await via_b.create("orders", {"title": "before"})
        assert "qty" not in first

        for index in range(5):
            name = f"qty{index}"
            response = await a.post(
                via_a.url("/collections/orders/fields"),
                json={"name": name, "type": "integer"},
                headers=admin_headers,
            )
            assert response.status_code == 201, response.text
            record = await via_b.create("orders", {"title": "after", name: index})
            assert record[name] == index
            listed = await b.get(
                via_b.url(f"/collections/orders/records?filter[{name}]={index}"),
                headers=admin_headers,
            )
            assert listed.status_code == 200, listed.text
            assert [r["id"] for r in listed.json()["data"]] == [record["id"]]


async def test_a_collection_created_through_one_process_is_listed_by_another_at_once(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings()) as a, running(make_settings()) as b:
        via_a = await new_project(a, admin_headers)
        via_b = Api(b, admin_headers, via_a.project)
        listed = await b.get(via_b.url("/collections"), headers=admin_headers)
        assert listed.json()["data"] == []

        # /schema/apply answers right after the commit and the bus message: B is asked
        # before it can have heard of the change, many times over.
        for index in range(30):
            name = f"things{index}"
            response = await via_a.apply(
                "create_collection", name=name, fields=[{"name": "title", "type": "string"}]
            )
            assert response.status_code == 200, response.text
            listed = await b.get(via_b.url("/collections"), headers=admin_headers)
            assert listed.status_code == 200
            assert name in [c["name"] for c in listed.json()["data"]], index

            response = await via_a.apply(
                "add_field", collection=name, field={"name": "qty", "type": "integer"}
            )
            assert response.status_code == 200, response.text
            one = await b.get(via_b.url(f"/collections/{name}"), headers=admin_headers)
            assert one.status_code == 200, one.text
            assert [f["name"] for f in one.json()["fields"]] == ["title", "qty"], index

        record = await via_b.create("things29", {"title": "hello", "qty": 2})
        assert (record["title"], record["qty"]) == ("hello", 2)

        dropped = await via_a.apply("drop_collection", collection="things0")
        assert dropped.status_code == 200
        listed = await b.get(via_b.url("/collections"), headers=admin_headers)
        assert "things0" not in [c["name"] for c in listed.json()["data"]]
        gone = await b.get(via_b.url("/collections/things0"), headers=admin_headers)
        assert gone.status_code == 404


async def test_other_process_sees_changes_even_before_the_bus_message_arrives(
    make_settings: Callable[..., Settings],
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bus is fast but not instantaneous: hold B's catalog messages back entirely and
    B must still serve what A just committed (catalog reads check the version, the records
    path reloads on a name it does not know)."""
    async with running(make_settings()) as a, running(make_settings()) as b:
        bus = b.app.state.tessera.bus  # type: ignore[attr-defined]
        deliver = bus.dispatch
        held: list[str] = []

        async def hold_catalog(channel: str, payload: str) -> None:
            if channel == "catalog":
                held.append(payload)
                return
            await deliver(channel, payload)

        monkeypatch.setattr(bus, "dispatch", hold_catalog)
        via_a = await new_project(a, admin_headers)
        via_b = Api(b, admin_headers, via_a.project)
        assert (await b.get(via_b.url("/collections"), headers=admin_headers)).json()["data"] == []

        await via_a.create_collection("orders", [{"name": "title", "type": "string"}])
        listed = await b.get(via_b.url("/collections"), headers=admin_headers)
        assert [c["name"] for c in listed.json()["data"]] == ["orders"]
        assert (await via_b.create("orders", {"title": "one"}))["title"] == "one"

        response = await via_a.apply(
            "add_field", collection="orders", field={"name": "qty", "type": "integer"}
        )
        assert response.status_code == 200
        one = await b.get(via_b.url("/collections/orders"), headers=admin_headers)
        assert [f["name"] for f in one.json()["fields"]] == ["title", "qty"]
        assert (await via_b.create("orders", {"title": "two", "qty": 2}))["qty"] == 2
        document = await b.get(via_b.url("/openapi.json"), headers=admin_headers)
        assert "qty" in document.json()["components"]["schemas"]["OrdersCreate"]["properties"]
        assert held, "the test did not hold any catalog message back"


async def eventually(check: Callable[[], Any], seconds: float = 5.0) -> None:
    """Await ``check()`` until it returns true, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "not propagated in time"
        await asyncio.sleep(0.02)


async def test_settings_and_policies_reach_other_processes_over_the_bus(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings()) as a, running(make_settings()) as b:
        via_a = await new_project(a, admin_headers)
        await via_a.create_collection("orders", [{"name": "title", "type": "string"}])
        url = via_a.url("/collections/orders/records?limit=20")
        assert (await b.get(url, headers=admin_headers)).status_code == 200
        assert (await b.get(url)).status_code == 401
        started = time.monotonic()

        response = await a.patch(
            via_a.url(""), json={"settings": {"max_page_limit": 10}}, headers=admin_headers
        )
        assert response.status_code == 200

        async def limited() -> bool:
            return (await b.get(url, headers=admin_headers)).status_code == 400

        await eventually(limited)

        await via_a.set_policies("orders", list="")

        async def opened() -> bool:
            return (await b.get(via_a.url("/collections/orders/records"))).status_code == 200

        await eventually(opened)
        # Well before the 30 s safety-net revalidation: the bus did it.
        assert time.monotonic() - started < 5


async def test_the_hot_path_does_not_query_the_catalog(
    api: Api, loads: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "qty", "type": "integer"}]
    )
    catalog = api.client.app.state.tessera.catalog  # type: ignore[attr-defined]
    refreshes = Counter(catalog.refresh)
    monkeypatch.setattr(catalog, "refresh", refreshes)
    versions = Counter(catalog._current_version)
    monkeypatch.setattr(catalog, "_current_version", versions)

    record = await api.create("orders", {"title": "warm-up", "qty": 1})
    await api.client.get(api.url("/collections/orders/records"), headers=api.headers)
    refreshes.calls = loads.calls = versions.calls = 0

    for index in range(20):
        one = await api.client.get(
            api.url(f"/collections/orders/records/{record['id']}"), headers=api.headers
        )
        assert one.status_code == 200
        page = await api.client.get(
            api.url("/collections/orders/records?filter[qty][gte]=1&sort=qty:desc"),
            headers=api.headers,
        )
        assert page.status_code == 200
        created = await api.create("orders", {"title": f"r{index}", "qty": index + 2})
        updated = await api.client.patch(
            api.url(f"/collections/orders/records/{created['id']}"),
            json={"qty": 100 + index},
            headers=api.headers,
        )
        assert updated.status_code == 200
    assert loads.calls == 0
    assert refreshes.calls == 0
    assert versions.calls == 0


async def test_a_schema_change_invalidates_the_cache_of_the_same_process(
    api: Api, loads: Counter
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    catalog = api.client.app.state.tessera.catalog  # type: ignore[attr-defined]
    await api.create("orders", {"title": "warm-up"})
    before: ProjectCatalog = await catalog.get(api.project)
    assert "note" not in before.collections["orders"].live_fields

    loads.calls = 0
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "note", "type": "text"},
        headers=api.headers,
    )
    assert response.status_code == 201
    after: ProjectCatalog = await catalog.get(api.project)
    assert after.version > before.version
    assert "note" in after.collections["orders"].live_fields

    record = await api.create("orders", {"title": "x", "note": "visible at once"})
    assert record["note"] == "visible at once"
    filtered = await api.client.get(
        api.url("/collections/orders/records?filter[note]=visible at once"), headers=api.headers
    )
    assert [r["id"] for r in filtered.json()["data"]] == [record["id"]]
    described = await api.client.get(api.url("/collections/orders"), headers=api.headers)
    assert [f["name"] for f in described.json()["fields"]] == ["title", "note"]
    # One reload for the new version, then the cache serves again.
    assert loads.calls <= 2
    calls = loads.calls
    for _ in range(5):
        await api.client.get(api.url("/collections/orders/records"), headers=api.headers)
    assert loads.calls == calls


async def test_failed_schema_change_keeps_serving(api: Api, loads: Counter) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "warm-up"})
    catalog = api.client.app.state.tessera.catalog  # type: ignore[attr-defined]
    before = await catalog.get(api.project)
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "title", "type": "text"},
        headers=api.headers,
    )
    assert response.status_code == 409
    assert (await catalog.get(api.project)).version == before.version
    record = await api.create("orders", {"title": "still fine"})
    assert record["title"] == "still fine"


async def test_the_cache_holds_at_most_catalog_cache_size_projects(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str], loads: Counter
) -> None:
    async with running(make_settings(catalog_cache_size=2)) as client:
        projects = [await new_project(client, admin_headers) for _ in range(3)]
        for api in projects:
            await api.create_collection("notes", [{"name": "text", "type": "string"}])
        cache = client.app.state.tessera.catalog  # type: ignore[attr-defined]

        async def read(api: Api) -> None:
            response = await client.get(
                api.url("/collections/notes/records"), headers=admin_headers
            )
            assert response.status_code == 200, response.text

        first, second, third = projects
        await read(first)
        await read(second)
        loads.calls = 0
        await read(first)  # held: no load, and now the most recently used
        assert loads.calls == 0
        await read(third)  # a third project: the least recently used (second) goes
        assert loads.calls == 1
        assert cache.cached(first.project) is not None
        assert cache.cached(second.project) is None
        assert cache.cached(third.project) is not None
        await read(second)  # reloaded on its next request
        assert loads.calls == 2
        assert not cache._loading  # no lock left behind per project ever loaded


async def test_a_load_that_began_before_an_announced_change_is_not_kept(
    api: Api, client: httpx.AsyncClient
) -> None:
    """A load racing a schema change can read the catalog from before the change and end
    after it was announced; keeping it would serve the old schema until revalidation."""
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    cache = client.app.state.tessera.catalog  # type: ignore[attr-defined]
    before = await cache.get(api.project, fresh=True)
    cache.invalidate(api.project, before.version + 1)  # the change, announced
    loaded = await cache.refresh(api.project)  # still reads the old version
    assert loaded.version == before.version
    assert cache.cached(api.project) is None  # served, not kept
