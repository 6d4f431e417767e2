"""Projects: create, rename, settings, delete with a typed confirmation; the layout at a
narrow width and from the keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in
from tests.conftest import unique_id

pytestmark = pytest.mark.browser


async def test_create_rename_and_delete_a_project(page: Page, api: AdminApi) -> None:
    await sign_in(page)
    await shot(page, "projects")
    project_id = unique_id("shop")
    await page.get_by_label("Name").fill("Corner shop")
    await page.get_by_label("Id").fill("Bad Id!")
    await page.get_by_role("button", name="Create project").click()
    await expect(page.locator("#f-id-error")).to_be_visible()

    await page.get_by_label("Id").fill(project_id)
    await page.get_by_role("button", name="Create project").click()
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}$"))
    await expect(flashes(page)).to_contain_text("Project Corner shop created")
    await expect(page.get_by_text("No collections yet — create one")).to_be_visible()
    await shot(page, "project-empty")

    await page.locator("#f-project_name").fill("Corner shop (Paris)")
    await page.get_by_role("button", name="Rename", exact=True).click()
    await expect(flashes(page)).to_contain_text("Project renamed to Corner shop (Paris)")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Corner shop (Paris)")

    await page.get_by_role("link", name="Delete project…").click()
    await shot(page, "project-delete")
    await page.get_by_label("to confirm").fill("not-the-id")
    await page.get_by_role("button", name="Delete this project").click()
    await expect(page.locator("#f-confirm-error")).to_contain_text("confirm")
    assert project_id in await api.project_ids()

    await page.get_by_label("to confirm").fill(project_id)
    await page.get_by_role("button", name="Delete this project").click()
    await expect(page).to_have_url(re.compile(r"/admin/projects$"))
    await expect(flashes(page)).to_contain_text(f"Project {project_id} and its data deleted")
    assert project_id not in await api.project_ids()


async def test_project_settings_are_saved_and_checked(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Settings")
    await api.collection(project_id, "notes", [{"name": "body", "type": "text"}])
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/settings")
    await page.get_by_label("Time zone").fill("Mars/Olympus")
    await page.get_by_label("Days an old name keeps working").fill("-3")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#f-timezone-error")).to_contain_text("Not a time zone")
    await expect(page.locator("#f-alias_grace_days-error")).to_be_visible()

    await page.get_by_label("Time zone").fill("Europe/Paris")
    await page.get_by_label("Days an old name keeps working").fill("10")
    await page.get_by_label("Days before a dropped field can be purged").fill("0")
    await page.get_by_label("Maintenance mode").check()
    await page.get_by_role("button", name="Save settings").click()
    await expect(flashes(page)).to_contain_text("Saved.")
    await shot(page, "project-settings")
    settings = (await api.client.get(f"/api/projects/{project_id}")).json()["settings"]
    assert settings["timezone"] == "Europe/Paris"
    assert settings["alias_grace_days"] == 10
    assert settings["purge_retention_days"] == 0
    assert settings["maintenance"] is True

    # In maintenance mode a schema change is refused unless the admin overrides it.
    await page.goto(f"/admin/p/{project_id}/c/notes/f/body")
    await page.get_by_label("New name").fill("text")
    await page.get_by_role("button", name="Preview rename…").click()
    override = page.get_by_label("Apply although the project is in maintenance mode")
    await expect(override).to_be_visible()
    await page.get_by_role("button", name="Apply rename field").click()
    await expect(flashes(page)).to_contain_text("maintenance mode")
    await override.check()
    await page.get_by_role("button", name="Apply rename field").click()
    await expect(flashes(page)).to_contain_text("Rename field: done.")

    await page.goto(f"/admin/p/{project_id}/settings")
    await page.get_by_label("Maintenance mode").uncheck()
    await page.get_by_role("button", name="Save settings").click()
    await expect(flashes(page)).to_contain_text("Saved.")
    settings = (await api.client.get(f"/api/projects/{project_id}")).json()["settings"]
    assert settings["maintenance"] is False


async def test_pages_work_on_a_narrow_window_and_from_the_keyboard(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Narrow")
    await api.collection(project_id, "notes", [{"name": "body", "type": "text"}])
    await sign_in(page)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"/admin/p/{project_id}")
    await shot(page, "narrow-project")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"

    # The first Tab reaches the skip link, which jumps to the content.
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_visible()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile("#main$"))

    # Forms submit from the keyboard alone.
    await page.locator("#f-collection_name").focus()
    await page.keyboard.type("tasks")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}/c/tasks$"))
    await shot(page, "narrow-collection")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"
