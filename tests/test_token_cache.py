"""Bearer tokens are verified once per process and cached until ``exp`` or revocation."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kernel.config import Settings
from kernel.security.principal import END_USER_SCOPES, Principal
from kernel.security.token_cache import TokenResolver
from kernel.security.tokens import TokenService, VerifiedToken
from tests.conftest import Api, running, unique_id
from tests.test_catalog_cache import eventually

PASSWORD = "user-password-1"


def resolver_of(client: httpx.AsyncClient) -> TokenResolver:
    return client.app.state.tessera.token_cache  # type: ignore[attr-defined]


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


async def signed_up(client: httpx.AsyncClient, project: str, email: str) -> int:
    """Sign ``email`` up to ``project``; the user's id."""
    response = await client.post(
        f"/api/projects/{project}/auth/signup", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def signed_in(client: httpx.AsyncClient, project: str, email: str) -> dict[str, str]:
    response = await client.post(
        f"/api/projects/{project}/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def verifications(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens the app behind ``client`` verifies from now on, one entry a verification."""
    tessera = client.app.state.tessera  # type: ignore[attr-defined]
    verified: list[str] = []
    original = tessera.tokens.verify_with_expiry

    def counting(token: str) -> VerifiedToken:
        verified.append(token)
        return original(token)

    monkeypatch.setattr(tessera.tokens, "verify_with_expiry", counting)
    return verified


@pytest.fixture
async def items(api: Api) -> str:
    """Collection ``items`` any signed-in user may list, with one record; its records URL."""
    await api.create_collection("items", [{"name": "name", "type": "string"}])
    await api.set_policies("items", list="@auth.id != null")
    await api.create("items", {"name": "first"})
    return api.url("/collections/items/records")


async def test_a_token_is_verified_once_then_served_from_the_cache(
    api: Api, items: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await api.user("cached@example.com")
    verified = verifications(api.client, monkeypatch)
    for _ in range(3):
        response = await api.client.get(items, headers=headers)
        assert response.status_code == 200, response.text
        assert [row["name"] for row in response.json()["data"]] == ["first"]
    assert verified == [bearer(headers)]
    cached = resolver_of(api.client).cached(bearer(headers))
    assert cached is not None
    assert (cached.kind, cached.project_id, cached.email) == (
        "user",
        api.project,
        "cached@example.com",
    )


async def test_an_expired_token_is_refused_even_while_cached(api: Api, items: str) -> None:
    tessera = api.client.app.state.tessera  # type: ignore[attr-defined]
    user_id = await signed_up(api.client, api.project, "brief@example.com")
    principal = Principal(
        kind="user", id=user_id, project_id=api.project, role="user", scopes=END_USER_SCOPES
    )
    # Signed with the server's key, for a real user, valid for two to three more seconds
    # (``exp`` is in whole seconds: a one-second token could expire before its first use).
    token = TokenService(tessera.secret_key, ttl_seconds=3).issue(principal)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.client.get(items, headers=headers)).status_code == 200
    assert resolver_of(api.client).cached(token) is not None

    deadline = time.monotonic() + 8
    while resolver_of(api.client).cached(token) is not None:
        assert time.monotonic() < deadline, "the cached token outlived its exp"
        await asyncio.sleep(0.1)
    response = await api.client.get(items, headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "token_expired"


def tampered(token: str) -> str:
    """``token`` with its claims changed to an admin's and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["kind"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_tampered_token_is_refused_and_never_cached(api: Api, items: str) -> None:
    token = bearer(await api.user("tamper@example.com"))
    forged = tampered(token)
    resolver = resolver_of(api.client)
    held = len(resolver)
    for _ in range(2):
        response = await api.client.get(items, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert error_code(response) == "invalid_token"
    assert resolver.cached(forged) is None
    assert len(resolver) == held
    projects = await api.client.get("/api/projects", headers={"Authorization": f"Bearer {forged}"})
    assert projects.status_code == 401


async def test_the_cache_holds_at_most_token_cache_size_tokens(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings(token_cache_size=2)) as client:
        api = Api(client, admin_headers, unique_id())
        created = await client.post(
            "/api/projects", json={"id": api.project, "name": "Small cache"}, headers=admin_headers
        )
        assert created.status_code == 201, created.text
        resolver = resolver_of(client)
        tokens = []
        for number in range(4):
            headers = await api.user(f"user{number}@example.com")
            assert (await client.get(api.url(""), headers=headers)).status_code == 200
            tokens.append(bearer(headers))
            assert len(resolver) <= 2
        # The admin's token counts too; the least recently used went first.
        assert [resolver.cached(token) is not None for token in tokens] == [
            False,
            False,
            True,
            True,
        ]
        # A token that fell out is verified again, and still works.
        first = {"Authorization": f"Bearer {tokens[0]}"}
        assert (await client.get(api.url(""), headers=first)).status_code == 200
        assert resolver.cached(tokens[0]) is not None
        assert len(resolver) == 2


async def test_deleting_a_project_revokes_its_users_tokens_in_every_process(
    make_settings: Callable[..., Settings], admin_headers: dict[str, str]
) -> None:
    async with running(make_settings()) as a, running(make_settings()) as b:
        project = unique_id()
        spec = {"id": project, "name": "Doomed"}
        assert (await a.post("/api/projects", json=spec, headers=admin_headers)).status_code == 201
        await signed_up(a, project, "leaving@example.com")
        headers = await signed_in(a, project, "leaving@example.com")
        for client in (a, b):
            assert (
                await client.get(f"/api/projects/{project}", headers=headers)
            ).status_code == 200
            assert resolver_of(client).cached(bearer(headers)) is not None

        deleted = await a.delete(
            f"/api/projects/{project}", params={"confirm": project}, headers=admin_headers
        )
        assert deleted.status_code == 204, deleted.text
        # A new project with the same id must not take the old project's users' tokens.
        assert (await a.post("/api/projects", json=spec, headers=admin_headers)).status_code == 201

        response = await a.get(f"/api/projects/{project}", headers=headers)
        assert response.status_code == 401
        assert error_code(response) == "token_revoked"

        async def refused_by_b() -> bool:
            response = await b.get(f"/api/projects/{project}", headers=headers)
            return response.status_code == 401 and error_code(response) == "token_revoked"

        await eventually(refused_by_b)
        for client in (a, b):
            assert resolver_of(client).cached(bearer(headers)) is None


async def test_a_lookup_that_races_a_revocation_is_not_cached(
    api: Api, items: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await api.user("racing@example.com")
    resolver = resolver_of(api.client)
    original = resolver._subject_current

    async def revoked_meanwhile(verified: VerifiedToken) -> Any:
        current = await original(verified)
        resolver.evict(api.project)  # the bus delivered a revocation while we looked
        return current

    monkeypatch.setattr(resolver, "_subject_current", revoked_meanwhile)
    assert (await api.client.get(items, headers=headers)).status_code == 200
    assert resolver.cached(bearer(headers)) is None
