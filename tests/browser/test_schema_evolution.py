"""Evolving a live schema from the admin: each change previewed (SQL, warnings, impact)
before it is applied; renames leave old names that can be retired; dropped fields can be
restored or purged; an unsafe type change is walked through as a guided wizard."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in

pytestmark = pytest.mark.browser


async def test_rename_a_field_with_preview_then_retire_its_old_name(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Renames")
    await api.collection(project_id, "people", [{"name": "name", "type": "string"}])
    await api.record(project_id, "people", {"name": "Ada"})
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/people")
    await page.get_by_role("link", name="Manage field name").click()
    await shot(page, "field")
    await page.get_by_label("New name").fill("full_name")
    await page.get_by_role("button", name="Preview rename…").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Rename field")
    await expect(page.locator("[data-ddl]")).to_contain_text(
        f"ALTER TABLE p_{project_id}.people RENAME name TO full_name"
    )
    await expect(page.locator(".warnings")).to_contain_text("clients may keep using 'name'")
    await expect(page.locator("#impact-title + dl")).to_contain_text("Records")
    await shot(page, "preview-rename-field")
    described = (await api.client.get(f"/api/projects/{project_id}/collections/people")).json()
    assert [f["name"] for f in described["fields"]] == ["name"]  # a preview changes nothing

    await page.get_by_role("button", name="Apply rename field").click()
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}/c/people$"))
    await expect(flashes(page)).to_contain_text("The old name name keeps working until")
    old_names = page.locator("section[aria-labelledby=aliases-title] tbody tr")
    await expect(old_names).to_have_count(1)
    await expect(old_names.first).to_contain_text("name")
    await expect(old_names.first).to_contain_text("full_name")
    await shot(page, "old-names")
    # Old clients keep working through the alias.
    listed = await api.client.get(
        f"/api/projects/{project_id}/collections/people/records", params={"filter[name]": "Ada"}
    )
    assert listed.status_code == 200 and listed.headers["Deprecation"] == "true"

    await old_names.first.get_by_role("button", name="Retire…").click()
    await expect(page.locator(".warnings")).to_contain_text("fail from now on")
    await page.get_by_role("button", name="Apply retire old name").click()
    await expect(flashes(page)).to_contain_text("Retire old name: done.")
    await expect(old_names).to_have_count(0)
    gone = await api.client.get(
        f"/api/projects/{project_id}/collections/people/records", params={"filter[name]": "Ada"}
    )
    assert gone.status_code == 400


async def test_rename_a_collection_and_its_old_path_keeps_working(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Collection rename")
    await api.collection(project_id, "clients", [{"name": "name", "type": "string"}])
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/clients")
    await page.locator("#f-new-collection-name").fill("customers")
    await page.get_by_role("button", name="Preview rename…").click()
    await expect(page.locator("[data-ddl]")).to_contain_text("RENAME TO customers")
    await page.get_by_role("button", name="Apply rename collection").click()
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}/c/customers$"))
    old_names = page.locator("section[aria-labelledby=aliases-title] tbody tr")
    await expect(old_names.first).to_contain_text("clients")
    # The old address of the admin page leads to the new one.
    await page.goto(f"/admin/p/{project_id}/c/clients/records")
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}/c/customers/records$"))


async def test_drop_restore_and_purge_a_field(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Drops")
    await api.collection(
        project_id,
        "notes",
        [{"name": "title", "type": "string"}, {"name": "secret", "type": "string"}],
    )
    await api.record(project_id, "notes", {"title": "Hello", "secret": "kept"})
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/notes/f/secret")
    await page.get_by_role("button", name="Preview drop…").click()
    await expect(page.locator(".warnings")).to_contain_text("its data is kept")
    await shot(page, "preview-drop-field")
    await page.get_by_role("button", name="Apply drop field").click()
    await expect(flashes(page)).to_contain_text("Drop field: done.")

    fields = page.locator("section[aria-labelledby=fields-title] tbody tr")
    await expect(fields).to_have_count(1)
    dropped = page.locator("section[aria-labelledby=dropped-title] tbody tr")
    await expect(dropped).to_have_count(1)
    await expect(dropped.first).to_contain_text("secret")
    await shot(page, "dropped-fields")
    write = await api.client.post(
        f"/api/projects/{project_id}/collections/notes/records",
        json={"title": "x", "secret": "y"},
    )
    assert write.status_code == 422
    await page.goto(f"/admin/p/{project_id}/c/notes/records")
    await expect(page.locator("table.data thead")).not_to_contain_text("Secret")

    await page.goto(f"/admin/p/{project_id}/c/notes")
    await dropped.first.get_by_role("button", name="Restore…").click()
    await page.get_by_role("button", name="Apply restore field").click()
    await expect(flashes(page)).to_contain_text("Restore field: done.")
    await expect(fields).to_have_count(2)
    await expect(page.locator("section[aria-labelledby=dropped-title]")).to_have_count(0)
    (record,) = await api.records(project_id, "notes")
    assert record["secret"] == "kept"

    # Purging needs the retention window to be over and the exact confirmation.
    await page.goto(f"/admin/p/{project_id}/settings")
    await page.get_by_label("Days before a dropped field can be purged").fill("0")
    await page.get_by_role("button", name="Save settings").click()
    await page.goto(f"/admin/p/{project_id}/c/notes/f/secret")
    await page.get_by_role("button", name="Preview drop…").click()
    await page.get_by_role("button", name="Apply drop field").click()
    await dropped.first.get_by_placeholder("notes.secret").fill("secret")
    await dropped.first.get_by_role("button", name="Purge…").click()
    await expect(page.locator("#f-arg-confirm-error")).to_contain_text("notes.secret")
    await shot(page, "preview-purge-refused")
    await page.get_by_label("Confirmation").fill("notes.secret")
    await page.get_by_role("button", name="Preview again").click()
    await expect(page.locator("[data-ddl]")).to_contain_text("DROP COLUMN secret")
    await page.get_by_role("button", name="Apply purge field").click()
    await expect(flashes(page)).to_contain_text("Purge field: done.")
    await expect(page.locator("section[aria-labelledby=dropped-title]")).to_have_count(0)


async def test_an_unsafe_type_change_is_walked_through_as_a_wizard(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Wizard")
    await api.collection(project_id, "items", [{"name": "code", "type": "string"}])
    for code in ("12", "34", "x9"):
        await api.record(project_id, "items", {"code": code})
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/items/f/code")
    await page.get_by_label("New type").select_option(label="Integer (integer)")
    await page.get_by_role("button", name="Preview type change…").click()
    await expect(
        page.get_by_role("heading", name="This change is not safe in place")
    ).to_be_visible()
    await expect(page.locator(".wizard-offer li")).to_have_count(3)
    await shot(page, "preview-unsafe-type-change")

    await page.get_by_role("link", name="Start the guided change").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Step 1 of 3: Add field")
    await expect(page.locator("[data-ddl]")).to_contain_text("ADD COLUMN code_integer BIGINT")
    await page.get_by_role("button", name="Apply step 1").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Step 2 of 3: Copy field values"
    )
    await expect(page.locator("[data-convertible]")).to_have_text("2")
    await expect(page.locator("[data-failing]")).to_have_text("1")
    await expect(page.locator("#conversion-title ~ .table-wrap")).to_contain_text("x9")
    await shot(page, "wizard-copy-step")
    # Applied as is, the copy refuses: one value does not convert.
    await page.get_by_role("button", name="Apply step 2").click()
    await expect(flashes(page)).to_contain_text("Not applied.")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Step 2 of 3: Copy field values"
    )
    await page.get_by_role("link", name="copy anyway, leaving them empty").click()
    await expect(page.get_by_text("These values will be left empty.")).to_be_visible()
    await page.get_by_role("button", name="Apply step 2").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Step 3 of 3: Swap fields")
    await expect(flashes(page)).to_contain_text("2 values copied, 1 left empty")
    await page.get_by_role("button", name="Apply step 3").click()
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}/c/items$"))
    await expect(flashes(page)).to_contain_text("The old field is kept, dropped, as code_previous")
    code_row = page.locator("section[aria-labelledby=fields-title] tbody tr", has_text="code")
    await expect(code_row).to_contain_text("Integer")
    await shot(page, "wizard-done")
    codes = [r["code"] for r in await api.records(project_id, "items", sort="id")]
    assert codes == [12, 34, None]

    # The old values are kept, dropped, and the whole story is in the history.
    ops = (await api.client.get(f"/api/projects/{project_id}/schema/ops")).json()["data"]
    assert [op["op"] for op in ops[:4]] == ["swap_fields", "copy_field", "copy_field", "add_field"]
    assert [op["status"] for op in ops[:4]] == ["applied", "applied", "failed", "applied"]
