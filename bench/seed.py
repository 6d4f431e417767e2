"""The benchmark's data: one project, its collections, deterministic rows.

The project, collection, policies, API key and project user are made through the API like
a user would;
the rows are copied straight into the project's table (100,000 HTTP creates would measure
nothing but patience), then analysed. The rows are a pure function of their number, so
every run sees the same data.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import httpx

PROJECT = "bench"
COLLECTION = "items"
SCHEMA = f"p_{PROJECT}"
FIELDS = [
    {"name": "title", "type": "string", "required": True},
    {"name": "amount", "type": "integer"},
    {"name": "score", "type": "float"},
    {"name": "due_at", "type": "datetime"},
]
COLUMNS = ("title", "amount", "score", "due_at", "customer_id")
#: The collection ``items`` links to (``list_include`` includes it): a few thousand
#: customers, every item linked to one of them.
CUSTOMERS = "customers"
CUSTOMER_FIELDS = [
    {"name": "name", "type": "string", "required": True},
    {"name": "email", "type": "string"},
]
CUSTOMER_COLUMNS = ("name", "email")
CUSTOMER_COUNT = 5_000
#: Added to ``items`` only (``ruled_items`` stays as it was): stored as ``customer_id``.
RELATION = "customer"
RELATION_FIELD = {
    "name": RELATION,
    "type": "relation",
    "options": {"target": CUSTOMERS, "on_delete": "restrict"},
}
#: Anyone may read and list customers: an include of them adds no policy condition.
CUSTOMER_POLICIES = {"list": "", "read": "", "create": None, "update": None, "delete": None}
#: A second collection like the first with five validation rules, for ``create_ruled``:
#: what rules cost a create (every generated record passes them).
RULED_COLLECTION = "ruled_items"
RULED_FIELDS = [
    {
        **FIELDS[0],
        "rules": [
            {"type": "min_length", "value": 1},
            {"type": "max_length", "value": 200},
            {"type": "pattern", "value": "^[a-z]+ [0-9]+$"},
        ],
    },
    {
        **FIELDS[1],
        "rules": [{"type": "min", "value": 0}, {"type": "max", "value": 1_000_000_000}],
    },
    *FIELDS[2:],
]
#: Rows the policy hides have a negative amount (about 5 % of them).
POLICY = "amount >= 0"
POLICIES = {"list": POLICY, "read": POLICY, "create": POLICY, "update": POLICY, "delete": None}
#: The list operations: a filter on the integer field, a sort on the datetime field.
LIST_FILTER = ("amount", "lt", 5000)
LIST_SORT = "due_at:desc"
PAGE_SIZE = 25
#: Tessera has no index operation yet; a deployment that sorts on a field indexes it, so the
#: bench does too (matching ``ORDER BY due_at DESC, id ASC``): list ops then measure the API,
#: not a sequential scan of the table.
INDEXES = (f"CREATE INDEX items_due_at_id ON {SCHEMA}.{COLLECTION} (due_at DESC, id ASC)",)
#: The saved view ``view_query`` runs: a customer's visible items (the parameter
#: ``customer_id`` bound into a filter) with the customer's name through the relation,
#: newest due first, a page of 25.
VIEW = "orders_by_customer"
VIEW_PARAM = "customer_id"
VIEW_DEFINITION: dict[str, Any] = {
    "name": VIEW,
    "description": "A customer's items, newest due first, with the customer's name",
    "base_collection": COLLECTION,
    "projection": ["id", "title", "amount", "due_at", f"{RELATION}.name"],
    "join": {"relation": RELATION},
    "filters": [{"field": f"{RELATION}_id", "op": "eq", "param": VIEW_PARAM}],
    "sort": LIST_SORT,
    "params": [{"name": VIEW_PARAM, "type": "integer", "required": True, "example": 1}],
    "limit": {"default": PAGE_SIZE, "max": 200},
}
VIEW_PATH = f"/api/projects/{PROJECT}/views/{VIEW}"
#: The project user whose token the ``*_user`` operations send (a frontend's path).
USER_EMAIL = "reader@bench.test"
USER_PASSWORD = "bench-reader-password"
#: Deep pages start at least this many matching rows into the walk.
DEEP_FROM_ROW = 10_000
DEEP_CURSORS = 50
WALK_PAGE_SIZE = 200

#: What an operation authenticates with: the API key, or the project user's token.
Credential = Literal["key", "user"]

BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
COPY_BATCH = 5_000


def row(number: int) -> tuple[str, int, float, datetime, int]:
    """Row ``number`` (1-based, also its id): title, amount, score, due_at, customer_id."""
    amount = (number * 7919) % 10_500 - 500
    score = ((number * 104_729) % 100_000) / 100
    due_at = BASE_TIME + timedelta(seconds=(number * 2_654_435_761) % (365 * 86_400))
    customer_id = (number * 3_001) % CUSTOMER_COUNT + 1
    return f"item {number:06d}", amount, score, due_at, customer_id


def customer(number: int) -> tuple[str, str]:
    """Customer ``number`` (1-based, also its id): name, email."""
    return f"customer {number:04d}", f"customer{number}@bench.test"


def visible_ids(rows: int) -> list[int]:
    """Ids of the seeded rows the policy lets a key see."""
    return [number for number in range(1, rows + 1) if row(number)[1] >= 0]


@dataclass(frozen=True, slots=True)
class DeepPage:
    """A cursor deep into the filtered walk and the sort values it continues after."""

    cursor: str
    due_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class Dataset:
    """What the operations need to know about the seeded data."""

    api_key: str
    key_id: int
    #: A signed-in project user's token.
    user_token: str
    records_path: str
    visible_ids: list[int]
    deep_pages: list[DeepPage]
    #: Tessera's catalog ids, which the write statements put in the outbox event.
    collection_id: int
    #: The collection with five rules (``create_ruled``): its records path and catalog id.
    ruled_path: str = ""
    ruled_collection_id: int = 0

    def credentials(self, credential: Credential) -> tuple[str, str]:
        """The header (name, value) that sends ``credential``: the API key or the token."""
        if credential == "user":
            return "Authorization", f"Bearer {self.user_token}"
        return "X-API-Key", self.api_key


def _progress(done: int, total: int, width: int = 40) -> None:
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    print(f"\rbench: seeding [{bar}] {done:>7,}/{total:,} rows", end=end, file=sys.stderr)


def _batches(rows: int) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(1, rows + 1, COPY_BATCH):
        yield [row(number) for number in range(start, min(start + COPY_BATCH, rows + 1))]


async def _checkpoint(conn: asyncpg.Connection) -> None:
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        print(
            "bench: no CHECKPOINT (needs superuser or pg_checkpoint); continuing", file=sys.stderr
        )


async def collection_id(conn: asyncpg.Connection, name: str) -> int:
    return await conn.fetchval(
        "SELECT id FROM tessera.collections WHERE project_id = $1 AND name = $2", PROJECT, name
    )


async def _ruled_collection_id(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await collection_id(conn, RULED_COLLECTION)
    finally:
        await conn.close()


async def copy_rows(database_url: str, rows: int) -> int:
    """Copy the rows, index, vacuum and analyse; return the collection's catalog id."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            CUSTOMERS,
            schema_name=SCHEMA,
            columns=CUSTOMER_COLUMNS,
            records=[customer(number) for number in range(1, CUSTOMER_COUNT + 1)],
        )
        done = 0
        _progress(done, rows)
        for batch in _batches(rows):
            await conn.copy_records_to_table(
                COLLECTION, schema_name=SCHEMA, columns=COLUMNS, records=batch
            )
            done += len(batch)
            _progress(done, rows)
        for statement in INDEXES:
            await conn.execute(statement)
        # Vacuumed, analysed and checkpointed now, so that neither autovacuum (a fresh
        # table of inserted rows is due for it within a minute) nor the flush of the copied
        # pages lands inside a measurement.
        for table in (COLLECTION, CUSTOMERS):
            await conn.execute(f"VACUUM (ANALYZE) {SCHEMA}.{table}")
        await _checkpoint(conn)
        return await collection_id(conn, COLLECTION)
    finally:
        await conn.close()


