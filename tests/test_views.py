"""Saved views (issue 17): a versioned definition compiled to one policy-checked statement,
whose results equal the hand-written SQL of the same query."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running, unique_id
from tests.server import TesseraServer, tessera_env
from tests.test_policies import signed_in

ORDERS_BY_CUSTOMER: dict[str, Any] = {
    "name": "orders_by_customer",
    "description": "Paid orders of one customer",
    "base_collection": "orders",
    "projection": ["title", "amount", "customer_id", "customer.name"],
    "join": {"relation": "customer"},
    "filters": [
        {"field": "status", "op": "eq", "value": "paid"},
        {"field": "customer_id", "op": "eq", "param": "customer_id"},
    ],
    "sort": "amount:desc",
    "params": [{"name": "customer_id", "type": "integer", "required": True, "example": 1}],
    "limit": {"default": 25, "max": 200},
}


def views(api: Api, path: str = "") -> str:
    return api.url(f"/views{path}")


async def create_view(api: Api, definition: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(views(api), json=definition, headers=api.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def run(
    api: Api, name: str, params: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.client.get(
        views(api, f"/{name}"), params=params, headers=headers or api.headers
    )


async def table(api: Api, collection: str) -> str:
    project = await api.client.get(f"/api/projects/{api.project}", headers=api.headers)
    response = await api.client.get(api.url(f"/collections/{collection}"), headers=api.headers)
    assert response.status_code == 200, response.text
    return f'"{project.json()["schema"]}"."{response.json()["table"]}"'


async def shop(api: Api, owners: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
    """customers(name, owner) ← orders(title, amount, status, owner, customer): 3 customers,
    30 orders with repeated amounts (ties exercise the id tiebreak)."""
    await api.create_collection(
        "customers", [{"name": "name", "type": "string"}, {"name": "owner", "type": "integer"}]
    )
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string"},
            {"name": "amount", "type": "integer"},
            {"name": "status", "type": "string"},
            {"name": "owner", "type": "integer"},
            {"name": "customer", "type": "relation", "options": {"target": "customers"}},
        ],
    )
    customers = [
        await api.create("customers", {"name": f"c{i}", "owner": owners[i % 2]}) for i in range(3)
    ]
    for i in range(30):
        await api.create(
            "orders",
            {
                "title": f"o{i}",
                "amount": (i * 7) % 5,
                "status": "paid" if i % 3 else "open",
                "owner": owners[i % 2],
                "customer": customers[i % 3]["id"],
            },
        )
    return customers


async def walk(api: Api, name: str, params: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    """Every page of the view, following ``next_cursor`` (bounded)."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        page = await run(api, name, {**params, **({"cursor": cursor} if cursor else {})}, **kw)
        assert page.status_code == 200, page.text
        body = page.json()
        rows += body["data"]
        cursor = body["page"]["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("pagination did not end")


async def test_results_equal_the_hand_written_sql_across_pages(
    api: Api, pg: asyncpg.Connection
) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    customer = customers[1]["id"]

    rows = await walk(api, "orders_by_customer", {"customer_id": customer, "limit": 3})

    orders, clients = await table(api, "orders"), await table(api, "customers")
    expected = await pg.fetch(
        f"""SELECT o.title, o.amount, o.customer_id, c.name AS customer_name
            FROM {orders} o LEFT JOIN {clients} c ON c.id = o.customer_id
            WHERE o.status = 'paid' AND o.customer_id = $1
            ORDER BY o.amount DESC, o.id""",
        customer,
    )
    assert len(expected) > 3  # more than one page
    assert rows == [
        {
            "title": r["title"],
            "amount": r["amount"],
            "customer_id": r["customer_id"],
            "customer.name": r["customer_name"],
        }
        for r in expected
    ]


async def test_request_filters_and_sort_apply_on_top(api: Api, pg: asyncpg.Connection) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    customer = customers[2]["id"]

    rows = await walk(
        api,
        "orders_by_customer",
        {"customer_id": customer, "filter[amount][gte]": "2", "sort": "title:asc", "limit": 2},
    )

    orders = await table(api, "orders")
    expected = await pg.fetch(
        f"""SELECT title FROM {orders} WHERE status = 'paid' AND customer_id = $1 AND amount >= 2
            ORDER BY title, id""",
        customer,
    )
    assert len(expected) > 2
    assert [row["title"] for row in rows] == [r["title"] for r in expected]
    assert set(rows[0]) == {"title", "amount", "customer_id", "customer.name"}


async def owners_shop(
    api: Api, *projected: str
) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, str]]]]:
    """The shop owned by two signed-in users, alice and bob, each allowed only their own
    orders and customers, and the view also projecting ``projected``: the customers and
    each user's (id, headers)."""
    users = [await signed_in(api, f"{name}@example.com") for name in ("alice", "bob")]
    customers = await shop(api, owners=(users[0][0], users[1][0]))
    rule = "owner = @auth.id"
    await api.set_policies("orders", list=rule, read=rule)
    await api.set_policies("customers", list=rule, read=rule)
    projection = [*ORDERS_BY_CUSTOMER["projection"], *projected]
    await create_view(api, {**ORDERS_BY_CUSTOMER, "projection": projection})
    return customers, users


