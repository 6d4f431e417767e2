"""The generated records API: CRUD, field types, validation and the query contract.

Every test makes its own collections in a fresh project and checks what a client sees:
status codes, error codes, the parameter or field an error names, and the rows returned.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import Api

#: One optional field of every core type; most query tests use this collection.
ALL_TYPES = [
    {"name": "name", "type": "string", "options": {"max_length": 20}},
    {"name": "body", "type": "text"},
    {"name": "qty", "type": "integer"},
    {"name": "price", "type": "float"},
    {"name": "active", "type": "boolean"},
    {"name": "due", "type": "date"},
    {"name": "at", "type": "datetime"},
    {"name": "meta", "type": "json"},
]

Params = list[tuple[str, str]] | dict[str, str]


# -- helpers --------------------------------------------------------------------------------


def records_url(api: Api, collection: str, record_id: int | str | None = None) -> str:
    path = f"/collections/{collection}/records"
    return api.url(path if record_id is None else f"{path}/{record_id}")


async def items(api: Api, name: str = "items") -> str:
    """A collection with one optional field of every core type."""
    await api.create_collection(name, ALL_TYPES)
    return name


async def post(api: Api, collection: str, body: Any) -> httpx.Response:
    return await api.client.post(records_url(api, collection), json=body, headers=api.headers)


async def post_text(api: Api, collection: str, text: str) -> httpx.Response:
    """POST a body written as JSON text (numbers exactly as written, whatever Python does)."""
    return await api.client.post(
        records_url(api, collection),
        content=text,
        headers={**api.headers, "Content-Type": "application/json"},
    )


async def patch(api: Api, collection: str, record_id: int, body: Any) -> httpx.Response:
    return await api.client.patch(
        records_url(api, collection, record_id), json=body, headers=api.headers
    )


async def read(api: Api, collection: str, record_id: int | str) -> httpx.Response:
    return await api.client.get(records_url(api, collection, record_id), headers=api.headers)


async def listing(api: Api, collection: str, params: Params = ()) -> httpx.Response:
    return await api.client.get(records_url(api, collection), params=params, headers=api.headers)


async def page(api: Api, collection: str, params: Params = ()) -> dict[str, Any]:
    response = await listing(api, collection, params)
    assert response.status_code == 200, response.text
    return response.json()


async def ids(api: Api, collection: str, params: Params = ()) -> list[int]:
    """Ids of the first page for ``params`` (with a limit big enough for any test here)."""
    merged = [*(params.items() if isinstance(params, dict) else params), ("limit", "200")]
    return [row["id"] for row in (await page(api, collection, merged))["data"]]


async def walk(
    api: Api, collection: str, params: Params = (), limit: int = 3, cursor: str | None = None
) -> list[list[dict[str, Any]]]:
    """Every page of a list (from ``cursor``, if given), following ``next_cursor`` until it
    is null."""
    base = [*(params.items() if isinstance(params, dict) else params), ("limit", str(limit))]
    pages: list[list[dict[str, Any]]] = []
    while True:
        body = await page(api, collection, [*base, *([("cursor", cursor)] if cursor else [])])
        assert body["page"]["limit"] == limit
        assert len(body["data"]) <= limit
        pages.append(body["data"])
        cursor = body["page"]["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


def only_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The single error of an error response with ``status``."""
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    assert set(errors[0]) == {"field", "code", "message"}
    return errors[0]


def error_pairs(response: httpx.Response, status: int) -> set[tuple[str | None, str]]:
    """``(field, code)`` of every error of a response with ``status``."""
    assert response.status_code == status, response.text
    return {(item["field"], item["code"]) for item in response.json()["errors"]}


async def seed(api: Api, collection: str, rows: list[dict[str, Any]]) -> list[int]:
    return [(await api.create(collection, row))["id"] for row in rows]


def instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, f"{text} has no offset"
    return parsed


async def events_of(database_url: str, project: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT type, collection, record_id, changed_fields FROM tessera.events "
            "WHERE project_id = $1 ORDER BY id",
            project,
        )
    finally:
        await conn.close()
    return [dict(row) for row in rows]


async def row_count(database_url: str, project: str, collection: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(f'SELECT count(*) FROM "p_{project}"."{collection}"')
    finally:
        await conn.close()


# -- create, read, update, delete -----------------------------------------------------------


async def test_create_returns_201_and_a_flat_record_system_columns_first(api: Api) -> None:
    collection = await items(api)
    response = await post(api, collection, {"name": "first", "qty": 3})
    assert response.status_code == 201, response.text
    record = response.json()
    assert list(record) == ["id", "created_at", "updated_at", *(f["name"] for f in ALL_TYPES)]
    assert isinstance(record["id"], int)
    assert instant(record["created_at"]) == instant(record["updated_at"])
    assert abs(instant(record["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert record["name"] == "first"
    assert record["qty"] == 3
    assert all(record[f] is None for f in ("body", "price", "active", "due", "at", "meta"))


async def test_read_returns_the_stored_record(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "kept", "active": True})
    response = await read(api, collection, created["id"])
    assert response.status_code == 200
    assert response.json() == created


async def test_patch_changes_only_the_given_fields(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "before", "qty": 1, "body": "stays"})
    response = await patch(api, collection, created["id"], {"name": "after", "price": None})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "after"
    assert updated["qty"] == 1
    assert updated["body"] == "stays"
    assert updated["price"] is None
    assert (await read(api, collection, created["id"])).json() == updated


async def test_patch_can_clear_an_optional_field_with_null(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {"qty": 5})
    updated = (await patch(api, collection, created["id"], {"qty": None})).json()
    assert updated["qty"] is None


async def test_patch_with_an_empty_object_changes_no_field(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "same", "qty": 1})
    response = await patch(api, collection, created["id"], {})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert {k: v for k, v in updated.items() if k != "updated_at"} == {
        k: v for k, v in created.items() if k != "updated_at"
    }


async def test_updated_at_moves_on_update_and_created_at_stays(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {"qty": 1})
    updated = (await patch(api, collection, created["id"], {"qty": 2})).json()
    assert updated["created_at"] == created["created_at"]
    assert instant(updated["updated_at"]) > instant(created["updated_at"])


async def test_delete_returns_204_then_the_record_is_gone(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "doomed"})
    response = await api.client.delete(
        records_url(api, collection, created["id"]), headers=api.headers
    )
    assert response.status_code == 204
    assert response.content == b""
    assert only_error(await read(api, collection, created["id"]), 404)["code"] == (
        "record_not_found"
    )
    assert await ids(api, collection) == []


