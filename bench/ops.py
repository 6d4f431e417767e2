"""The measured operations: what wrk sends to Tessera, and the floor's SQL for the same job.

A floor statement is the SQL the operation needs: the one Tessera issues (the same
``WHERE``, sort, ``LIMIT`` and, for writes, the outbox event written in the same statement),
so the ratio measures what the HTTP stack, authentication, policies and JSON cost on top of
the database. Where Tessera's SQL is shaped worse than it needs to be, the floor keeps the
better shape, so the ratio shows it: a deep keyset page adds an index-usable range on the
first sort key to Tessera's condition. An operation whose request costs Tessera two
statements (a page and its include) has a floor of the same two, the second taking its
arguments from the first one's rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from bench.seed import (
    BASE_TIME,
    COLLECTION,
    CUSTOMER_COUNT,
    CUSTOMERS,
    LIST_FILTER,
    PAGE_SIZE,
    PROJECT,
    RELATION,
    RULED_COLLECTION,
    SCHEMA,
    VIEW_PARAM,
    VIEW_PATH,
    Credential,
    Dataset,
)
from bench.seed import list_query as seed_list_query

_RECORD = "id, created_at, updated_at, title, amount, score, due_at, customer_id"
#: The ruled collection's record: the same fields without the link.
_RULED_RECORD = "id, created_at, updated_at, title, amount, score, due_at"
_TABLE = f"{SCHEMA}.{COLLECTION}"
_LINK = f"{RELATION}_id"
#: What Tessera reads for ``include=customer``: the page's customers by id (customers have
#: no read policy, so no condition).
_CUSTOMERS_BY_ID = (
    f"SELECT id, created_at, updated_at, name, email FROM {SCHEMA}.{CUSTOMERS} "
    "WHERE id = ANY($1::BIGINT[])"
)
#: The policy ``amount >= 0`` as Tessera compiles it: the literal is a parameter.
_POLICY_ZERO = 0
_WRITE_WITH_EVENT = """
WITH w AS ({write} RETURNING {record}),
e AS (
    INSERT INTO tessera.events
        (project_id, collection_id, collection, record_id, type, changed_fields, row, meta)
    SELECT $1::TEXT, $2::BIGINT, $3::TEXT, w.id, $4::TEXT, $5::TEXT[], to_jsonb(w), $6::JSONB
    FROM w
)
SELECT {record} FROM w
"""

#: ``view_query``'s view by hand: the policy on items, the customer's name through the
#: relation (customers have no read policy), the parameter, the view's sort, a page + 1.
#: Columns are named as the view's JSON keys, so the probe can compare the rows.
_VIEW_PAGE = (
    f'SELECT i.id, i.title, i.amount, i.due_at, c.name AS "{RELATION}.name" '
    f"FROM {_TABLE} AS i LEFT JOIN {SCHEMA}.{CUSTOMERS} AS c ON c.id = i.{RELATION}_id "
    f"WHERE i.amount >= $1::BIGINT AND i.{RELATION}_id = $2::BIGINT "
    "ORDER BY i.due_at DESC, i.id ASC LIMIT $3::INTEGER"
)
#: The customer the ``view_query`` probe asks for (its rows are compared with the floor's).
_PROBE_CUSTOMER = 1

_SAMPLE_RECORD = {"title": "probe 1", "amount": 1, "score": 0.5, "due_at": "2024-06-01T00:00:00Z"}

FloorArgs = Callable[[random.Random], Sequence[Any]]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A second floor statement, run on the same connection after the first: its
    arguments come from the first statement's rows (an include's ids from a page)."""

    sql: str
    args: Callable[[Sequence[Any]], Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One benchmarked operation."""

    name: str
    #: The issue's goal for ``rps / floor_rps`` (shown in the report, never asserted).
    goal: float
    #: Lua script under bench/lua/ that wrk runs.
    script: str
    #: HTTP path and query wrk requests (scripts may append to it).
    path: str
    #: Lines the script picks from at random (ids or cursors); empty when it needs none.
    data: list[str]
    floor_sql: str
    floor_args: FloorArgs
    #: One request like the script's (method, path, JSON body) and the status it must get,
    #: checked before the run so a broken setup fails loudly instead of measuring errors.
    probe: tuple[str, str, dict[str, Any] | None]
    expect_status: int = 200
    #: What the requests authenticate with: the API key, or a signed-in user's token.
    credential: Credential = "key"
    #: The floor's second statement, when the request costs Tessera two.
    floor_then: FollowUp | None = None
    #: A relation every record of the probe's page must have expanded (not null), so an
    #: include that silently comes back empty stops the run instead of measuring less work.
    probe_include: str | None = None
    #: Floor arguments matching the probe's request: when set, the probe's page must be the
    #: floor statement's rows for them (same columns, same values, same order).
    probe_floor_args: tuple[Any, ...] | None = None


def as_user(op: Operation) -> Operation:
    """``op`` sent with the project user's token instead of the API key (``<name>_user``):
    the frontend's path, beside the key's so the difference stays visible."""
    return replace(op, name=f"{op.name}_user", credential="user")


def _meta(dataset: Dataset) -> dict[str, Any]:
    return {"actor": {"id": dataset.key_id, "kind": "key", "name": "bench"}}


def _event_args(
    dataset: Dataset, kind: str, changed: list[str], ruled: bool = False
) -> tuple[Any, ...]:
    if ruled:
        collection = (dataset.ruled_collection_id, RULED_COLLECTION)
    else:
        collection = (dataset.collection_id, COLLECTION)
    return (PROJECT, *collection, kind, changed, _meta(dataset))


def _random_amount(rng: random.Random) -> int:
    return rng.randrange(0, 10_000)


def _random_score(rng: random.Random) -> float:
    return rng.randrange(0, 100_000) / 100


def _page_customers(rows: Sequence[Any]) -> tuple[list[int]]:
    """The customer ids of a page (its first ``PAGE_SIZE`` rows: the extra row only tells
    whether a next page exists), as Tessera collects them for the include."""
    return (sorted({row[_LINK] for row in rows[:PAGE_SIZE]}),)


def build(dataset: Dataset) -> list[Operation]:
    """The operations, in the order they run."""
    ids = dataset.visible_ids
    field, _, bound = LIST_FILTER
    list_path = f"{dataset.records_path}?{urlencode(seed_list_query())}"
    list_select = (
        f"SELECT {_RECORD} FROM {_TABLE} WHERE amount >= $1::BIGINT AND {field} < $2::BIGINT"
    )
    order = "ORDER BY due_at DESC, id ASC"
    deep = dataset.deep_pages

    def list_deep_args(rng: random.Random) -> tuple[Any, ...]:
        page = rng.choice(deep)
        return (_POLICY_ZERO, bound, page.due_at, page.due_at, page.id, PAGE_SIZE + 1)

    def insert(table: str) -> str:
        return (
            f"INSERT INTO {table} (title, amount, score, due_at) "
            "VALUES ($7::TEXT, $8::BIGINT, $9::FLOAT, $10::TIMESTAMPTZ)"
        )

    def create_args(rng: random.Random, ruled: bool = False) -> tuple[Any, ...]:
        due_at = BASE_TIME + timedelta(seconds=rng.randrange(365 * 86_400))
        return (
            *_event_args(dataset, "insert", ["amount", "due_at", "score", "title"], ruled),
            f"bench {rng.randrange(1_000_000)}",
            _random_amount(rng),
            _random_score(rng),
            due_at,
        )

    # The rule is checked on the row before the change and on the new values after it.
    update = (
        f"UPDATE {_TABLE} SET updated_at = now(), amount = $7::BIGINT, score = $8::FLOAT "
        "WHERE id = $9::BIGINT AND amount >= $10::BIGINT AND $11::BIGINT >= $12::BIGINT"
    )

    def update_args(rng: random.Random) -> tuple[Any, ...]:
        amount = _random_amount(rng)
        return (
            *_event_args(dataset, "update", ["amount", "score"]),
            amount,
            _random_score(rng),
            rng.choice(ids),
            _POLICY_ZERO,
            amount,
            _POLICY_ZERO,
        )

    get_by_id = Operation(
        name="get_by_id",
        goal=0.55,
        script="get_by_id.lua",
        path=dataset.records_path,
        data=[str(record_id) for record_id in ids],
        floor_sql=f"SELECT {_RECORD} FROM {_TABLE} WHERE id = $1::BIGINT AND amount >= $2::BIGINT",
        floor_args=lambda rng: (rng.choice(ids), _POLICY_ZERO),
        probe=("GET", f"{dataset.records_path}/{ids[0]}", None),
    )
    list_first = Operation(
        name="list_filtered_first",
        goal=0.60,
        script="list.lua",
        path=list_path,
        data=[],
        floor_sql=f"{list_select} {order} LIMIT $3::INTEGER",
        floor_args=lambda rng: (_POLICY_ZERO, bound, PAGE_SIZE + 1),
        probe=("GET", list_path, None),
    )
    create = Operation(
        name="create",
        goal=0.45,
        script="create.lua",
        path=dataset.records_path,
        data=[],
        floor_sql=_WRITE_WITH_EVENT.format(write=insert(_TABLE), record=_RECORD),
        floor_args=create_args,
        probe=("POST", dataset.records_path, _SAMPLE_RECORD),
        expect_status=201,
    )
    include_path = f"{dataset.records_path}?{urlencode(seed_list_query(include=RELATION))}"
    return [
        get_by_id,
        as_user(get_by_id),
        list_first,
        as_user(list_first),
        # The first page with each record's customer inline: Tessera's page statement,
        # then one statement for the page's customers.
        replace(
            list_first,
            name="list_include",
            path=include_path,
            probe=("GET", include_path, None),
            floor_then=FollowUp(_CUSTOMERS_BY_ID, _page_customers),
            probe_include=RELATION,
        ),
        Operation(
            name="list_filtered_deep",
            goal=0.60,
            script="list.lua",
            path=list_path,
            data=[page.cursor for page in deep],
            # Tessera's keyset condition plus the range an index on (due_at, id) can seek
            # to (``due_at <= $3``), so a deep page costs what the first one does.
            floor_sql=f"{list_select} AND due_at <= $3::TIMESTAMPTZ AND (due_at < $3::TIMESTAMPTZ "
            f"OR due_at = $4::TIMESTAMPTZ AND id > $5::BIGINT) {order} LIMIT $6::INTEGER",
            floor_args=list_deep_args,
            probe=("GET", f"{list_path}&cursor={deep[0].cursor}", None),
        ),
        create,
        # The same create on a collection whose fields carry five rules (the table has
        # their CHECK constraints, so the floor pays for those too).
        replace(
            create,
            name="create_ruled",
            path=dataset.ruled_path,
            floor_sql=_WRITE_WITH_EVENT.format(
                write=insert(f"{SCHEMA}.{RULED_COLLECTION}"), record=_RULED_RECORD
            ),
            floor_args=lambda rng: create_args(rng, ruled=True),
            probe=("POST", dataset.ruled_path, _SAMPLE_RECORD),
        ),
        # A saved view with a parameter and a join: a customer's items with the customer's
        # name, one random customer per request (the floor's customers are as random).
        Operation(
            name="view_query",
            goal=0.60,
            script="view.lua",
            path=f"{VIEW_PATH}?limit={PAGE_SIZE}",
            data=[str(number) for number in range(1, CUSTOMER_COUNT + 1)],
            floor_sql=_VIEW_PAGE,
            floor_args=lambda rng: (
                _POLICY_ZERO,
                rng.randrange(1, CUSTOMER_COUNT + 1),
                PAGE_SIZE + 1,
            ),
            probe=(
                "GET",
                f"{VIEW_PATH}?limit={PAGE_SIZE}&{VIEW_PARAM}={_PROBE_CUSTOMER}",
                None,
            ),
            probe_floor_args=(_POLICY_ZERO, _PROBE_CUSTOMER, PAGE_SIZE + 1),
        ),
        Operation(
            name="update",
            goal=0.45,
            script="update.lua",
            path=dataset.records_path,
            data=[str(record_id) for record_id in ids],
            floor_sql=_WRITE_WITH_EVENT.format(write=update, record=_RECORD),
            floor_args=update_args,
            probe=("PATCH", f"{dataset.records_path}/{ids[0]}", {"amount": 1, "score": 0.5}),
        ),
    ]


NAMES = (
    "get_by_id",
    "get_by_id_user",
    "list_filtered_first",
    "list_filtered_first_user",
    "list_include",
    "list_filtered_deep",
    "create",
    "create_ruled",
    "view_query",
    "update",
)
