"""The Admins page in Chromium: an admin adds a second admin through the form, signs out,
and the new admin signs in with the password they were given."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import flashes, shot, sign_in
from tests.conftest import unique_id

pytestmark = pytest.mark.browser

PASSWORD = "second-admin-password"


async def test_an_admin_added_through_the_form_signs_in(page: Page) -> None:
    email = f"{unique_id('second')}@tessera.test"
    await sign_in(page)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admins").click()
    await expect(page).to_have_url(re.compile(r"/admin/admins$"))
    await expect(page.get_by_role("heading", name="Admins", exact=True)).to_be_visible()

    await page.locator("#f-email").fill(email)
    await page.locator("#f-password").fill(PASSWORD)
    await page.locator("#f-password_again").fill(PASSWORD)
    await page.get_by_role("button", name="Add admin").click()
    await expect(flashes(page)).to_contain_text(f"Admin {email} added.")
    await expect(page.get_by_role("row").filter(has_text=email)).to_contain_text("never")
    await expect(page.locator("#f-password")).to_have_value("")
    await shot(page, "admins")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/admin/login$"))
    await sign_in(page, email, PASSWORD)
    await expect(page.locator(".account-email")).to_have_text(email)
    await page.goto("/admin/admins")
    mine = page.get_by_role("row").filter(has_text=email)
    await expect(mine).to_contain_text("you")
    await expect(mine.get_by_role("link", name=re.compile("Delete"))).to_have_count(0)
