"""The bench's ``view_query`` (issue 17): the seeded view and the floor's hand-written SQL
return the same rows for the same customer, policy-hidden rows left out by both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bench import ops
from bench.floor import floor_rows
from bench.run import page_difference
from bench.seed import PAGE_SIZE, VIEW_PATH, Dataset, DeepPage, copy_rows, row, setup_through_api
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, migrated_database
from tests.server import TesseraServer, tessera_env

#: Four items per customer (item n links to customer 3001·n mod 5000 + 1).
ROWS = 20_000


def items_by_customer() -> dict[int, list[int]]:
    linked: dict[int, list[int]] = {}
    for number in range(1, ROWS + 1):
        linked.setdefault(row(number)[4], []).append(number)
    return linked


LINKED = items_by_customer()
#: Compared customers: the first, and three with an item the policy hides.
CUSTOMERS = [1, *[c for c in sorted(LINKED)[1:] if any(row(n)[1] < 0 for n in LINKED[c])][:3]]


@pytest.fixture
async def bench_database(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own: the bench's project id is fixed."""
    async with migrated_database(postgres_server, "tessera_bench_view") as url:
        yield url


async def test_the_view_and_its_floor_return_the_same_rows(
    bench_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = tessera_env(
        TESSERA_DATABASE_URL=bench_database,
        TESSERA_DATA_DIR=str(tmp_path_factory.mktemp("bench_view")),
        TESSERA_SECRET_KEY="bench-view-secret",
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with TesseraServer(env) as server, httpx.Client(base_url=server.url, timeout=30) as setup:
        key, key_id, token = await asyncio.to_thread(
            setup_through_api, setup, ADMIN_EMAIL, ADMIN_PASSWORD
        )
        await copy_rows(bench_database, ROWS)
        dataset = Dataset(key, key_id, token, "", [1], [DeepPage("c", row(1)[3], 1)], 0)
        view_query = next(op for op in ops.build(dataset) if op.name == "view_query")
        for customer in CUSTOMERS:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(
                    VIEW_PATH,
                    params={"limit": PAGE_SIZE, "customer_id": customer},
                    headers={"X-API-Key": key},
                )
            assert response.status_code == 200, response.text
            page = response.json()["data"]
            floor = await asyncio.to_thread(
                floor_rows, bench_database, view_query, (0, customer, PAGE_SIZE + 1)
            )
            assert page, customer
            assert page_difference(page, floor[:PAGE_SIZE]) is None, customer
            visible = {n for n in LINKED[customer] if row(n)[1] >= 0}
            assert {record["id"] for record in page} == visible