async def test_delete_patch_and_read_of_a_missing_record_are_404(api: Api) -> None:
    collection = await items(api)
    created = await api.create(collection, {})
    missing = created["id"] + 1000
    delete = await api.client.delete(records_url(api, collection, missing), headers=api.headers)
    assert only_error(delete, 404)["code"] == "record_not_found"
    assert only_error(await patch(api, collection, missing, {"qty": 1}), 404)["code"] == (
        "record_not_found"
    )
    assert only_error(await read(api, collection, missing), 404)["code"] == "record_not_found"


@pytest.mark.parametrize(
    "record_id", ["abc", "-1", "1.5", "²", "99999999999999999999", "9999999999999999999"]
)
async def test_record_id_that_is_not_a_number_is_404(api: Api, record_id: str) -> None:
    collection = await items(api)
    assert only_error(await read(api, collection, record_id), 404)["code"] == "record_not_found"


async def test_unknown_collection_is_404(api: Api) -> None:
    response = await listing(api, "nothing_here")
    assert only_error(response, 404)["code"] == "collection_not_found"
    response = await post(api, "nothing_here", {})
    assert only_error(response, 404)["code"] == "collection_not_found"


async def test_create_with_an_empty_object_stores_a_row_of_nulls(api: Api) -> None:
    collection = await items(api)
    record = await api.create(collection, {})
    assert all(record[f["name"]] is None for f in ALL_TYPES)


# -- field types ----------------------------------------------------------------------------


async def round_trip(api: Api, collection: str, field: str, value: Any) -> Any:
    """Create a record with ``field`` = ``value``; return the value as created and as read
    back (asserting they agree)."""
    created = await api.create(collection, {field: value})
    stored = (await read(api, collection, created["id"])).json()
    assert stored[field] == created[field]
    return stored[field]


async def test_string_round_trips_up_to_its_max_length(api: Api) -> None:
    collection = await items(api)
    for value in ["", "plain", "ünïcødé ✓ 漢字", "x" * 20, "  spaced  ", "quote ' \" \\"]:
        assert await round_trip(api, collection, "name", value) == value


async def test_string_over_max_length_is_422_max_length(api: Api) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, {"name": "x" * 21}), 422)
    assert (error["field"], error["code"]) == ("name", "max_length")


async def test_text_round_trips_long_values(api: Api) -> None:
    collection = await items(api)
    value = "line one\nline two\t" + "y" * 100_000
    assert await round_trip(api, collection, "body", value) == value


async def test_integer_round_trips_including_64_bit_limits(api: Api) -> None:
    collection = await items(api)
    for value in [0, -7, 42, 2**63 - 1, -(2**63)]:
        assert await round_trip(api, collection, "qty", value) == value


async def test_integer_accepts_a_float_with_no_fraction(api: Api) -> None:
    collection = await items(api)
    assert await round_trip(api, collection, "qty", 4.0) == 4


async def test_integer_outside_64_bits_is_422_out_of_range(api: Api) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, {"qty": 2**63}), 422)
    assert (error["field"], error["code"]) == ("qty", "out_of_range")


async def test_float_round_trips(api: Api) -> None:
    collection = await items(api)
    for value in [0.0, -1.5, 3.141592653589793, 1e300, 5e-324]:
        assert await round_trip(api, collection, "price", value) == value
    assert await round_trip(api, collection, "price", 3) == 3.0


async def test_boolean_round_trips(api: Api) -> None:
    collection = await items(api)
    assert await round_trip(api, collection, "active", True) is True
    assert await round_trip(api, collection, "active", False) is False


async def test_date_round_trips(api: Api) -> None:
    collection = await items(api)
    for value in ["2024-02-29", "1999-12-31", "0001-01-01"]:
        assert await round_trip(api, collection, "due", value) == value


async def test_datetime_with_an_offset_round_trips_as_the_same_instant(api: Api) -> None:
    collection = await items(api)
    stored = await round_trip(api, collection, "at", "2024-05-01T12:30:15.123456+02:00")
    assert instant(stored) == datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=UTC)


async def test_datetime_without_an_offset_is_taken_as_utc(api: Api) -> None:
    collection = await items(api)
    stored = await round_trip(api, collection, "at", "2024-05-01T12:30:00")
    assert instant(stored) == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        {"nested": {"list": [1, 2.5, "three", None, True]}},
        [1, "two", {"three": 3}],
        "just a string",
        12345,
        False,
        {},
        [],
    ],
)
async def test_json_round_trips_any_json_value(api: Api, value: Any) -> None:
    collection = await items(api)
    assert await round_trip(api, collection, "meta", value) == value


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", 5, "invalid_type"),
        ("name", ["a"], "invalid_type"),
        ("body", {"a": 1}, "invalid_type"),
        ("qty", "5", "invalid_type"),
        ("qty", 1.5, "invalid_type"),
        ("qty", True, "invalid_type"),
        ("price", "1.5", "invalid_type"),
        ("price", False, "invalid_type"),
        ("active", "true", "invalid_type"),
        ("active", 1, "invalid_type"),
        ("due", 20240101, "invalid_type"),
        ("due", "2024-02-30", "invalid_date"),
        ("due", "tomorrow", "invalid_date"),
        ("at", 1714560000, "invalid_type"),
        ("at", "not a time", "invalid_datetime"),
    ],
)
async def test_wrong_json_type_is_422_naming_the_field_with_a_stable_code(
    api: Api, field: str, value: Any, code: str
) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, {field: value}), 422)
    assert (error["field"], error["code"]) == (field, code)
    assert error["message"]
    created = await api.create(collection, {})
    error = only_error(await patch(api, collection, created["id"], {field: value}), 422)
    assert (error["field"], error["code"]) == (field, code)


@pytest.mark.parametrize("field", ["name", "body"])
async def test_nul_character_in_a_string_is_422_naming_the_field(api: Api, field: str) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, {field: "a\u0000b"}), 422)
    assert (error["field"], error["code"]) == (field, "invalid_character")


@pytest.mark.parametrize(
    "value", ["a\u0000", {"k": ["x", {"deep": "a\u0000b"}]}, {"a\u0000": 1}, [1, ["\u0000"]]]
)
async def test_nul_anywhere_in_a_json_value_is_422_naming_the_field(api: Api, value: Any) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, {"meta": value}), 422)
    assert (error["field"], error["code"]) == ("meta", "invalid_character")
    created = await api.create(collection, {"meta": {"k": ["x", {"deep": "ok"}]}})
    error = only_error(await patch(api, collection, created["id"], {"meta": value}), 422)
    assert (error["field"], error["code"]) == ("meta", "invalid_character")
    assert (await read(api, collection, created["id"])).json()["meta"] == {
        "k": ["x", {"deep": "ok"}]
    }


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("qty", "-9223372036854775809"),
        ("qty", "9223372036854775808"),
        ("qty", "-100000000000000000000000"),
        ("qty", "1e18"),
        ("meta", "100000000000000000000"),
        ("meta", '{"n": [-9223372036854775809]}'),
        ("meta", "18446744073709551615"),
    ],
)
async def test_an_integer_beyond_64_bits_is_422_never_rounded_or_clamped(
    api: Api, pg: asyncpg.Connection, field: str, text: str
) -> None:
    collection = await items(api)
    response = await post_text(api, collection, f'{{"{field}": {text}}}')
    error = only_error(response, 422)
    assert (error["field"], error["code"]) == (field, "out_of_range")
    assert await pg.fetchval(f'SELECT count(*) FROM "p_{api.project}"."items"') == 0


