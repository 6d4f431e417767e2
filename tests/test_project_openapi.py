"""``GET /api/projects/{p}/openapi.json``: a valid OpenAPI 3.1 document, typed per
collection, generated from the live catalog."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.conftest import Api, unique_id
from tests.test_rules import INVOICES


async def document(api: Api, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await api.client.get(api.url("/openapi.json"), headers=headers or api.headers)
    assert response.status_code == 200, response.text
    return response.json()


def value_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of a nullable property schema."""
    if "anyOf" in schema:
        (value,) = [branch for branch in schema["anyOf"] if branch != {"type": "null"}]
        assert {"type": "null"} in schema["anyOf"]
        return value
    return schema


def accepts_null(schema: dict[str, Any]) -> bool:
    return {"type": "null"} in schema.get("anyOf", []) or "null" in schema.get("type", [])


@pytest.fixture
async def shop(api: Api) -> Api:
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string", "required": True, "options": {"max_length": 80}},
            {"name": "qty", "type": "integer", "required": True, "default": 1},
            {"name": "price", "type": "float"},
            {"name": "paid", "type": "boolean"},
            {"name": "placed_at", "type": "datetime"},
            {"name": "due_on", "type": "date"},
            {"name": "meta", "type": "json"},
            {"name": "notes", "type": "text"},
        ],
    )
    await api.create_collection("line_items", [{"name": "label", "type": "string"}])
    return api


async def test_document_is_valid_openapi_3_1(shop: Api) -> None:
    spec = await document(shop)
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert shop.project in spec["info"]["description"]
    assert spec["info"]["version"] == str(
        (await shop.client.get(shop.url(""), headers=shop.headers)).json()["catalog_version"]
    )


async def test_empty_project_document_is_valid(api: Api) -> None:
    spec = await document(api)
    validate(spec)
    assert spec["paths"] == {}


async def test_each_collection_has_typed_schemas(shop: Api) -> None:
    schemas = (await document(shop))["components"]["schemas"]
    assert {"OrdersRecord", "OrdersCreate", "OrdersUpdate", "LineItemsRecord"} <= set(schemas)

    record = schemas["OrdersRecord"]
    assert record["type"] == "object"
    assert set(record["required"]) == {"id", "created_at", "updated_at", "title", "qty"}
    properties = record["properties"]
    assert set(properties) == {
        "id",
        "created_at",
        "updated_at",
        "title",
        "qty",
        "price",
        "paid",
        "placed_at",
        "due_on",
        "meta",
        "notes",
    }
    assert properties["id"]["type"] == "integer"
    assert properties["id"]["format"] == "int64"
    assert properties["id"]["readOnly"] is True
    for stamp in ("created_at", "updated_at"):
        assert properties[stamp]["type"] == "string"
        assert properties[stamp]["format"] == "date-time"

    title = value_schema(properties["title"])
    assert title["type"] == "string"
    assert title["maxLength"] == 80
    assert not accepts_null(properties["title"])
    qty = value_schema(properties["qty"])
    assert (qty["type"], qty["format"]) == ("integer", "int64")
    assert not accepts_null(properties["qty"])
    assert value_schema(properties["price"])["type"] == "number"
    assert accepts_null(properties["price"])
    assert value_schema(properties["paid"])["type"] == "boolean"
    placed = value_schema(properties["placed_at"])
    assert (placed["type"], placed["format"]) == ("string", "date-time")
    due = value_schema(properties["due_on"])
    assert (due["type"], due["format"]) == ("string", "date")
    assert value_schema(properties["notes"])["type"] == "string"

    create = schemas["OrdersCreate"]
    # Required without a default must be sent; a default makes it optional to send.
    assert create["required"] == ["title"]
    assert create["additionalProperties"] is False
    assert "id" not in create["properties"]
    assert "created_at" not in create["properties"]
    assert set(create["properties"]) == set(properties) - {"id", "created_at", "updated_at"}

    update = schemas["OrdersUpdate"]
    assert "required" not in update or update["required"] == []
    assert update["additionalProperties"] is False
    assert set(update["properties"]) == set(create["properties"])

    line = schemas["LineItemsRecord"]
    assert set(line["required"]) == {"id", "created_at", "updated_at"}


