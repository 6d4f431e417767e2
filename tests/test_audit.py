"""The audit log API: ``GET /api/projects/{p}/audit``, its filters and its pages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, Api, unique_id


async def audit(api: Api, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
    return await api.client.get(api.url("/audit"), params=params, headers=headers or api.headers)


async def entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await audit(api, limit=200, **params)
    assert response.status_code == 200, response.text
    assert response.json()["page"]["next_cursor"] is None
    return response.json()["data"]


@pytest.fixture
async def history(api: Api) -> dict[str, Any]:
    """A project with one of each audited change, oldest first."""
    await api.create_collection("orders", [{"name": "title", "type": "string"}])
    added = await api.client.post(
        api.url("/collections/orders/fields"),
        json={"name": "qty", "type": "integer"},
        headers=api.headers,
    )
    assert added.status_code == 201
    await api.set_policies("orders", list="", read="")
    created = await api.client.post(
        api.url("/api-keys"),
        json={"name": "ci key", "scopes": ["records:read"]},
        headers=api.headers,
    )
    assert created.status_code == 201
    key = created.json()
    revoked = await api.client.delete(api.url(f"/api-keys/{key['id']}"), headers=api.headers)
    assert revoked.status_code == 204
    signup = await api.client.post(
        api.url("/auth/signup"),
        json={"email": "New.User@Example.com", "password": "user-password-1"},
    )
    assert signup.status_code == 201
    return {"key": key, "user": signup.json()}


EXPECTED_ACTIONS = [
    "user.create",
    "api_key.revoke",
    "api_key.create",
    "schema.set_policies",
    "schema.add_field",
    "schema.create_collection",
    "project.create",
]


async def test_every_change_leaves_an_entry_with_actor_before_and_after(
    api: Api, history: dict[str, Any]
) -> None:
    data = await entries(api)
    assert [entry["action"] for entry in data] == EXPECTED_ACTIONS
    by_action = {entry["action"]: entry for entry in data}
    for entry in data:
        assert set(entry) == {
            "id",
            "action",
            "target_type",
            "target",
            "actor",
            "before",
            "after",
            "created_at",
        }
        datetime.fromisoformat(entry["created_at"])

    for action in EXPECTED_ACTIONS[1:]:
        actor = by_action[action]["actor"]
        assert actor["kind"] == "admin", action
        assert actor["email"] == ADMIN_EMAIL, action
        assert isinstance(actor["id"], int), action

    project = by_action["project.create"]
    assert (project["target_type"], project["target"]) == ("project", api.project)
    assert project["before"] is None
    assert project["after"]["id"] == api.project
    assert project["after"]["schema"] == f"p_{api.project}"

    collection = by_action["schema.create_collection"]
    assert (collection["target_type"], collection["target"]) == ("collection", "orders")
    assert collection["before"] is None
    assert collection["after"] == {
        "collection": "orders",
        "fields": [{"name": "title", "type": "string", "column": "title"}],
    }

    field = by_action["schema.add_field"]
    assert (field["target_type"], field["target"]) == ("field", "orders.qty")
    assert field["after"] == {
        "collection": "orders",
        "field": {"name": "qty", "type": "integer", "column": "qty"},
    }

    policies = by_action["schema.set_policies"]
    assert (policies["target_type"], policies["target"]) == ("policies", "orders")
    assert policies["before"] == dict.fromkeys(("list", "read", "create", "update", "delete"))
    assert policies["after"]["policies"] == {
        "list": "",
        "read": "",
        "create": None,
        "update": None,
        "delete": None,
    }

    key = history["key"]
    created = by_action["api_key.create"]
    assert (created["target_type"], created["target"]) == ("api_key", f"{key['id']}:ci key")
    assert created["after"]["scopes"] == ["records:read"]
    assert created["after"]["revoked_at"] is None
    revoked = by_action["api_key.revoke"]
    assert revoked["target"] == f"{key['id']}:ci key"
    assert revoked["after"]["revoked_at"] is not None
    # The secret is shown once, to its creator, and never written to the log.
    assert key["key"] not in json.dumps(data)
    assert key["key"][12:] not in json.dumps(data)

    user = by_action["user.create"]
    assert (user["target_type"], user["target"]) == ("user", "new.user@example.com")
    assert user["actor"] == {
        "kind": "user",
        "id": history["user"]["id"],
        "email": "new.user@example.com",
    }
    assert user["after"]["email"] == "new.user@example.com"
    assert "password" not in json.dumps(user)
    assert "argon2" not in json.dumps(data)


async def test_action_filter_exact_and_prefix(api: Api, history: dict[str, Any]) -> None:
    assert [e["action"] for e in await entries(api, action="schema.add_field")] == [
        "schema.add_field"
    ]
    assert [e["action"] for e in await entries(api, action="schema.")] == [
        "schema.set_policies",
        "schema.add_field",
        "schema.create_collection",
    ]
    assert [e["action"] for e in await entries(api, action="api_key.")] == [
        "api_key.revoke",
        "api_key.create",
    ]
    # Without the trailing dot it is an exact match, not a prefix.
    assert await entries(api, action="schema") == []
    assert await entries(api, action="schema.add") == []
    # LIKE wildcards are plain characters.
    assert await entries(api, action="%.") == []
    assert await entries(api, action="_chema.") == []


async def test_target_filters(api: Api, history: dict[str, Any]) -> None:
    assert [e["action"] for e in await entries(api, target_type="api_key")] == [
        "api_key.revoke",
        "api_key.create",
    ]
    assert [e["action"] for e in await entries(api, target="orders")] == [
        "schema.set_policies",
        "schema.create_collection",
    ]
    assert [e["action"] for e in await entries(api, target_type="field", target="orders.qty")] == [
        "schema.add_field"
    ]
    assert [
        e["action"] for e in await entries(api, target_type="collection", action="schema.")
    ] == ["schema.create_collection"]
    assert await entries(api, target_type="field", target="orders") == []


async def test_since_and_until_filters(api: Api, history: dict[str, Any]) -> None:
    data = await entries(api)
    stamps = {entry["id"]: datetime.fromisoformat(entry["created_at"]) for entry in data}
    pivot = data[3]  # schema.set_policies
    since = stamps[pivot["id"]]
    expected = [entry["id"] for entry in data if stamps[entry["id"]] >= since]
    assert pivot["id"] in expected
    selected = await entries(api, since=since.isoformat())
    assert [entry["id"] for entry in selected] == expected
    assert all(stamps[entry["id"]] >= since for entry in selected)

    before = await entries(api, until=since.isoformat())
    assert [entry["id"] for entry in before] == [
        entry["id"] for entry in data if stamps[entry["id"]] < since
    ]
    assert sorted(e["id"] for e in selected + before) == sorted(stamps)

    future = max(stamps.values()) + timedelta(hours=1)
    assert await entries(api, since=future.isoformat()) == []
    response = await audit(api, since="yesterday")
    assert response.status_code == 400 or response.status_code == 422
    assert response.json()["errors"][0]["field"] == "since"


async def test_pages_walk_every_entry_newest_first_without_duplicates(
    api: Api, history: dict[str, Any]
) -> None:
    for index in range(4):
        await api.client.post(
            api.url("/collections/orders/fields"),
            json={"name": f"extra{index}", "type": "text"},
            headers=api.headers,
        )
    everything = await entries(api)
    assert len(everything) == len(EXPECTED_ACTIONS) + 4
    ids = [entry["id"] for entry in everything]
    assert ids == sorted(ids, reverse=True)

    for limit in (1, 3, 4, len(ids), len(ids) + 1):
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            response = await audit(api, **params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["page"]["limit"] == limit
            assert len(page["data"]) <= limit
            seen.extend(entry["id"] for entry in page["data"])
            pages += 1
            cursor = page["page"]["next_cursor"]
            if cursor is None:
                break
        assert seen == ids, limit
        assert pages == -(-len(ids) // limit), limit

    # A filter and a cursor combine.
    first = (await audit(api, action="schema.", limit=2)).json()
    rest = (
        await audit(api, action="schema.", limit=200, cursor=first["page"]["next_cursor"])
    ).json()
    combined = [e["id"] for e in first["data"] + rest["data"]]
    assert combined == [e["id"] for e in everything if e["action"].startswith("schema.")]


async def test_bad_cursors_and_limits_are_refused(api: Api, history: dict[str, Any]) -> None:
    response = await audit(api, cursor="garbage")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_cursor"
    ops = await api.client.get(api.url("/schema/ops?limit=1"), headers=api.headers)
    assert ops.json()["page"]["next_cursor"] is not None
    response = await audit(api, cursor=ops.json()["page"]["next_cursor"])
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_cursor"
    for limit in (0, 201, -1):
        response = await audit(api, limit=limit)
        assert response.status_code == 400, limit
        assert response.json()["errors"][0]["field"] == "limit"


async def test_cursor_of_another_project_is_refused(api: Api, history: dict[str, Any]) -> None:
    other = unique_id()
    created = await api.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=api.headers
    )
    assert created.status_code == 201
    cursor = (await audit(api, limit=1)).json()["page"]["next_cursor"]
    response = await api.client.get(
        f"/api/projects/{other}/audit", params={"cursor": cursor}, headers=api.headers
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_cursor"


async def test_the_log_is_per_project(api: Api, history: dict[str, Any]) -> None:
    other = unique_id()
    created = await api.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=api.headers
    )
    assert created.status_code == 201
    response = await api.client.get(f"/api/projects/{other}/audit", headers=api.headers)
    assert [entry["action"] for entry in response.json()["data"]] == ["project.create"]
    assert response.json()["data"][0]["target"] == other
    mine = await entries(api)
    assert all(entry["target"] != other for entry in mine)


async def test_who_may_read_the_log(api: Api, history: dict[str, Any]) -> None:
    user = await api.user("reader@example.com")
    reader_key = await api.key(["records:read", "records:write"])
    schema_key = await api.key(["schema:write"])
    for headers in (user, reader_key):
        response = await audit(api, headers=headers)
        assert response.status_code == 403, response.text
    response = await api.client.get(api.url("/audit"))
    assert response.status_code == 401
    response = await audit(api, headers=schema_key)
    assert response.status_code == 200
    assert response.json()["data"][0]["action"] == "api_key.create"

    other = unique_id()
    created = await api.client.post(
        "/api/projects", json={"id": other, "name": "Other"}, headers=api.headers
    )
    assert created.status_code == 201
    response = await api.client.get(f"/api/projects/{other}/audit", headers=schema_key)
    assert response.status_code == 403
    response = await api.client.get(f"/api/projects/{unique_id()}/audit", headers=api.headers)
    assert response.status_code == 404