async def test_a_project_user_sees_through_a_view_only_what_they_may_read(
    api: Api, pg: asyncpg.Connection
) -> None:
    customers, [(alice_id, alice), _] = await owners_shop(api, "owner", "customer.owner")
    customer = customers[1]  # bob's customer: alice sees her orders of it, not its name

    rows = await walk(api, "orders_by_customer", {"customer_id": customer["id"]}, headers=alice)

    orders, clients = await table(api, "orders"), await table(api, "customers")
    expected = await pg.fetch(
        f"""SELECT o.title, c.name FROM {orders} o
            LEFT JOIN {clients} c ON c.id = o.customer_id AND c.owner = $2
            WHERE o.status = 'paid' AND o.customer_id = $1 AND o.owner = $2
            ORDER BY o.amount DESC, o.id""",
        customer["id"],
        alice_id,
    )
    assert expected and rows
    assert [(r["title"], r["customer.name"]) for r in rows] == [tuple(r) for r in expected]
    assert {r["owner"] for r in rows} == {alice_id}
    assert {r["customer.name"] for r in rows} == {None}
    assert customer["name"] not in str(rows)
    # A filter on a joined field cannot probe what the caller may not read.
    probe = await run(
        api,
        "orders_by_customer",
        {"customer_id": customer["id"], "filter[customer.name]": customer["name"]},
        headers=alice,
    )
    assert probe.status_code == 200 and probe.json()["data"] == []


