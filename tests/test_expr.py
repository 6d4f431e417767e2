"""The expression language: parsing, limits, printing, and SQL agreeing with Python."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import pytest

from kernel.config import Settings
from kernel.expr import Binder, ExpressionError, evaluate, parse, to_sql, to_text
from kernel.expr.ast import And, AuthRef, Compare, FieldRef, ListValue, Literal, Not, Now, Or
from kernel.records.runtime import CollectionRuntime
from kernel.runtime import Tessera
from kernel.statements import Params, compile_statement
from tests.conftest import Api


def test_precedence_not_binds_tighter_than_and_than_or() -> None:
    assert parse("a = 1 or b = 2 and not c = 3") == Or(
        (
            Compare("eq", FieldRef("a"), Literal(1)),
            And(
                (
                    Compare("eq", FieldRef("b"), Literal(2)),
                    Not(Compare("eq", FieldRef("c"), Literal(3))),
                )
            ),
        )
    )


def test_values_and_comparisons() -> None:
    assert parse("owner = @auth.id") == Compare("eq", FieldRef("owner"), AuthRef("id"))
    assert parse("due < @now") == Compare("lt", FieldRef("due"), Now())
    assert parse("x >= -2.5") == Compare("gte", FieldRef("x"), Literal(-2.5))
    assert parse("s <> 'it\\'s'") == Compare("ne", FieldRef("s"), Literal("it's"))
    assert parse('s contains "ab"') == Compare("contains", FieldRef("s"), Literal("ab"))
    assert parse("x is not null") == Compare("is_null", FieldRef("x"), Literal(False))
    assert parse("x IN ['a', 'b']") == Compare(
        "in", FieldRef("x"), ListValue((Literal("a"), Literal("b")))
    )
    assert parse("x not in (1, 2)") == Not(
        Compare("in", FieldRef("x"), ListValue((Literal(1), Literal(2))))
    )
    assert parse("active") == Compare("eq", FieldRef("active"), Literal(True))
    assert parse("true") == Literal(True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expression is empty"),
        ("a =", "expected a value, found end of expression at position 3"),
        ("a = 1 b", "unexpected 'b' at position 6"),
        ("(a = 1", "expected ')', found end of expression"),
        ("a = $1", "unexpected character '$' at position 4"),
        ("@auth.password = 'x'", "unknown @auth attribute 'password'"),
        ("a in 1", "expected a list like ['a', 'b'] after 'in'"),
        ("1", "expected a comparison after '1'"),
        ("lower(a) = 'x'", "unexpected '('"),
        ("a = 1; drop table t", "unexpected character ';'"),
    ],
)
def test_malformed_expressions_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse(text)
    assert message in str(raised.value)


def test_limits_on_length_depth_and_size() -> None:
    with pytest.raises(ExpressionError, match="longer than 4000"):
        parse("a = 1 or " * 500 + "a = 1")
    with pytest.raises(ExpressionError, match="nests deeper than 24"):
        parse("(" * 30 + "a = 1" + ")" * 30)
    with pytest.raises(ExpressionError, match="more than 256 parts"):
        parse(" or ".join(f"a = {i}" for i in range(300)))
    with pytest.raises(ExpressionError, match="at most 100 values"):
        parse("a in [" + ", ".join(str(i) for i in range(101)) + "]")


@pytest.mark.parametrize(
    "text",
    [
        "a = 1 or b = 2 and not c = 3",
        "(a = 1 or b = 2) and c != 'x'",
        "not (a = 1 and b = 2)",
        "owner = @auth.id or @auth.role in ['admin', 'editor']",
        "x is null and y is not null and z contains 'it\\'s'",
        "due <= @now and amount > -3.5",
        "amount between 1 and 20 and not flag",
    ],
)
def test_printing_parses_back_to_the_same_tree(text: str) -> None:
    tree = parse(text)
    assert parse(to_text(tree)) == tree


# -- SQL and Python agree --------------------------------------------------------------

EXPRESSIONS = [
    "amount > 10",
    "amount >= 10 and status = 'paid'",
    "status != 'paid'",
    "status in ['paid', 'refunded']",
    "not status in ['paid']",
    "title contains 'BOX'",
    "title contains '%'",
    "note is null",
    "note is not null or amount < 0",
    "due < '2024-06-01'",
    "at > '2024-01-01T12:00:00+02:00'",
    "flag",
    "not flag",
    "owner = @auth.id",
    "owner != @auth.id",
    "@auth.role = 'editor' or amount = 0",
    "at < @now",
    "amount = null",
    "status = null or amount between 1 and 20",
]
ROWS = [
    {
        "amount": 5,
        "status": "paid",
        "title": "Big box",
        "note": None,
        "due": "2024-05-01",
        "at": "2024-01-01T09:00:00Z",
        "flag": True,
        "owner": 7,
    },
    {
        "amount": 15,
        "status": "open",
        "title": "100% cotton",
        "note": "x",
        "due": "2024-07-01",
        "at": "2024-03-01T09:00:00Z",
        "flag": False,
        "owner": 8,
    },
    {
        "amount": None,
        "status": None,
        "title": None,
        "note": None,
        "due": None,
        "at": None,
        "flag": None,
        "owner": None,
    },
    {
        "amount": 0,
        "status": "refunded",
        "title": "boxing gloves",
        "note": "",
        "due": "2024-06-01",
        "at": "2024-01-01T10:00:01Z",
        "flag": True,
        "owner": 7,
    },
]


async def test_sql_and_python_agree_on_real_rows(
    api: Api, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    await api.create_collection(
        "facts",
        [
            {"name": "amount", "type": "integer"},
            {"name": "status", "type": "string"},
            {"name": "title", "type": "text"},
            {"name": "note", "type": "text"},
            {"name": "due", "type": "date"},
            {"name": "at", "type": "datetime"},
            {"name": "flag", "type": "boolean"},
            {"name": "owner", "type": "integer"},
        ],
    )
    created = [await api.create("facts", row) for row in ROWS]
    tessera: Tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    catalog = await tessera.catalog.get(api.project)
    now = datetime.now(UTC)
    runtime = CollectionRuntime(catalog, catalog.collections["facts"], tessera.operators, now)
    context = {"auth.id": 7, "auth.role": "viewer", "now": now}
    connection = await asyncpg.connect(database_url)
    try:
        stored = {
            row["id"]: dict(row)
            for row in await connection.fetch(f"SELECT * FROM p_{api.project}.facts")
        }
        for text in EXPRESSIONS:
            bound = Binder(runtime.queryable, tessera.operators).bind(parse(text))
            params = Params()
            statement = compile_statement(
                runtime.table.select()
                .with_only_columns(runtime.table.c.id)
                .where(to_sql(bound, runtime.column, params)),
                params,
            )
            in_sql = {
                r["id"] for r in await connection.fetch(statement.sql, *statement.args(context))
            }
            in_python = {i for i, row in stored.items() if evaluate(bound, row, context)}
            assert in_sql == in_python, text
        assert len(stored) == len(created)
    finally:
        await connection.close()
