"""The admin's session cookie is resolved as the API resolves bearer tokens: verified and
its admin checked once per process, then cached (``KernelSurface.resolve_token``); a
tampered, expired or orphaned token still sends the browser back to the login page."""

from __future__ import annotations

import secrets

import httpx
import pytest
import sqlalchemy as sa

from admin import cookies
from kernel.db.schema import admins
from kernel.security.principal import Principal
from kernel.security.tokens import TokenService
from tests.conftest import ADMIN_EMAIL
from tests.test_token_cache import bearer, verifications

PAGE = "/admin/projects"


def session_cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{cookies.SESSION}={token}"}


async def the_admin(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Principal:
    tessera = client.app.state.tessera  # type: ignore[attr-defined]
    return await tessera.resolve_token(bearer(admin_headers))


async def issued(client: httpx.AsyncClient, principal: Principal, ttl_seconds: int) -> str:
    """A token for ``principal`` signed with the server's key, stamped with the admin's
    current password as ``/api/admin/login`` stamps it (none for an admin that is gone)."""
    tessera = client.app.state.tessera  # type: ignore[attr-defined]
    async with tessera.db.engine.connect() as conn:
        credential = (
            await conn.execute(sa.select(admins.c.password_hash).where(admins.c.id == principal.id))
        ).scalar_one_or_none()
    return TokenService(tessera.secret_key, ttl_seconds=ttl_seconds).issue(principal, credential)


def assert_sent_to_login(response: httpx.Response) -> None:
    assert response.status_code in {302, 303}, response.text
    assert response.headers["location"].startswith("/admin/login?next=")
    assert f'{cookies.SESSION}=""' in response.headers["set-cookie"]


async def test_an_admin_session_is_verified_once_then_served_from_the_cache(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token no earlier test used (its exp differs), so this test sees its first use.
    token = await issued(
        client, await the_admin(client, admin_headers), 3600 + secrets.randbelow(9999)
    )
    verified = verifications(client, monkeypatch)
    for _ in range(3):
        response = await client.get(PAGE, headers=session_cookie(token))
        assert response.status_code == 200, response.text
        assert ADMIN_EMAIL in response.text
    assert verified == [token]


async def test_a_tampered_session_goes_to_the_login_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    token = bearer(admin_headers)
    assert (await client.get(PAGE, headers=session_cookie(token))).status_code == 200
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    assert_sent_to_login(await client.get(PAGE, headers=session_cookie(forged)))


async def test_an_expired_session_goes_to_the_login_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    expired = await issued(client, await the_admin(client, admin_headers), -60)
    assert_sent_to_login(await client.get(PAGE, headers=session_cookie(expired)))


async def test_a_session_of_an_admin_that_no_longer_exists_goes_to_the_login_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    admin = await the_admin(client, admin_headers)
    gone = Principal(kind="admin", id=2**31 - 1, email="gone@example.com", role=admin.role)
    orphan = await issued(client, gone, 3600)
    assert_sent_to_login(await client.get(PAGE, headers=session_cookie(orphan)))
    # Not cached: refused again on the next page too.
    assert_sent_to_login(await client.get(PAGE, headers=session_cookie(orphan)))


async def test_the_login_page_sends_a_signed_in_admin_on_and_shows_others_the_form(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    signed_in = await client.get(
        "/admin/login?next=/admin/projects", headers=session_cookie(bearer(admin_headers))
    )
    assert signed_in.status_code in {302, 303}
    assert signed_in.headers["location"] == "/admin/projects"
    forged = await client.get("/admin/login", headers=session_cookie("not.a.token"))
    assert forged.status_code == 200
    assert 'name="password"' in forged.text
