"""Poison values: JSON nested or sized beyond what Tessera accepts is refused at the door,
and whatever PostgreSQL holds (however it got there) is still read back, never a 500.

Depths straddle every threshold that matters: the default ``json_max_depth`` (64), the
depth past which a stored value is passed on as its JSON text (200), orjson's writing limit
(254) and its parsing limit (1,024).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from kernel.config import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, running, unique_id


def nested(depth: int) -> str:
    """JSON text of arrays nested ``depth`` levels around the number 7."""
    return "[" * depth + "7" + "]" * depth


async def post_raw(api: Api, collection: str, body: str) -> httpx.Response:
    return await api.client.post(
        api.url(f"/collections/{collection}/records"),
        content=body,
        headers={**api.headers, "Content-Type": "application/json"},
    )


def only_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    return error


async def notes(api: Api) -> str:
    await api.create_collection("notes", [{"name": "meta", "type": "json"}])
    return "notes"


@pytest.mark.parametrize("depth", [1, 63, 64])
async def test_json_nested_up_to_json_max_depth_is_stored_and_read_back(
    api: Api, depth: int
) -> None:
    collection = await notes(api)
    created = await post_raw(api, collection, f'{{"meta": {nested(depth)}}}')
    assert created.status_code == 201, created.text
    assert orjson.dumps(created.json()["meta"]).decode() == nested(depth)
    read = await api.client.get(
        api.url(f"/collections/{collection}/records/{created.json()['id']}"), headers=api.headers
    )
    assert orjson.loads(read.content)["meta"] == orjson.loads(nested(depth))


@pytest.mark.parametrize("depth", [65, 199, 200, 201, 250, 253, 254, 255, 256, 500, 1000, 1023])
async def test_json_nested_deeper_than_json_max_depth_is_422_and_nothing_is_stored(
    api: Api, pg: asyncpg.Connection, depth: int
) -> None:
    collection = await notes(api)
    for body in (f'{{"meta": {nested(depth)}}}', f'{{"meta": {{"k": {nested(depth - 1)}}}}}'):
        error = only_error(await post_raw(api, collection, body), 422)
        assert (error["field"], error["code"]) == ("meta", "too_deep")
        assert "64 levels" in error["message"]
    created = await api.create(collection, {"meta": 1})
    patched = await api.client.patch(
        api.url(f"/collections/{collection}/records/{created['id']}"),
        content=f'{{"meta": {nested(depth)}}}',
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert only_error(patched, 422)["code"] == "too_deep"
    assert await pg.fetchval(f'SELECT count(*) FROM "p_{api.project}"."notes"') == 1
    listed = await api.client.get(
        api.url(f"/collections/{collection}/records"), headers=api.headers
    )
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("depth", [1024, 1500])
async def test_a_body_deeper_than_json_can_be_parsed_is_400_too_deep(api: Api, depth: int) -> None:
    collection = await notes(api)
    error = only_error(await post_raw(api, collection, f'{{"meta": {nested(depth)}}}'), 400)
    assert error["code"] == "too_deep"


@pytest.mark.parametrize(
    "depth", [65, 199, 200, 201, 250, 253, 254, 255, 256, 500, 1000, 1023, 1024, 1025, 3000]
)
async def test_a_row_nested_deeper_than_the_door_allows_is_still_read_and_listed(
    api: Api, pg: asyncpg.Connection, depth: int
) -> None:
    """Rows written straight into PostgreSQL (or before the limit existed) are returned as
    they are: 200, the stored value, in a read, a list page and an update's answer."""
    collection = await notes(api)
    created = await api.create(collection, {"meta": 1})
    stored = nested(depth)
    await pg.execute(
        f'UPDATE "p_{api.project}"."notes" SET meta = $1::text::jsonb WHERE id = $2',
        stored,
        created["id"],
    )
    url = api.url(f"/collections/{collection}/records/{created['id']}")
    read = await api.client.get(url, headers=api.headers)
    assert read.status_code == 200, read.text
    assert f'"meta":{stored}' in read.text
    listed = await api.client.get(
        api.url(f"/collections/{collection}/records"), headers=api.headers
    )
    assert listed.status_code == 200, listed.text
    assert f'"meta":{stored}' in listed.text
    renamed = await api.client.patch(url, json={}, headers=api.headers)
    assert renamed.status_code == 200, renamed.text
    assert f'"meta":{stored}' in renamed.text


