"""Saved views (issue 17): a versioned definition compiled to one policy-checked statement,
whose results equal the hand-written SQL of the same query."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import Api

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