@pytest.mark.parametrize(
    ("field", "text", "stored"),
    [
        ("qty", "-9223372036854775808", -(2**63)),
        ("qty", "9223372036854775807", 2**63 - 1),
        ("qty", "9007199254740992.0", 2**53),
        ("meta", '{"n": -9223372036854775808}', {"n": -(2**63)}),
        ("meta", "1e30", 1e30),
        ("meta", '"123456789012345678901234567890"', "123456789012345678901234567890"),
    ],
)
async def test_numbers_at_the_edges_of_64_bits_are_stored_exactly(
    api: Api, field: str, text: str, stored: Any
) -> None:
    collection = await items(api)
    response = await post_text(api, collection, f'{{"{field}": {text}}}')
    assert response.status_code == 201, response.text
    assert (await read(api, collection, response.json()["id"])).json()[field] == stored


async def test_every_field_problem_is_reported_at_once(api: Api) -> None:
    collection = await items(api)
    response = await post(api, collection, {"name": 1, "qty": "x", "due": "no", "nope": 1})
    assert error_pairs(response, 422) == {
        ("name", "invalid_type"),
        ("qty", "invalid_type"),
        ("due", "invalid_date"),
        ("nope", "unknown_field"),
    }


async def required_collection(api: Api) -> str:
    await api.create_collection(
        "people",
        [
            {"name": "email", "type": "string", "required": True, "unique": True},
            {"name": "age", "type": "integer", "required": True},
            {"name": "role", "type": "string", "required": True, "default": "member"},
            {"name": "score", "type": "integer", "default": 10},
        ],
    )
    return "people"


async def test_missing_required_field_is_422_required(api: Api) -> None:
    collection = await required_collection(api)
    response = await post(api, collection, {"email": "a@b.test"})
    assert error_pairs(response, 422) == {("age", "required")}
    response = await post(api, collection, {})
    assert error_pairs(response, 422) == {("email", "required"), ("age", "required")}


async def test_null_in_required_field_is_422_required(api: Api) -> None:
    collection = await required_collection(api)
    response = await post(api, collection, {"email": None, "age": 3})
    assert error_pairs(response, 422) == {("email", "required")}
    # A required field with a default still refuses an explicit null.
    response = await post(api, collection, {"email": "a@b.test", "age": 3, "role": None})
    assert error_pairs(response, 422) == {("role", "required")}
    created = await api.create(collection, {"email": "a@b.test", "age": 3})
    response = await patch(api, collection, created["id"], {"age": None})
    assert error_pairs(response, 422) == {("age", "required")}


async def test_patch_need_not_repeat_required_fields(api: Api) -> None:
    collection = await required_collection(api)
    created = await api.create(collection, {"email": "a@b.test", "age": 3})
    response = await patch(api, collection, created["id"], {"score": 1})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "a@b.test"


async def test_default_is_applied_when_the_field_is_omitted(api: Api) -> None:
    collection = await required_collection(api)
    created = await api.create(collection, {"email": "a@b.test", "age": 3})
    assert created["role"] == "member"
    assert created["score"] == 10
    given = await api.create(collection, {"email": "b@b.test", "age": 3, "role": "owner"})
    assert given["role"] == "owner"


async def test_explicit_null_in_an_optional_field_with_a_default_stores_null(api: Api) -> None:
    collection = await required_collection(api)
    created = await api.create(collection, {"email": "a@b.test", "age": 3, "score": None})
    assert created["score"] is None


async def test_unique_violation_is_409_naming_the_field(api: Api) -> None:
    collection = await required_collection(api)
    first = await api.create(collection, {"email": "same@b.test", "age": 1})
    error = only_error(await post(api, collection, {"email": "same@b.test", "age": 2}), 409)
    assert (error["field"], error["code"]) == ("email", "unique_violation")
    other = await api.create(collection, {"email": "other@b.test", "age": 2})
    error = only_error(await patch(api, collection, other["id"], {"email": "same@b.test"}), 409)
    assert (error["field"], error["code"]) == ("email", "unique_violation")
    assert await ids(api, collection) == [first["id"], other["id"]]


async def test_unknown_field_in_body_is_422_unknown_field(api: Api) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, {"name": "a", "colour": "red"}), 422)
    assert (error["field"], error["code"]) == ("colour", "unknown_field")
    created = await api.create(collection, {})
    error = only_error(await patch(api, collection, created["id"], {"colour": "red"}), 422)
    assert (error["field"], error["code"]) == ("colour", "unknown_field")


@pytest.mark.parametrize("column", ["id", "created_at", "updated_at"])
async def test_system_columns_in_body_are_422_read_only(api: Api, column: str) -> None:
    collection = await items(api)
    value: Any = 12345 if column == "id" else "2020-01-01T00:00:00Z"
    error = only_error(await post(api, collection, {column: value}), 422)
    assert (error["field"], error["code"]) == (column, "read_only")
    created = await api.create(collection, {"qty": 1})
    error = only_error(await patch(api, collection, created["id"], {column: value}), 422)
    assert (error["field"], error["code"]) == (column, "read_only")
    assert (await read(api, collection, created["id"])).json() == created


@pytest.mark.parametrize("body", [[{"name": "a"}], "a string", 42, None])
async def test_body_that_is_not_an_object_is_422_invalid_body(api: Api, body: Any) -> None:
    collection = await items(api)
    error = only_error(await post(api, collection, body), 422)
    assert error["code"] == "invalid_body"
    created = await api.create(collection, {})
    error = only_error(await patch(api, collection, created["id"], body), 422)
    assert error["code"] == "invalid_body"


async def test_empty_body_is_422_invalid_body(api: Api) -> None:
    collection = await items(api)
    response = await api.client.post(records_url(api, collection), headers=api.headers)
    assert only_error(response, 422)["code"] == "invalid_body"