async def test_api_key_collection_scopes_apply_to_base_and_join(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"]}
    for collection in ("orders", "customers"):
        await api.set_policies(collection, list="", read="")

    orders_only = await api.key(["records:read"], collections=["orders"])
    rows = await walk(api, "orders_by_customer", params, headers=orders_only)
    assert rows and {row["customer.name"] for row in rows} == {None}

    customers_only = await api.key(["records:read"], collections=["customers"])
    refused = await run(api, "orders_by_customer", params, headers=customers_only)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "collection_not_allowed"

    both = await api.key(["records:read"])
    rows = await walk(api, "orders_by_customer", params, headers=both)
    assert {row["customer.name"] for row in rows} == {customers[1]["name"]}


async def test_versions_and_rollback(api: Api, pg: asyncpg.Connection) -> None:
    customers = await shop(api)
    created = await create_view(api, ORDERS_BY_CUSTOMER)
    assert created["version"] == 1
    params = {"customer_id": customers[1]["id"]}
    changed = {k: v for k, v in ORDERS_BY_CUSTOMER.items() if k != "name"}
    changed["projection"] = ["title"]
    response = await api.client.put(
        views(api, "/orders_by_customer/definition"), json=changed, headers=api.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert set((await run(api, "orders_by_customer", params)).json()["data"][0]) == {"title"}

    versions = await api.client.get(views(api, "/orders_by_customer/versions"), headers=api.headers)
    assert [(v["version"], v["active"]) for v in versions.json()["data"]] == [(2, True), (1, False)]
    assert versions.json()["data"][0]["created_by"]

    rolled = await api.client.post(
        views(api, "/orders_by_customer/versions/1/activate"), headers=api.headers
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 1
    row = (await run(api, "orders_by_customer", params)).json()["data"][0]
    assert set(row) == {"title", "amount", "customer_id", "customer.name"}
    missing = await api.client.post(
        views(api, "/orders_by_customer/versions/9/activate"), headers=api.headers
    )
    assert missing.status_code == 404

    audited = await pg.fetch(
        "SELECT action, after FROM tessera.audit_events WHERE project_id = $1 "
        "AND target_type = 'view' ORDER BY id",
        api.project,
    )
    assert [r["action"] for r in audited] == ["view.create", "view.change", "view.activate"]


INVALID = [
    ({"projection": ["title", "nope"]}, "projection[1]", "unknown_field"),
    (
        {
            "filters": [
                {"field": "title", "op": "eq", "value": "x"},
                {"field": "amount", "op": "contains", "value": "1"},
            ]
        },
        "filters[1].op",
        "unsupported_operator",
    ),
    ({"filters": [{"field": "nope", "op": "eq", "value": 1}]}, "filters[0].field", "unknown_field"),
    (
        {"filters": [{"field": "amount", "op": "eq", "param": "undeclared"}]},
        "filters[0].param",
        "undeclared_param",
    ),
    (
        {"filters": [{"field": "amount", "op": "eq", "value": "not a number"}]},
        "filters[0].value",
        "invalid_value",
    ),
    ({"join": [{"relation": "customer"}, {"relation": "customer"}]}, "join", "too_many_joins"),
    ({"join": {"relation": "title"}}, "join.relation", "unknown_relation"),
    (
        {"filters": [{"field": "amount", "op": "gt", "value": i} for i in range(21)]},
        "filters",
        "too_many_filters",
    ),
    ({"sort": "nope:desc"}, "sort", "invalid_sort"),
    ({"projection": ["title", "customer.nope"]}, "projection[1]", "unknown_field"),
    ({"params": [{"name": "limit", "type": "integer"}]}, "params[0].name", "reserved_param"),
]


@pytest.mark.parametrize(("change", "part", "code"), INVALID)
async def test_an_invalid_definition_is_refused_and_the_active_version_stays(
    api: Api, change: dict[str, Any], part: str, code: str
) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    definition = {k: v for k, v in ORDERS_BY_CUSTOMER.items() if k != "name"}
    base = {"base_collection": "orders", "projection": ["title"], "sort": None, "join": None}
    body = {**definition, **base, "filters": [], "params": [], **change}

    response = await api.client.put(
        views(api, "/orders_by_customer/definition"), json=body, headers=api.headers
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert (errors[0]["field"], errors[0]["code"]) == (part, code)

    created = await api.client.post(views(api), json={**body, "name": "other"}, headers=api.headers)
    assert created.status_code == 422
    versions = await api.client.get(views(api, "/orders_by_customer/versions"), headers=api.headers)
    assert [v["version"] for v in versions.json()["data"]] == [1]
    page = await run(api, "orders_by_customer", {"customer_id": customers[1]["id"]})
    assert page.status_code == 200


async def test_only_admins_and_schema_writers_define_views(api: Api) -> None:
    await shop(api)
    _, user = await signed_in(api, "carol@example.com")
    reader = await api.key(["records:read"])
    writer = await api.key(["schema:write"])
    for headers in (user, reader):
        refused = await api.client.post(views(api), json=ORDERS_BY_CUSTOMER, headers=headers)
        assert refused.status_code == 403, refused.text
    allowed = await api.client.post(views(api), json=ORDERS_BY_CUSTOMER, headers=writer)
    assert allowed.status_code == 201, allowed.text
    listed = await api.client.get(views(api), headers=writer)
    assert [v["name"] for v in listed.json()["data"]] == ["orders_by_customer"]
    assert (await api.client.get(views(api), headers=reader)).status_code == 403


async def test_parameter_errors_name_the_parameter(api: Api) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    missing = await run(api, "orders_by_customer", {})
    assert missing.status_code == 400
    assert missing.json()["errors"][0] == {
        "field": "customer_id",
        "code": "missing_param",
        "message": "parameter 'customer_id' is required",
    }
    wrong = await run(api, "orders_by_customer", {"customer_id": "seven"})
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "customer_id"
    unknown = await run(api, "orders_by_customer", {"customer_id": 1, "colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "colour"
    not_projected = await run(api, "orders_by_customer", {"customer_id": 1, "filter[status]": "x"})
    assert not_projected.status_code == 400
    assert not_projected.json()["errors"][0]["field"] == "filter[status]"
    too_big = await run(api, "orders_by_customer", {"customer_id": 1, "limit": 201})
    assert too_big.status_code == 400


async def test_typed_optional_params_with_defaults(api: Api) -> None:
    await shop(api)
    await create_view(
        api,
        {
            "name": "by_status",
            "base_collection": "orders",
            "projection": ["title", "status"],
            "filters": [
                {"field": "status", "op": "eq", "param": "status"},
                {"field": "amount", "op": "gte", "param": "least"},
            ],
            "params": [
                {"name": "status", "type": "string", "default": "open", "example": "paid"},
                {"name": "least", "type": "integer", "default": 0},
            ],
        },
    )
    rows = await walk(api, "by_status", {})
    assert rows and {r["status"] for r in rows} == {"open"}
    rows = await walk(api, "by_status", {"status": "paid", "least": 4})
    assert rows and {r["status"] for r in rows} == {"paid"}
    refused = await api.client.post(
        views(api),
        json={
            "name": "bad_default",
            "base_collection": "orders",
            "projection": ["title"],
            "params": [{"name": "n", "type": "integer", "default": "many"}],
        },
        headers=api.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "params[0].default"


async def test_views_are_read_only(api: Api) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    for method in ("POST", "PUT", "PATCH"):  # DELETE removes the view itself
        response = await api.client.request(
            method, views(api, "/orders_by_customer"), headers=api.headers
        )
        assert response.status_code == 405, (method, response.text)
    unknown = await run(api, "nope", {})
    assert unknown.status_code == 404


async def apply(api: Api, op: str, **args: Any) -> dict[str, Any]:
    response = await api.apply(op, **args)
    assert response.status_code == 200, response.text
    return response.json()


async def test_renames_rewrite_the_stored_versions_in_place(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"]}
    before = await walk(api, "orders_by_customer", params)

    renamed = await apply(
        api, "rename_field", collection="orders", field="customer", new_name="buyer", grace_days=0
    )
    assert any(d["kind"] == "view" for d in renamed["result"]["references_rewritten"])
    await apply(api, "rename_collection", collection="orders", new_name="purchases", grace_days=0)
    await apply(
        api,
        "rename_field",
        collection="customers",
        field="name",
        new_name="full_name",
        grace_days=0,
    )
    await apply(
        api, "rename_field", collection="purchases", field="amount", new_name="total", grace_days=0
    )

    after = await walk(api, "orders_by_customer", params)
    keys = {
        "title": "title",
        "amount": "total",
        "customer_id": "buyer_id",
        "customer.name": "buyer.full_name",
    }
    assert after == [{keys[k]: v for k, v in row.items()} for row in before]
    definition = (
        await api.client.get(views(api, "/orders_by_customer/definition"), headers=api.headers)
    ).json()
    assert definition["version"] == 1
    assert definition["base_collection"] == "purchases"
    assert definition["join"] == {"relation": "buyer"}
    assert definition["sort"] == "total:desc"
    assert definition["filters"][1]["field"] == "buyer_id"


async def test_a_dropped_field_is_never_projected_and_the_drop_lists_the_view(api: Api) -> None:
    customers = await shop(api)
    await create_view(
        api, {**ORDERS_BY_CUSTOMER, "projection": [*ORDERS_BY_CUSTOMER["projection"], "owner"]}
    )
    preview = await api.preview("drop_field", collection="orders", field="owner")
    assert preview.status_code == 200, preview.text
    dependents = preview.json()["impact"]["dependents"]
    assert {"kind": "view", "name": "'orders_by_customer' v1"}.items() <= dependents[0].items()
    await apply(api, "drop_field", collection="orders", field="owner")
    rows = await walk(api, "orders_by_customer", {"customer_id": customers[1]["id"]})
    assert rows and all("owner" not in row for row in rows)
    await apply(api, "drop_field", collection="orders", field="amount")  # the default sort
    outdated = await run(api, "orders_by_customer", {"customer_id": customers[1]["id"]})
    assert outdated.status_code == 409
    assert outdated.json()["errors"][0]["code"] == "view_outdated"


async def purge_orders_under_a_view(api: Api) -> httpx.Response:
    """Make the shop with a view on its orders, drop the orders and try to purge them now."""
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    await apply(api, "drop_collection", collection="orders")
    settings = await api.client.patch(
        f"/api/projects/{api.project}",
        json={"settings": {"purge_retention_days": 0}},
        headers=api.headers,
    )
    assert settings.status_code == 200, settings.text
    return await api.apply("purge_collection", collection="orders", confirm="orders")


async def test_purging_what_a_view_uses_is_refused_listing_the_view(api: Api) -> None:
    refused = await purge_orders_under_a_view(api)
    assert refused.status_code == 409, refused.text
    problem = refused.json()["errors"][0]
    assert problem["code"] == "has_dependents"
    assert "view 'orders_by_customer'" in problem["message"]


@pytest.fixture(scope="module")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(tmp_path_factory.mktemp("views")),
        TESSERA_SECRET_KEY="views-meta-secret",
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with TesseraServer(env) as running:
        yield running.url


async def test_the_meta_curl_example_works_when_pasted(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        api = Api(client, {"Authorization": f"Bearer {login.json()['token']}"}, unique_id())
        created = await client.post(
            "/api/projects", json={"id": api.project, "name": "meta"}, headers=api.headers
        )
        assert created.status_code == 201, created.text
        customers = await shop(api)
        for collection in ("orders", "customers"):
            await api.set_policies(collection, list="", read="")
        example = {**ORDERS_BY_CUSTOMER["params"][0], "example": customers[1]["id"]}
        await create_view(api, {**ORDERS_BY_CUSTOMER, "params": [example]})
        key = (await api.key(["records:read"]))["X-API-Key"]
        meta = await client.get(views(api, "/orders_by_customer/meta"), headers=api.headers)
        assert meta.status_code == 200, meta.text
        expected = await run(api, "orders_by_customer", {"customer_id": customers[1]["id"]})

    described = meta.json()
    assert described["method"] == "GET"
    assert described["url_template"] == (
        f"{live_server}/api/projects/{api.project}/views/orders_by_customer"
        "?customer_id={customer_id}"
    )
    assert described["params"][0] | {"default": None} == {
        "name": "customer_id",
        "type": "integer",
        "required": True,
        "example": customers[1]["id"],
        "default": None,
        "description": "",
    }
    assert {"field": "customer.name", "type": "string"}.items() <= described["filters"][3].items()
    assert "eq" in described["filters"][3]["operators"]
    assert described["sort"]["default"] == "amount:desc"
    assert described["pagination"] == {
        "mode": "cursor",
        "default_limit": 25,
        "max_limit": 200,
        "cursor_param": "cursor",
        "next_cursor": "page.next_cursor",
    }
    assert described["response"]["fields"]["amount"] == "integer"
    assert {a["type"] for a in described["auth"]} == {"bearer", "api_key"}
    assert described["examples"]["postman_url"].startswith(live_server)
    assert "process.env.TESSERA_API_KEY" in described["examples"]["fetch"]
    assert "axios.get(" in described["examples"]["axios"]

    pasted = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        described["examples"]["curl"],
        env={**os.environ, "TESSERA_API_KEY": key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(pasted.communicate(), timeout=60)
    assert pasted.returncode == 0, stderr
    body = json.loads(stdout)
    assert body == expected.json() and body["data"]


async def test_each_view_is_in_the_project_openapi_document(api: Api) -> None:
    await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    document = (await api.client.get(api.url("/openapi.json"), headers=api.headers)).json()
    operation = document["paths"][views(api, "/orders_by_customer")]["get"]
    param = operation["parameters"][0]
    assert (param["name"], param["required"], param["schema"]["type"]) == (
        "customer_id",
        True,
        "integer",
    )
    rows = operation["responses"]["200"]["content"]["application/json"]["schema"]
    fields = rows["properties"]["data"]["items"]["properties"]
    assert set(fields) == {"title", "amount", "customer_id", "customer.name"}
    assert {"type": "integer"}.items() <= fields["amount"]["anyOf"][0].items()
    orders_only = await api.key(["records:read"], collections=["orders"])
    hidden = (await api.client.get(api.url("/openapi.json"), headers=orders_only)).json()
    assert views(api, "/orders_by_customer") not in hidden["paths"]


async def test_pages_have_no_gap_or_duplicate_under_concurrent_inserts(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    params = {"customer_id": customers[1]["id"], "limit": 2}
    before = await walk(api, "orders_by_customer", params)
    seen: list[dict[str, Any]] = []
    cursor = None
    for step in range(50):
        page = await run(
            api, "orders_by_customer", {**params, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        seen += page.json()["data"]
        cursor = page.json()["page"]["next_cursor"]
        # Between pages, rows sorting before and after the cursor arrive.
        for amount in (9, -1):
            await api.create(
                "orders",
                {
                    "title": f"new{step}.{amount}",
                    "amount": amount,
                    "status": "paid",
                    "customer": customers[1]["id"],
                },
            )
        if cursor is None:
            break
    titles = [row["title"] for row in seen]
    assert len(titles) == len(set(titles))
    assert [row for row in seen if not row["title"].startswith("new")] == before
    forged = await run(api, "orders_by_customer", {**params, "cursor": "abc.def"})
    assert forged.status_code == 400
    assert forged.json()["errors"][0]["code"] == "invalid_cursor"


async def test_sorting_on_a_joined_field_pages_through_nulls(
    api: Api, pg: asyncpg.Connection
) -> None:
    """The joined name is required in its collection, yet null where an order has no
    customer: the keyset must still page through the nulls."""
    await api.create_collection("customers", [{"name": "name", "type": "string", "required": True}])
    await api.create_collection(
        "orders",
        [
            {"name": "title", "type": "string"},
            {"name": "customer", "type": "relation", "options": {"target": "customers"}},
        ],
    )
    customers = [await api.create("customers", {"name": f"c{i % 2}"}) for i in range(3)]
    for i in range(9):
        linked = {"customer": customers[i % 3]["id"]} if i % 4 else {}
        await api.create("orders", {"title": f"o{i}", **linked})
    await create_view(
        api,
        {
            "name": "all_orders",
            "base_collection": "orders",
            "projection": ["title", "customer.name"],
            "join": {"relation": "customer"},
        },
    )
    orders, clients = await table(api, "orders"), await table(api, "customers")
    for direction, nulls in (("asc", "LAST"), ("desc", "FIRST")):
        rows = await walk(api, "all_orders", {"limit": 2, "sort": f"customer.name:{direction}"})
        expected = await pg.fetch(
            f"""SELECT o.title, c.name FROM {orders} o
                LEFT JOIN {clients} c ON c.id = o.customer_id
                ORDER BY c.name {direction} NULLS {nulls}, o.id"""
        )
        assert [(r["title"], r["customer.name"]) for r in rows] == [tuple(r) for r in expected]


async def test_a_view_past_its_statement_timeout_is_a_503(
    make_settings: Any, pg: asyncpg.Connection
) -> None:
    config = {"views.core": {"statement_timeout_ms": 200}}
    async with running(make_settings(plugins={"config": config})) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        api = Api(client, {"Authorization": f"Bearer {login.json()['token']}"}, unique_id())
        created = await client.post(
            "/api/projects", json={"id": api.project, "name": "slow"}, headers=api.headers
        )
        assert created.status_code == 201, created.text
        customers = await shop(api)
        await create_view(api, ORDERS_BY_CUSTOMER)
        params = {"customer_id": customers[1]["id"]}
        assert (await run(api, "orders_by_customer", params)).status_code == 200
        async with pg.transaction():
            # Held until the transaction ends: the view's query waits past its timeout.
            await pg.execute(f"LOCK TABLE {await table(api, 'orders')} IN ACCESS EXCLUSIVE MODE")
            slow = await run(api, "orders_by_customer", params)
        assert slow.status_code == 503, slow.text
        assert slow.json()["errors"][0]["code"] == "view_timeout"
        assert (await run(api, "orders_by_customer", params)).status_code == 200
