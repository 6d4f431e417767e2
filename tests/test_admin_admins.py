"""The Admins page of the web admin: list admins, add one, change your own password (this
session goes on, the others end), delete another admin after typing their email — each
through ``tessera.identity``, audited as the ``tessera admin`` commands are; refusals are
shown next to their inputs and change nothing."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from admin import cookies
from kernel.config import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, running, unique_id
from tests.test_token_cache import error_code

PAGE = "/admin/admins"
PASSWORD = "admin-password-1"
NEW_PASSWORD = "admin-password-2"
BASE_URL = "http://tessera.test"
AUDIT_COLUMNS = ("actor", "before", "after")


@dataclass
class SignedIn:
    """An admin of the test's own, signed in to the admin in a browser of its own (a client
    whose cookie jar keeps the session cookie, as a browser does)."""

    browser: httpx.AsyncClient
    email: str
    id: int

    @property
    def session_token(self) -> str:
        token = self.browser.cookies.get(cookies.SESSION)
        assert token
        return token

    async def csrf(self, path: str = PAGE) -> str:
        shown = await self.browser.get(path)
        assert shown.status_code == 200, shown.text
        token = re.search(r'name="csrf" value="([^"]+)"', shown.text)
        assert token is not None
        return token.group(1)

    async def post(self, path: str, csrf_from: str = PAGE, **fields: str) -> httpx.Response:
        return await self.browser.post(path, data={"csrf": await self.csrf(csrf_from), **fields})


def browser_for(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url=BASE_URL)  # type: ignore[attr-defined]


async def api_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/admin/login", json={"email": email, "password": password})


async def api_token(client: httpx.AsyncClient, email: str, password: str) -> str:
    response = await api_login(client, email, password)
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def api_status(client: httpx.AsyncClient, token: str) -> tuple[int, str | None]:
    """What ``GET /api/projects`` answers to ``token``: its status and error code."""
    response = await client.get("/api/projects", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, None if response.status_code == 200 else error_code(response)


async def sign_in(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, email: str, password: str
) -> SignedIn:
    """Put a fresh session for ``email`` in ``browser``'s cookie jar."""
    response = await api_login(client, email, password)
    assert response.status_code == 200, response.text
    browser.cookies.set(
        cookies.SESSION, response.json()["token"], domain="tessera.test", path="/admin"
    )
    return SignedIn(browser, email, response.json()["admin"]["id"])


async def new_admin(client: httpx.AsyncClient) -> str:
    """A fresh admin (the session's own admin stays untouched); their email."""
    email = f"{unique_id('admin')}@tessera.test"
    await client.app.state.tessera.identity.create_admin(email, PASSWORD)  # type: ignore[attr-defined]
    return email


@pytest.fixture
async def me(client: httpx.AsyncClient) -> AsyncIterator[SignedIn]:
    """A fresh admin, signed in to the admin in a browser of their own."""
    async with browser_for(client) as browser:
        yield await sign_in(client, browser, await new_admin(client), PASSWORD)


async def audit_rows(pg: asyncpg.Connection, action: str, target: str) -> list[dict[str, Any]]:
    rows = await pg.fetch(
        "select actor, before, after from tessera.audit_events"
        " where project_id is null and action = $1 and target = $2 order by id",
        action,
        target,
    )
    return [
        {key: None if row[key] is None else json.loads(row[key]) for key in AUDIT_COLUMNS}
        for row in rows
    ]


def assert_refused_at(response: httpx.Response, input_name: str, message: str) -> None:
    """A form answered 422 with ``message`` next to the input ``input_name``."""
    assert response.status_code == 422, response.text
    shown = rf'<p class="field-error" id="f-{input_name}-error">[^<]*{re.escape(message)}'
    assert re.search(shown, response.text), response.text


def actor_of(admin: SignedIn) -> dict[str, Any]:
    return {"kind": "admin", "id": admin.id, "email": admin.email}


async def admin_emails(client: httpx.AsyncClient) -> list[str]:
    identity = client.app.state.tessera.identity  # type: ignore[attr-defined]
    return [admin["email"] for admin in await identity.list_admins()]


# -- list ---------------------------------------------------------------------------------


