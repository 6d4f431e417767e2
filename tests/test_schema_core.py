"""The DDL engine and the core schema operations: create_collection, add_field,
drop_collection and set_policies, through ``/schema/preview``, ``/schema/apply`` and the
shorthand routes. Table and catalog are checked in PostgreSQL itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.config import Settings
from tests.catalog_state import catalog_fields, schema_tables, snapshot, table_columns
from tests.conftest import ADMIN_EMAIL, Api, running, unique_id

# -- looking at PostgreSQL directly ----------------------------------------------------------


async def op_count(pg: asyncpg.Connection, project: str) -> int:
    return await pg.fetchval(
        "SELECT count(*) FROM tessera.schema_ops WHERE project_id = $1", project
    )


async def latest_op(api: Api) -> dict[str, Any]:
    response = await api.client.get(api.url("/schema/ops?limit=1"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"][0]


def codes(response: httpx.Response) -> list[str]:
    return [item["code"] for item in response.json()["errors"]]


def first_error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["errors"][0]


ORDERS_FIELDS = [
    {"name": "title", "type": "string", "required": True, "options": {"max_length": 80}},
    {"name": "sku", "type": "string", "unique": True},
    {"name": "qty", "type": "integer"},
    {"name": "placed_at", "type": "datetime"},
]


# -- create_collection -------------------------------------------------------------------------


async def test_create_collection_makes_a_real_table_with_system_and_field_columns(
    api: Api, pg: asyncpg.Connection
) -> None:
    response = await api.client.post(
        api.url("/collections"),
        json={"name": "orders", "display_name": "Customer orders", "fields": ORDERS_FIELDS},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "orders"
    assert body["display_name"] == "Customer orders"
    assert [f["name"] for f in body["fields"]] == ["title", "sku", "qty", "placed_at"]

    columns = await table_columns(pg, api.project, "orders")
    assert list(columns) == ["id", "created_at", "updated_at", "title", "sku", "qty", "placed_at"]
    assert columns["id"][:2] == ("bigint", "NO")
    assert columns["created_at"][:2] == ("timestamp with time zone", "NO")
    assert columns["updated_at"][:2] == ("timestamp with time zone", "NO")
    assert columns["title"][:2] == ("character varying", "NO")
    assert columns["sku"][:2] == ("character varying", "YES")
    assert columns["qty"][:2] == ("bigint", "YES")
    assert columns["placed_at"][:2] == ("timestamp with time zone", "YES")

    identity = await pg.fetchval(
        "SELECT is_identity FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'id'",
        f"p_{api.project}",
    )
    assert identity == "YES"
    primary_key = await pg.fetchval(
        "SELECT string_agg(a.attname, ',') FROM pg_index x"
        " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)"
        " WHERE x.indrelid = CAST($1 AS regclass) AND x.indisprimary",
        f'"p_{api.project}"."orders"',
    )
    assert primary_key == "id"
    max_length = await pg.fetchval(
        "SELECT character_maximum_length FROM information_schema.columns"
        " WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'title'",
        f"p_{api.project}",
    )
    assert max_length == 80

    assert await catalog_fields(pg, api.project, "orders") == {
        "title": ("string", "title", True, False, False),
        "sku": ("string", "sku", False, True, False),
        "qty": ("integer", "qty", False, False, False),
        "placed_at": ("datetime", "placed_at", False, False, False),
    }


async def test_unique_field_gets_a_unique_index(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", ORDERS_FIELDS)
    indexes = {
        row["indexname"]: row["indexdef"]
        for row in await pg.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
            f"p_{api.project}",
            "orders",
        )
    }
    assert "uq_orders_sku" in indexes
    assert indexes["uq_orders_sku"].startswith("CREATE UNIQUE INDEX uq_orders_sku")
    assert indexes["uq_orders_sku"].endswith("(sku)")
    # Only the primary key and the one unique field are indexed.
    assert len(indexes) == 2

    await api.create("orders", {"title": "a", "sku": "S-1"})
    response = await api.client.post(
        api.url("/collections/orders/records"),
        json={"title": "b", "sku": "S-1"},
        headers=api.headers,
    )
    assert response.status_code == 409
    assert first_error(response)["code"] == "unique_violation"
    assert first_error(response)["field"] == "sku"


# -- bad input leaves nothing behind -----------------------------------------------------------


BAD_COLLECTIONS: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("uppercase", {"name": "Orders", "fields": []}, 422, "invalid_name", "name"),
    ("leading digit", {"name": "1orders", "fields": []}, 422, "invalid_name", "name"),
    ("64 characters", {"name": "a" * 64, "fields": []}, 422, "invalid_name", "name"),
    ("empty", {"name": "", "fields": []}, 422, "invalid_name", "name"),
    ("hyphen", {"name": "my-orders", "fields": []}, 422, "invalid_name", "name"),
    ("reserved word", {"name": "select", "fields": []}, 422, "reserved_name", "name"),
    ("sql in name", {"name": 'x"; drop table y;--', "fields": []}, 422, "invalid_name", "name"),
    (
        "sql in field name",
        {"name": "orders", "fields": [{"name": 'x"; drop table y;--', "type": "string"}]},
        422,
        "invalid_name",
        "fields[0].name",
    ),
    (
        "reserved field id",
        {"name": "orders", "fields": [{"name": "id", "type": "integer"}]},
        422,
        "reserved_name",
        "fields[0].name",
    ),
    (
        "reserved field created_at",
        {"name": "orders", "fields": [{"name": "created_at", "type": "datetime"}]},
        422,
        "reserved_name",
        "fields[0].name",
    ),
    (
        "reserved field select",
        {"name": "orders", "fields": [{"name": "select", "type": "string"}]},
        422,
        "reserved_name",
        "fields[0].name",
    ),
    (
        "uppercase field",
        {"name": "orders", "fields": [{"name": "Title", "type": "string"}]},
        422,
        "invalid_name",
        "fields[0].name",
    ),
    (
        "duplicate field",
        {
            "name": "orders",
            "fields": [{"name": "title", "type": "string"}, {"name": "title", "type": "text"}],
        },
        422,
        "duplicate",
        "fields[1].name",
    ),
    (
        "unknown type",
        {"name": "orders", "fields": [{"name": "title", "type": "varchar"}]},
        422,
        "unknown_type",
        "fields[0].type",
    ),
    (
        "invalid option value",
        {
            "name": "orders",
            "fields": [{"name": "title", "type": "string", "options": {"max_length": 0}}],
        },
        422,
        "invalid_option",
        "fields[0].options.max_length",
    ),
    (
        "unknown option",
        {
            "name": "orders",
            "fields": [{"name": "title", "type": "string", "options": {"colour": "red"}}],
        },
        422,
        "invalid_option",
        "fields[0].options.colour",
    ),
    (
        "bad integer default",
        {"name": "orders", "fields": [{"name": "qty", "type": "integer", "default": "many"}]},
        422,
        "invalid_type",
        "fields[0].default",
    ),
    (
        "default too long",
        {
            "name": "orders",
            "fields": [
                {
                    "name": "code",
                    "type": "string",
                    "options": {"max_length": 3},
                    "default": "ABCD",
                }
            ],
        },
        422,
        "max_length",
        "fields[0].default",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [case[1:] for case in BAD_COLLECTIONS],
    ids=[case[0] for case in BAD_COLLECTIONS],
)
async def test_bad_collection_is_refused_and_leaves_nothing_behind(
    api: Api,
    pg: asyncpg.Connection,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    await api.create_collection("existing", [{"name": "title", "type": "string"}])
    before = await snapshot(pg, api.project)
    for route, payload in (
        ("/collections", body),
        ("/schema/apply", {"op": "create_collection", "args": body}),
        ("/schema/preview", {"op": "create_collection", "args": body}),
    ):
        response = await api.client.post(api.url(route), json=payload, headers=api.headers)
        assert response.status_code == status, (route, response.text)
        assert first_error(response)["code"] == code, (route, response.text)
        assert first_error(response)["field"] == field, (route, response.text)
    assert await snapshot(pg, api.project) == before
    assert await schema_tables(pg, api.project) == {"existing"}


async def test_unknown_field_type_lists_the_available_types(api: Api) -> None:
    response = await api.client.post(
        api.url("/collections"),
        json={"name": "orders", "fields": [{"name": "title", "type": "varchar"}]},
        headers=api.headers,
    )
    assert response.status_code == 422
    message = first_error(response)["message"]
    assert "'varchar'" in message
    for available in ("boolean", "date", "datetime", "float", "integer", "json", "string", "text"):
        assert available in message


async def test_duplicate_collection_is_a_409_and_changes_nothing(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    before = await snapshot(pg, api.project)
    response = await api.client.post(
        api.url("/collections"),
        json={"name": "orders", "fields": [{"name": "other", "type": "integer"}]},
        headers=api.headers,
    )
    assert response.status_code == 409
    assert first_error(response) == {
        "field": "name",
        "code": "duplicate",
        "message": "collection 'orders' already exists",
    }
    assert await snapshot(pg, api.project) == before
    assert list(await table_columns(pg, api.project, "orders")) == [
        "id",
        "created_at",
        "updated_at",
        "title",
    ]
    latest = await latest_op(api)
    assert (latest["op"], latest["status"]) == ("create_collection", "applied")


async def test_a_create_refused_before_it_ran_is_not_in_the_history(
    api: Api, pg: asyncpg.Connection
) -> None:
    ops_before = await op_count(pg, api.project)
    for fields, code in (
        ([], "invalid_name"),
        ([{"name": "x", "type": "nosuch"}], "unknown_type"),
        ([{"name": "id", "type": "text"}], "reserved_name"),
        ([{"name": "x", "type": "text"}, {"name": "x", "type": "text"}], "duplicate"),
    ):
        response = await api.apply(
            "create_collection", name="Bad" if not fields else "good", fields=fields
        )
        assert response.status_code in (409, 422), response.text
        assert codes(response)[0] == code, response.text
    assert await op_count(pg, api.project) == ops_before


# -- add_field ---------------------------------------------------------------------------------


async def test_add_field_adds_a_column_and_a_catalog_row(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    before = await pg.fetchval(
        "SELECT catalog_version FROM tessera.projects WHERE id = $1", api.project
    )
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "note", "type": "text", "display_name": "Internal note"},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "note",
        "display_name": "Internal note",
        "type": "text",
        "column": "note",
        "required": False,
        "unique": False,
        "options": {},
        "rules": [],
    }
    columns = await table_columns(pg, api.project, "orders")
    assert list(columns) == ["id", "created_at", "updated_at", "title", "note"]
    assert columns["note"][:2] == ("text", "YES")
    assert await catalog_fields(pg, api.project, "orders") == {
        "title": ("string", "title", False, False, False),
        "note": ("text", "note", False, False, False),
    }
    after = await pg.fetchval(
        "SELECT catalog_version FROM tessera.projects WHERE id = $1", api.project
    )
    assert after == before + 1

    record = await api.create("orders", {"title": "a", "note": "hello"})
    assert record["note"] == "hello"

    response = await api.apply(
        "add_field", collection="orders", field={"name": "amount", "type": "float", "unique": True}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    assert response.json()["ddl"] == [
        f"ALTER TABLE p_{api.project}.orders ADD COLUMN amount DOUBLE PRECISION",
        f"CREATE UNIQUE INDEX uq_orders_amount ON p_{api.project}.orders (amount)",
    ]
    assert (await table_columns(pg, api.project, "orders"))["amount"][:2] == (
        "double precision",
        "YES",
    )


async def test_add_field_to_unknown_collection_is_a_404(api: Api, pg: asyncpg.Connection) -> None:
    before = await snapshot(pg, api.project)
    response = await api.client.post(
        api.url("/collections/nothing/fields"),
        json={"name": "note", "type": "text"},
        headers=api.headers,
    )
    assert response.status_code == 404
    assert first_error(response)["code"] == "collection_not_found"
    assert await snapshot(pg, api.project) == before


async def test_add_existing_field_is_a_409(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    before = await snapshot(pg, api.project)
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "title", "type": "text"},
        headers=api.headers,
    )
    assert response.status_code == 409
    assert first_error(response)["code"] == "duplicate"
    assert first_error(response)["field"] == "field.name"
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "updated_at", "type": "datetime"},
        headers=api.headers,
    )
    assert response.status_code == 422
    assert first_error(response)["code"] == "reserved_name"
    assert await snapshot(pg, api.project) == before


async def test_required_field_without_default_on_a_non_empty_collection_is_refused(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "first"})
    before = await snapshot(pg, api.project)

    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "qty", "type": "integer", "required": True},
        headers=api.headers,
    )
    assert response.status_code == 422, response.text
    assert first_error(response)["code"] == "required_needs_default"

    failed = await latest_op(api)
    assert failed["op"] == "add_field"
    assert failed["status"] == "failed"
    assert failed["error"]["status"] == 422
    assert failed["error"]["errors"][0]["code"] == "required_needs_default"
    assert [t["status"] for t in failed["transitions"]] == ["pending", "running", "failed"]
    assert failed["result"] is None

    assert await snapshot(pg, api.project) == before
    assert "qty" not in await table_columns(pg, api.project, "orders")
    assert "qty" not in await catalog_fields(pg, api.project, "orders")


async def test_required_field_without_default_is_fine_on_an_empty_collection(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    preview = await api.preview(
        "add_field", collection="orders", field={"name": "qty", "type": "integer", "required": True}
    )
    assert preview.status_code == 200
    assert preview.json()["warnings"] == [
        "the field is required and has no default: this fails if the collection already has records"
    ]
    response = await api.apply(
        "add_field", collection="orders", field={"name": "qty", "type": "integer", "required": True}
    )
    assert response.status_code == 200, response.text
    assert (await table_columns(pg, api.project, "orders"))["qty"][:2] == ("bigint", "NO")


async def test_required_field_with_default_fills_existing_rows(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    first = await api.create("orders", {"title": "first"})
    second = await api.create("orders", {"title": "second"})

    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "status", "type": "string", "required": True, "default": "new"},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["default"] == "new"
    assert response.json()["required"] is True

    rows = await pg.fetch(f'SELECT id, status FROM "p_{api.project}"."orders" ORDER BY id')
    assert [(row["id"], row["status"]) for row in rows] == [
        (first["id"], "new"),
        (second["id"], "new"),
    ]
    listed = await api.client.get(api.url("/collections/orders/records"), headers=api.headers)
    assert listed.status_code == 200
    assert [r["status"] for r in listed.json()["data"]] == ["new", "new"]
    created = await api.create("orders", {"title": "third"})
    assert created["status"] == "new"


# -- preview -----------------------------------------------------------------------------------


async def test_preview_changes_nothing(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    for title in ("a", "b", "c"):
        await api.create("orders", {"title": title})
    before = await snapshot(pg, api.project)
    ops_before = await op_count(pg, api.project)

    previews = [
        ("create_collection", {"name": "items", "fields": ORDERS_FIELDS}),
        (
            "add_field",
            {"collection": "orders", "field": {"name": "qty", "type": "integer", "unique": True}},
        ),
        (
            "add_field",
            {"collection": "orders", "field": {"name": "qty", "type": "integer", "required": True}},
        ),
        ("set_policies", {"collection": "orders", "policies": {"list": "", "read": ""}}),
        ("drop_collection", {"collection": "orders"}),
    ]
    for op, args in previews:
        response = await api.client.post(
            api.url("/schema/preview"), json={"op": op, "args": args}, headers=api.headers
        )
        assert response.status_code == 200, (op, response.text)

    assert await snapshot(pg, api.project) == before
    assert await op_count(pg, api.project) == ops_before
    catalog = await api.client.get(api.url("/collections"), headers=api.headers)
    assert [c["name"] for c in catalog.json()["data"]] == ["orders"]
    assert [f["name"] for f in catalog.json()["data"][0]["fields"]] == ["title"]


async def test_preview_returns_the_exact_ddl_warnings_safety_and_impact(
    api: Api, pg: asyncpg.Connection
) -> None:
    schema = f"p_{api.project}"
    response = await api.preview(
        "create_collection",
        name="orders",
        fields=[
            {
                "name": "title",
                "type": "string",
                "required": True,
                "unique": True,
                "options": {"max_length": 40},
            },
            {"name": "qty", "type": "integer", "default": 3},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["op"] == "create_collection"
    assert body["ddl"] == [
        f"CREATE TABLE {schema}.orders ( id BIGINT GENERATED BY DEFAULT AS IDENTITY, "
        "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "title VARCHAR(40) NOT NULL, qty BIGINT DEFAULT CAST('3' AS BIGINT), "
        "PRIMARY KEY (id) )",
        f"CREATE UNIQUE INDEX uq_orders_title ON {schema}.orders (title)",
    ]
    assert body["steps"] == ["create table orders", "unique index on title"]
    assert body["warnings"] == []
    assert body["safe"] is True
    assert body["wizard"] is None

    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    for title in ("a", "b", "c"):
        await api.create("orders", {"title": title})
    response = await api.preview(
        "add_field",
        collection="orders",
        field={"name": "qty", "type": "integer", "required": True, "default": 5, "unique": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ddl"] == [
        f"ALTER TABLE {schema}.orders ADD COLUMN qty BIGINT DEFAULT CAST('5' AS BIGINT) NOT NULL",
        f"CREATE UNIQUE INDEX uq_orders_qty ON {schema}.orders (qty)",
    ]
    assert body["safe"] is True
    assert body["warnings"] == [
        "the field is unique and has a default, which every existing record gets: "
        "this fails if the collection has more than one record"
    ]
    assert body["impact"]["rows"] == 3
    assert body["impact"]["rewrites_table"] is False
    assert body["impact"]["table_bytes"] > 0

    response = await api.preview("drop_collection", collection="orders")
    assert response.status_code == 200
    assert response.json()["ddl"] == []
    assert response.json()["impact"]["rows"] == 3
    assert len(response.json()["warnings"]) == 1
    assert "table and records are kept" in response.json()["warnings"][0]

    response = await api.preview("set_policies", collection="orders", policies={"list": ""})
    assert response.status_code == 200
    assert response.json()["ddl"] == []
    assert response.json()["warnings"] == ["anyone, signed in or not, may list records"]

    # The DDL a preview shows is the DDL apply runs.
    field = {"name": "qty", "type": "integer", "required": True, "default": 5}
    previewed = await api.preview("add_field", collection="orders", field=field)
    applied = await api.apply("add_field", collection="orders", field=field)
    assert applied.status_code == 200, applied.text
    assert applied.json()["ddl"] == previewed.json()["ddl"]
    assert applied.json()["ddl"] == [body["ddl"][0]]


async def test_unique_field_with_a_shared_default_on_existing_rows_is_refused(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "a"})
    await api.create("orders", {"title": "b"})
    before = await snapshot(pg, api.project)
    field = {"name": "code", "type": "string", "default": "same", "unique": True}
    preview = await api.preview("add_field", collection="orders", field=field)
    assert preview.status_code == 200, preview.text
    assert preview.json()["warnings"] == [
        "the field is unique and has a default, which every existing record gets: "
        "this fails if the collection has more than one record"
    ]
    response = await api.apply("add_field", collection="orders", field=field)
    assert response.status_code == 409, response.text
    assert first_error(response)["code"] == "unique_violation"
    assert (await latest_op(api))["status"] == "failed"
    assert await snapshot(pg, api.project) == before


async def test_preview_reports_errors_like_apply(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    response = await api.preview(
        "add_field", collection="orders", field={"name": "title", "type": "string"}
    )
    assert response.status_code == 409
    assert first_error(response)["code"] == "duplicate"
    response = await api.preview(
        "add_field", collection="nope", field={"name": "x", "type": "text"}
    )
    assert response.status_code == 404
    response = await api.preview("add_field", collection="orders")
    assert response.status_code == 422
    assert first_error(response)["code"] == "invalid_argument"
    assert first_error(response)["field"] == "args.field"
    response = await api.preview("no_such_op")
    assert response.status_code == 400
    assert first_error(response)["code"] == "unknown_op"


# -- schema_ops history ------------------------------------------------------------------------


def _timestamps(op: dict[str, Any]) -> list[datetime]:
    return [datetime.fromisoformat(t["at"]) for t in op["transitions"]]


async def test_applied_op_goes_pending_running_applied(api: Api) -> None:
    response = await api.apply(
        "create_collection", name="orders", fields=[{"name": "title", "type": "string"}]
    )
    assert response.status_code == 200, response.text
    op = response.json()
    assert op["status"] == "applied"
    assert op["op"] == "create_collection"
    assert op["args"] == {"name": "orders", "fields": [{"name": "title", "type": "string"}]}
    assert [t["status"] for t in op["transitions"]] == ["pending", "running", "applied"]
    stamps = _timestamps(op)
    assert stamps == sorted(stamps)
    assert all(stamp.tzinfo is not None for stamp in stamps)
    assert op["finished_at"] is not None
    assert op["error"] is None
    assert op["result"] == {
        "collection": "orders",
        "fields": [{"name": "title", "type": "string", "column": "title"}],
    }
    assert op["actor"]["kind"] == "admin"

    fetched = await api.client.get(api.url(f"/schema/ops/{op['id']}"), headers=api.headers)
    assert fetched.status_code == 200
    assert fetched.json() == op


async def test_failed_op_goes_pending_running_failed(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "x"})
    response = await api.apply(
        "add_field", collection="orders", field={"name": "due", "type": "date", "required": True}
    )
    assert response.status_code == 422
    op = await latest_op(api)
    assert op["status"] == "failed"
    assert [t["status"] for t in op["transitions"]] == ["pending", "running", "failed"]
    stamps = _timestamps(op)
    assert stamps == sorted(stamps)
    assert op["error"] == {"status": 422, **response.json()}
    assert op["result"] is None
    assert op["finished_at"] is not None
    fetched = await api.client.get(api.url(f"/schema/ops/{op['id']}"), headers=api.headers)
    assert fetched.status_code == 200
    assert fetched.json() == op


async def test_unknown_op_is_a_400_and_not_recorded(api: Api, pg: asyncpg.Connection) -> None:
    before = await snapshot(pg, api.project)
    ops_before = await op_count(pg, api.project)
    response = await api.apply("explode_everything", collection="orders")
    assert response.status_code == 400
    assert first_error(response)["code"] == "unknown_op"
    assert first_error(response)["field"] == "op"
    assert "create_collection" in first_error(response)["message"]
    assert await op_count(pg, api.project) == ops_before
    assert await snapshot(pg, api.project) == before


async def test_unknown_op_from_callers_without_schema_rights_is_not_recorded(
    api: Api, pg: asyncpg.Connection
) -> None:
    reader = await api.key(["records:read"])
    ops_before = await op_count(pg, api.project)
    response = await api.client.post(
        api.url("/schema/apply"), json={"op": "explode_everything", "args": {}}
    )
    assert response.status_code == 401
    response = await api.client.post(
        api.url("/schema/apply"), json={"op": "explode_everything", "args": {}}, headers=reader
    )
    assert response.status_code == 403
    assert await op_count(pg, api.project) == ops_before


async def test_ops_history_pages_with_a_cursor_newest_first(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    for index in range(5):
        response = await api.apply(
            "add_field", collection="orders", field={"name": f"f{index}", "type": "text"}
        )
        assert response.status_code == 200
    await api.create("orders", {"title": "x"})
    failed = await api.apply(
        "add_field", collection="orders", field={"name": "due", "type": "date", "required": True}
    )
    assert failed.status_code == 422  # ran, failed, recorded

    everything = await api.client.get(api.url("/schema/ops?limit=200"), headers=api.headers)
    all_ids = [op["id"] for op in everything.json()["data"]]
    assert len(all_ids) == 7
    assert all_ids == sorted(all_ids, reverse=True)
    assert everything.json()["page"]["next_cursor"] is None

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await api.client.get(api.url("/schema/ops"), params=params, headers=api.headers)
        assert page.status_code == 200
        pages += 1
        assert page.json()["page"]["limit"] == 2
        seen.extend(op["id"] for op in page.json()["data"])
        cursor = page.json()["page"]["next_cursor"]
        if cursor is None:
            break
    assert seen == all_ids
    assert pages == 4

    failed = await api.client.get(
        api.url("/schema/ops"), params={"status": "failed"}, headers=api.headers
    )
    assert [op["id"] for op in failed.json()["data"]] == [all_ids[0]]
    creates = await api.client.get(
        api.url("/schema/ops"), params={"op": "create_collection"}, headers=api.headers
    )
    assert [op["id"] for op in creates.json()["data"]] == [all_ids[-1]]

    bad = await api.client.get(
        api.url("/schema/ops"), params={"cursor": "not-a-cursor"}, headers=api.headers
    )
    assert bad.status_code == 400
    assert first_error(bad)["code"] == "invalid_cursor"


async def test_ops_of_another_project_are_not_visible(api: Api) -> None:
    response = await api.apply("create_collection", name="orders", fields=[])
    op_id = response.json()["id"]
    other = unique_id()
    created = await api.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=api.headers
    )
    assert created.status_code == 201
    response = await api.client.get(
        f"/api/projects/{other}/schema/ops/{op_id}", headers=api.headers
    )
    assert response.status_code == 404
    assert first_error(response)["code"] == "op_not_found"
    response = await api.client.get(api.url("/schema/ops/999999999"), headers=api.headers)
    assert response.status_code == 404


# -- failure between the DDL and the catalog writes ----------------------------------------------


async def test_failure_after_the_ddl_rolls_the_column_back(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "kept"})
    before = await snapshot(pg, api.project)
    trigger = f"explode_{api.project}"
    await pg.execute(
        "CREATE OR REPLACE FUNCTION public.tessera_test_explode() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN"
        " RAISE EXCEPTION 'injected failure for field %', NEW.name; END $$"
    )
    await pg.execute(
        f'CREATE TRIGGER "{trigger}" BEFORE INSERT ON tessera.fields FOR EACH ROW'
        " WHEN (NEW.name = 'explode') EXECUTE FUNCTION public.tessera_test_explode()"
    )
    try:
        transport = httpx.ASGITransport(app=api.client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=transport, base_url="http://tessera.test") as quiet:
            response = await quiet.post(
                api.url("/collections/orders/fields"),
                json={"name": "explode", "type": "integer", "default": 7},
                headers=api.headers,
            )
    finally:
        await pg.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON tessera.fields')
        await pg.execute("DROP FUNCTION IF EXISTS public.tessera_test_explode()")

    assert 400 <= response.status_code < 600, response.text
    assert response.status_code != 201
    assert "explode" not in await table_columns(pg, api.project, "orders")
    assert "explode" not in await catalog_fields(pg, api.project, "orders")
    assert await snapshot(pg, api.project) == before

    op = await latest_op(api)
    assert op["op"] == "add_field"
    assert op["status"] == "failed"
    assert [t["status"] for t in op["transitions"]] == ["pending", "running", "failed"]
    assert "injected failure for field explode" in str(op["error"])

    # The engine is not left in a bad state: the same change goes through afterwards.
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "explode", "type": "integer", "default": 7},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    listed = await api.client.get(api.url("/collections/orders/records"), headers=api.headers)
    assert [r["explode"] for r in listed.json()["data"]] == [7]


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrent_add_fields_leave_table_and_catalog_identical(
    api: Api, pg: asyncpg.Connection
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    requests = [{"name": f"c{index}", "type": "string"} for index in range(7)] + [
        {"name": f"c{index}", "type": "integer"} for index in range(3)
    ]

    async def add(field: dict[str, Any]) -> httpx.Response:
        return await api.client.post(
            api.url("/collections/orders/fields"), json=field, headers=api.headers
        )

    responses = await asyncio.gather(*(add(field) for field in requests))
    outcomes: dict[str, list[int]] = {}
    for field, response in zip(requests, responses, strict=True):
        assert response.status_code in (201, 409, 422), response.text
        if response.status_code != 201:
            assert first_error(response)["code"] == "duplicate", response.text
        outcomes.setdefault(field["name"], []).append(response.status_code)
    for name, statuses in outcomes.items():
        assert statuses.count(201) == 1, (name, statuses)
    assert sum(status != 201 for statuses in outcomes.values() for status in statuses) == 3

    columns = await table_columns(pg, api.project, "orders")
    fields = await catalog_fields(pg, api.project, "orders")
    assert set(columns) - {"id", "created_at", "updated_at"} == {f[1] for f in fields.values()}
    assert set(fields) == {"title", *(f"c{index}" for index in range(7))}
    sql_types = {"string": "character varying", "integer": "bigint"}
    for name, (type_name, column, *_) in fields.items():
        assert columns[column][0] == sql_types[type_name], name

    positions = await pg.fetch(
        "SELECT f.position FROM tessera.fields f JOIN tessera.collections c"
        " ON c.id = f.collection_id WHERE c.project_id = $1",
        api.project,
    )
    assert len({row["position"] for row in positions}) == len(positions)

    history = await api.client.get(
        api.url("/schema/ops"), params={"op": "add_field", "limit": 50}, headers=api.headers
    )
    statuses = [op["status"] for op in history.json()["data"]]
    assert sorted(statuses) == ["applied"] * 7 + ["failed"] * 3


# -- locks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("held_for", [0.0, 1.0], ids=["lock_timeout", "preflight"])
async def test_busy_table_is_refused_quickly_with_table_busy(
    api: Api,
    pg: asyncpg.Connection,
    database_url: str,
    make_settings: Callable[..., Settings],
    held_for: float,
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "a"})
    before = await snapshot(pg, api.project)
    async with running(make_settings(ddl_lock_timeout_ms=500)) as other:
        holder = await asyncpg.connect(database_url)
        transaction = holder.transaction()
        await transaction.start()
        try:
            await holder.execute(f'LOCK TABLE "p_{api.project}"."orders" IN ACCESS EXCLUSIVE MODE')
            await asyncio.sleep(held_for)
            started = time.monotonic()
            response = await other.post(
                api.url("/collections/orders/fields"),
                json={"name": "qty", "type": "integer"},
                headers=api.headers,
            )
            elapsed = time.monotonic() - started
        finally:
            await transaction.rollback()
            await holder.close()
    assert response.status_code == 409, response.text
    assert first_error(response)["code"] == "table_busy"
    assert elapsed < 10
    assert await snapshot(pg, api.project) == before
    op = await latest_op(api)
    assert op["op"] == "add_field"
    assert op["status"] == "failed"
    assert op["error"]["errors"][0]["code"] == "table_busy"

    # Once the lock is gone the same change applies.
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "qty", "type": "integer"},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text


async def test_preview_of_a_busy_table_does_not_hang(
    api: Api,
    pg: asyncpg.Connection,
    database_url: str,
    make_settings: Callable[..., Settings],
) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    before = await snapshot(pg, api.project)
    async with running(make_settings(ddl_lock_timeout_ms=500)) as other:
        holder = await asyncpg.connect(database_url)
        transaction = holder.transaction()
        await transaction.start()
        try:
            await holder.execute(f'LOCK TABLE "p_{api.project}"."orders" IN ACCESS EXCLUSIVE MODE')
            started = time.monotonic()
            response = await asyncio.wait_for(
                other.post(
                    api.url("/schema/preview"),
                    json={
                        "op": "add_field",
                        "args": {"collection": "orders", "field": {"name": "q", "type": "text"}},
                    },
                    headers=api.headers,
                ),
                timeout=15,
            )
            elapsed = time.monotonic() - started
        finally:
            await transaction.rollback()
            await holder.close()
    assert response.status_code == 409, response.text
    assert first_error(response)["code"] == "table_busy"
    assert elapsed < 10
    assert await snapshot(pg, api.project) == before


# -- drop_collection ---------------------------------------------------------------------------


async def test_drop_collection_is_soft(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create_collection("items", [{"name": "title", "type": "string"}])
    record = await api.create("orders", {"title": "keep me"})

    response = await api.apply("drop_collection", collection="orders")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    assert response.json()["ddl"] == []

    listed = await api.client.get(api.url("/collections"), headers=api.headers)
    assert [c["name"] for c in listed.json()["data"]] == ["items"]
    one = await api.client.get(api.url("/collections/orders"), headers=api.headers)
    assert one.status_code == 404
    for method, path in (
        ("GET", "/collections/orders/records"),
        ("GET", f"/collections/orders/records/{record['id']}"),
        ("POST", "/collections/orders/records"),
        ("PATCH", f"/collections/orders/records/{record['id']}"),
        ("DELETE", f"/collections/orders/records/{record['id']}"),
    ):
        response = await api.client.request(
            method,
            api.url(path),
            json={"title": "x"} if method in ("POST", "PATCH") else None,
            headers=api.headers,
        )
        assert response.status_code == 404, (method, path, response.text)
        assert first_error(response)["code"] == "collection_not_found"
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "note", "type": "text"},
        headers=api.headers,
    )
    assert response.status_code == 404

    # PostgreSQL still has the table and its data; the catalog row is marked deleted.
    assert await schema_tables(pg, api.project) == {"orders", "items"}
    rows = await pg.fetch(f'SELECT id, title FROM "p_{api.project}"."orders"')
    assert [(row["id"], row["title"]) for row in rows] == [(record["id"], "keep me")]
    flagged = await pg.fetchrow(
        "SELECT is_deleted, deleted_at FROM tessera.collections"
        " WHERE project_id = $1 AND name = 'orders'",
        api.project,
    )
    assert flagged["is_deleted"] is True
    assert flagged["deleted_at"] is not None

    response = await api.client.post(
        api.url("/collections"), json={"name": "orders", "fields": []}, headers=api.headers
    )
    assert response.status_code == 409
    assert first_error(response)["code"] == "name_taken"
    response = await api.apply("drop_collection", collection="orders")
    assert response.status_code == 404


# -- set_policies and permissions --------------------------------------------------------------


async def test_set_policies_through_put(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create("orders", {"title": "public"})
    anonymous = await api.client.get(api.url("/collections/orders/records"))
    assert anonymous.status_code == 401

    response = await api.client.put(
        api.url("/collections/orders/policies"),
        json={"list": "", "read": "", "create": "title = 'ok'", "update": None},
        headers=api.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "list": "",
        "read": "",
        "create": "title = 'ok'",
        "update": None,
        "delete": None,
    }
    rows = await pg.fetch(
        "SELECT p.action, p.rule FROM tessera.policies p JOIN tessera.collections c"
        " ON c.id = p.collection_id WHERE c.project_id = $1 ORDER BY p.action",
        api.project,
    )
    assert {row["action"]: row["rule"] for row in rows} == {
        "create": "title = 'ok'",
        "delete": None,
        "list": "",
        "read": "",
        "update": None,
    }

    anonymous = await api.client.get(api.url("/collections/orders/records"))
    assert anonymous.status_code == 200
    assert [r["title"] for r in anonymous.json()["data"]] == ["public"]
    user = await api.user("reader@example.com")
    allowed = await api.client.post(
        api.url("/collections/orders/records"), json={"title": "ok"}, headers=user
    )
    assert allowed.status_code == 201, allowed.text
    denied = await api.client.post(
        api.url("/collections/orders/records"), json={"title": "no"}, headers=user
    )
    assert denied.status_code == 403

    described = await api.client.get(api.url("/collections/orders"), headers=api.headers)
    assert described.json()["policies"] == response.json()


async def test_invalid_policies_are_refused(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    before = await snapshot(pg, api.project)
    response = await api.client.put(
        api.url("/collections/orders/policies"),
        json={"list": "nosuchfield = 1", "read": "title = "},
        headers=api.headers,
    )
    assert response.status_code == 422
    assert {item["field"] for item in response.json()["errors"]} == {"list", "read"}
    assert set(codes(response)) == {"invalid_expression"}
    response = await api.apply("set_policies", collection="orders", policies={"purge": ""})
    assert response.status_code == 422
    assert first_error(response)["code"] == "unknown_action"
    response = await api.client.put(
        api.url("/collections/nothing/policies"), json={"list": ""}, headers=api.headers
    )
    assert response.status_code == 404
    assert await snapshot(pg, api.project) == before


async def test_schema_changes_need_schema_write(api: Api, pg: asyncpg.Connection) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    writer = await api.key(["records:read", "records:write"])
    user = await api.user("someone@example.com")
    before = await snapshot(pg, api.project)
    ops_before = await op_count(pg, api.project)

    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/collections", {"name": "items", "fields": []}),
        ("POST", "/collections/orders/fields", {"name": "note", "type": "text"}),
        ("PUT", "/collections/orders/policies", {"list": ""}),
        ("POST", "/schema/apply", {"op": "drop_collection", "args": {"collection": "orders"}}),
        ("POST", "/schema/preview", {"op": "drop_collection", "args": {"collection": "orders"}}),
    ]
    for method, path, body in attempts:
        for headers, status in ((writer, 403), (user, 403), ({}, 401)):
            response = await api.client.request(method, api.url(path), json=body, headers=headers)
            assert response.status_code == status, (method, path, headers, response.text)
    for headers in (writer, user):
        response = await api.client.get(api.url("/schema/ops"), headers=headers)
        assert response.status_code == 403
    assert (await api.client.get(api.url("/schema/ops"))).status_code == 401

    assert await snapshot(pg, api.project) == before
    assert await op_count(pg, api.project) == ops_before


async def test_key_limited_to_some_collections_reads_only_their_catalog(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    await api.create_collection("salaries", [{"name": "amount", "type": "integer"}])
    limited = await api.key(["records:read"], collections=["orders"])
    listed = await api.client.get(api.url("/collections"), headers=limited)
    assert [c["name"] for c in listed.json()["data"]] == ["orders"]
    assert (
        await api.client.get(api.url("/collections/orders"), headers=limited)
    ).status_code == 200
    hidden = await api.client.get(api.url("/collections/salaries"), headers=limited)
    assert hidden.status_code == 403, hidden.text
    assert first_error(hidden)["code"] == "collection_not_allowed"
    assert "amount" not in hidden.text


async def test_key_with_schema_write_may_change_its_own_project_only(
    api: Api, pg: asyncpg.Connection
) -> None:
    designer = await api.key(["schema:write"])
    response = await api.client.post(
        api.url("/collections"),
        json={"name": "orders", "fields": [{"name": "title", "type": "string"}]},
        headers=designer,
    )
    assert response.status_code == 201, response.text
    op = await latest_op(api)
    assert op["actor"]["kind"] == "key"
    assert op["actor"]["name"] == "test key"

    other = unique_id()
    created = await api.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=api.headers
    )
    assert created.status_code == 201
    response = await api.client.post(
        f"/api/projects/{other}/collections",
        json={"name": "orders", "fields": []},
        headers=designer,
    )
    assert response.status_code == 403
    assert await schema_tables(pg, other) == set()


# -- audit -------------------------------------------------------------------------------------


def created_by_admin_id(events: list[dict[str, Any]]) -> int:
    (event,) = events
    assert event["actor"]["kind"] == "admin"
    assert isinstance(event["actor"]["id"], int)
    return event["actor"]["id"]


async def _audit(api: Api, action: str) -> list[dict[str, Any]]:
    response = await api.client.get(
        api.url("/audit"), params={"action": action}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_every_schema_change_is_audited_with_actor_before_and_after(api: Api) -> None:
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    response = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "qty", "type": "integer"},
        headers=api.headers,
    )
    assert response.status_code == 201
    await api.set_policies("orders", list="", read="")
    await api.set_policies("orders", list="qty > 1")
    assert (await api.apply("drop_collection", collection="orders")).status_code == 200
    failed = await api.apply("add_field", collection="nope", field={"name": "a", "type": "text"})
    assert failed.status_code == 404

    admin = {
        "kind": "admin",
        "id": created_by_admin_id(await _audit(api, "project.create")),
        "email": ADMIN_EMAIL,
    }
    (created,) = await _audit(api, "schema.create_collection")
    assert created["actor"] == admin
    assert created["target_type"] == "collection"
    assert created["target"] == "orders"
    assert created["before"] is None
    assert created["after"] == {
        "collection": "orders",
        "fields": [{"name": "title", "type": "string", "column": "title"}],
    }

    (added,) = await _audit(api, "schema.add_field")
    assert added["actor"] == admin
    assert added["target_type"] == "field"
    assert added["target"] == "orders.qty"
    assert added["after"] == {
        "collection": "orders",
        "field": {"name": "qty", "type": "integer", "column": "qty"},
    }

    second, first = await _audit(api, "schema.set_policies")
    assert first["target_type"] == "policies"
    assert first["target"] == "orders"
    assert first["before"] == {a: None for a in ("list", "read", "create", "update", "delete")}
    assert first["after"] == {
        "collection": "orders",
        "policies": {"list": "", "read": "", "create": None, "update": None, "delete": None},
    }
    assert second["before"] == {
        "list": "",
        "read": "",
        "create": None,
        "update": None,
        "delete": None,
    }
    assert second["after"]["policies"]["list"] == "qty > 1"
    assert second["after"]["policies"]["read"] is None

    (dropped,) = await _audit(api, "schema.drop_collection")
    assert dropped["actor"] == admin
    assert dropped["target"] == "orders"
    assert dropped["before"] == {"collection": "orders", "is_deleted": False}
    assert dropped["after"] == {"collection": "orders", "is_deleted": True}

    # A failed op writes no audit event (its transaction rolled back).
    everything = await api.client.get(
        api.url("/audit"), params={"action": "schema."}, headers=api.headers
    )
    assert len(everything.json()["data"]) == 5
