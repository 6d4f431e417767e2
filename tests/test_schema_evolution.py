"""Schema evolution (milestone J): renames with aliases, soft drops, purges, type changes
and the copy-and-swap wizard, through ``/schema/preview`` and ``/schema/apply``.

Every op is checked three ways: what a client sees (records, headers, error codes), what the
catalog says, and what PostgreSQL itself holds (``information_schema``, ``pg_indexes`` and
the ``tessera`` catalog tables read directly).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.config import Settings
from tests.catalog_state import (
    catalog_fields,
    column_values,
    schema_tables,
    snapshot,
    table_columns,
)
from tests.conftest import Api, running

# -- looking at PostgreSQL directly ----------------------------------------------------------


async def op_count(pg: asyncpg.Connection, project: str) -> int:
    return await pg.fetchval(
        "SELECT count(*) FROM tessera.schema_ops WHERE project_id = $1", project
    )


# -- talking to the API ----------------------------------------------------------------------


def records_url(api: Api, collection: str, record_id: int | None = None) -> str:
    path = f"/collections/{collection}/records"
    return api.url(path if record_id is None else f"{path}/{record_id}")


async def listing(
    api: Api, collection: str, params: Any = (), headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.client.get(
        records_url(api, collection), params=params, headers=headers or api.headers
    )


async def rows(api: Api, collection: str, params: Any = ()) -> list[dict[str, Any]]:
    response = await listing(api, collection, [*params, ("limit", "200")])
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def read(api: Api, collection: str, record_id: int) -> dict[str, Any]:
    response = await api.client.get(records_url(api, collection, record_id), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def applied(api: Api, op: str, **args: Any) -> dict[str, Any]:
    response = await api.apply(op, **args)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "applied"
    return body


async def describe(api: Api, collection: str) -> dict[str, Any]:
    response = await api.client.get(api.url(f"/collections/{collection}"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def field_names(api: Api, collection: str) -> list[str]:
    return [field["name"] for field in (await describe(api, collection))["fields"]]


async def collection_aliases(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get(api.url("/collections"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["aliases"]


async def set_settings(api: Api, **settings: Any) -> None:
    response = await api.client.patch(
        f"/api/projects/{api.project}", json={"settings": settings}, headers=api.headers
    )
    assert response.status_code == 200, response.text


async def latest_op(api: Api) -> dict[str, Any]:
    response = await api.client.get(api.url("/schema/ops?limit=1"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"][0]


async def audit(api: Api, action: str) -> list[dict[str, Any]]:
    response = await api.client.get(
        api.url("/audit"), params={"action": action}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The first error of a response that must have ``status``."""
    assert response.status_code == status, response.text
    return response.json()["errors"][0]


def instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, f"{text} has no offset"
    return parsed


async def assert_failed(
    api: Api, op: str, code: str, transitions: tuple[str, ...] = ("pending", "running", "failed")
) -> dict[str, Any]:
    """The newest op is ``op``, recorded failed with ``code`` after ``transitions``."""
    latest = await latest_op(api)
    assert latest["op"] == op
    assert latest["status"] == "failed"
    assert latest["error"]["errors"][0]["code"] == code
    assert [t["status"] for t in latest["transitions"]] == list(transitions)
    assert latest["finished_at"] is not None
    return latest


async def assert_not_recorded(api: Api) -> None:
    """The newest op is the last one applied: a request refused before anything ran (bad
    arguments, a plan that refuses) is answered with its error and leaves no history."""
    assert (await latest_op(api))["status"] == "applied"