async def test_the_admins_page_lists_every_admin_with_added_and_last_sign_in(
    client: httpx.AsyncClient, me: SignedIn
) -> None:
    never_signed_in = await new_admin(client)
    page = await me.browser.get(PAGE)
    assert page.status_code == 200, page.text
    assert '<a href="/admin/admins" aria-current="page">Admins</a>' in page.text
    rows = {
        email: row
        for row in re.findall(r"<tr>.*?</tr>", page.text, flags=re.S)
        for email in (me.email, never_signed_in, ADMIN_EMAIL)
        if f"<strong>{email}</strong>" in row
    }
    assert set(rows) == {me.email, never_signed_in, ADMIN_EMAIL}
    assert ">you<" in rows[me.email] and "Delete…" not in rows[me.email]
    assert "never" not in rows[me.email]  # signed in moments ago
    assert "never" in rows[never_signed_in]
    assert f'aria-label="Delete admin {never_signed_in}"' in rows[never_signed_in]
    assert "password" not in " ".join(rows.values()).lower()


# -- add ----------------------------------------------------------------------------------


async def test_adding_an_admin_audits_it_and_the_new_admin_signs_in(
    client: httpx.AsyncClient, me: SignedIn, pg: asyncpg.Connection
) -> None:
    email = f"{unique_id('added')}@tessera.test"
    added = await me.post(PAGE, email=email.upper(), password=PASSWORD, password_again=PASSWORD)
    assert added.status_code == 303, added.text
    assert added.headers["location"] == PAGE
    shown = await me.browser.get(PAGE)
    assert f"Admin {email} added." in shown.text
    assert f"<strong>{email}</strong>" in shown.text
    assert PASSWORD not in added.text + shown.text
    [row] = await audit_rows(pg, "admin.create", email)
    assert row["actor"] == actor_of(me)
    assert row["after"]["email"] == email and row["before"] is None
    await api_token(client, email, PASSWORD)


@pytest.mark.parametrize(
    ("fields", "input_name", "message"),
    [
        ({"password": "short", "password_again": "short"}, "password", "8 to 1024 characters"),
        ({"password": PASSWORD, "password_again": "other-one-1"}, "password_again", "differ"),
        ({"email": "not-an-email"}, "email", "not a valid email address"),
        ({"email": ADMIN_EMAIL}, "email", f"an admin with email {ADMIN_EMAIL} exists"),
    ],
)
async def test_a_refused_new_admin_is_shown_inline_and_nothing_is_written(
    client: httpx.AsyncClient,
    me: SignedIn,
    pg: asyncpg.Connection,
    fields: dict[str, str],
    input_name: str,
    message: str,
) -> None:
    email = f"{unique_id('refused')}@tessera.test"
    form = {"email": email, "password": PASSWORD, "password_again": PASSWORD, **fields}
    target = form["email"].lower()
    admins_before = await admin_emails(client)
    audited_before = await audit_rows(pg, "admin.create", target)
    refused = await me.post(PAGE, **form)
    assert_refused_at(refused, input_name, message)
    assert 'value="' + form["email"] + '"' in refused.text  # the email is kept for a retry
    assert form["password"] not in refused.text
    assert await admin_emails(client) == admins_before
    assert await audit_rows(pg, "admin.create", target) == audited_before


# -- change your own password -------------------------------------------------------------


async def test_changing_your_password_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient, me: SignedIn, pg: asyncpg.Connection
) -> None:
    old_session = me.session_token
    elsewhere = await api_token(client, me.email, PASSWORD)
    changed = await me.post(
        f"{PAGE}/password",
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )
    assert changed.status_code == 303, changed.text
    assert me.session_token != old_session
    page = await me.browser.get(PAGE)
    assert page.status_code == 200, page.text
    assert "Your password is changed. Your other sessions are signed out." in page.text
    assert await api_status(client, me.session_token) == (200, None)
    for revoked in (old_session, elsewhere):
        assert await api_status(client, revoked) == (401, "token_revoked")
    assert (await api_login(client, me.email, PASSWORD)).status_code == 401
    await api_token(client, me.email, NEW_PASSWORD)
    [row] = await audit_rows(pg, "admin.password", me.email)
    assert row["actor"] == actor_of(me)


@pytest.mark.parametrize(
    ("fields", "input_name", "message"),
    [
        ({"current_password": "not-my-password"}, "current_password", "current password is wrong"),
        ({"new_password": "short", "new_password_again": "short"}, "new_password", "8 to 1024"),
        ({"new_password_again": "another-one-9"}, "new_password_again", "differ"),
    ],
)
async def test_a_refused_password_change_is_shown_inline_and_changes_nothing(
    client: httpx.AsyncClient,
    me: SignedIn,
    pg: asyncpg.Connection,
    fields: dict[str, str],
    input_name: str,
    message: str,
) -> None:
    session = me.session_token
    form = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
        **fields,
    }
    refused = await me.post(f"{PAGE}/password", **form)
    assert_refused_at(refused, input_name, message)
    assert me.session_token == session
    assert await api_status(client, session) == (200, None)
    await api_token(client, me.email, PASSWORD)
    assert await audit_rows(pg, "admin.password", me.email) == []