async def test_malformed_json_body_is_400(api: Api) -> None:
    collection = await items(api)
    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.post(
        records_url(api, collection), content=b'{"name": "a",', headers=headers
    )
    assert only_error(response, 400)["code"] == "malformed_json"
    created = await api.create(collection, {})
    response = await api.client.patch(
        records_url(api, collection, created["id"]), content=b"{nope", headers=headers
    )
    assert only_error(response, 400)["code"] == "malformed_json"


async def test_rejected_writes_change_nothing(api: Api, database_url: str) -> None:
    collection = await required_collection(api)
    created = await api.create(collection, {"email": "a@b.test", "age": 1})
    await post(api, collection, {"email": "a@b.test", "age": 2})
    await post(api, collection, {"age": "old"})
    await patch(api, collection, created["id"], {"age": "older", "score": 99})
    assert await row_count(database_url, api.project, collection) == 1
    assert (await read(api, collection, created["id"])).json() == created


# -- filters --------------------------------------------------------------------------------


async def people(api: Api) -> dict[str, int]:
    """A small collection with duplicates and nulls; returns name → id."""
    await items(api, "things")
    rows = [
        {"name": "Alice", "qty": 5, "price": 1.5, "active": True, "due": "2024-01-01"},
        {"name": "bob", "qty": 10, "price": 2.5, "active": False, "due": "2024-02-01"},
        {"name": "Carol", "qty": 10, "price": None, "active": None, "due": "2024-03-01"},
        {"name": "100% real", "qty": -3, "price": 0.0, "active": True, "due": None},
        {"name": "snake_case", "qty": None, "price": 9.75, "active": False, "due": "2023-12-31"},
        {"name": None, "qty": 0, "price": 2.5, "active": None, "due": "2024-02-01"},
        {"name": "a,b", "qty": 7, "body": "Hello World", "at": "2024-06-01T08:00:00Z"},
    ]
    created = await seed(api, "things", rows)
    return {str(row["name"]): record_id for row, record_id in zip(rows, created, strict=True)}


async def matches(api: Api, by_name: dict[str, int], params: Params) -> set[str]:
    """The names of the records a filter returns."""
    names = {record_id: name for name, record_id in by_name.items()}
    return {names[record_id] for record_id in await ids(api, "things", params)}


async def test_filter_without_an_operator_means_eq(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name]": "bob"}) == {"bob"}
    assert await matches(api, rows, {"filter[qty]": "10"}) == {"bob", "Carol"}


async def test_filter_eq_is_exact_and_case_sensitive(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name][eq]": "Alice"}) == {"Alice"}
    assert await matches(api, rows, {"filter[name][eq]": "alice"}) == set()
    assert await matches(api, rows, {"filter[name][eq]": "Ali"}) == set()


async def test_filter_ne_includes_records_with_no_value(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[qty][ne]": "10"}) == {
        "Alice",
        "100% real",
        "snake_case",
        "None",
        "a,b",
    }
    assert "None" in await matches(api, rows, {"filter[name][ne]": "bob"})


async def test_filter_in_takes_a_comma_list(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name][in]": "Alice,bob,nobody"}) == {"Alice", "bob"}
    assert await matches(api, rows, {"filter[qty][in]": "5, 0 ,-3"}) == {
        "Alice",
        "None",
        "100% real",
    }
    assert await matches(api, rows, {"filter[due][in]": "2024-02-01"}) == {"bob", "None"}


