"""First run: with no admin yet, the admin offers to create one — on this machine only,
and only once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import server_env, shot
from tests.server import TesseraServer
from tests.services import create_database, drop_database

pytestmark = pytest.mark.browser


@pytest.fixture
async def empty_database(postgres_server: str) -> AsyncIterator[str]:
    """A database with nothing in it: ``tessera serve`` migrates it, no admin exists."""
    url = await create_database(postgres_server, prefix="tessera_first_run")
    yield url
    await drop_database(postgres_server, url)


async def test_the_first_admin_is_created_from_the_browser_once(
    browser: Browser, empty_database: str, hello_site: Path, tmp_path: Path
) -> None:
    with TesseraServer(server_env(empty_database, tmp_path, hello_site)) as server:
        context = await browser.new_context(base_url=server.url)
        page = await context.new_page()
        await page.goto("/admin")
        await expect(page).to_have_url(re.compile(r"/admin/setup$"))
        await shot(page, "first-run-setup")

        await page.get_by_label("Email").fill("first@example.com")
        await page.locator("#f-password").fill("first-password-1")
        await page.locator("#f-password_again").fill("another-password")
        await page.get_by_role("button", name="Create admin and sign in").click()
        await expect(page.locator("#f-password_again-error")).to_contain_text("differ")

        await page.locator("#f-password").fill("short")
        await page.locator("#f-password_again").fill("short")
        await page.get_by_role("button", name="Create admin and sign in").click()
        await expect(page.locator("#f-password-error")).to_contain_text("characters")

        await page.locator("#f-password").fill("first-password-1")
        await page.locator("#f-password_again").fill("first-password-1")
        await page.get_by_role("button", name="Create admin and sign in").click()
        await expect(page).to_have_url(re.compile(r"/admin/projects$"))
        await expect(page.get_by_role("status")).to_contain_text("Your admin account is ready")
        await expect(page.get_by_text("No projects yet")).to_be_visible()

        # Gone for good: the page and its form answer 404, /admin goes to the projects.
        response = await page.goto("/admin/setup")
        assert response is not None and response.status == 404
        await page.goto("/admin")
        await expect(page).to_have_url(re.compile(r"/admin/projects$"))
        await context.close()

        async with httpx.AsyncClient(base_url=server.url) as client:
            login = await client.post(
                "/api/admin/login",
                json={"email": "first@example.com", "password": "first-password-1"},
            )
            assert login.status_code == 200