# -- delete -------------------------------------------------------------------------------


async def test_deleting_another_admin_needs_their_email_typed_and_ends_their_sessions(
    client: httpx.AsyncClient, me: SignedIn, pg: asyncpg.Connection
) -> None:
    other = await new_admin(client)
    their_token = await api_token(client, other, PASSWORD)
    [their_id] = [
        admin["id"]
        for admin in await client.app.state.tessera.identity.list_admins()  # type: ignore[attr-defined]
        if admin["email"] == other
    ]
    path = f"{PAGE}/{their_id}/delete"
    page = await me.browser.get(path)
    assert page.status_code == 200, page.text
    assert f"Type the admin&#39;s email, {other}, to confirm" in page.text

    mistyped = await me.post(path, csrf_from=path, confirm="someone@tessera.test")
    assert mistyped.status_code == 422, mistyped.text
    assert f"Type the admin&#39;s email, {other}, to confirm." in mistyped.text
    assert other in await admin_emails(client)
    assert await api_status(client, their_token) == (200, None)

    deleted = await me.post(path, csrf_from=path, confirm=f" {other.upper()} ")
    assert deleted.status_code == 303, deleted.text
    listed = await me.browser.get(PAGE)
    assert f"Admin {other} deleted; their sessions are signed out." in listed.text
    assert f"<strong>{other}</strong>" not in listed.text
    assert await api_status(client, their_token) == (401, "token_revoked")
    assert (await api_login(client, other, PASSWORD)).status_code == 401
    [row] = await audit_rows(pg, "admin.delete", other)
    assert row["actor"] == actor_of(me)
    assert row["before"] == {"id": their_id, "email": other}
    assert (await me.browser.get(path)).status_code == 404


async def test_an_admin_cannot_delete_themselves(
    client: httpx.AsyncClient, me: SignedIn, pg: asyncpg.Connection
) -> None:
    path = f"{PAGE}/{me.id}/delete"
    page = await me.browser.get(path)
    assert page.status_code == 200
    assert "This is your own account" in page.text
    assert 'name="confirm"' not in page.text
    refused = await me.post(path, confirm=me.email)
    assert refused.status_code == 409, refused.text
    assert "you cannot delete your own account; another admin can" in refused.text
    assert me.email in await admin_emails(client)
    assert await api_status(client, me.session_token) == (200, None)
    assert await audit_rows(pg, "admin.delete", me.email) == []


async def test_the_last_admin_is_not_deleted(
    make_settings: Callable[..., Settings], jobs_db: str
) -> None:
    async with (
        running(make_settings(database_url=jobs_db)) as client,
        browser_for(client) as browser,
    ):
        only = await sign_in(client, browser, ADMIN_EMAIL, ADMIN_PASSWORD)
        refused = await only.post(f"{PAGE}/{only.id}/delete", confirm=ADMIN_EMAIL)
        assert refused.status_code == 409, refused.text
        assert f"{ADMIN_EMAIL} is the only admin; create another before deleting it" in (
            refused.text
        )
        assert await admin_emails(client) == [ADMIN_EMAIL]
        assert await api_status(client, only.session_token) == (200, None)


# -- guards -------------------------------------------------------------------------------


async def test_the_admins_pages_need_a_session_and_a_csrf_token(
    client: httpx.AsyncClient, me: SignedIn
) -> None:
    email = f"{unique_id('guard')}@tessera.test"
    form = {"email": email, "password": PASSWORD, "password_again": PASSWORD}
    async with browser_for(client) as stranger:
        shown = await stranger.get(PAGE)
        assert shown.status_code == 303
        assert shown.headers["location"] == "/admin/login?next=%2Fadmin%2Fadmins"
        assert (await stranger.get(f"{PAGE}/{me.id}/delete")).status_code == 303
        for path, fields in (
            (PAGE, form),
            (f"{PAGE}/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            (f"{PAGE}/{me.id}/delete", {"confirm": me.email}),
        ):
            signed_out = await stranger.post(path, data={"csrf": "forged", **fields})
            assert signed_out.status_code == 403, signed_out.text
            without_token = await me.browser.post(path, data=fields)
            assert without_token.status_code == 403, without_token.text
            assert "This form has expired" in without_token.text
    assert email not in await admin_emails(client)
    assert me.email in await admin_emails(client)
    await api_token(client, me.email, PASSWORD)
    assert (await me.browser.get(f"{PAGE}/999999999/delete")).status_code == 404