async def test_filter_in_on_floats_and_datetimes(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[price][in]": "2.5,0"}) == {"bob", "None", "100% real"}
    assert await matches(api, rows, {"filter[at][in]": "2024-06-01T10:00:00+02:00,2020-01-01"}) == {
        "a,b"
    }


async def test_filter_in_takes_a_json_array_for_values_with_commas(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name][in]": '["a,b", "bob"]'}) == {"a,b", "bob"}
    assert await matches(api, rows, {"filter[qty][in]": "[5, 7]"}) == {"Alice", "a,b"}


async def test_filter_in_does_not_match_nulls(api: Api) -> None:
    rows = await people(api)
    assert "snake_case" not in await matches(api, rows, {"filter[qty][in]": "0,5,7,10,-3"})


async def test_filter_contains_is_case_insensitive(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name][contains]": "AL"}) == {"Alice", "100% real"}
    assert await matches(api, rows, {"filter[name][contains]": "o"}) == {"bob", "Carol"}
    assert await matches(api, rows, {"filter[body][contains]": "world"}) == {"a,b"}


async def test_filter_contains_treats_percent_and_underscore_literally(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name][contains]": "%"}) == {"100% real"}
    assert await matches(api, rows, {"filter[name][contains]": "_"}) == {"snake_case"}
    assert await matches(api, rows, {"filter[name][contains]": "b_b"}) == set()
    assert await matches(api, rows, {"filter[name][contains]": "A%e"}) == set()


async def test_filter_gt_lt_gte_lte_compare_numbers(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[qty][gt]": "5"}) == {"bob", "Carol", "a,b"}
    assert await matches(api, rows, {"filter[qty][gte]": "5"}) == {"Alice", "bob", "Carol", "a,b"}
    assert await matches(api, rows, {"filter[qty][lt]": "5"}) == {"100% real", "None"}
    assert await matches(api, rows, {"filter[qty][lte]": "0"}) == {"100% real", "None"}
    assert await matches(api, rows, {"filter[price][gt]": "2.4"}) == {"bob", "None", "snake_case"}


async def test_filter_comparisons_on_dates_and_datetimes(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[due][lt]": "2024-01-01"}) == {"snake_case"}
    assert await matches(api, rows, {"filter[due][gte]": "2024-02-01"}) == {"bob", "Carol", "None"}
    assert await matches(api, rows, {"filter[at][gt]": "2024-06-01T09:00:00+02:00"}) == {"a,b"}
    assert await matches(api, rows, {"filter[at][gt]": "2024-06-01T08:00:00"}) == set()


async def test_filter_between_is_inclusive_at_both_ends(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[qty][between]": "0,7"}) == {"Alice", "None", "a,b"}
    assert await matches(api, rows, {"filter[due][between]": "2024-01-01,2024-02-01"}) == {
        "Alice",
        "bob",
        "None",
    }


async def test_filter_between_takes_a_json_array(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name][between]": '["a,a", "a,c"]'}) == {"a,b"}


async def test_filter_is_null_true_and_false(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[price][is_null]": "true"}) == {"Carol", "a,b"}
    assert await matches(api, rows, {"filter[price][is_null]": "false"}) == set(rows) - {
        "Carol",
        "a,b",
    }
    assert await matches(api, rows, {"filter[meta][is_null]": "1"}) == set(rows)


async def test_filter_on_booleans(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[active]": "true"}) == {"Alice", "100% real"}
    assert await matches(api, rows, {"filter[active][ne]": "true"}) == set(rows) - {
        "Alice",
        "100% real",
    }


async def test_filter_on_system_columns(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[id][in]": f"{rows['bob']},{rows['Carol']}"}) == {
        "bob",
        "Carol",
    }
    assert await matches(api, rows, {"filter[created_at][gt]": "2000-01-01T00:00:00Z"}) == set(rows)


async def test_several_filters_must_all_hold(api: Api) -> None:
    rows = await people(api)
    params = [("filter[qty][gte]", "5"), ("filter[price][is_null]", "false")]
    assert await matches(api, rows, params) == {"Alice", "bob"}
    params = [("filter[qty][gte]", "0"), ("filter[qty][lte]", "5")]
    assert await matches(api, rows, params) == {"Alice", "None"}


async def test_filter_values_are_data_not_sql(api: Api) -> None:
    rows = await people(api)
    assert await matches(api, rows, {"filter[name]": "x' OR '1'='1"}) == set()
    assert await matches(api, rows, {"filter[name][contains]": "'); DROP TABLE things; --"}) == (
        set()
    )
    assert len(await ids(api, "things")) == len(rows)


# -- query errors ---------------------------------------------------------------------------


async def query_error(api: Api, params: Params) -> dict[str, Any]:
    collection = "items"
    await items(api, collection)
    return only_error(await listing(api, collection, params), 400)


async def test_filter_on_an_unknown_field_is_400_naming_the_parameter(api: Api) -> None:
    error = await query_error(api, {"filter[colour][eq]": "red"})
    assert (error["field"], error["code"]) == ("filter[colour][eq]", "unknown_field")


async def test_short_filter_on_an_unknown_field_names_the_parameter(api: Api) -> None:
    error = await query_error(api, {"filter[colour]": "red"})
    assert (error["field"], error["code"]) == ("filter[colour]", "unknown_field")


async def test_sort_on_an_unknown_field_is_400_naming_sort(api: Api) -> None:
    error = await query_error(api, {"sort": "qty:asc,colour:desc"})
    assert (error["field"], error["code"]) == ("sort", "unknown_field")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filter[qty][contains]", "1"),
        ("filter[active][gt]", "true"),
        ("filter[active][between]", "false,true"),
        ("filter[meta][eq]", "{}"),
        ("filter[due][contains]", "2024"),
        ("filter[name][like]", "a%"),
    ],
)
async def test_operator_the_type_does_not_support_is_400(api: Api, key: str, value: str) -> None:
    error = await query_error(api, {key: value})
    assert (error["field"], error["code"]) == (key, "unsupported_operator")


async def test_between_with_three_values_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[qty][between]": "1,2,3"})
    assert (error["field"], error["code"]) == ("filter[qty][between]", "invalid_value")


async def test_between_with_one_value_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[qty][between]": "1"})
    assert (error["field"], error["code"]) == ("filter[qty][between]", "invalid_value")


async def test_non_integer_in_an_integer_in_list_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[qty][in]": "1,two,3"})
    assert (error["field"], error["code"]) == ("filter[qty][in]", "invalid_value")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filter[qty]", "1.5"),
        ("filter[qty][gt]", ""),
        ("filter[price][lt]", "cheap"),
        ("filter[active]", "maybe"),
        ("filter[due][gte]", "2024-13-01"),
        ("filter[at][lt]", "yesterday"),
        ("filter[name][eq]", "x" * 21),
        ("filter[id]", "first"),
        # Numbers are ASCII decimal, as in JSON: int() and float() would take all these.
        ("filter[qty]", "1_000"),
        ("filter[qty]", "+5"),
        ("filter[qty]", "\u0665"),
        ("filter[qty]", "\uff11\uff12"),
        ("filter[qty][in]", "1,1_000"),
        ("filter[qty]", "-9223372036854775809"),
        ("filter[price][gt]", "1_000.5"),
        ("filter[price]", "\uff11.5"),
        ("filter[price]", "+1.5"),
        ("filter[price]", "infinity"),
        ("filter[id]", "\u0665"),
    ],
)
async def test_value_the_field_type_refuses_is_400(api: Api, key: str, value: str) -> None:
    error = await query_error(api, {key: value})
    assert (error["field"], error["code"]) == (key, "invalid_value")


async def test_empty_in_list_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[qty][in]": ""})
    assert (error["field"], error["code"]) == ("filter[qty][in]", "invalid_value")


async def test_in_with_more_than_100_values_is_400(api: Api) -> None:
    values = ",".join(str(n) for n in range(101))
    error = await query_error(api, {"filter[qty][in]": values})
    assert (error["field"], error["code"]) == ("filter[qty][in]", "invalid_value")


@pytest.mark.parametrize("key", ["filter[id][gt]", "filter[id][in]", "filter[qty]"])
async def test_number_outside_64_bits_in_a_filter_is_400(api: Api, key: str) -> None:
    error = await query_error(api, {key: "99999999999999999999"})
    assert (error["field"], error["code"]) == (key, "invalid_value")


@pytest.mark.parametrize("key", ["filter[name]", "filter[name][contains]", "filter[body][in]"])
async def test_nul_character_in_a_filter_value_is_400(api: Api, key: str) -> None:
    error = await query_error(api, {key: "a\u0000b"})
    assert (error["field"], error["code"]) == (key, "invalid_value")


async def test_malformed_json_list_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[name][in]": '["a", "b"'})
    assert (error["field"], error["code"]) == ("filter[name][in]", "invalid_value")


async def test_json_list_of_objects_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[name][in]": '[{"a": 1}]'})
    assert (error["field"], error["code"]) == ("filter[name][in]", "invalid_value")


async def test_is_null_with_a_non_boolean_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[qty][is_null]": "yes please"})
    assert (error["field"], error["code"]) == ("filter[qty][is_null]", "invalid_value")


@pytest.mark.parametrize("key", ["filter", "filters[qty]", "filter[qty", "filter[qty][eq][x]"])
async def test_malformed_filter_key_is_400(api: Api, key: str) -> None:
    error = await query_error(api, {key: "1"})
    assert (error["field"], error["code"]) == (key, "invalid_filter")


@pytest.mark.parametrize("sort", ["qty:up", ":asc", "qty,,name", "meta", "qty,qty:desc"])
async def test_malformed_sort_is_400_invalid_sort(api: Api, sort: str) -> None:
    error = await query_error(api, {"sort": sort})
    assert (error["field"], error["code"]) == ("sort", "invalid_sort")


async def test_limit_over_the_maximum_is_400(api: Api) -> None:
    error = await query_error(api, {"limit": "201"})
    assert (error["field"], error["code"]) == ("limit", "invalid_limit")
    assert (await listing(api, "items", {"limit": "200"})).status_code == 200


@pytest.mark.parametrize(
    "limit", ["0", "-1", "ten", "", "2.5", "+5", "\u0665", "1_0", "\uff15", " 5", "5\n"]
)
async def test_limit_that_is_not_a_positive_integer_is_400(api: Api, limit: str) -> None:
    error = await query_error(api, {"limit": limit})
    assert (error["field"], error["code"]) == ("limit", "invalid_limit")


async def test_default_limit_is_25(api: Api) -> None:
    collection = await items(api)
    await seed(api, collection, [{"qty": n} for n in range(26)])
    body = await page(api, collection)
    assert body["page"]["limit"] == 25
    assert len(body["data"]) == 25
    assert body["page"]["next_cursor"] is not None


async def test_more_filters_than_allowed_is_400(api: Api) -> None:
    collection = await items(api)
    ten = [("filter[qty][gte]", str(n)) for n in range(10)]
    assert (await listing(api, collection, ten)).status_code == 200
    error = only_error(await listing(api, collection, [*ten, ("filter[name]", "a")]), 400)
    assert (error["field"], error["code"]) == ("filter", "too_many_filters")


async def test_unknown_query_parameter_is_400(api: Api) -> None:
    error = await query_error(api, {"filter[qty]": "1", "offset": "10"})
    assert (error["field"], error["code"]) == ("offset", "unknown_parameter")


async def test_parameters_starting_with_underscore_are_ignored(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": 1}, {"qty": 2}])
    assert await ids(api, collection, {"_": "1712345678", "_cache": "x"}) == created


async def test_unknown_include_is_400(api: Api) -> None:
    error = await query_error(api, {"include": "customer"})
    assert (error["field"], error["code"]) == ("include", "unknown_include")


# -- sorting --------------------------------------------------------------------------------


async def test_default_order_is_by_id(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in (3, 1, 2)])
    assert await ids(api, collection) == created


async def test_sort_desc_on_one_field(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in (3, 1, 2)])
    assert await ids(api, collection, {"sort": "qty:desc"}) == [created[0], created[2], created[1]]
    assert await ids(api, collection, {"sort": "qty"}) == [created[1], created[2], created[0]]


async def test_sort_on_several_fields(api: Api) -> None:
    collection = await items(api)
    a, b, c, d = await seed(
        api,
        collection,
        [
            {"name": "x", "qty": 1},
            {"name": "y", "qty": 2},
            {"name": "x", "qty": 3},
            {"name": "y", "qty": 1},
        ],
    )
    assert await ids(api, collection, {"sort": "name:asc,qty:desc"}) == [c, a, b, d]
    assert await ids(api, collection, {"sort": "name:desc,qty:asc"}) == [d, b, a, c]
    assert await ids(api, collection, [("sort", "qty"), ("sort", "name:desc")]) == [d, a, b, c]


async def test_id_breaks_ties(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": 1}] * 4)
    assert await ids(api, collection, {"sort": "qty:desc"}) == created
    assert await ids(api, collection, {"sort": "qty:asc,id:desc"}) == created[::-1]
    assert await ids(api, collection, {"sort": "id:desc"}) == created[::-1]


async def test_nulls_sort_last_ascending_and_first_descending(api: Api) -> None:
    collection = await items(api)
    low, null, high = await seed(api, collection, [{"qty": 1}, {"qty": None}, {"qty": 9}])
    assert await ids(api, collection, {"sort": "qty:asc"}) == [low, high, null]
    assert await ids(api, collection, {"sort": "qty:desc"}) == [null, high, low]


async def test_sort_on_system_timestamps(api: Api) -> None:
    collection = await items(api)
    first, second, third = await seed(api, collection, [{}, {}, {}])
    await patch(api, collection, first, {"qty": 1})
    assert await ids(api, collection, {"sort": "created_at:desc"}) == [third, second, first]
    assert (await ids(api, collection, {"sort": "updated_at:desc"}))[0] == first


# -- cursor pagination ----------------------------------------------------------------------


def flat_ids(pages: list[list[dict[str, Any]]]) -> list[int]:
    return [row["id"] for rows in pages for row in rows]


async def test_cursor_walks_id_order_across_pages_exactly_once(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in range(11)])
    pages = await walk(api, collection, limit=3)
    assert [len(rows) for rows in pages] == [3, 3, 3, 2]
    assert flat_ids(pages) == created


async def test_a_reused_query_string_serves_each_cursor_and_refuses_each_bad_query(
    api: Api,
) -> None:
    """List queries are parsed once per shape (everything but the cursor): walking pages,
    the cursor's position in the query string, and refusals must not leak between calls."""
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in range(7)])
    first = await page(api, collection, [("filter[qty][gte]", "1"), ("limit", "3")])
    cursor = first["page"]["next_cursor"]
    second = await page(
        api, collection, [("cursor", cursor), ("filter[qty][gte]", "1"), ("limit", "3")]
    )
    assert [row["id"] for row in first["data"] + second["data"]] == created[1:7]
    other = await page(api, collection, [("filter[qty][gte]", "5"), ("limit", "3")])
    assert [row["id"] for row in other["data"]] == created[5:7]
    for _ in range(2):
        response = await api.client.get(
            records_url(api, collection), params={"filter[nope]": "1"}, headers=api.headers
        )
        assert only_error(response, 400)["code"] == "unknown_field"


