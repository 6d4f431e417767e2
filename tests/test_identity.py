"""Admins, project users and API keys: sign-in, sign-up, password storage, key lifecycle."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api

RECORD_SCOPES = ["records:read", "records:write"]


def error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


async def fetch_row(database_url: str, query: str, *args: Any) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(query, *args)
    finally:
        await conn.close()


async def create_key(api: Api, **spec: Any) -> dict[str, Any]:
    response = await api.client.post(
        api.url("/api-keys"),
        json={"name": "key", "scopes": RECORD_SCOPES, **spec},
        headers=api.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def list_keys(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get(api.url("/api-keys"), headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture
async def items(api: Api) -> str:
    """Collection ``items`` (admins only) with one record; returns its records URL."""
    await api.create_collection("items", [{"name": "name", "type": "string"}])
    await api.create("items", {"name": "first"})
    return api.url("/collections/items/records")


# -- admins -----------------------------------------------------------------------------


async def test_admin_login_returns_a_token_that_works(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["kind"] == "admin"
    assert claims["email"] == ADMIN_EMAIL
    projects = await client.get("/api/projects", headers={"Authorization": f"Bearer {token}"})
    assert projects.status_code == 200


async def test_admin_login_refuses_wrong_password_and_unknown_email_alike(
    client: httpx.AsyncClient,
) -> None:
    wrong_password = await client.post(
        "/api/admin/login", json={"email": ADMIN_EMAIL, "password": "not-the-password"}
    )
    unknown_email = await client.post(
        "/api/admin/login", json={"email": "nobody@tessera.test", "password": ADMIN_PASSWORD}
    )
    assert wrong_password.status_code == 401
    assert error_code(wrong_password) == "invalid_credentials"
    assert unknown_email.status_code == 401
    assert unknown_email.json() == wrong_password.json()


async def test_admin_password_is_stored_with_argon2(
    client: httpx.AsyncClient, admin_headers: dict[str, str], database_url: str
) -> None:
    row = await fetch_row(
        database_url, "SELECT password_hash FROM tessera.admins WHERE email = $1", ADMIN_EMAIL
    )
    assert row is not None
    assert row["password_hash"].startswith("$argon2")
    assert ADMIN_PASSWORD not in row["password_hash"]


# -- project users ----------------------------------------------------------------------


async def test_signup_then_login_gives_a_token_with_the_users_claims(
    api: Api, database_url: str
) -> None:
    signup = await api.client.post(
        api.url("/auth/signup"), json={"email": "Ada@Example.com", "password": "analytical-1"}
    )
    assert signup.status_code == 201, signup.text
    user = signup.json()
    assert user["email"] == "ada@example.com"
    assert user["role"] == "user"
    assert "password" not in user
    assert "password_hash" not in user

    login = await api.client.post(
        api.url("/auth/login"), json={"email": "ada@example.com", "password": "analytical-1"}
    )
    assert login.status_code == 200, login.text
    claims = jwt.decode(login.json()["token"], options={"verify_signature": False})
    assert claims["sub"] == str(user["id"])
    assert claims["project"] == api.project
    assert claims["role"] == "user"
    assert claims["kind"] == "user"

    row = await fetch_row(
        database_url,
        "SELECT password_hash FROM tessera.project_users WHERE project_id = $1 AND email = $2",
        api.project,
        "ada@example.com",
    )
    assert row is not None
    assert row["password_hash"].startswith("$argon2")
    assert "analytical-1" not in row["password_hash"]


async def test_project_login_refuses_wrong_password_and_unknown_email_alike(api: Api) -> None:
    await api.user("grace@example.com", "compiler-1952")
    wrong_password = await api.client.post(
        api.url("/auth/login"), json={"email": "grace@example.com", "password": "compiler-1953"}
    )
    unknown_email = await api.client.post(
        api.url("/auth/login"), json={"email": "nobody@example.com", "password": "compiler-1952"}
    )
    assert wrong_password.status_code == 401
    assert error_code(wrong_password) == "invalid_credentials"
    assert unknown_email.json() == wrong_password.json()


async def test_users_of_one_project_cannot_sign_in_to_another(
    api: Api, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await api.user("linus@example.com", "kernel-hacker")
    other = Api(client, admin_headers, "other" + api.project[1:])
    created = await client.post(
        "/api/projects", json={"id": other.project, "name": "Other"}, headers=admin_headers
    )
    assert created.status_code == 201
    response = await client.post(
        other.url("/auth/login"), json={"email": "linus@example.com", "password": "kernel-hacker"}
    )
    assert response.status_code == 401
    assert error_code(response) == "invalid_credentials"


async def test_duplicate_signup_is_a_conflict(api: Api) -> None:
    await api.user("twice@example.com")
    response = await api.client.post(
        api.url("/auth/signup"), json={"email": "TWICE@example.com", "password": "another-pass"}
    )
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"field": "email", "code": "duplicate", "message": "this email is already registered"}
    ]


@pytest.mark.parametrize(
    ("email", "password", "field", "code"),
    [
        ("short@example.com", "1234567", "password", "weak_password"),
        ("empty@example.com", "", "password", "weak_password"),
        ("not-an-email", "long-enough-1", "email", "invalid_email"),
        ("two@@example.com", "long-enough-1", "email", "invalid_email"),
        ("no-domain@", "long-enough-1", "email", "invalid_email"),
    ],
)
async def test_signup_validates_email_and_password(
    api: Api, database_url: str, email: str, password: str, field: str, code: str
) -> None:
    response = await api.client.post(
        api.url("/auth/signup"), json={"email": email, "password": password}
    )
    assert response.status_code == 422, response.text
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]
    row = await fetch_row(
        database_url,
        "SELECT count(*) AS n FROM tessera.project_users WHERE project_id = $1",
        api.project,
    )
    assert row is not None
    assert row["n"] == 0


async def test_closed_signup_refuses_everyone_but_admins(api: Api) -> None:
    closed = await api.client.patch(
        api.url(""), json={"settings": {"allow_signup": False}}, headers=api.headers
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["settings"]["allow_signup"] is False

    body = {"email": "late@example.com", "password": "long-enough-1"}
    refused = await api.client.post(api.url("/auth/signup"), json=body)
    assert refused.status_code == 403
    assert error_code(refused) == "signup_closed"
    login = await api.client.post(api.url("/auth/login"), json=body)
    assert login.status_code == 401

    by_admin = await api.client.post(api.url("/auth/signup"), json=body, headers=api.headers)
    assert by_admin.status_code == 201, by_admin.text
    login = await api.client.post(api.url("/auth/login"), json=body)
    assert login.status_code == 200


async def test_signup_to_an_unknown_project_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/projects/pnosuchproject/auth/signup",
        json={"email": "who@example.com", "password": "long-enough-1"},
    )
    assert response.status_code == 404


# -- API keys ---------------------------------------------------------------------------


async def test_key_is_shown_once_and_stored_as_a_sha256_hash(api: Api, database_url: str) -> None:
    created = await create_key(api, name="ci", scopes=["records:read"], role="reporter")
    key = created["key"]
    assert key.startswith("tsk_")
    assert created["name"] == "ci"
    assert created["scopes"] == ["records:read"]
    assert created["role"] == "reporter"
    assert created["collections"] is None
    assert key.startswith(created["prefix"])
    assert created["prefix"] != key

    listed = await list_keys(api)
    assert [entry["id"] for entry in listed] == [created["id"]]
    digest = hashlib.sha256(key.encode()).hexdigest()
    for text in (
        str(listed),
        (await api.client.get(api.url("/api-keys"), headers=api.headers)).text,
    ):
        assert key not in text
        assert digest not in text
    assert "key" not in listed[0]
    assert "key_hash" not in listed[0]

    row = await fetch_row(
        database_url, "SELECT * FROM tessera.api_keys WHERE id = $1", created["id"]
    )
    assert row is not None
    assert row["key_hash"] == digest
    assert key not in [str(value) for value in dict(row).values()]


async def test_unknown_scope_is_refused(api: Api) -> None:
    response = await api.client.post(
        api.url("/api-keys"),
        json={"name": "bad", "scopes": ["records:read", "records:everything"]},
        headers=api.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scopes"
    assert "records:everything" in response.json()["errors"][0]["message"]
    assert await list_keys(api) == []


async def test_revoked_key_is_refused_at_once(api: Api, items: str) -> None:
    created = await create_key(api)
    headers = {"X-API-Key": created["key"]}
    await api.set_policies("items", list="")
    assert (await api.client.get(items, headers=headers)).status_code == 200

    revoked = await api.client.delete(api.url(f"/api-keys/{created['id']}"), headers=api.headers)
    assert revoked.status_code == 204
    response = await api.client.get(items, headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "invalid_api_key"
    assert (await list_keys(api))[0]["revoked_at"] is not None

    again = await api.client.delete(api.url(f"/api-keys/{created['id']}"), headers=api.headers)
    assert again.status_code == 404
    assert error_code(again) == "key_not_found"


async def test_a_key_load_that_races_its_revocation_is_not_cached(
    api: Api, items: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_key(api)
    headers = {"X-API-Key": created["key"]}
    await api.set_policies("items", list="")
    resolver = api.client.app.state.tessera.keys  # type: ignore[attr-defined]
    original = resolver._load

    async def revoked_meanwhile(digest: str) -> Any:
        principal = await original(digest)
        resolver.evict(digest)  # the bus delivered the revocation while we looked
        return principal

    monkeypatch.setattr(resolver, "_load", revoked_meanwhile)
    assert (await api.client.get(items, headers=headers)).status_code == 200
    assert resolver.cached(created["key"]) is None


async def test_revoking_an_unknown_key_is_404(api: Api) -> None:
    response = await api.client.delete(api.url("/api-keys/987654321"), headers=api.headers)
    assert response.status_code == 404
    assert error_code(response) == "key_not_found"


async def test_key_use_is_recorded(api: Api, items: str) -> None:
    created = await create_key(api)
    await api.set_policies("items", list="")
    assert (await list_keys(api))[0]["last_used_at"] is None

    response = await api.client.get(items, headers={"X-API-Key": created["key"]})
    assert response.status_code == 200
    await api.client.app.state.tessera.keys.flush_last_used()
    assert (await list_keys(api))[0]["last_used_at"] is not None


async def test_read_only_key_cannot_write(api: Api, items: str) -> None:
    await api.set_policies("items", list="", read="", create="", update="", delete="")
    headers = await api.key(["records:read"])
    assert (await api.client.get(items, headers=headers)).status_code == 200

    created = await api.client.post(items, json={"name": "new"}, headers=headers)
    assert created.status_code == 403
    assert error_code(created) == "missing_scope"
    first = (await api.client.get(items, headers=api.headers)).json()["data"][0]
    patched = await api.client.patch(f"{items}/{first['id']}", json={"name": "x"}, headers=headers)
    assert patched.status_code == 403
    assert error_code(patched) == "missing_scope"
    deleted = await api.client.delete(f"{items}/{first['id']}", headers=headers)
    assert deleted.status_code == 403
    assert error_code(deleted) == "missing_scope"
    names = [
        row["name"] for row in (await api.client.get(items, headers=api.headers)).json()["data"]
    ]
    assert names == ["first"]


async def test_key_limited_to_collections_cannot_reach_others(api: Api) -> None:
    for name in ("a", "b"):
        await api.create_collection(name, [{"name": "name", "type": "string"}])
        await api.set_policies(name, list="", read="", create="")
    headers = await api.key(RECORD_SCOPES, collections=["a"])

    allowed = await api.client.post(
        api.url("/collections/a/records"), json={"name": "x"}, headers=headers
    )
    assert allowed.status_code == 201, allowed.text
    for response in (
        await api.client.get(api.url("/collections/b/records"), headers=headers),
        await api.client.post(
            api.url("/collections/b/records"), json={"name": "x"}, headers=headers
        ),
    ):
        assert response.status_code == 403
        assert error_code(response) == "collection_not_allowed"
    catalog = await api.client.get(api.url("/collections"), headers=headers)
    assert [collection["name"] for collection in catalog.json()["data"]] == ["a"]
    assert (await api.client.get(api.url("/collections/b/records"), headers=api.headers)).json()[
        "data"
    ] == []


async def test_key_without_schema_scope_cannot_change_the_schema(api: Api, items: str) -> None:
    headers = await api.key(RECORD_SCOPES)
    field = {"collection": "items", "field": {"name": "extra", "type": "string"}}
    for path in ("/schema/apply", "/schema/preview"):
        response = await api.client.post(
            api.url(path), json={"op": "add_field", "args": field}, headers=headers
        )
        assert response.status_code == 403, response.text
        assert error_code(response) == "missing_scope"
    created = await api.client.post(
        api.url("/collections"), json={"name": "other", "fields": []}, headers=headers
    )
    assert created.status_code == 403

    collection = await api.client.get(api.url("/collections/items"), headers=api.headers)
    assert [f["name"] for f in collection.json()["fields"]] == ["name"]
    assert (
        await api.client.get(api.url("/collections/other"), headers=api.headers)
    ).status_code == 404


async def test_key_with_schema_scope_can_add_a_field(api: Api, items: str) -> None:
    headers = await api.key(["schema:write"])
    response = await api.client.post(
        api.url("/schema/apply"),
        json={
            "op": "add_field",
            "args": {"collection": "items", "field": {"name": "extra", "type": "string"}},
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"


async def test_only_admins_manage_keys(api: Api) -> None:
    existing = await create_key(api)
    key = await api.key(["records:read", "records:write", "schema:write"])
    user = await api.user("manager@example.com")
    spec = {"name": "escalated", "scopes": ["schema:write"]}
    for headers in (key, user):
        calls = [
            await api.client.get(api.url("/api-keys"), headers=headers),
            await api.client.post(api.url("/api-keys"), json=spec, headers=headers),
            await api.client.delete(api.url(f"/api-keys/{existing['id']}"), headers=headers),
        ]
        for response in calls:
            assert response.status_code == 403, response.text
            assert error_code(response) == "admin_only"
    keys = await list_keys(api)
    assert len(keys) == 2
    assert all(entry["revoked_at"] is None for entry in keys)


async def test_callers_without_credentials_are_asked_to_sign_in(api: Api) -> None:
    existing = await create_key(api)
    calls = [
        await api.client.get(api.url("/api-keys")),
        await api.client.post(api.url("/api-keys"), json={"name": "x", "scopes": RECORD_SCOPES}),
        await api.client.delete(api.url(f"/api-keys/{existing['id']}")),
        await api.client.get(api.url("")),
        await api.client.patch(api.url(""), json={"name": "anonymous was here"}),
        await api.client.delete(api.url(""), params={"confirm": api.project}),
        await api.client.post("/api/projects", json={"id": "panonymous", "name": "x"}),
    ]
    for response in calls:
        assert response.status_code == 401, response.text
        assert error_code(response) == "unauthorized"
    assert [entry["revoked_at"] for entry in await list_keys(api)] == [None]
    project = await api.client.get(api.url(""), headers=api.headers)
    assert project.json()["name"] == "Test project"