def succeeded(response: httpx.Response, what: str) -> Any:
    """The JSON of a 2xx ``response`` (None when empty); raises naming ``what`` otherwise."""
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def setup_through_api(client: httpx.Client, email: str, password: str) -> tuple[str, int, str]:
    """As the admin ``email``: the project, collections, policies, API key, saved view and
    project user;
    returns the key, its id and the user's token."""
    token = succeeded(
        client.post("/api/admin/login", json={"email": email, "password": password}), "login"
    )["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    succeeded(client.post("/api/projects", json={"id": PROJECT, "name": "Bench"}), "project")
    collections = (
        (CUSTOMERS, CUSTOMER_FIELDS, CUSTOMER_POLICIES),
        (COLLECTION, [*FIELDS, RELATION_FIELD], POLICIES),
        (RULED_COLLECTION, RULED_FIELDS, POLICIES),
    )
    for name, fields, policies in collections:
        body = {"name": name, "fields": fields}
        succeeded(
            client.post(f"/api/projects/{PROJECT}/collections", json=body), f"collection {name}"
        )
        succeeded(
            client.put(f"/api/projects/{PROJECT}/collections/{name}/policies", json=policies),
            f"policies of {name}",
        )
    key = succeeded(
        client.post(
            f"/api/projects/{PROJECT}/api-keys",
            json={"name": "bench", "scopes": ["records:read", "records:write"]},
        ),
        "api key",
    )
    succeeded(client.post(f"/api/projects/{PROJECT}/views", json=VIEW_DEFINITION), "view")
    account = {"email": USER_EMAIL, "password": USER_PASSWORD}
    succeeded(client.post(f"/api/projects/{PROJECT}/auth/signup", json=account), "user sign-up")
    del client.headers["Authorization"]
    user = succeeded(client.post(f"/api/projects/{PROJECT}/auth/login", json=account), "user login")
    return key["key"], key["id"], user["token"]


def list_query(
    cursor: str | None = None, limit: int = PAGE_SIZE, include: str | None = None
) -> dict[str, str | int]:
    """The query string of the list operations (``include``: relations to expand)."""
    field, op, value = LIST_FILTER
    query: dict[str, str | int] = {f"filter[{field}][{op}]": value, "sort": LIST_SORT}
    query["limit"] = limit
    if cursor is not None:
        query["cursor"] = cursor
    if include is not None:
        query["include"] = include
    return query


def _deep_pages(client: httpx.Client, path: str, key: str) -> list[DeepPage]:
    """Walk the filtered list through the API and keep cursors past ``DEEP_FROM_ROW``."""
    pages: list[DeepPage] = []
    cursor = None
    seen = 0
    max_pages = (DEEP_FROM_ROW // WALK_PAGE_SIZE) + DEEP_CURSORS + 1
    for _ in range(max_pages):
        answer = succeeded(
            client.get(path, params=list_query(cursor, WALK_PAGE_SIZE), headers={"X-API-Key": key}),
            "list walk",
        )
        seen += len(answer["data"])
        cursor = answer["page"]["next_cursor"]
        if cursor is None:
            break
        if seen >= DEEP_FROM_ROW:
            last = answer["data"][-1]
            pages.append(DeepPage(cursor, datetime.fromisoformat(last["due_at"]), last["id"]))
        if len(pages) == DEEP_CURSORS:
            break
    if not pages:
        raise RuntimeError(f"the filtered list ends before row {DEEP_FROM_ROW}: seed more rows")
    return pages


def seed(
    base_url: str, database_url: str, rows: int, admin_email: str, admin_password: str
) -> Dataset:
    """Create the project, collection, policies, key and user; copy ``rows`` rows; collect
    cursors."""
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        key, key_id, user_token = setup_through_api(client, admin_email, admin_password)
        collection_id = asyncio.run(copy_rows(database_url, rows))
        path = f"/api/projects/{PROJECT}/collections/{COLLECTION}/records"
        deep = _deep_pages(client, path, key)
    return Dataset(
        key,
        key_id,
        user_token,
        path,
        visible_ids(rows),
        deep,
        collection_id,
        ruled_path=f"/api/projects/{PROJECT}/collections/{RULED_COLLECTION}/records",
        ruled_collection_id=asyncio.run(_ruled_collection_id(database_url)),
    )
