"""Keyset cursors (``kernel.query.encode_cursor`` / ``decode_cursor``), one implementation
for the records API and saved views: a cursor a client was handed before keeps its
meaning byte for byte, and whatever else arrives as a cursor is a 400 ``invalid_cursor``
with the error body, never a 500."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from kernel import BadRequest
from kernel.catalog.model import FieldDef
from kernel.catalog.system import SYSTEM_FIELDS
from kernel.fields import FieldType
from kernel.query import CursorPosition, SortKey, decode_cursor, encode_cursor
from kernel.records.cursor import CursorCodec
from plugins.field_types.core import IntegerType, StringType
from tests.conftest import Api
from tests.test_records import items, listing, only_error, page, seed
from tests.test_views import ORDERS_BY_CUSTOMER, create_view, run, shop

CODEC = CursorCodec(b"pinned-cursor-secret")
CREATED_AT = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


def field(column: str, field_type: FieldType, required: bool = True) -> FieldDef:
    return dataclasses.replace(
        SYSTEM_FIELDS["id"],
        name=column,
        column=column,
        type_name=field_type.name,
        type=field_type,
        required=required,
        unique=False,
    )


#: A records sort: an optional text field, then ``created_at`` descending, then ``id``.
RECORDS_SORT = (
    SortKey(field("title", StringType(), required=False), descending=False),
    SortKey(SYSTEM_FIELDS["created_at"], descending=True),
    SortKey(SYSTEM_FIELDS["id"], descending=False),
)
RECORDS_SCOPE = "7|title:asc,created_at:desc,id:asc"
#: A view's sort (labels of the base collection's columns) and its scope.
VIEW_SORT = (
    SortKey(field("b_amount", IntegerType()), descending=True),
    SortKey(field("b_id", IntegerType()), descending=False),
)
VIEW_SCOPE = "view:3:2|b_amount:desc,b_id:asc"

#: Issued before records and views shared one implementation (CursorCodec with the secret
#: above), as clients may still hold them: (scope, sort, the row paged after, the cursor).
PINNED: list[tuple[str, tuple[SortKey, ...], dict[str, Any], str]] = [
    (
        RECORDS_SCOPE,
        RECORDS_SORT,
        {"title": None, "created_at": CREATED_AT, "id": 41},
        "WyI3fHRpdGxlOmFzYyxjcmVhdGVkX2F0OmRlc2MsaWQ6YXNjIixbbnVsbCwiMjAyNi0wMy0wMVQwOTozMDow"
        "MC4xMjM0NTYrMDA6MDAiLDQxXV0.C-K_Z4FxCvvHrWx-PWBwOg",
    ),
    (
        RECORDS_SCOPE,
        RECORDS_SORT,
        {"title": 'Ünïcode "q"', "created_at": CREATED_AT, "id": 41},
        "WyI3fHRpdGxlOmFzYyxjcmVhdGVkX2F0OmRlc2MsaWQ6YXNjIixbIsOcbsOvY29kZSBcInFcIiIsIjIwMjYt"
        "MDMtMDFUMDk6MzA6MDAuMTIzNDU2KzAwOjAwIiw0MV1d.q0cn0kPakl7becIkLRgpVA",
    ),
    (
        VIEW_SCOPE,
        VIEW_SORT,
        {"b_amount": 9, "b_id": 1234},
        "WyJ2aWV3OjM6MnxiX2Ftb3VudDpkZXNjLGJfaWQ6YXNjIixbOSwxMjM0XV0.mn0A-DpvgwhgLXT6-8V3-Q",
    ),
]


@pytest.mark.parametrize(("scope", "sort", "row", "cursor"), PINNED)
def test_a_cursor_issued_before_decodes_the_same_and_is_issued_alike(
    scope: str, sort: tuple[SortKey, ...], row: dict[str, Any], cursor: str
) -> None:
    values = [row[key.field.column] for key in sort]
    assert decode_cursor(CODEC, scope, cursor, sort) == CursorPosition(
        {f"k{index}": value for index, value in enumerate(values)},
        tuple(value is None for value in values),
    )
    assert encode_cursor(CODEC, scope, sort, row) == cursor


def signed(scope: str, values: list[Any]) -> str:
    return CODEC.encode(scope, values)


def unsigned(scope: str, values: list[Any]) -> str:
    """A cursor for ``values`` carrying a pinned cursor's signature (a forgery)."""
    body = base64.urlsafe_b64encode(orjson.dumps([scope, values])).rstrip(b"=").decode()
    return f"{body}.{PINNED[0][3].partition('.')[2]}"


GARBAGE = [
    "",
    ".",
    "abc.def",
    "not-a-cursor",
    "ünïcode.x",
    PINNED[0][3][:-1],  # truncated
    PINNED[0][3].partition(".")[0],  # no signature
    unsigned(RECORDS_SCOPE, [None, CREATED_AT.isoformat(), 40]),  # forged values
    signed("8|title:asc,created_at:desc,id:asc", [None, CREATED_AT.isoformat(), 41]),
    signed(RECORDS_SCOPE, [None, 41]),  # too few values for the sort
    signed(RECORDS_SCOPE, [None, "not a date-time", 41]),  # values of another type
    signed(RECORDS_SCOPE, [None, CREATED_AT.isoformat(), "41"]),
]


@pytest.mark.parametrize("cursor", GARBAGE)
def test_anything_else_is_a_400_invalid_cursor(cursor: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_cursor(CODEC, RECORDS_SCOPE, cursor, RECORDS_SORT)
    (problem,) = refused.value.items
    assert (refused.value.status, problem.field, problem.code) == (400, "cursor", "invalid_cursor")


def resigned(app_cursor: str, codec: CursorCodec, values: list[Any]) -> str:
    """A cursor of the same scope as ``app_cursor`` holding ``values``, signed by the app."""
    body = app_cursor.partition(".")[0]
    scope, _ = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return codec.encode(scope, values)


async def test_a_signed_cursor_with_values_not_of_the_sort_is_a_400_for_records(
    api: Api,
) -> None:
    collection = await items(api)
    await seed(api, collection, [{"qty": n} for n in range(3)])
    issued = (await page(api, collection, {"limit": "1"}))["page"]["next_cursor"]
    codec = api.client.app.state.tessera.cursors  # type: ignore[attr-defined]
    for values in (["not an id"], [1, 2], []):
        cursor = resigned(issued, codec, values)
        error = only_error(await listing(api, collection, {"limit": "1", "cursor": cursor}), 400)
        assert (error["field"], error["code"]) == ("cursor", "invalid_cursor"), values
    walked = await listing(api, collection, {"limit": "1", "cursor": issued})
    assert walked.status_code == 200, walked.text


async def test_garbage_and_misfit_cursors_are_a_400_for_views(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"], "limit": 2}
    issued = (await run(api, ORDERS_BY_CUSTOMER["name"], params)).json()["page"]["next_cursor"]
    codec = api.client.app.state.tessera.cursors  # type: ignore[attr-defined]
    misfits = [resigned(issued, codec, values) for values in (["many", 1], [1], [1, 2, 3])]
    for cursor in ["abc.def", ".", issued[:-2], issued.partition(".")[0], *misfits]:
        response = await run(api, ORDERS_BY_CUSTOMER["name"], {**params, "cursor": cursor})
        error = only_error(response, 400)
        assert (error["field"], error["code"]) == ("cursor", "invalid_cursor"), cursor
    walked = await run(api, ORDERS_BY_CUSTOMER["name"], {**params, "cursor": issued})
    assert walked.status_code == 200, walked.text
