"""Signing in and out, who may enter, CSRF protection and the session cookie."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from admin.csrf import LOGIN, SESSION, make_token
from admin.site import derive_key
from tests.browser.conftest import SECRET_KEY, AdminApi, shot, sign_in
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.server import TesseraServer

pytestmark = pytest.mark.browser

CSRF_INPUT = re.compile(r'name="csrf" value="([0-9a-f]+)"')
CSRF_KEY = derive_key(SECRET_KEY.encode(), "csrf")


async def test_sign_in_with_a_wrong_password_shows_why_then_sign_in_and_out(page: Page) -> None:
    await page.goto("/admin/projects")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fprojects$"))
    await shot(page, "login")
    await page.locator("#f-email").fill(ADMIN_EMAIL)
    await page.locator("#f-password").fill("not-the-password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("wrong email or password")
    await expect(page.locator("#f-email")).to_have_value(ADMIN_EMAIL)

    await page.locator("#f-password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/admin/projects$"))
    await expect(page.locator(".account-email")).to_have_text(ADMIN_EMAIL)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/admin/login$"))
    await expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    await page.goto("/admin/projects")
    await expect(page).to_have_url(re.compile(r"/admin/login"))


async def test_the_session_cookie_is_http_only_strict_and_scoped_to_the_admin(
    page: Page,
) -> None:
    await sign_in(page)
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "tessera_admin"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/admin"
    assert await page.evaluate("document.cookie") == ""  # invisible to scripts


async def signed_in_client(server: TesseraServer) -> tuple[httpx.AsyncClient, str]:
    """An httpx client signed in through the login form, and a page's CSRF token."""
    client = httpx.AsyncClient(base_url=server.url, timeout=30)
    login_page = await client.get("/admin/login")
    token = CSRF_INPUT.search(login_page.text).group(1)
    response = await client.post(
        "/admin/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf": token},
    )
    assert response.status_code == 303, response.text
    projects_page = await client.get("/admin/projects")
    assert projects_page.status_code == 200
    return client, CSRF_INPUT.search(projects_page.text).group(1)


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
    server: TesseraServer, api: AdminApi
) -> None:
    client, token = await signed_in_client(server)
    try:
        form = {"name": "Forged", "id": "forgedproject"}
        missing = await client.post("/admin/projects", data=form)
        assert missing.status_code == 403
        assert "This form has expired" in missing.text
        wrong = await client.post("/admin/projects", data={**form, "csrf": "0" * 64})
        assert wrong.status_code == 403
        login_purpose = make_token(CSRF_KEY, LOGIN, client.cookies["tessera_admin"])
        other = await client.post("/admin/projects", data={**form, "csrf": login_purpose})
        assert other.status_code == 403
        assert "forgedproject" not in await api.project_ids()

        project_id = f"csrf{token[:8]}"
        accepted = await client.post(
            "/admin/projects", data={**form, "id": project_id, "csrf": token}
        )
        assert accepted.status_code == 303
        assert accepted.headers["location"] == f"/admin/p/{project_id}"
        assert project_id in await api.project_ids()
    finally:
        await client.aclose()


async def test_the_login_form_needs_its_own_csrf_token(server: TesseraServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        await client.get("/admin/login")
        response = await client.post(
            "/admin/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 403
        assert "tessera_admin" not in response.cookies


async def project_user_token(api: AdminApi) -> str:
    project_id = await api.project("Users only")
    body = {"email": "ann@example.com", "password": "ann-password-1"}
    signup = await api.client.post(f"/api/projects/{project_id}/auth/signup", json=body)
    assert signup.status_code == 201, signup.text
    async with httpx.AsyncClient(base_url=str(api.client.base_url)) as anonymous:
        response = await anonymous.post(f"/api/projects/{project_id}/auth/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def test_a_project_users_token_does_not_open_the_admin(
    browser: Browser, server: TesseraServer, api: AdminApi
) -> None:
    token = await project_user_token(api)
    context = await browser.new_context(base_url=server.url)
    await context.add_cookies(
        [{"name": "tessera_admin", "value": token, "url": f"{server.url}/admin"}]
    )
    page = await context.new_page()
    await page.goto("/admin/projects")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    await expect(page.get_by_role("status")).to_contain_text("Only admins may use the admin")
    await context.close()

    # A form post with that cookie (and a token that matches it) is refused outright.
    valid_token = make_token(CSRF_KEY, SESSION, token)
    async with httpx.AsyncClient(base_url=server.url, cookies={"tessera_admin": token}) as client:
        response = await client.post(
            "/admin/projects", data={"name": "Nope", "id": "userproject", "csrf": valid_token}
        )
        assert response.status_code == 403
        assert "Only admins may use the admin" in response.text
        assert (await client.get("/admin/plugins")).status_code == 303
    assert "userproject" not in await api.project_ids()


async def test_unknown_admin_pages_are_a_404_page(page: Page) -> None:
    await sign_in(page)
    response = await page.goto("/admin/no/such/page")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    response = await page.goto("/admin/p/nosuchproject")
    assert response is not None and response.status == 404
    await expect(page.locator(".error-page")).to_contain_text("not found")
    await shot(page, "not-found")