async def test_a_deep_object_row_is_read_back_as_postgresql_stored_it(
    api: Api, pg: asyncpg.Connection
) -> None:
    collection = await notes(api)
    created = await api.create(collection, {"meta": 1})
    stored = '{"a": ' * 300 + "null" + "}" * 300
    await pg.execute(
        f'UPDATE "p_{api.project}"."notes" SET meta = $1::text::jsonb WHERE id = $2',
        stored,
        created["id"],
    )
    read = await api.client.get(
        api.url(f"/collections/{collection}/records/{created['id']}"), headers=api.headers
    )
    assert read.status_code == 200, read.text
    assert orjson.loads(read.content)["meta"] == orjson.loads(stored)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1e308", "123456789012345678901234567890"])
async def test_a_stored_number_beyond_a_double_is_read_back_as_postgresql_stored_it(
    api: Api, pg: asyncpg.Connection, number: str
) -> None:
    collection = await notes(api)
    created = await api.create(collection, {"meta": 1})
    await pg.execute(
        f'UPDATE "p_{api.project}"."notes" SET meta = jsonb_build_object(\'n\', $1::numeric)'
        " WHERE id = $2",
        number,
        created["id"],
    )
    stored = await pg.fetchval(
        f'SELECT meta::text FROM "p_{api.project}"."notes" WHERE id = $1', created["id"]
    )
    read = await api.client.get(
        api.url(f"/collections/{collection}/records/{created['id']}"), headers=api.headers
    )
    assert read.status_code == 200, read.text
    # Within a double's precision (numbers are read as doubles), and exact beyond its range.
    returned = Decimal(str(read.json()["meta"]["n"]))
    assert abs(returned / Decimal(number) - 1) < Decimal("1e-15")
    if not math.isfinite(float(number)):
        assert stored.replace(" ", "") in read.text
    listed = await api.client.get(
        api.url(f"/collections/{collection}/records"), headers=api.headers
    )
    assert listed.status_code == 200, listed.text


async def test_json_max_depth_and_json_max_bytes_are_configurable(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(json_max_depth=3, json_max_bytes=2048)
    async with running(settings) as client:
        login = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        project = unique_id()
        await client.post("/api/projects", json={"id": project, "name": "Limits"}, headers=headers)
        api = Api(client, headers, project)
        collection = await notes(api)
        assert (await post_raw(api, collection, f'{{"meta": {nested(3)}}}')).status_code == 201
        error = only_error(await post_raw(api, collection, f'{{"meta": {nested(4)}}}'), 422)
        assert (error["field"], error["code"]) == ("meta", "too_deep")
        assert "3 levels" in error["message"]
        fits = {"text": "x" * 2000}
        assert (await post_raw(api, collection, orjson.dumps({"meta": fits}).decode())).is_success
        too_big = orjson.dumps({"meta": {"text": "x" * 2100}}).decode()
        error = only_error(await post_raw(api, collection, too_big), 422)
        assert (error["field"], error["code"]) == ("meta", "too_large")
        assert "2048 bytes" in error["message"]


async def test_an_error_deep_inside_a_json_value_says_where(api: Api) -> None:
    collection = await notes(api)
    body = {"meta": {"items": [{"ok": 1}, {"name": "a\u0000b"}]}}
    error = only_error(await post_raw(api, collection, orjson.dumps(body).decode()), 422)
    assert (error["field"], error["code"]) == ("meta", "invalid_character")
    assert "items[1].name" in error["message"]