async def test_paths_for_every_collection_route(shop: Api) -> None:
    spec = await document(shop)
    paths = spec["paths"]
    for name, pascal in (("orders", "Orders"), ("line_items", "LineItems")):
        base = f"/api/projects/{shop.project}/collections/{name}/records"
        assert set(paths[base]) == {"get", "post"}
        assert set(paths[f"{base}/{{id}}"]) == {"parameters", "get", "patch", "delete"}
        post = paths[base]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{pascal}Create"
        }
        assert post["responses"]["201"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{pascal}Record"
        }
        patch = paths[f"{base}/{{id}}"]["patch"]
        assert patch["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{pascal}Update"
        }
        listing = paths[base]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert listing["properties"]["data"]["items"] == {
            "$ref": f"#/components/schemas/{pascal}Record"
        }
        parameters = {p["name"] for p in paths[base]["get"]["parameters"]}
        assert {"limit", "cursor", "sort", "filter"} <= parameters
        assert paths[base]["get"]["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
        validate_route = paths[f"/api/projects/{shop.project}/collections/{name}/validate"]
        assert validate_route["post"]["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{pascal}Create"
        }
    assert len(paths) == 6
    operation_ids = [
        operation["operationId"]
        for item in paths.values()
        for method, operation in item.items()
        if method != "parameters"
    ]
    assert len(operation_ids) == len(set(operation_ids)) == 12

    # Only sortable fields are offered for sort (json is not sortable).
    sort = next(
        p
        for p in paths[f"/api/projects/{shop.project}/collections/orders/records"]["get"][
            "parameters"
        ]
        if p["name"] == "sort"
    )
    assert "qty" in sort["description"]
    assert "meta" not in sort["description"]


async def test_security_schemes(shop: Api) -> None:
    spec = await document(shop)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert {"bearer": []} in spec["security"]
    assert {"apiKey": []} in spec["security"]


async def test_document_follows_the_catalog(shop: Api) -> None:
    before = await document(shop)
    response = await shop.client.post(
        shop.url("/collections/line_items/fields"),
        json={"name": "amount", "type": "integer", "required": True, "default": 0},
        headers=shop.headers,
    )
    assert response.status_code == 201
    assert (await shop.apply("drop_collection", collection="orders")).status_code == 200
    after = await document(shop)
    validate(after)
    assert int(after["info"]["version"]) > int(before["info"]["version"])
    schemas = after["components"]["schemas"]
    assert "OrdersRecord" not in schemas
    assert not any("/collections/orders/" in path for path in after["paths"])
    assert "amount" in schemas["LineItemsRecord"]["required"]
    assert "amount" not in schemas["LineItemsCreate"].get("required", [])


async def test_collection_names_that_look_alike_stay_distinct(api: Api) -> None:
    """``x1`` and ``x_1`` (or ``a_b`` and ``a__b``) must not share schemas or operation ids."""
    for name in ("x1", "x_1", "a_b", "a__b", "ab"):
        await api.create_collection(
            name, [{"name": f"only_in_{name.replace('_', 'u')}", "type": "text"}]
        )
    spec = await document(api)
    validate(spec)
    schemas = spec["components"]["schemas"]
    records = [key for key in schemas if key.endswith("Record")]
    assert len(records) == 5
    seen = {
        field
        for key in records
        for field in schemas[key]["properties"]
        if field.startswith("only_in_")
    }
    assert len(seen) == 5
    operation_ids = [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    ]
    assert len(operation_ids) == len(set(operation_ids)) == 30


async def test_who_may_read_the_document(shop: Api) -> None:
    anonymous = await shop.client.get(shop.url("/openapi.json"))
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["code"] == "unauthorized"

    reader = await shop.key(["records:read"])
    assert (await shop.client.get(shop.url("/openapi.json"), headers=reader)).status_code == 200
    user = await shop.user("reader@example.com")
    assert (await shop.client.get(shop.url("/openapi.json"), headers=user)).status_code == 200

    other = unique_id()
    created = await shop.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=shop.headers
    )
    assert created.status_code == 201
    other_key = await Api(shop.client, shop.headers, other).key(["records:read", "schema:write"])
    response = await shop.client.get(shop.url("/openapi.json"), headers=other_key)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "wrong_project"

    missing = await shop.client.get(
        f"/api/projects/{unique_id()}/openapi.json", headers=shop.headers
    )
    assert missing.status_code == 404