async def test_last_full_page_has_no_next_cursor(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in range(6)])
    pages = await walk(api, collection, limit=3)
    assert [len(rows) for rows in pages] == [3, 3]
    assert flat_ids(pages) == created


async def test_empty_collection_gives_an_empty_page_without_cursor(api: Api) -> None:
    collection = await items(api)
    assert await page(api, collection) == {"data": [], "page": {"limit": 25, "next_cursor": None}}


#: Values with duplicates and nulls for each sortable core type.
SORT_VALUES: dict[str, list[Any]] = {
    "qty": [3, None, 1, 3, None, 2, 3, 1, None, 0, -5, 3],
    "name": ["b", None, "a", "b", "B", None, "c", "a", "", "b", None, "ä"],
    "price": [1.5, None, -0.25, 1.5, 1e-9, None, 2.0, 1.5, None, 0.0, 3.75, 2.0],
    "active": [True, None, False, True, None, False, True, False, None, True, False, None],
    "due": [
        "2024-01-01",
        None,
        "2023-05-05",
        "2024-01-01",
        "2025-12-31",
        None,
        "2024-01-01",
        "2023-05-05",
        None,
        "2024-01-02",
        "0001-01-01",
        "2024-01-01",
    ],
    "at": [
        "2024-01-01T00:00:00.000001Z",
        None,
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.000001Z",
        "2023-06-01T12:00:00+05:00",
        None,
        "2024-01-01T00:00:00Z",
        "2030-01-01T00:00:00.999999Z",
        None,
        "2024-01-01T00:00:00.000001Z",
        "1970-01-01T00:00:00Z",
        "2023-06-01T07:00:00Z",
    ],
}


