"""The condition builder's server side (kernel.condition_builder), on a real collection of
every core field type: the menu offers each type its own operators and values, and every
condition rows can say goes expression → rows → the same expression; anything else stays
in the text box ("advanced")."""

from __future__ import annotations

import html
import re

import orjson
import pytest

from kernel import (
    CONTEXT_VALUES,
    collection_condition_fields,
    condition_builder_html,
    condition_rows,
    condition_text,
)
from kernel.expr import parse
from kernel.runtime import Tessera
from tests.conftest import Api

FIELDS = [
    {"name": "status", "type": "string"},
    {"name": "note", "type": "text"},
    {"name": "amount", "type": "integer"},
    {"name": "price", "type": "float"},
    {"name": "paid", "type": "boolean"},
    {"name": "due", "type": "date"},
    {"name": "at", "type": "datetime"},
    {"name": "customer", "type": "relation", "options": {"target": "customers"}},
    {"name": "extra", "type": "json"},
]

ORDERED = ["eq", "ne", "gt", "lt", "gte", "lte", "in", "between", "is_null", "not_null"]

#: One condition per operator kind and value kind, each as the builder writes it.
ROUND_TRIPS = [
    "status = 'paid'",
    "status != 'it\\'s'",
    "note contains 'rush'",
    "status in ['a', 'b']",
    "status is null",
    "note is not null",
    "amount > 100",
    "amount < -5",
    "amount >= 0 and amount <= 10",
    "price between 1.5 and 2",
    "amount in [1, 2, 3]",
    "paid = true",
    "paid != false",
    "due between '2024-01-01' and '2024-12-31'",
    "at < @now",
    "due >= @now",
    "customer = @auth.id",
    "customer in [1, 2]",
    "customer is null or status = @auth.role",
    "extra is null",
    "id > 10 or created_at < @now",
]

#: Conditions rows cannot say exactly: they stay text.
ADVANCED = [
    "status = 'a' and (amount > 1 or amount < 0)",  # a nested group
    "not status = 'a'",  # not
    "amount > price",  # a field compared with a field
    "status in ['a, b', 'c']",  # a comma inside an item
    "status = '@now'",  # text that reads as a request value
    "amount = '12'",  # a quoted number on a number field
    "nothing = 1",  # a field the collection lacks
    "paid contains 'x'",  # an operator the type does not support
    "status = ",  # not an expression at all
]


@pytest.fixture
async def menu(api: Api) -> dict:
    await api.create_collection("customers", [{"name": "name", "type": "string"}])
    await api.create_collection("orders", FIELDS)
    tessera: Tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    catalog = await tessera.catalog.get(api.project)
    return collection_condition_fields(
        catalog.collections["orders"], tessera.operators, CONTEXT_VALUES
    )


async def test_each_type_gets_its_own_operators_and_values(menu: dict) -> None:
    assert menu["amount"]["operators"] == ORDERED
    assert menu["status"]["operators"] == [*ORDERED[:7], "contains", *ORDERED[7:]]
    assert menu["paid"]["operators"] == ["eq", "ne", "is_null", "not_null"]
    assert menu["customer"]["operators"] == ["eq", "ne", "in", "is_null", "not_null"]
    assert menu["extra"]["operators"] == ["is_null", "not_null"]
    assert menu["due"]["operators"] == ORDERED
    assert {name: entry["values"] for name, entry in menu.items()} == {
        "id": ["@auth.id"],
        "created_at": ["@now"],
        "updated_at": ["@now"],
        "status": ["@auth.role"],
        "note": ["@auth.role"],
        "amount": ["@auth.id"],
        "price": ["@auth.id"],
        "paid": ["true", "false"],
        "due": ["@now"],
        "at": ["@now"],
        "customer": ["@auth.id"],
        "extra": [],
    }
    assert menu["status"]["quoted"] and menu["note"]["quoted"]
    assert not any(menu[name]["quoted"] for name in ("amount", "customer", "paid", "due"))


async def test_a_rule_offers_no_request_values(api: Api) -> None:
    await api.create_collection("plain", [{"name": "at", "type": "datetime"}])
    tessera: Tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    catalog = await tessera.catalog.get(api.project)
    menu = collection_condition_fields(catalog.collections["plain"], tessera.operators)
    assert menu["at"]["values"] == []


@pytest.mark.parametrize("text", ROUND_TRIPS)
async def test_expression_rows_expression_round_trip(menu: dict, text: str) -> None:
    rows = condition_rows(text, menu)
    assert rows is not None, text
    assert condition_text(rows, menu) == text
    assert parse(condition_text(rows, menu)) == parse(text)


async def test_rows_say_each_comparison_as_the_builder_shows_it(menu: dict) -> None:
    assert condition_rows("amount >= 0 and note is not null and status in ['a', 'b']", menu) == {
        "join": "and",
        "rows": [
            {"field": "amount", "op": "gte", "value": "0"},
            {"field": "note", "op": "not_null", "value": ""},
            {"field": "status", "op": "in", "value": "a, b"},
        ],
    }
    assert condition_rows("customer = @auth.id or at < @now", menu) == {
        "join": "or",
        "rows": [
            {"field": "customer", "op": "eq", "value": "@auth.id"},
            {"field": "at", "op": "lt", "value": "@now"},
        ],
    }
    assert condition_rows("", menu) == {"join": "and", "rows": []}
    assert condition_rows(None, menu) == {"join": "and", "rows": []}


@pytest.mark.parametrize("text", ADVANCED)
async def test_what_rows_cannot_say_stays_text(menu: dict, text: str) -> None:
    assert condition_rows(text, menu) is None


async def test_rows_write_text_values_quoted_and_skip_rows_without_a_field(menu: dict) -> None:
    rows = {
        "join": "or",
        "rows": [
            {"field": "status", "op": "eq", "value": "12"},
            {"field": "amount", "op": "eq", "value": "12"},
            {"field": "", "op": "eq", "value": "x"},
            {"field": "note", "op": "contains", "value": "o'k"},
        ],
    }
    assert condition_text(rows, menu) == "status = '12' or amount = 12 or note contains 'o\\'k'"
    assert condition_text({"join": "and", "rows": []}, menu) == ""
    half = {"join": "and", "rows": [{"field": "amount", "op": "between", "value": "5"}]}
    assert condition_text(half, menu) == "amount between 5 and ''"


async def test_the_markup_carries_rows_and_menus_escaped(menu: dict) -> None:
    markup = condition_builder_html("f-when", "status = '<b>\"'", {"orders": menu}, follow="pick")
    attributes = dict(re.findall(r'([a-z-]+)="([^"]*)"', markup))
    assert attributes["data-target"] == "f-when"
    assert attributes["data-follow"] == "pick"
    assert attributes["data-chosen"] == "orders"
    assert orjson.loads(html.unescape(attributes["data-rows"])) == {
        "join": "and",
        "rows": [{"field": "status", "op": "eq", "value": '<b>"'}],
    }
    assert orjson.loads(html.unescape(attributes["data-menus"])) == {"orders": menu}
    assert "<b>" not in markup
    unreadable = condition_builder_html("f-when", "not status = 'a'", {"orders": menu})
    assert 'data-rows="null"' in unreadable
    assert condition_builder_html("f-when", "", {}) == ""