def quiet_client(api: Api) -> httpx.AsyncClient:
    """A client on the same app that receives a 500 response instead of the exception."""
    transport = httpx.ASGITransport(app=api.client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://tessera.test")


ORDER_FIELDS = [
    {"name": "title", "type": "string", "required": True},
    {"name": "qty", "type": "integer"},
]


async def orders(api: Api, name: str = "orders") -> list[dict[str, Any]]:
    """A collection with three records (qty 1, 5 and 9)."""
    await api.create_collection(name, ORDER_FIELDS)
    return [await api.create(name, {"title": f"t{qty}", "qty": qty}) for qty in (1, 5, 9)]


# -- rename_collection -----------------------------------------------------------------------


async def test_renamed_collection_answers_under_its_old_name_with_deprecation_headers(
    api: Api, pg: asyncpg.Connection
) -> None:
    records = await orders(api)
    result = await applied(api, "rename_collection", collection="orders", new_name="invoices")
    assert result["ddl"] == [f"ALTER TABLE p_{api.project}.orders RENAME TO invoices"]
    assert result["result"]["collection"] == "invoices"
    assert result["result"]["previous_name"] == "orders"
    expires = instant(result["result"]["alias_expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)

    assert await schema_tables(pg, api.project) == {"invoices"}
    described = await describe(api, "invoices")
    assert (described["name"], described["display_name"]) == ("invoices", "Invoices")
    (alias,) = await collection_aliases(api)
    assert alias["old_name"] == "orders"
    assert alias["collection"] == "invoices"
    assert isinstance(alias["id"], int)
    assert instant(alias["expires_at"]) == expires

    base = api.url("/collections")

    def assert_deprecated(response: httpx.Response, successor: str) -> None:
        assert response.headers["Deprecation"] == "true"
        assert response.headers["Link"] == f'<{base}/{successor}>; rel="successor-version"'

    # List with filters and a sort, through the old name.
    response = await listing(
        api, "orders", [("filter[qty][gte]", "5"), ("sort", "qty:desc"), ("limit", "10")]
    )
    assert response.status_code == 200, response.text
    assert [r["qty"] for r in response.json()["data"]] == [9, 5]
    assert_deprecated(response, "invoices/records")
    response = await listing(api, "orders", {"filter[title]": "t1"})
    assert [r["id"] for r in response.json()["data"]] == [records[0]["id"]]

    # Read, create, update, delete through the old name.
    first = records[0]["id"]
    response = await api.client.get(records_url(api, "orders", first), headers=api.headers)
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "t1"
    assert_deprecated(response, f"invoices/records/{first}")

    response = await api.client.post(
        records_url(api, "orders"), json={"title": "new", "qty": 3}, headers=api.headers
    )
    assert response.status_code == 201, response.text
    created = response.json()["id"]
    assert_deprecated(response, "invoices/records")

    response = await api.client.patch(
        records_url(api, "orders", created), json={"qty": 4}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["qty"] == 4
    assert_deprecated(response, f"invoices/records/{created}")

    response = await api.client.delete(records_url(api, "orders", first), headers=api.headers)
    assert response.status_code == 204, response.text
    assert_deprecated(response, f"invoices/records/{first}")

    response = await api.client.post(
        api.url("/collections/orders/validate"), json={"record": {"qty": 1}}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is False
    assert_deprecated(response, "invoices/validate")

    # The new name serves the same rows, without deprecation headers.
    response = await listing(api, "invoices", {"sort": "qty:asc"})
    assert response.status_code == 200
    assert "Deprecation" not in response.headers
    assert "Link" not in response.headers
    assert [r["qty"] for r in response.json()["data"]] == [4, 5, 9]
    assert await column_values(pg, api.project, "invoices", "qty") == {
        records[1]["id"]: 5,
        records[2]["id"]: 9,
        created: 4,
    }


async def test_retired_collection_alias_makes_the_old_name_404(
    api: Api, pg: asyncpg.Connection
) -> None:
    records = await orders(api)
    await applied(api, "rename_collection", collection="orders", new_name="invoices")
    (alias,) = await collection_aliases(api)

    retired = await applied(api, "retire_alias", alias_id=alias["id"])
    assert retired["result"] == {"alias": "orders", "kind": "collection", "retired": True}
    assert await collection_aliases(api) == []
    assert await pg.fetchval(
        "SELECT retired_at IS NOT NULL FROM tessera.aliases WHERE id = $1", alias["id"]
    )

    record_id = records[0]["id"]
    for method, path in (
        ("GET", records_url(api, "orders")),
        ("GET", records_url(api, "orders", record_id)),
        ("POST", records_url(api, "orders")),
        ("PATCH", records_url(api, "orders", record_id)),
        ("DELETE", records_url(api, "orders", record_id)),
        ("GET", api.url("/collections/orders")),
    ):
        response = await api.client.request(
            method,
            path,
            json={"title": "x"} if method in ("POST", "PATCH") else None,
            headers=api.headers,
        )
        assert error(response, 404)["code"] == "collection_not_found", (method, path)
    assert len(await rows(api, "invoices")) == 3

    # Retiring it again is refused: it is no longer live.
    response = await api.apply("retire_alias", alias_id=alias["id"])
    assert error(response, 404)["code"] == "alias_not_found"
    await assert_not_recorded(api)


async def test_rename_collection_without_grace_retires_the_old_name_at_once(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    result = await applied(
        api, "rename_collection", collection="orders", new_name="invoices", grace_days=0
    )
    assert result["result"]["alias_expires_at"] is None
    assert any("stops working at once" in warning for warning in result["warnings"])
    assert (
        await pg.fetchval("SELECT count(*) FROM tessera.aliases WHERE project_id = $1", api.project)
        == 0
    )
    assert error(await listing(api, "orders"), 404)["code"] == "collection_not_found"
    assert len(await rows(api, "invoices")) == 3

    # The freed name can be used again at once.
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    assert await rows(api, "orders") == []


async def test_project_default_grace_period_applies_when_none_is_given(api: Api) -> None:
    await orders(api)
    await set_settings(api, alias_grace_days=3)
    result = await applied(api, "rename_collection", collection="orders", new_name="invoices")
    expires = instant(result["result"]["alias_expires_at"])
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)

    await set_settings(api, alias_grace_days=0)
    await applied(api, "rename_collection", collection="invoices", new_name="bills")
    assert error(await listing(api, "invoices"), 404)["code"] == "collection_not_found"
    # The alias of the first rename still lives (its own expiry), pointing at the new name.
    response = await listing(api, "orders")
    assert response.status_code == 200
    assert response.headers["Link"] == (
        f'<{api.url("/collections/bills/records")}>; rel="successor-version"'
    )


async def test_rename_chain_resolves_every_old_name_to_the_current_one(api: Api) -> None:
    await orders(api, "alpha")
    await applied(api, "rename_collection", collection="alpha", new_name="beta")
    await applied(api, "rename_collection", collection="beta", new_name="gamma")
    assert {(a["old_name"], a["collection"]) for a in await collection_aliases(api)} == {
        ("alpha", "gamma"),
        ("beta", "gamma"),
    }
    for old in ("alpha", "beta"):
        response = await listing(api, old, {"filter[qty][gt]": "1"})
        assert response.status_code == 200, (old, response.text)
        assert sorted(r["qty"] for r in response.json()["data"]) == [5, 9]
        assert response.headers["Link"] == (
            f'<{api.url("/collections/gamma/records")}>; rel="successor-version"'
        )
        created = await api.create(old, {"title": old})
        assert (await read(api, "gamma", created["id"]))["title"] == old


async def test_writes_during_a_rename_keep_succeeding(api: Api, pg: asyncpg.Connection) -> None:
    await orders(api)

    async def write(index: int) -> httpx.Response:
        return await api.client.post(
            records_url(api, "orders"), json={"title": f"w{index}"}, headers=api.headers
        )

    results = await asyncio.gather(
        *(write(index) for index in range(15)),
        api.apply("rename_collection", collection="orders", new_name="invoices"),
        *(write(index) for index in range(15, 30)),
    )
    assert results[15].status_code == 200, results[15].text
    writes = results[:15] + results[16:]
    assert [r.status_code for r in writes] == [201] * 30, [r.text for r in writes]
    assert await pg.fetchval(f'SELECT count(*) FROM "p_{api.project}".invoices') == 33


async def expire_aliases_soon(api: Api, pg: asyncpg.Connection, seconds: float) -> None:
    """Move every live alias's expiry to ``seconds`` from now (as if the grace period were
    almost over), and make the app reload its catalog."""
    await pg.execute(
        "UPDATE tessera.aliases SET expires_at = now() + make_interval(secs => $2)"
        " WHERE project_id = $1 AND retired_at IS NULL",
        api.project,
        seconds,
    )
    await set_settings(api, alias_grace_days=30)


async def test_old_names_stop_working_when_the_grace_period_ends(
    api: Api, pg: asyncpg.Connection
) -> None:
    records = await orders(api)
    await applied(api, "rename_collection", collection="orders", new_name="invoices", grace_days=1)
    await applied(api, "rename_field", collection="invoices", field="qty", new_name="amount")
    (old_name,) = (await describe(api, "invoices"))["old_names"]
    assert old_name["old_name"] == "orders" and old_name["expires_at"]
    await expire_aliases_soon(api, pg, 1.5)

    response = await listing(api, "orders", {"filter[qty][gt]": "1"})
    assert response.status_code == 200, response.text
    assert [r["qty"] for r in response.json()["data"]] == [5, 9]
    assert "qty" in await read(api, "invoices", records[0]["id"])
    await asyncio.sleep(1.6)

    assert error(await listing(api, "orders"), 404)["code"] == "collection_not_found"
    record = await read(api, "invoices", records[0]["id"])
    assert "qty" not in record
    assert record["amount"] == 1
    response = await api.client.post(
        records_url(api, "invoices"), json={"title": "x", "qty": 1}, headers=api.headers
    )
    assert error(response, 422)["code"] == "unknown_field"
    assert error(await listing(api, "invoices", {"filter[qty]": "1"}), 400)["field"] == (
        "filter[qty]"
    )
    assert await collection_aliases(api) == []
    assert (await describe(api, "invoices"))["aliases"] == []
    assert (await describe(api, "invoices"))["old_names"] == []

    # An expired old name is free for anything.
    await api.create_collection("orders", [{"name": "qty", "type": "integer"}])
    await applied(api, "rename_field", collection="invoices", field="amount", new_name="qty")


async def test_cursor_pagination_sorted_by_an_old_field_name(api: Api) -> None:
    await api.create_collection("orders", [{"name": "qty", "type": "integer"}])
    for qty in (4, 2, 8, 6, 10):
        await api.create("orders", {"qty": qty})
    await applied(api, "rename_field", collection="orders", field="qty", new_name="amount")
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = [("sort", "qty:desc"), ("limit", "2"), *([("cursor", cursor)] if cursor else [])]
        body = (await listing(api, "orders", params)).json()
        seen += [r["qty"] for r in body["data"]]
        cursor = body["page"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [10, 8, 6, 4, 2]


async def test_rename_collection_refuses_clashes_and_changes_nothing(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    await orders(api, "items")
    await orders(api, "legacy")
    await applied(api, "rename_collection", collection="legacy", new_name="archive")
    before = await snapshot(pg, api.project)

    response = await api.apply("rename_collection", collection="orders", new_name="items")
    assert error(response, 409) == {
        "field": "new_name",
        "code": "duplicate",
        "message": "collection 'items' already exists",
    }
    await assert_not_recorded(api)

    response = await api.apply("rename_collection", collection="orders", new_name="legacy")
    problem = error(response, 409)
    assert problem["code"] == "alias_name"
    assert problem["field"] == "new_name"
    assert "'legacy' is an old name of 'archive'" in problem["message"]
    await assert_not_recorded(api)

    response = await api.apply("rename_collection", collection="nowhere", new_name="elsewhere")
    assert error(response, 404)["code"] == "collection_not_found"
    response = await api.apply("rename_collection", collection="orders", new_name="orders")
    assert error(response, 422)["code"] == "same_name"
    response = await api.apply("rename_collection", collection="orders", new_name="Bad Name")
    assert error(response, 422)["code"] == "invalid_name"
    response = await api.apply(
        "rename_collection", collection="orders", new_name="x2", grace_days=-1
    )
    assert error(response, 422)["field"] == "args.grace_days"

    response = await api.client.post(
        api.url("/collections"), json={"name": "legacy", "fields": []}, headers=api.headers
    )
    assert error(response, 409)["code"] == "alias_name"

    assert await snapshot(pg, api.project) == before
    assert await schema_tables(pg, api.project) == {"orders", "items", "archive"}


async def test_collection_can_be_renamed_back_to_its_own_old_name(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    await applied(api, "rename_collection", collection="orders", new_name="invoices")
    await applied(api, "rename_collection", collection="invoices", new_name="orders")

    assert await schema_tables(pg, api.project) == {"orders"}
    assert [(a["old_name"], a["collection"]) for a in await collection_aliases(api)] == [
        ("invoices", "orders")
    ]
    response = await listing(api, "orders")
    assert response.status_code == 200
    assert "Deprecation" not in response.headers
    response = await listing(api, "invoices")
    assert response.status_code == 200
    assert response.headers["Deprecation"] == "true"
    live = await pg.fetch(
        "SELECT old_name FROM tessera.aliases WHERE project_id = $1 AND retired_at IS NULL",
        api.project,
    )
    assert [row["old_name"] for row in live] == ["invoices"]


async def test_concurrent_renames_of_one_collection_serialize(
    api: Api, pg: asyncpg.Connection
) -> None:
    for round_ in range(3):
        name = f"orders{round_}"
        await orders(api, name)
        targets = [f"{name}_x", f"{name}_y"]
        responses = await asyncio.gather(
            *(api.apply("rename_collection", collection=name, new_name=new) for new in targets)
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses[0] == 200, [r.text for r in responses]
        assert statuses[1] in (404, 409), [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()["result"]["collection"]
        loser = next(r for r in responses if r.status_code != 200)
        assert error(loser, loser.status_code)["code"] in ("collection_not_found", "table_busy")
        (lost,) = set(targets) - {winner}

        tables = await schema_tables(pg, api.project)
        assert winner in tables
        assert name not in tables
        assert lost not in tables
        assert set(await catalog_fields(pg, api.project, winner)) == {"title", "qty"}
        catalog = await pg.fetch(
            "SELECT name, sql_table_name FROM tessera.collections"
            " WHERE project_id = $1 AND name LIKE $2",
            api.project,
            f"{name}%",
        )
        assert [(row["name"], row["sql_table_name"]) for row in catalog] == [(winner, winner)]
        assert len(await rows(api, name)) == 3

    statuses = await pg.fetch(
        "SELECT status, count(*) AS n FROM tessera.schema_ops"
        " WHERE project_id = $1 AND op = 'rename_collection' GROUP BY status ORDER BY status",
        api.project,
    )
    assert [(row["status"], row["n"]) for row in statuses] == [("applied", 3), ("failed", 3)]


async def test_concurrent_renames_to_one_new_name_let_only_one_through(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api, "first")
    await orders(api, "second")
    responses = await asyncio.gather(
        *(
            api.apply("rename_collection", collection=name, new_name="merged")
            for name in ("first", "second")
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert error(loser, 409)["code"] in ("duplicate", "alias_name")
    tables = await schema_tables(pg, api.project)
    assert "merged" in tables
    assert len(tables) == 2


async def test_key_restricted_to_a_renamed_collection_keeps_working(api: Api) -> None:
    records = await orders(api)
    await orders(api, "other")
    await api.set_policies("orders", list="", read="", create="", update="", delete="")
    key = await api.key(["records:read", "records:write"], collections=["orders"])
    assert (await listing(api, "orders", headers=key)).status_code == 200

    await applied(api, "rename_collection", collection="orders", new_name="invoices")
    for name in ("orders", "invoices"):
        response = await listing(api, name, headers=key)
        assert response.status_code == 200, (name, response.text)
        assert len(response.json()["data"]) == 3
    response = await api.client.patch(
        records_url(api, "invoices", records[0]["id"]), json={"qty": 2}, headers=key
    )
    assert response.status_code == 200, response.text
    assert error(await listing(api, "other", headers=key), 403)["code"] == (
        "collection_not_allowed"
    )
    keys = await api.client.get(api.url("/api-keys"), headers=api.headers)
    assert keys.json()["data"][0]["collections"] == ["invoices"]

    # Once the old name is retired the key still reaches the collection by its new name.
    (alias,) = await collection_aliases(api)
    await applied(api, "retire_alias", alias_id=alias["id"])
    response = await listing(api, "invoices", headers=key)
    assert response.status_code == 200, response.text
    assert error(await listing(api, "orders", headers=key), 404)["code"] == ("collection_not_found")


async def test_key_restricted_to_a_collection_renamed_without_grace_follows_it_at_once(
    api: Api,
) -> None:
    await orders(api)
    await api.set_policies("orders", list="", read="")
    key = await api.key(["records:read"], collections=["orders"])
    assert (await listing(api, "orders", headers=key)).status_code == 200

    await applied(api, "rename_collection", collection="orders", new_name="invoices", grace_days=0)
    response = await listing(api, "invoices", headers=key)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3
    listed = await api.client.get(api.url("/collections"), headers=key)
    assert [c["name"] for c in listed.json()["data"]] == ["invoices"]

    # A collection that later takes the old name is not reachable with the key.
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.set_policies("orders", list="")
    assert error(await listing(api, "orders", headers=key), 403)["code"] == (
        "collection_not_allowed"
    )


# -- rename_field ----------------------------------------------------------------------------


async def test_renamed_field_old_name_works_in_writes_filters_sorts_and_reads(
    api: Api, pg: asyncpg.Connection
) -> None:
    records = await orders(api)
    result = await applied(
        api, "rename_field", collection="orders", field="qty", new_name="quantity"
    )
    assert result["ddl"] == [f"ALTER TABLE p_{api.project}.orders RENAME qty TO quantity"]
    assert result["result"]["field"] == "quantity"
    assert result["result"]["previous_name"] == "qty"

    assert list(await table_columns(pg, api.project, "orders")) == [
        "id",
        "created_at",
        "updated_at",
        "title",
        "quantity",
    ]
    described = await describe(api, "orders")
    assert [f["name"] for f in described["fields"]] == ["title", "quantity"]
    (alias,) = described["aliases"]
    assert alias["old_name"] == "qty"
    assert alias["field"] == "quantity"
    assert isinstance(alias["id"], int)

    # Reads return the value under both keys while the alias lives.
    record = await read(api, "orders", records[0]["id"])
    assert record["quantity"] == 1
    assert record["qty"] == 1

    def assert_renamed(response: httpx.Response) -> None:
        assert response.headers["Deprecation"] == "true"
        assert response.headers["Tessera-Renamed-Fields"] == "qty=quantity"
        assert response.headers["Link"] == f'<{response.request.url.path}>; rel="successor-version"'

    response = await api.client.post(
        records_url(api, "orders"), json={"title": "old", "qty": 7}, headers=api.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["quantity"] == 7
    assert response.json()["qty"] == 7
    assert_renamed(response)
    created = response.json()["id"]

    response = await api.client.patch(
        records_url(api, "orders", created), json={"qty": 8}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["quantity"] == 8
    assert_renamed(response)
    assert (await column_values(pg, api.project, "orders", "quantity"))[created] == 8

    response = await listing(api, "orders", {"filter[qty][gte]": "5", "sort": "qty:desc"})
    assert response.status_code == 200, response.text
    assert [r["quantity"] for r in response.json()["data"]] == [9, 8, 5]
    assert_renamed(response)
    response = await listing(api, "orders", {"sort": "qty:asc"})
    assert [r["qty"] for r in response.json()["data"]] == [1, 5, 8, 9]

    # Both names in one body name one field.
    response = await api.client.post(
        records_url(api, "orders"),
        json={"title": "x", "qty": 1, "quantity": 2},
        headers=api.headers,
    )
    assert error(response, 422)["code"] == "duplicate_field"

    # The new name needs no alias and carries no deprecation.
    response = await listing(api, "orders", {"filter[quantity][lt]": "5"})
    assert [r["id"] for r in response.json()["data"]] == [records[0]["id"]]
    assert "Deprecation" not in response.headers
    assert "Tessera-Renamed-Fields" not in response.headers


async def test_rename_field_rewrites_the_policies_that_name_it(api: Api) -> None:
    await orders(api)
    await api.set_policies("orders", list="qty > 4", read="", create="qty < 100")
    user = await api.user("reader@example.com")
    assert sorted(
        r["qty"] for r in (await listing(api, "orders", headers=user)).json()["data"]
    ) == [
        5,
        9,
    ]
    result = await applied(
        api, "rename_field", collection="orders", field="qty", new_name="quantity"
    )
    assert (
        "policy create on orders (rule names qty) is rewritten to the new name"
        in (result["warnings"])
    )
    rewritten = result["result"]["references_rewritten"]
    assert sorted(item["name"] for item in rewritten) == ["create on orders", "list on orders"]
    policies = (await describe(api, "orders"))["policies"]
    assert policies["list"] == "quantity > 4"
    assert policies["create"] == "quantity < 100"
    assert policies["read"] == ""

    response = await listing(api, "orders", headers=user)
    assert response.status_code == 200, response.text
    assert sorted(r["quantity"] for r in response.json()["data"]) == [5, 9]
    response = await api.client.post(
        records_url(api, "orders"), json={"title": "big", "quantity": 500}, headers=user
    )
    assert error(response, 403)["code"] == "policy_denied"
    response = await api.client.post(
        records_url(api, "orders"), json={"title": "small", "qty": 50}, headers=user
    )
    assert response.status_code == 201, response.text


async def test_renamed_field_without_grace_refuses_the_old_name(
    api: Api, pg: asyncpg.Connection
) -> None:
    records = await orders(api)
    result = await applied(
        api, "rename_field", collection="orders", field="qty", new_name="quantity", grace_days=0
    )
    assert result["result"]["alias_expires_at"] is None
    assert (await describe(api, "orders"))["aliases"] == []
    record = await read(api, "orders", records[0]["id"])
    assert "qty" not in record
    assert record["quantity"] == 1

    response = await api.client.post(
        records_url(api, "orders"), json={"title": "x", "qty": 1}, headers=api.headers
    )
    assert error(response, 422) == {
        "field": "qty",
        "code": "unknown_field",
        "message": "orders has no field 'qty'",
    }
    response = await api.client.patch(
        records_url(api, "orders", records[0]["id"]), json={"qty": 1}, headers=api.headers
    )
    assert error(response, 422)["code"] == "unknown_field"
    assert error(await listing(api, "orders", {"filter[qty]": "1"}), 400)["field"] == (
        "filter[qty]"
    )
    assert error(await listing(api, "orders", {"sort": "qty:asc"}), 400)["field"] == "sort"
    assert (
        await pg.fetchval("SELECT count(*) FROM tessera.aliases WHERE project_id = $1", api.project)
        == 0
    )


async def test_field_rename_chain_keeps_every_old_name_working(api: Api) -> None:
    records = await orders(api)
    await applied(api, "rename_field", collection="orders", field="qty", new_name="amount")
    await applied(api, "rename_field", collection="orders", field="amount", new_name="quantity")
    aliases = (await describe(api, "orders"))["aliases"]
    assert sorted((a["old_name"], a["field"]) for a in aliases) == [
        ("amount", "quantity"),
        ("qty", "quantity"),
    ]
    record = await read(api, "orders", records[1]["id"])
    assert (record["quantity"], record["amount"], record["qty"]) == (5, 5, 5)
    for old in ("qty", "amount"):
        response = await listing(
            api, "orders", [(f"filter[{old}][between]", "4,10"), ("sort", f"{old}:desc")]
        )
        assert [r["quantity"] for r in response.json()["data"]] == [9, 5], old
        assert response.headers["Tessera-Renamed-Fields"] == f"{old}=quantity"
        created = await api.create("orders", {"title": old, old: 11})
        assert created["quantity"] == 11


async def test_retired_field_alias_stops_the_old_name(api: Api) -> None:
    records = await orders(api)
    await applied(api, "rename_field", collection="orders", field="qty", new_name="quantity")
    (alias,) = (await describe(api, "orders"))["aliases"]
    result = await applied(api, "retire_alias", alias_id=alias["id"])
    assert result["result"] == {"alias": "qty", "kind": "field", "retired": True}

    assert "qty" not in await read(api, "orders", records[0]["id"])
    response = await api.client.post(
        records_url(api, "orders"), json={"title": "x", "qty": 1}, headers=api.headers
    )
    assert error(response, 422)["code"] == "unknown_field"
    assert (await listing(api, "orders", {"filter[qty]": "1"})).status_code == 400


async def test_rename_field_refuses_clashes_and_changes_nothing(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string"},
            {"name": "qty", "type": "integer"},
            {"name": "price", "type": "float"},
        ],
    )
    await applied(api, "rename_field", collection="orders", field="price", new_name="cost")
    before = await snapshot(pg, api.project)

    response = await api.apply("rename_field", collection="orders", field="qty", new_name="title")
    assert error(response, 409) == {
        "field": "new_name",
        "code": "duplicate",
        "message": "field 'title' already exists",
    }
    await assert_not_recorded(api)
    response = await api.apply("rename_field", collection="orders", field="qty", new_name="price")
    assert error(response, 409)["code"] == "alias_name"
    response = await api.apply("rename_field", collection="orders", field="qty", new_name="id")
    assert error(response, 422)["code"] == "reserved_name"
    response = await api.apply("rename_field", collection="orders", field="nope", new_name="x")
    assert error(response, 404)["code"] == "field_not_found"
    response = await api.apply("rename_field", collection="nope", field="qty", new_name="x")
    assert error(response, 404)["code"] == "collection_not_found"
    response = await api.apply("rename_field", collection="orders", field="qty", new_name="qty")
    assert error(response, 422)["code"] == "same_name"
    response = await api.apply("rename_field", collection="orders", field="qty", new_name="9x")
    assert error(response, 422)["code"] == "invalid_name"
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "price", "type": "text"},
        headers=api.headers,
    )
    assert error(response, 409)["code"] == "alias_name"
    assert await snapshot(pg, api.project) == before

    # Renaming a field back to its own old name retires that alias and leaves a new one.
    await applied(api, "rename_field", collection="orders", field="cost", new_name="price")
    assert [(a["old_name"], a["field"]) for a in (await describe(api, "orders"))["aliases"]] == [
        ("cost", "price")
    ]
    assert "price" in await table_columns(pg, api.project, "orders")


# -- drop_field and restore_field ------------------------------------------------------------


async def test_dropped_field_is_hidden_refused_in_writes_and_its_data_kept(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "note", "type": "text"}]
    )
    first = await api.create("orders", {"title": "a", "note": "keep me"})
    second = await api.create("orders", {"title": "b"})

    result = await applied(api, "drop_field", collection="orders", field="note")
    assert result["ddl"] == []
    assert result["result"]["is_deleted"] is True
    assert instant(result["result"]["purge_possible_from"]) > datetime.now(UTC) + timedelta(days=6)

    assert await field_names(api, "orders") == ["title"]
    listed = await api.client.get(api.url("/collections"), headers=api.headers)
    (collection,) = listed.json()["data"]
    assert [f["name"] for f in collection["fields"]] == ["title"]
    assert "note" not in await read(api, "orders", first["id"])
    assert all("note" not in row for row in await rows(api, "orders"))

    response = await api.client.post(
        records_url(api, "orders"), json={"title": "c", "note": "x"}, headers=api.headers
    )
    assert error(response, 422) == {
        "field": "note",
        "code": "field_dropped",
        "message": "note was removed from orders",
    }
    response = await api.client.patch(
        records_url(api, "orders", first["id"]), json={"note": "x"}, headers=api.headers
    )
    assert error(response, 422)["code"] == "field_dropped"
    assert (await listing(api, "orders", {"filter[note]": "keep me"})).status_code == 400
    response = await api.client.post(
        api.url("/collections/orders/validate"),
        json={"record": {"note": "x"}},
        headers=api.headers,
    )
    assert response.json()["errors"][0]["code"] == "field_dropped"

    # The data is still in PostgreSQL, untouched.
    assert "note" in await table_columns(pg, api.project, "orders")
    assert await column_values(pg, api.project, "orders", "note") == {
        first["id"]: "keep me",
        second["id"]: None,
    }
    assert (await catalog_fields(pg, api.project, "orders"))["note"][4] is True

    restored = await applied(api, "restore_field", collection="orders", field="note")
    assert restored["result"] == {"collection": "orders", "field": "note", "is_deleted": False}
    assert await field_names(api, "orders") == ["title", "note"]
    assert (await read(api, "orders", first["id"]))["note"] == "keep me"
    updated = await api.client.patch(
        records_url(api, "orders", second["id"]), json={"note": "now"}, headers=api.headers
    )
    assert updated.status_code == 200, updated.text


async def test_dropping_a_field_a_policy_uses_is_refused(api: Api, pg: asyncpg.Connection) -> None:
    await orders(api)
    await api.set_policies("orders", list="qty > 1", read="")
    before = await snapshot(pg, api.project)
    response = await api.apply("drop_field", collection="orders", field="qty")
    problem = error(response, 409)
    assert problem["code"] == "field_in_use"
    assert problem["field"] == "field"
    assert "list" in problem["message"]
    await assert_failed(api, "drop_field", "field_in_use")
    assert await snapshot(pg, api.project) == before
    assert await field_names(api, "orders") == ["title", "qty"]

    response = await api.apply("drop_field", collection="orders", field="nope")
    assert error(response, 404)["code"] == "field_not_found"
    response = await api.apply("restore_field", collection="orders", field="qty")
    assert error(response, 409)["code"] == "not_dropped"


async def test_required_field_while_dropped_accepts_creates_and_restores_carefully(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    result = await applied(api, "drop_field", collection="orders", field="title")
    assert result["ddl"] == [f"ALTER TABLE p_{api.project}.orders ALTER COLUMN title DROP NOT NULL"]
    assert (await table_columns(pg, api.project, "orders"))["title"][1] == "YES"
    created = await api.create("orders", {"qty": 2})
    assert "title" not in created

    before = await snapshot(pg, api.project)
    response = await api.apply("restore_field", collection="orders", field="title")
    assert error(response, 422)["code"] == "has_empty_values"
    await assert_failed(api, "restore_field", "has_empty_values")
    assert await snapshot(pg, api.project) == before
    assert await field_names(api, "orders") == ["qty"]

    await applied(api, "restore_field", collection="orders", field="title", required=False)
    (title,) = [f for f in (await describe(api, "orders"))["fields"] if f["name"] == "title"]
    assert title["required"] is False
    assert (await read(api, "orders", created["id"]))["title"] is None
    assert (await read(api, "orders", created["id"] - 1))["title"] == "t9"


async def test_required_field_restored_without_nulls_is_required_again(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    await applied(api, "drop_field", collection="orders", field="title")
    result = await applied(api, "restore_field", collection="orders", field="title")
    assert result["ddl"] == [f"ALTER TABLE p_{api.project}.orders ALTER COLUMN title SET NOT NULL"]
    assert (await table_columns(pg, api.project, "orders"))["title"][1] == "NO"
    assert (await catalog_fields(pg, api.project, "orders"))["title"][2] is True
    response = await api.client.post(
        records_url(api, "orders"), json={"qty": 1}, headers=api.headers
    )
    assert error(response, 422)["code"] == "required"


# -- purge_field -----------------------------------------------------------------------------


async def test_purge_field_refusals_then_purge(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "note", "type": "text"}]
    )
    await api.create("orders", {"title": "a", "note": "secret"})
    response = await api.apply(
        "purge_field", collection="orders", field="note", confirm="orders.note"
    )
    assert error(response, 409)["code"] == "not_dropped"
    await applied(api, "drop_field", collection="orders", field="note")
    before = await snapshot(pg, api.project)

    for confirm in ("", "note", "orders.Note", "orders.note "):
        response = await api.apply(
            "purge_field", collection="orders", field="note", confirm=confirm
        )
        problem = error(response, 422)
        assert problem["code"] == "confirmation_required", confirm
        assert problem["field"] == "confirm"
        assert "'orders.note'" in problem["message"]
    response = await api.apply("purge_field", collection="orders", field="note")
    assert error(response, 422)["field"] == "args.confirm"
    # Arguments and the plan are checked before anything is recorded.
    await assert_not_recorded(api)

    response = await api.apply(
        "purge_field", collection="orders", field="note", confirm="orders.note"
    )
    assert error(response, 409)["code"] == "retention_window"
    await assert_not_recorded(api)
    assert await snapshot(pg, api.project) == before

    await set_settings(api, purge_retention_days=0)
    designer = await api.key(["schema:write"])
    response = await api.client.post(
        api.url("/schema/apply"),
        json={
            "op": "purge_field",
            "args": {"collection": "orders", "field": "note", "confirm": "orders.note"},
        },
        headers=designer,
    )
    assert error(response, 403)["code"] == "admin_only"

    result = await applied(
        api, "purge_field", collection="orders", field="note", confirm="orders.note"
    )
    assert result["ddl"] == [f"ALTER TABLE p_{api.project}.orders DROP COLUMN note"]
    assert result["result"] == {"collection": "orders", "field": "note", "purged": True}
    assert "note" not in await table_columns(pg, api.project, "orders")
    assert "note" not in await catalog_fields(pg, api.project, "orders")
    response = await api.apply("restore_field", collection="orders", field="note")
    assert error(response, 404)["code"] == "field_not_found"
    # The name is free again.
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "note", "type": "integer"},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text


#: kind → (SQL creating an object that uses the column, how purge lists it, SQL dropping it)
DEPENDENTS = {
    "index": (
        "CREATE INDEX {name} ON {table} (note)",
        "index {name}",
        "DROP INDEX {schema}.{name}",
    ),
    "view": (
        "CREATE VIEW {schema}.{name} AS SELECT id, note FROM {table}",
        "view {schema}.{name}",
        "DROP VIEW {schema}.{name}",
    ),
    "check": (
        "ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (length(note) < 100)",
        "constraint {name}",
        "ALTER TABLE {table} DROP CONSTRAINT {name}",
    ),
}


@pytest.mark.parametrize("kind", sorted(DEPENDENTS))
async def test_purge_field_is_refused_while_something_depends_on_the_column(
    api: Api, pg: asyncpg.Connection, kind: str
) -> None:
    await api.create_collection(
        "orders", [{"name": "title", "type": "string"}, {"name": "note", "type": "text"}]
    )
    await api.create("orders", {"title": "a", "note": "n"})
    await applied(api, "drop_field", collection="orders", field="note")
    await set_settings(api, purge_retention_days=0)
    schema = f"p_{api.project}"
    names = {"name": f"dep_{kind}", "schema": schema, "table": f"{schema}.orders"}
    create, listed, drop = DEPENDENTS[kind]
    await pg.execute(create.format(**names))
    before = await snapshot(pg, api.project)

    response = await api.apply(
        "purge_field", collection="orders", field="note", confirm="orders.note"
    )
    problem = error(response, 409)
    assert problem["code"] == "has_dependents"
    assert problem["field"] == "field"
    assert problem["message"] == (
        f"'note' cannot be purged while these depend on it: {listed.format(**names)}"
    )
    await assert_failed(api, "purge_field", "has_dependents")
    preview = await api.preview(
        "purge_field", collection="orders", field="note", confirm="orders.note"
    )
    assert error(preview, 409)["code"] == "has_dependents"
    assert await snapshot(pg, api.project) == before

    # Once the dependent object is gone, the purge goes through.
    await pg.execute(drop.format(**names))
    await applied(api, "purge_field", collection="orders", field="note", confirm="orders.note")
    assert "note" not in await table_columns(pg, api.project, "orders")


async def test_purge_of_a_unique_field_ignores_its_own_unique_index(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "orders",
        [{"name": "title", "type": "string"}, {"name": "sku", "type": "string", "unique": True}],
    )
    await set_settings(api, purge_retention_days=0)
    await applied(api, "drop_field", collection="orders", field="sku")
    await applied(api, "purge_field", collection="orders", field="sku", confirm="orders.sku")
    assert "sku" not in await table_columns(pg, api.project, "orders")
    indexes = await pg.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1", f"p_{api.project}"
    )
    assert all("sku" not in row["indexdef"] for row in indexes)


async def unique_indexes(pg: asyncpg.Connection, project: str) -> dict[str, str]:
    """Unique index name → its column list, for the project's tables."""
    rows = await pg.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1"
        " AND indexname LIKE 'uq_%' ORDER BY indexname",
        f"p_{project}",
    )
    return {row["indexname"]: row["indexdef"].rsplit("(", 1)[1].rstrip(")") for row in rows}


async def test_renames_keep_unique_indexes_named_after_their_table_and_column(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "orders",
        [{"name": "title", "type": "string"}, {"name": "sku", "type": "string", "unique": True}],
    )
    await api.create("orders", {"title": "a", "sku": "A-1"})
    result = await applied(
        api, "rename_field", collection="orders", field="sku", new_name="code", grace_days=0
    )
    assert result["ddl"] == [
        f"ALTER TABLE p_{api.project}.orders RENAME sku TO code",
        f"ALTER INDEX IF EXISTS p_{api.project}.uq_orders_sku RENAME TO uq_orders_code",
    ]
    assert await unique_indexes(pg, api.project) == {"uq_orders_code": "code"}
    response = await api.client.post(
        records_url(api, "orders"), json={"code": "A-1"}, headers=api.headers
    )
    assert error(response, 409)["code"] == "unique_violation"

    # The old name can be used by a new unique field.
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "sku", "type": "string", "unique": True},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text

    await applied(api, "rename_collection", collection="orders", new_name="invoices", grace_days=0)
    assert await unique_indexes(pg, api.project) == {
        "uq_invoices_code": "code",
        "uq_invoices_sku": "sku",
    }
    # A new collection taking the old name gets its own unique indexes.
    await api.create_collection("orders", [{"name": "sku", "type": "string", "unique": True}])

    # The renamed field can be dropped and purged: its own index is not a dependent.
    await set_settings(api, purge_retention_days=0)
    await applied(api, "drop_field", collection="invoices", field="code")
    await applied(api, "purge_field", collection="invoices", field="code", confirm="invoices.code")
    assert "code" not in await table_columns(pg, api.project, "invoices")
    assert await unique_indexes(pg, api.project) == {
        "uq_invoices_sku": "sku",
        "uq_orders_sku": "sku",
    }


# -- change_field_type: safe conversions in place --------------------------------------------


async def test_integer_to_float_keeps_every_value(api: Api, pg: asyncpg.Connection) -> None:
    values = [0, 1, -5, 123456789, 2**53, None]
    await api.create_collection("m", [{"name": "n", "type": "integer"}])
    ids = [(await api.create("m", {"n": value}))["id"] for value in values]

    result = await applied(api, "change_field_type", collection="m", field="n", new_type="float")
    assert result["result"]["type"] == "float"
    assert (await table_columns(pg, api.project, "m"))["n"][0] == "double precision"
    assert (await catalog_fields(pg, api.project, "m"))["n"][0] == "float"
    stored = await column_values(pg, api.project, "m", "n")
    for record_id, value in zip(ids, values, strict=True):
        assert stored[record_id] == value
        read_back = (await read(api, "m", record_id))["n"]
        assert read_back == value
        assert value is None or isinstance(read_back, float)
    assert (await api.create("m", {"n": 2.5}))["n"] == 2.5


async def test_string_to_text_keeps_every_value(api: Api, pg: asyncpg.Connection) -> None:
    values = ["", "plain", "ünïcødé ✓ 漢字", "x" * 255, "line\nbreak", None]
    await api.create_collection("m", [{"name": "s", "type": "string"}])
    ids = [(await api.create("m", {"s": value}))["id"] for value in values]

    await applied(api, "change_field_type", collection="m", field="s", new_type="text")
    assert (await table_columns(pg, api.project, "m"))["s"][0] == "text"
    stored = await column_values(pg, api.project, "m", "s")
    assert [stored[i] for i in ids] == values
    assert [(await read(api, "m", i))["s"] for i in ids] == values
    assert (await api.create("m", {"s": "y" * 1000}))["s"] == "y" * 1000


async def test_wider_string_keeps_every_value_and_narrower_is_unsafe(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "m", [{"name": "s", "type": "string", "options": {"max_length": 10}}]
    )
    values = ["0123456789", "short", None]
    ids = [(await api.create("m", {"s": value}))["id"] for value in values]

    await applied(
        api,
        "change_field_type",
        collection="m",
        field="s",
        new_type="string",
        options={"max_length": 50},
    )
    assert (await table_columns(pg, api.project, "m"))["s"][2] == 50
    (field,) = (await describe(api, "m"))["fields"]
    assert field["options"] == {"max_length": 50}
    assert [(await read(api, "m", i))["s"] for i in ids] == values
    assert (await api.create("m", {"s": "z" * 50}))["s"] == "z" * 50

    response = await api.apply(
        "change_field_type",
        collection="m",
        field="s",
        new_type="string",
        options={"max_length": 5},
    )
    assert error(response, 422)["code"] == "unsafe_change"
    assert (await table_columns(pg, api.project, "m"))["s"][2] == 50
    response = await api.apply(
        "change_field_type",
        collection="m",
        field="s",
        new_type="string",
        options={"max_length": 50},
    )
    assert error(response, 422)["code"] == "same_type"
    response = await api.apply("change_field_type", collection="m", field="s", new_type="nope")
    assert error(response, 422)["code"] == "unknown_type"


async def test_date_to_datetime_is_midnight_utc(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("m", [{"name": "d", "type": "date"}])
    values = ["2024-01-15", "2024-07-01", "2000-02-29", None]
    ids = [(await api.create("m", {"d": value}))["id"] for value in values]

    await applied(api, "change_field_type", collection="m", field="d", new_type="datetime")
    assert (await table_columns(pg, api.project, "m"))["d"][0] == "timestamp with time zone"
    expected = [
        datetime(2024, 1, 15, tzinfo=UTC),
        datetime(2024, 7, 1, tzinfo=UTC),
        datetime(2000, 2, 29, tzinfo=UTC),
        None,
    ]
    stored = await column_values(pg, api.project, "m", "d")
    assert [stored[i] for i in ids] == expected
    for record_id, value in zip(ids, expected, strict=True):
        text = (await read(api, "m", record_id))["d"]
        assert (text and instant(text)) == value


async def test_date_to_datetime_uses_the_project_time_zone(
    api: Api, pg: asyncpg.Connection
) -> None:
    await set_settings(api, timezone="Europe/Paris")
    await api.create_collection("m", [{"name": "d", "type": "date"}])
    winter = (await api.create("m", {"d": "2024-01-15"}))["id"]
    summer = (await api.create("m", {"d": "2024-07-01"}))["id"]

    await applied(api, "change_field_type", collection="m", field="d", new_type="datetime")
    assert instant((await read(api, "m", winter))["d"]) == datetime(2024, 1, 14, 23, 0, tzinfo=UTC)
    assert instant((await read(api, "m", summer))["d"]) == datetime(2024, 6, 30, 22, 0, tzinfo=UTC)
    stored = await column_values(pg, api.project, "m", "d")
    assert stored[winter] == datetime(2024, 1, 14, 23, 0, tzinfo=UTC)


async def test_change_type_converts_the_default_too(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("m", [{"name": "n", "type": "integer", "default": 3}])
    await applied(api, "change_field_type", collection="m", field="n", new_type="float")
    (field,) = (await describe(api, "m"))["fields"]
    assert field["default"] == 3.0
    created = await api.create("m", {})
    assert created["n"] == 3.0
    assert isinstance(created["n"], float)
    default = await pg.fetchval(
        "SELECT column_default FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = 'm' AND column_name = 'n'",
        f"p_{api.project}",
    )
    assert default is not None
    assert float(default.split("::")[0].strip("'")) == 3.0


# -- change_field_type: unsafe conversions and the wizard ------------------------------------


@pytest.mark.parametrize(
    ("source", "values", "target", "convertible", "failing"),
    [
        ("text", ["42", " 7 ", "abc", "1.5", None], "integer", 2, ["abc", "1.5"]),
        ("float", [1.0, -3.0, 2.5, None, 0.1], "integer", 2, [2.5, 0.1]),
    ],
    ids=["text_to_integer", "float_to_integer"],
)
async def test_unsafe_conversion_is_refused_by_apply_and_previewed_as_a_wizard(
    api: Api,
    pg: asyncpg.Connection,
    source: str,
    values: list[Any],
    target: str,
    convertible: int,
    failing: list[Any],
) -> None:
    await api.create_collection("m", [{"name": "v", "type": source}])
    ids = [(await api.create("m", {"v": value}))["id"] for value in values]
    before = await snapshot(pg, api.project)

    response = await api.apply("change_field_type", collection="m", field="v", new_type=target)
    problem = error(response, 422)
    assert problem["code"] == "unsafe_change"
    await assert_not_recorded(api)
    assert await snapshot(pg, api.project) == before

    preview = await api.preview("change_field_type", collection="m", field="v", new_type=target)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["safe"] is False
    assert body["ddl"] == []
    assert f"{source} → {target} is not a safe conversion" in body["warnings"][0]
    wizard = body["wizard"]
    assert wizard["kind"] == "copy_and_swap"
    temporary = f"v_{target}"
    assert [(step["op"], step["args"]) for step in wizard["steps"]] == [
        (
            "add_field",
            {"collection": "m", "field": {"name": temporary, "type": target, "options": {}}},
        ),
        (
            "copy_field",
            {"collection": "m", "source": "v", "target": temporary, "on_error": "fail"},
        ),
        ("swap_fields", {"collection": "m", "field": "v", "replacement": temporary}),
    ]
    conversion = body["impact"]["conversion"]
    assert conversion["convertible"] == convertible
    assert conversion["failing"] == len(failing)
    assert conversion["empty"] == 1
    by_id = dict(zip(ids, values, strict=True))
    samples = conversion["sample_failures"]
    assert [sample["value"] for sample in samples] == failing
    for sample in samples:
        assert by_id[sample["id"]] == sample["value"]
        assert sample["error"]
    assert await snapshot(pg, api.project) == before


async def test_wizard_converts_and_reports_the_failing_rows(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection(
        "m", [{"name": "title", "type": "string"}, {"name": "code", "type": "text"}]
    )
    values = ["42", "abc", None, "-7"]
    ids = [
        (await api.create("m", {"title": f"r{i}", "code": v}))["id"] for i, v in enumerate(values)
    ]
    preview = await api.preview(
        "change_field_type", collection="m", field="code", new_type="integer"
    )
    add, copy, swap = preview.json()["wizard"]["steps"]

    await applied(api, add["op"], **add["args"])
    assert (await table_columns(pg, api.project, "m"))["code_integer"][0] == "bigint"

    # The copy's own preview counts what converts and samples what fails.
    copy_preview = await api.preview(copy["op"], **copy["args"])
    assert copy_preview.status_code == 200, copy_preview.text
    conversion = copy_preview.json()["impact"]["conversion"]
    assert (conversion["convertible"], conversion["failing"], conversion["empty"]) == (2, 1, 1)
    assert conversion["sample_failures"][0]["id"] == ids[1]

    # on_error "fail": refused, nothing copied.
    before = await snapshot(pg, api.project)
    response = await api.apply(copy["op"], **copy["args"])
    problem = error(response, 422)
    assert problem["code"] == "conversion_failed"
    assert f"record {ids[1]}" in problem["message"]
    await assert_failed(api, "copy_field", "conversion_failed")
    assert set((await column_values(pg, api.project, "m", "code_integer")).values()) == {None}
    assert await snapshot(pg, api.project) == before

    # on_error "null": applied, the failing value left empty and counted.
    result = await applied(api, copy["op"], **{**copy["args"], "on_error": "null"})
    assert result["result"] == {
        "collection": "m",
        "source": "code",
        "target": "code_integer",
        "copied": 3,
        "left_empty": 1,
    }
    assert await column_values(pg, api.project, "m", "code_integer") == dict(
        zip(ids, [42, None, None, -7], strict=True)
    )

    swapped = await applied(api, swap["op"], **swap["args"])
    assert swapped["result"] == {
        "collection": "m",
        "field": "code",
        "type": "integer",
        "previous_kept_as": "code_previous",
    }
    fields = (await describe(api, "m"))["fields"]
    assert [(f["name"], f["type"], f["column"]) for f in fields] == [
        ("title", "string", "title"),
        ("code", "integer", "code"),
    ]
    assert [(await read(api, "m", i))["code"] for i in ids] == [42, None, None, -7]
    response = await listing(api, "m", {"filter[code][gt]": "0"})
    assert [r["id"] for r in response.json()["data"]] == [ids[0]]

    columns = await table_columns(pg, api.project, "m")
    assert columns["code"][0] == "bigint"
    assert columns["code_previous"][0] == "text"
    assert "code_integer" not in columns
    catalog = await catalog_fields(pg, api.project, "m")
    assert catalog["code_previous"] == ("text", "code_previous", False, False, True)
    assert catalog["code"] == ("integer", "code", False, False, False)
    assert await column_values(pg, api.project, "m", "code_previous") == dict(
        zip(ids, values, strict=True)
    )
    assert (await api.create("m", {"code": 5}))["code"] == 5
    response = await api.client.post(
        records_url(api, "m"), json={"code_previous": "x"}, headers=api.headers
    )
    assert error(response, 422)["code"] == "field_dropped"

    # The old values can be brought back.
    await applied(api, "restore_field", collection="m", field="code_previous")
    assert (await read(api, "m", ids[1]))["code_previous"] == "abc"


async def test_wizard_keeps_a_unique_field_unique(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("m", [{"name": "code", "type": "text", "unique": True}])
    ids = [(await api.create("m", {"code": value}))["id"] for value in ("1", "2")]
    preview = await api.preview(
        "change_field_type", collection="m", field="code", new_type="integer"
    )
    for step in preview.json()["wizard"]["steps"]:
        await applied(api, step["op"], **step["args"])

    assert await unique_indexes(pg, api.project) == {
        "uq_m_code": "code",
        "uq_m_code_previous": "code_previous",
    }
    assert (await table_columns(pg, api.project, "m"))["code"][0] == "bigint"
    (field,) = (await describe(api, "m"))["fields"]
    assert (field["name"], field["type"], field["unique"]) == ("code", "integer", True)
    assert [(await read(api, "m", i))["code"] for i in ids] == [1, 2]
    response = await api.client.post(records_url(api, "m"), json={"code": 2}, headers=api.headers)
    assert error(response, 409)["code"] == "unique_violation"


async def test_swap_refuses_values_that_break_uniqueness_and_changes_nothing(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("m", [{"name": "code", "type": "text", "unique": True}])
    for value in ("1", "01"):
        await api.create("m", {"code": value})
    preview = await api.preview(
        "change_field_type", collection="m", field="code", new_type="integer"
    )
    add, copy, swap = preview.json()["wizard"]["steps"]
    await applied(api, add["op"], **add["args"])
    await applied(api, copy["op"], **copy["args"])
    before = await snapshot(pg, api.project)

    assert preview_duplicates(await api.preview(swap["op"], **swap["args"])) == (1, 2)
    response = await api.apply(swap["op"], **swap["args"])
    refused = error(response, 409)
    assert refused["code"] == "duplicates_exist"
    assert "code=1 (2 records)" in refused["message"]
    await assert_failed(api, "swap_fields", "duplicates_exist")
    assert await snapshot(pg, api.project) == before
    assert [f["name"] for f in (await describe(api, "m"))["fields"]] == ["code", "code_integer"]


def preview_duplicates(response: httpx.Response) -> tuple[int, int]:
    """``(groups, rows)`` of the records a preview found colliding under a unique index."""
    assert response.status_code == 200, response.text
    duplicates = response.json()["impact"]["duplicates"]
    return duplicates["groups"], duplicates["rows"]


async def test_copy_and_swap_refuse_bad_arguments(api: Api) -> None:
    await api.create_collection(
        "m", [{"name": "a", "type": "text"}, {"name": "b", "type": "integer"}]
    )
    response = await api.apply("copy_field", collection="m", source="a", target="a")
    assert error(response, 422)["code"] == "same_field"
    response = await api.apply("copy_field", collection="m", source="a", target="zz")
    assert error(response, 404)["code"] == "field_not_found"
    response = await api.apply("copy_field", collection="m", source="a", target="b", on_error="x")
    assert error(response, 422)["field"] == "args.on_error"
    response = await api.apply("swap_fields", collection="m", field="a", replacement="a")
    assert error(response, 422)["code"] == "same_field"
    response = await api.apply(
        "swap_fields", collection="m", field="a", replacement="b", keep_as="b"
    )
    assert error(response, 409)["code"] == "duplicate"


# -- a failure in the middle of an op --------------------------------------------------------


@pytest.mark.parametrize("table", ["fields", "collections"])
async def test_failure_injected_mid_op_leaves_table_and_catalog_unchanged(
    api: Api, pg: asyncpg.Connection, table: str
) -> None:
    await orders(api)
    before = await snapshot(pg, api.project)
    trigger = f"boom_{api.project}"
    await pg.execute(
        "CREATE OR REPLACE FUNCTION public.tessera_test_boom() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN"
        " RAISE EXCEPTION 'injected failure renaming to %', NEW.name; END $$"
    )
    await pg.execute(
        f'CREATE TRIGGER "{trigger}" BEFORE UPDATE ON tessera.{table} FOR EACH ROW'
        " WHEN (NEW.name = 'boom') EXECUTE FUNCTION public.tessera_test_boom()"
    )
    try:
        async with quiet_client(api) as quiet:
            if table == "fields":
                body = {"collection": "orders", "field": "qty", "new_name": "boom"}
                op = "rename_field"
            else:
                body = {"collection": "orders", "new_name": "boom"}
                op = "rename_collection"
            response = await quiet.post(
                api.url("/schema/apply"), json={"op": op, "args": body}, headers=api.headers
            )
    finally:
        await pg.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON tessera.{table}')
        await pg.execute("DROP FUNCTION IF EXISTS public.tessera_test_boom()")

    assert error(response, 500)["code"] == "internal"
    columns = await table_columns(pg, api.project, "orders")
    assert "qty" in columns
    assert "boom" not in columns
    assert await schema_tables(pg, api.project) == {"orders"}
    assert await snapshot(pg, api.project) == before
    failed = await assert_failed(api, op, "internal")
    assert "injected failure renaming to boom" in failed["error"]["errors"][0]["message"]
    assert await audit(api, f"schema.{op}") == []
    assert len(await rows(api, "orders", [("filter[qty][gt]", "0")])) == 3

    # The engine is not left in a bad state: the same op goes through afterwards.
    await applied(api, op, **body)


# -- preview ---------------------------------------------------------------------------------


async def test_preview_of_every_op_changes_nothing(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string", "required": True},
            {"name": "qty", "type": "integer", "default": 1},
            {"name": "due", "type": "date"},
            {"name": "code", "type": "text"},
            {"name": "note", "type": "text"},
            {"name": "spare", "type": "integer"},
        ],
    )
    await api.create("orders", {"title": "a", "qty": 2, "due": "2024-01-01", "code": "12"})
    await api.create_collection("legacy", [{"name": "title", "type": "string"}])
    await applied(api, "rename_collection", collection="legacy", new_name="archive")
    await api.create_collection("gone", [{"name": "title", "type": "string"}])
    await applied(api, "drop_collection", collection="gone")
    await applied(api, "drop_field", collection="orders", field="note")
    await set_settings(api, purge_retention_days=0)
    (alias,) = await collection_aliases(api)
    before = await snapshot(pg, api.project)
    ops_before = await op_count(pg, api.project)

    previews: list[tuple[str, dict[str, Any]]] = [
        ("rename_collection", {"collection": "orders", "new_name": "invoices"}),
        ("rename_field", {"collection": "orders", "field": "qty", "new_name": "quantity"}),
        ("drop_field", {"collection": "orders", "field": "title"}),
        ("restore_field", {"collection": "orders", "field": "note"}),
        ("purge_field", {"collection": "orders", "field": "note", "confirm": "orders.note"}),
        ("change_field_type", {"collection": "orders", "field": "qty", "new_type": "float"}),
        ("change_field_type", {"collection": "orders", "field": "due", "new_type": "datetime"}),
        ("change_field_type", {"collection": "orders", "field": "code", "new_type": "integer"}),
        ("copy_field", {"collection": "orders", "source": "code", "target": "spare"}),
        ("swap_fields", {"collection": "orders", "field": "code", "replacement": "spare"}),
        ("retire_alias", {"alias_id": alias["id"]}),
        ("restore_collection", {"collection": "gone"}),
        ("purge_collection", {"collection": "gone", "confirm": "gone"}),
    ]
    for op, args in previews:
        response = await api.preview(op, **args)
        assert response.status_code == 200, (op, response.text)
        body = response.json()
        assert body["op"] == op
        assert isinstance(body["ddl"], list)
        assert isinstance(body["impact"], dict)
        assert await snapshot(pg, api.project) == before, op
    assert await op_count(pg, api.project) == ops_before

    # The previews announce exactly the DDL apply would run.
    schema = f"p_{api.project}"
    expected = {
        "rename_collection": [f"ALTER TABLE {schema}.orders RENAME TO invoices"],
        "rename_field": [f"ALTER TABLE {schema}.orders RENAME qty TO quantity"],
        "purge_field": [f"ALTER TABLE {schema}.orders DROP COLUMN note"],
        "purge_collection": [f"DROP TABLE {schema}.gone"],
    }
    for op, ddl in expected.items():
        args = next(a for name, a in previews if name == op)
        assert (await api.preview(op, **args)).json()["ddl"] == ddl, op
    rename = await api.preview("rename_collection", collection="orders", new_name="invoices")
    impact = rename.json()["impact"]
    assert impact["rows"] == 1
    assert impact["rewrites_table"] is False
    assert impact["old_names"] == {"aliases": 0, "used_in_last_days": 7, "recently_used": []}
    change = await api.preview(
        "change_field_type", collection="orders", field="qty", new_type="float"
    )
    assert change.json()["safe"] is True
    assert change.json()["wizard"] is None
    assert change.json()["impact"]["rewrites_table"] is True
    assert change.json()["ddl"] == [
        f"ALTER TABLE {schema}.orders ALTER COLUMN qty DROP DEFAULT",
        f"ALTER TABLE {schema}.orders ALTER COLUMN qty TYPE DOUBLE PRECISION"
        " USING CAST(qty AS DOUBLE PRECISION)",
        f"ALTER TABLE {schema}.orders ALTER COLUMN qty SET DEFAULT CAST('1.0' AS DOUBLE PRECISION)",
    ]


async def test_preview_reports_recent_use_of_old_names(api: Api) -> None:
    await orders(api)
    await applied(api, "rename_collection", collection="orders", new_name="invoices")
    assert (await listing(api, "orders")).status_code == 200
    await api.client.app.state.tessera.alias_usage.flush()  # type: ignore[attr-defined]
    preview = await api.preview("rename_collection", collection="invoices", new_name="bills")
    assert preview.status_code == 200, preview.text
    old_names = preview.json()["impact"]["old_names"]
    assert old_names["aliases"] == 1
    assert [entry["old_name"] for entry in old_names["recently_used"]] == ["orders"]


# -- maintenance mode and preflight ----------------------------------------------------------


async def test_maintenance_mode_refuses_apply_unless_overridden(
    api: Api, pg: asyncpg.Connection
) -> None:
    await orders(api)
    await set_settings(api, maintenance=True)
    before = await snapshot(pg, api.project)
    response = await api.apply("rename_field", collection="orders", field="qty", new_name="amount")
    problem = error(response, 409)
    assert problem["code"] == "maintenance_mode"
    assert "override_maintenance" in problem["message"]
    await assert_failed(api, "rename_field", "maintenance_mode")
    assert await snapshot(pg, api.project) == before

    # Previews still work; they change nothing anyway.
    preview = await api.preview("rename_field", collection="orders", field="qty", new_name="amount")
    assert preview.status_code == 200, preview.text

    response = await api.client.post(
        api.url("/schema/apply"),
        json={
            "op": "rename_field",
            "args": {"collection": "orders", "field": "qty", "new_name": "amount"},
            "override_maintenance": True,
        },
        headers=api.headers,
    )
    assert response.status_code == 200, response.text
    assert "amount" in await table_columns(pg, api.project, "orders")

    await set_settings(api, maintenance=False)
    await applied(api, "drop_field", collection="orders", field="amount")


async def test_long_held_lock_refuses_apply_quickly_with_table_busy(
    api: Api,
    pg: asyncpg.Connection,
    database_url: str,
    make_settings: Callable[..., Settings],
) -> None:
    await orders(api)
    before = await snapshot(pg, api.project)
    async with running(make_settings(ddl_lock_timeout_ms=300)) as other:
        holder = await asyncpg.connect(database_url)
        transaction = holder.transaction()
        await transaction.start()
        try:
            await holder.execute(f'LOCK TABLE "p_{api.project}".orders IN ACCESS SHARE MODE')
            await asyncio.sleep(0.6)
            started = time.monotonic()
            response = await other.post(
                api.url("/schema/apply"),
                json={
                    "op": "rename_field",
                    "args": {"collection": "orders", "field": "qty", "new_name": "amount"},
                },
                headers=api.headers,
            )
            elapsed = time.monotonic() - started
        finally:
            await transaction.rollback()
            await holder.close()
    problem = error(response, 409)
    assert problem["code"] == "table_busy"
    # Refused by the preflight (naming the holders), not after queueing for the lock.
    assert "locked by 1 other transaction" in problem["message"]
    assert elapsed < 3
    assert await snapshot(pg, api.project) == before
    await assert_failed(api, "rename_field", "table_busy")

    await applied(api, "rename_field", collection="orders", field="qty", new_name="amount")


# -- history and audit -----------------------------------------------------------------------


async def test_every_op_is_recorded_with_transitions_and_audited(api: Api) -> None:
    await orders(api)
    await api.create_collection("gone", [{"name": "title", "type": "string"}])
    await applied(api, "drop_collection", collection="gone")
    await api.create_collection("m", [{"name": "code", "type": "text"}])
    await api.create("m", {"code": "1"})
    await set_settings(api, purge_retention_days=0)

    steps: list[tuple[str, dict[str, Any], str, str, Any]] = [
        (
            "rename_collection",
            {"collection": "orders", "new_name": "invoices"},
            "collection",
            "orders",
            {"name": "orders", "display_name": "Orders"},
        ),
        (
            "rename_field",
            {"collection": "invoices", "field": "qty", "new_name": "amount"},
            "field",
            "invoices.qty",
            {"name": "qty", "column": "qty"},
        ),
        (
            "change_field_type",
            {"collection": "invoices", "field": "amount", "new_type": "float"},
            "field",
            "invoices.amount",
            {"type": "integer", "options": {}},
        ),
        (
            "drop_field",
            {"collection": "invoices", "field": "amount"},
            "field",
            "invoices.amount",
            {"field": "amount", "is_deleted": False},
        ),
        (
            "restore_field",
            {"collection": "invoices", "field": "amount"},
            "field",
            "invoices.amount",
            None,
        ),
        (
            "add_field",
            {"collection": "m", "field": {"name": "code_integer", "type": "integer"}},
            "field",
            "m.code_integer",
            None,
        ),
        (
            "copy_field",
            {"collection": "m", "source": "code", "target": "code_integer"},
            "field",
            "m.code_integer",
            None,
        ),
        (
            "swap_fields",
            {"collection": "m", "field": "code", "replacement": "code_integer"},
            "field",
            "m.code",
            None,
        ),
        (
            "purge_field",
            {"collection": "m", "field": "code_previous", "confirm": "m.code_previous"},
            "field",
            "m.code_previous",
            "describe",
        ),
        ("restore_collection", {"collection": "gone"}, "collection", "gone", None),
    ]
    for op, args, target_type, target, before in steps:
        result = await applied(api, op, **args)
        assert [t["status"] for t in result["transitions"]] == ["pending", "running", "applied"]
        assert result["args"] == args
        assert result["actor"]["kind"] == "admin"
        stored = await api.client.get(api.url(f"/schema/ops/{result['id']}"), headers=api.headers)
        assert stored.json()["status"] == "applied"
        assert stored.json()["result"] == result["result"]
        (event,) = (await audit(api, f"schema.{op}"))[:1]
        assert event["target_type"] == target_type, op
        assert event["target"] == target, op
        assert event["after"] == result["result"], op
        if before == "describe":
            assert event["before"]["name"] == "code_previous"
            assert event["before"]["type"] == "text"
        else:
            assert event["before"] == before, op

    (alias,) = await collection_aliases(api)
    await applied(api, "retire_alias", alias_id=alias["id"])
    (event,) = await audit(api, "schema.retire_alias")
    assert (event["target_type"], event["target"]) == ("alias", "orders")

    await applied(api, "drop_collection", collection="gone")
    result = await applied(api, "purge_collection", collection="gone", confirm="gone")
    assert [t["status"] for t in result["transitions"]] == ["pending", "running", "applied"]
    (event,) = await audit(api, "schema.purge_collection")
    assert event["before"] == {"collection": "gone", "fields": ["title"]}
    assert event["after"] == {"collection": "gone", "purged": True}

    # A refused request is not in the history; an op that ran and failed is, with its
    # error, and writes no audit event.
    response = await api.apply("drop_field", collection="invoices", field="nothing")
    assert response.status_code == 404
    await assert_not_recorded(api)
    await api.set_policies("invoices", list="title = 'x'")
    response = await api.apply("drop_field", collection="invoices", field="title")
    assert response.status_code == 409
    failed = await assert_failed(api, "drop_field", "field_in_use")
    assert failed["error"]["status"] == 409
    assert failed["finished_at"] is not None
    assert len(await audit(api, "schema.drop_field")) == 1


async def test_restore_and_purge_collection(api: Api, pg: asyncpg.Connection) -> None:
    records = await orders(api)
    response = await api.apply("restore_collection", collection="orders")
    assert error(response, 409)["code"] == "not_dropped"
    response = await api.apply("purge_collection", collection="orders", confirm="orders")
    assert error(response, 409)["code"] == "not_dropped"

    await applied(api, "drop_collection", collection="orders")
    assert error(await listing(api, "orders"), 404)["code"] == "collection_not_found"
    await applied(api, "restore_collection", collection="orders")
    assert [r["id"] for r in await rows(api, "orders")] == [r["id"] for r in records]

    await applied(api, "drop_collection", collection="orders")
    response = await api.apply("purge_collection", collection="orders", confirm="order")
    assert error(response, 422)["code"] == "confirmation_required"
    response = await api.apply("purge_collection", collection="orders", confirm="orders")
    assert error(response, 409)["code"] == "retention_window"
    assert "orders" in await schema_tables(pg, api.project)

    await set_settings(api, purge_retention_days=0)
    designer = await api.key(["schema:write"])
    response = await api.client.post(
        api.url("/schema/apply"),
        json={"op": "purge_collection", "args": {"collection": "orders", "confirm": "orders"}},
        headers=designer,
    )
    assert error(response, 403)["code"] == "admin_only"
    await applied(api, "purge_collection", collection="orders", confirm="orders")
    assert await schema_tables(pg, api.project) == set()
    assert (
        await pg.fetchval(
            "SELECT count(*) FROM tessera.collections WHERE project_id = $1", api.project
        )
        == 0
    )


# -- permissions -----------------------------------------------------------------------------


async def permission_fixture(api: Api) -> dict[str, dict[str, Any]]:
    """A project where every evolution op has valid arguments; returns op → args."""
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string"},
            {"name": "qty", "type": "integer"},
            {"name": "amount", "type": "float"},
            {"name": "note", "type": "text"},
        ],
    )
    await api.create("orders", {"title": "a", "qty": 1})
    await applied(api, "drop_field", collection="orders", field="note")
    await api.create_collection("legacy", [{"name": "title", "type": "string"}])
    await applied(api, "rename_collection", collection="legacy", new_name="archive")
    await api.create_collection("gone", [{"name": "title", "type": "string"}])
    await applied(api, "drop_collection", collection="gone")
    await set_settings(api, purge_retention_days=0)
    (alias,) = await collection_aliases(api)
    return {
        "rename_collection": {"collection": "orders", "new_name": "invoices"},
        "rename_field": {"collection": "orders", "field": "qty", "new_name": "quantity"},
        "drop_field": {"collection": "orders", "field": "qty"},
        "restore_field": {"collection": "orders", "field": "note"},
        "purge_field": {"collection": "orders", "field": "note", "confirm": "orders.note"},
        "change_field_type": {"collection": "orders", "field": "qty", "new_type": "float"},
        "copy_field": {"collection": "orders", "source": "qty", "target": "amount"},
        "swap_fields": {"collection": "orders", "field": "qty", "replacement": "amount"},
        "retire_alias": {"alias_id": alias["id"]},
        "restore_collection": {"collection": "gone"},
        "purge_collection": {"collection": "gone", "confirm": "gone"},
    }


EVOLUTION_OPS = [
    "rename_collection",
    "rename_field",
    "drop_field",
    "restore_field",
    "purge_field",
    "change_field_type",
    "copy_field",
    "swap_fields",
    "retire_alias",
    "restore_collection",
    "purge_collection",
]


@pytest.mark.parametrize("op", EVOLUTION_OPS)
async def test_evolution_op_is_denied_without_schema_rights(
    api: Api, pg: asyncpg.Connection, op: str
) -> None:
    args = (await permission_fixture(api))[op]
    writer = await api.key(["records:read", "records:write"])
    user = await api.user("someone@example.com")
    before = await snapshot(pg, api.project)
    ops_before = await op_count(pg, api.project)

    for path in ("/schema/apply", "/schema/preview"):
        for headers, status, code in (
            (user, 403, "missing_scope"),
            (writer, 403, "missing_scope"),
            ({}, 401, None),
        ):
            response = await api.client.post(
                api.url(path), json={"op": op, "args": args}, headers=headers
            )
            problem = error(response, status)
            if code is not None:
                assert problem["code"] == code, (path, headers, response.text)

    assert await snapshot(pg, api.project) == before
    assert await op_count(pg, api.project) == ops_before

    # The same call by an admin goes through (the denial was about the caller).
    preview = await api.preview(op, **args)
    assert preview.status_code == 200, preview.text


@pytest.mark.parametrize("op", EVOLUTION_OPS)
async def test_key_with_schema_write_may_evolve_but_only_admins_purge(
    api: Api, pg: asyncpg.Connection, op: str
) -> None:
    args = (await permission_fixture(api))[op]
    designer = await api.key(["schema:write"])
    response = await api.client.post(
        api.url("/schema/apply"), json={"op": op, "args": args}, headers=designer
    )
    if op in ("purge_field", "purge_collection"):
        assert error(response, 403)["code"] == "admin_only"
        assert (await latest_op(api))["op"] != op
    else:
        assert response.status_code == 200, response.text
        assert response.json()["actor"]["kind"] == "key"
        newest = (await audit(api, f"schema.{op}"))[0]
        assert newest["actor"]["kind"] == "key"
        assert newest["after"] == response.json()["result"]


async def test_keys_of_another_project_may_not_evolve_this_one(api: Api) -> None:
    await orders(api)
    other = f"{api.project}o"
    created = await api.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=api.headers
    )
    assert created.status_code == 201, created.text
    foreign = Api(api.client, api.headers, other)
    designer = await foreign.key(["schema:write"])
    response = await api.client.post(
        api.url("/schema/apply"),
        json={"op": "rename_collection", "args": {"collection": "orders", "new_name": "x"}},
        headers=designer,
    )
    assert error(response, 403)["code"] == "wrong_project"
    assert (await describe(api, "orders"))["name"] == "orders"