def expected_order(rows: list[dict[str, Any]], field: str, descending: bool) -> list[int]:
    """The order PostgreSQL's default (nulls last ascending) gives, ties by id ascending."""

    def key_of(value: Any) -> Any:
        if field == "at":
            return instant(value)
        if field == "due":
            return date.fromisoformat(value)
        return value

    present = [row for row in rows if row[field] is not None]
    nulls = [row["id"] for row in rows if row[field] is None]
    by_id = sorted(present, key=lambda row: row["id"])
    ordered = sorted(by_id, key=lambda row: key_of(row[field]), reverse=descending)
    if descending:
        # Reversing a stable sort reverses ties too; restore id order within equal values.
        groups: dict[Any, list[int]] = {}
        for row in ordered:
            groups.setdefault(key_of(row[field]), []).append(row["id"])
        ordered_ids = [record_id for group in groups.values() for record_id in sorted(group)]
        return nulls + ordered_ids
    return [row["id"] for row in ordered] + nulls


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("field", ["qty", "price", "active", "due", "at"])
async def test_cursor_walks_a_nullable_sort_with_duplicates_exactly_once(
    api: Api, field: str, direction: str
) -> None:
    collection = await items(api)
    rows = [await api.create(collection, {field: value}) for value in SORT_VALUES[field]]
    everything = await ids(api, collection, {"sort": f"{field}:{direction}"})
    assert everything == expected_order(rows, field, direction == "desc")
    for limit in (1, 2, 3, 5):
        walked = flat_ids(await walk(api, collection, {"sort": f"{field}:{direction}"}, limit))
        assert walked == everything, f"limit {limit}"


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_cursor_walks_a_nullable_string_sort_exactly_once(api: Api, direction: str) -> None:
    collection = await items(api)
    await seed(api, collection, [{"name": value} for value in SORT_VALUES["name"]])
    everything = await ids(api, collection, {"sort": f"name:{direction}"})
    assert len(everything) == len(SORT_VALUES["name"])
    for limit in (1, 2, 4):
        walked = flat_ids(await walk(api, collection, {"sort": f"name:{direction}"}, limit))
        assert walked == everything, f"limit {limit}"


async def test_cursor_walks_a_multi_field_sort_with_nulls_exactly_once(api: Api) -> None:
    collection = await items(api)
    values = [(q, n) for q in (None, 1, 2) for n in (None, "a", "b")] * 2
    await seed(api, collection, [{"qty": q, "name": n} for q, n in values])
    sort = {"sort": "qty:desc,name:asc"}
    everything = await ids(api, collection, sort)
    assert len(set(everything)) == len(values)
    for limit in (1, 2, 4, 7):
        assert flat_ids(await walk(api, collection, sort, limit)) == everything, f"limit {limit}"


@pytest.mark.parametrize("sort", ["id:desc", "created_at:desc", "updated_at:asc"])
async def test_cursor_walks_system_column_sorts_exactly_once(api: Api, sort: str) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in range(7)])
    expected = created[::-1] if sort.endswith("desc") else created
    for limit in (1, 2, 3):
        assert flat_ids(await walk(api, collection, {"sort": sort}, limit)) == expected


async def test_cursor_walks_a_required_field_sort_exactly_once(api: Api) -> None:
    collection = await required_collection(api)
    ages = [30, 20, 30, 10, 20, 30, 40]
    created = await seed(
        api, collection, [{"email": f"{n}@b.test", "age": age} for n, age in enumerate(ages)]
    )
    expected = [record_id for _, record_id in sorted(zip(ages, created, strict=True))]
    for limit in (1, 2, 3):
        assert flat_ids(await walk(api, collection, {"sort": "age"}, limit)) == expected


async def test_cursor_keeps_the_filters_of_the_walk(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n % 3} for n in range(12)])
    wanted = [record_id for n, record_id in enumerate(created) if n % 3 != 1]
    pages = await walk(api, collection, {"filter[qty][ne]": "1", "sort": "qty:desc"}, limit=2)
    walked = flat_ids(pages)
    assert sorted(walked) == wanted
    assert len(walked) == len(set(walked))