async def test_a_key_limited_to_some_collections_sees_only_those(shop: Api) -> None:
    limited = await shop.key(["records:read"], collections=["line_items"])
    listed = await shop.client.get(shop.url("/collections"), headers=limited)
    assert [c["name"] for c in listed.json()["data"]] == ["line_items"]
    spec = await document(shop, limited)
    validate(spec)
    assert not any(key.startswith("Orders") for key in spec["components"]["schemas"])
    assert list(spec["paths"]) == [
        f"/api/projects/{shop.project}/collections/line_items/records",
        f"/api/projects/{shop.project}/collections/line_items/records/{{id}}",
        f"/api/projects/{shop.project}/collections/line_items/validate",
    ]


async def test_field_rules_appear_in_the_body_schemas(api: Api) -> None:
    await api.create_collection(
        "invoices",
        [
            *INVOICES,
            {"name": "ref", "type": "string", "rules": [{"type": "pattern", "value": r"\Aok\z"}]},
            {
                "name": "due_on",
                "type": "date",
                "rules": [{"type": "enum", "value": ["2026-01-01"]}],
            },
        ],
    )
    spec = await document(api)
    validate(spec)
    schemas = spec["components"]["schemas"]
    for body in ("InvoicesCreate", "InvoicesUpdate"):
        properties = schemas[body]["properties"]
        code = value_schema(properties["code"])
        assert (code["minLength"], code["maxLength"], code["pattern"]) == (3, 5, "^[A-Z]+$")
        assert accepts_null(properties["code"])
        amount = value_schema(properties["amount"])
        assert (amount["minimum"], amount["maximum"]) == (1, 100)
        assert value_schema(properties["status"])["enum"] == ["draft", "paid"]
        # RE2-only syntax is not offered as an ECMA-262 pattern; the expression is still told.
        ref = value_schema(properties["ref"])
        assert "pattern" not in ref and ref["x-re2-pattern"] == r"\Aok\z"
        # A date enum compares values, not the text a client sends: no enum keyword.
        assert "enum" not in value_schema(properties["due_on"])
        assert value_schema(properties["note"]) == {"type": "string", "title": "Note"}
    # Stored records may predate a rule: the record schema has the type's schema only.
    stored = value_schema(schemas["InvoicesRecord"]["properties"]["code"])
    assert "minLength" not in stored and "pattern" not in stored

    # What the document says is what the API does: a body it refuses is refused, and one it
    # accepts is stored.
    create = schemas["InvoicesCreate"]
    validator = Draft202012Validator(create)
    refused = {"code": "AB", "amount": 0, "status": "void"}
    assert not validator.is_valid(refused)
    response = await api.client.post(
        api.url("/collections/invoices/records"), json=refused, headers=api.headers
    )
    assert response.status_code == 422
    assert {item["code"] for item in response.json()["errors"]} == {"min_length", "min", "enum"}
    accepted = {"code": "ABC", "amount": 100, "status": "draft"}
    assert validator.is_valid(accepted)
    await api.create("invoices", accepted)

    # A rule change shows in the next document.
    changed = await api.apply(
        "set_field_rules",
        collection="invoices",
        field="amount",
        rules=[{"type": "min", "value": 5}],
    )
    assert changed.status_code == 200, changed.text
    amount = (await document(api))["components"]["schemas"]["InvoicesCreate"]["properties"]
    assert value_schema(amount["amount"])["minimum"] == 5
    assert "maximum" not in value_schema(amount["amount"])