async def test_cursor_walk_is_stable_while_rows_are_inserted(api: Api) -> None:
    """Rows inserted mid-walk appear only if they sort after the cursor; none repeats and no
    row that existed when the walk started is skipped."""
    collection = await items(api)
    original = await seed(api, collection, [{"qty": n * 10} for n in range(10)])
    sort = [("sort", "qty:desc"), ("limit", "3")]
    seen: list[dict[str, Any]] = []
    must_appear: set[int] = set()
    must_not_appear: set[int] = set()
    cursor: str | None = None
    step = 0
    while True:
        body = await page(api, collection, [*sort, *([("cursor", cursor)] if cursor else [])])
        seen.extend(body["data"])
        cursor = body["page"]["next_cursor"]
        if cursor is None:
            break
        last = body["data"][-1]["qty"]
        step += 1
        # One row that sorts before the cursor (already passed), one after it, one tied
        # with the last row seen (a larger id, so after it too).
        before = await api.create(collection, {"qty": last + 5 + step})
        after = await api.create(collection, {"qty": last - 5 - step})
        tied = await api.create(collection, {"qty": last})
        must_not_appear.add(before["id"])
        must_appear.update({after["id"], tied["id"]})
    seen_ids = [row["id"] for row in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a row was returned twice"
    assert set(original) <= set(seen_ids), "a row that existed before the walk was skipped"
    assert must_appear <= set(seen_ids)
    assert not must_not_appear & set(seen_ids)
    qtys = [row["qty"] for row in seen]
    assert qtys == sorted(qtys, reverse=True)


async def test_cursor_walk_in_id_order_sees_rows_appended_during_the_walk(api: Api) -> None:
    collection = await items(api)
    created = await seed(api, collection, [{"qty": n} for n in range(5)])
    first = await page(api, collection, {"limit": "2"})
    created += await seed(api, collection, [{"qty": 100}, {"qty": 101}])
    rest = await walk(api, collection, limit=2, cursor=first["page"]["next_cursor"])
    assert [row["id"] for row in first["data"]] + flat_ids(rest) == created


async def test_forged_cursor_is_400(api: Api) -> None:
    collection = await items(api)
    await seed(api, collection, [{"qty": n} for n in range(3)])
    real = (await page(api, collection, {"limit": "1"}))["page"]["next_cursor"]
    body, _, signature = real.partition(".")
    scope, values = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged_payload = orjson.dumps([scope, [values[0] - 1]])
    forged = base64.urlsafe_b64encode(forged_payload).rstrip(b"=").decode() + "." + signature
    for cursor in (forged, "not-a-cursor", "abc.def", ".", "ünïcode.x"):
        response = await listing(api, collection, {"limit": "1", "cursor": cursor})
        error = only_error(response, 400)
        assert (error["field"], error["code"]) == ("cursor", "invalid_cursor"), cursor


async def test_truncated_cursor_is_400(api: Api) -> None:
    collection = await items(api)
    await seed(api, collection, [{"qty": n} for n in range(3)])
    real = (await page(api, collection, {"limit": "1"}))["page"]["next_cursor"]
    for cut in (1, 2, 3, len(real) // 2, len(real) - 1):
        response = await listing(api, collection, {"limit": "1", "cursor": real[:cut]})
        error = only_error(response, 400)
        assert (error["field"], error["code"]) == ("cursor", "invalid_cursor"), cut


async def test_cursor_used_with_a_different_sort_is_400(api: Api) -> None:
    collection = await items(api)
    await seed(api, collection, [{"qty": n} for n in range(3)])
    cursor = (await page(api, collection, {"limit": "1", "sort": "qty:asc"}))["page"]["next_cursor"]
    for sort in ("qty:desc", "name:asc", "id"):
        response = await listing(api, collection, {"limit": "1", "sort": sort, "cursor": cursor})
        error = only_error(response, 400)
        assert (error["field"], error["code"]) == ("cursor", "invalid_cursor"), sort
    response = await listing(api, collection, {"limit": "1", "sort": "qty", "cursor": cursor})
    assert response.status_code == 200


async def test_cursor_of_another_collection_is_400(api: Api) -> None:
    first = await items(api, "first")
    second = await items(api, "second")
    for collection in (first, second):
        await seed(api, collection, [{"qty": n} for n in range(3)])
    cursor = (await page(api, first, {"limit": "1"}))["page"]["next_cursor"]
    error = only_error(await listing(api, second, {"limit": "1", "cursor": cursor}), 400)
    assert (error["field"], error["code"]) == ("cursor", "invalid_cursor")


async def test_cursor_pages_use_keyset_not_offset(api: Api) -> None:
    collection = await items(api)
    await seed(api, collection, [{"qty": n % 4} for n in range(9)])
    for sort in ("id", "qty:desc"):
        await walk(api, collection, {"sort": sort}, limit=2)
    tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    catalog = await tessera.catalog.get(api.project)
    runtime = next(
        runtime
        for key, runtime in catalog.runtime.items()
        if key[0] == "records" and runtime.collection.name == collection
    )
    cursor_pages = [
        compiled.sql
        for key, compiled in runtime._statements.items()
        if key[0] == "list" and key[4] is not None
    ]
    assert len(cursor_pages) >= 2
    for sql in cursor_pages:
        assert "OFFSET" not in sql.upper()
        assert "LIMIT" in sql.upper()
        assert "ORDER BY" in sql.upper()


# -- events ---------------------------------------------------------------------------------


async def test_create_writes_one_insert_event(api: Api, database_url: str) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "a", "qty": 1})
    assert await events_of(database_url, api.project) == [
        {
            "type": "insert",
            "collection": collection,
            "record_id": created["id"],
            "changed_fields": ["name", "qty"],
        }
    ]


async def test_update_writes_one_update_event_with_the_changed_fields(
    api: Api, database_url: str
) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "a"})
    await patch(api, collection, created["id"], {"qty": 2, "active": True})
    events = await events_of(database_url, api.project)
    assert len(events) == 2
    assert events[1] == {
        "type": "update",
        "collection": collection,
        "record_id": created["id"],
        "changed_fields": ["active", "qty"],
    }


async def test_delete_writes_one_delete_event(api: Api, database_url: str) -> None:
    collection = await items(api)
    created = await api.create(collection, {"name": "a"})
    response = await api.client.delete(
        records_url(api, collection, created["id"]), headers=api.headers
    )
    assert response.status_code == 204
    events = await events_of(database_url, api.project)
    assert [event["type"] for event in events] == ["insert", "delete"]
    assert events[1] == {
        "type": "delete",
        "collection": collection,
        "record_id": created["id"],
        "changed_fields": [],
    }


async def test_refused_writes_and_reads_write_no_event(api: Api, database_url: str) -> None:
    collection = await required_collection(api)
    created = await api.create(collection, {"email": "a@b.test", "age": 1})
    assert (await post(api, collection, {"email": "a@b.test", "age": 1})).status_code == 409
    assert (await post(api, collection, {"age": "x"})).status_code == 422
    assert (await patch(api, collection, created["id"] + 99, {"age": 2})).status_code == 404
    delete = await api.client.delete(
        records_url(api, collection, created["id"] + 99), headers=api.headers
    )
    assert delete.status_code == 404
    await read(api, collection, created["id"])
    await listing(api, collection)
    events = await events_of(database_url, api.project)
    assert [(event["type"], event["record_id"]) for event in events] == [("insert", created["id"])]


# -- validate -------------------------------------------------------------------------------


async def validate(api: Api, collection: str, body: Any) -> dict[str, Any]:
    response = await api.client.post(
        api.url(f"/collections/{collection}/validate"), json=body, headers=api.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_validate_accepts_a_good_record_and_writes_nothing(
    api: Api, database_url: str
) -> None:
    collection = await required_collection(api)
    result = await validate(api, collection, {"record": {"email": "a@b.test", "age": 3}})
    assert result == {"valid": True, "errors": []}
    assert await row_count(database_url, api.project, collection) == 0
    assert await events_of(database_url, api.project) == []


async def test_validate_reports_every_problem_and_writes_nothing(
    api: Api, database_url: str
) -> None:
    collection = await required_collection(api)
    result = await validate(
        api, collection, {"record": {"email": 5, "score": "high", "id": 1, "other": True}}
    )
    assert result["valid"] is False
    assert {(item["field"], item["code"]) for item in result["errors"]} == {
        ("email", "invalid_type"),
        ("score", "invalid_type"),
        ("id", "read_only"),
        ("other", "unknown_field"),
        ("age", "required"),
    }
    assert all(item["message"] for item in result["errors"])
    assert await row_count(database_url, api.project, collection) == 0
    assert await events_of(database_url, api.project) == []


async def test_validate_without_a_record_object_is_invalid(api: Api) -> None:
    collection = await items(api)
    for body in ({}, {"record": [1]}, {"name": "not wrapped"}):
        result = await validate(api, collection, body)
        assert result["valid"] is False
        assert [item["code"] for item in result["errors"]] == ["invalid_body"]
