"""The data explorer: add, edit, filter, sort, page through and delete records; field
errors next to their inputs; a record's text is shown as text, never run."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Dialog, Locator, Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in

pytestmark = pytest.mark.browser

TASK_FIELDS = [
    {"name": "title", "type": "string", "required": True, "options": {"max_length": 20}},
    {"name": "points", "type": "integer"},
    {"name": "done", "type": "boolean"},
    {"name": "due", "type": "date"},
    {"name": "meta", "type": "json"},
]


def rows(page: Page) -> Locator:
    return page.locator("table.data tbody tr")


async def accept_dialogs(page: Page) -> None:
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)


async def test_add_edit_and_delete_records_with_errors_next_to_fields(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Explorer")
    await api.collection(project_id, "tasks", TASK_FIELDS)
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/tasks/records")
    await expect(page.get_by_text("No records yet")).to_be_visible()
    await shot(page, "explorer-empty")

    await page.get_by_role("link", name="New record").click()
    await page.locator("#f-v-points").fill("7")
    await page.locator("#f-v-meta").fill("{not json")
    await page.get_by_role("button", name="Create record").click()
    await expect(page.locator("#f-v-meta-error")).to_contain_text("not valid JSON")
    await page.locator("#f-v-meta").fill('{"tags": ["home"]}')
    await page.locator("#f-v-title").fill("x" * 25)
    await page.get_by_role("button", name="Create record").click()
    await expect(page.locator("#f-v-title-error")).to_contain_text("at most 20 characters")
    await expect(page.locator("#f-v-points")).to_have_value("7")  # kept what was typed
    await shot(page, "record-validation")
    await page.locator("#f-v-title").fill("")
    await page.get_by_role("button", name="Create record").click()
    await expect(page.locator("#f-v-title-error")).to_contain_text("required")

    await page.locator("#f-v-title").fill("Water plants")
    await page.locator("#f-v-done").check()
    await page.locator("#f-v-due").fill("2024-05-01")
    await page.get_by_role("button", name="Create record").click()
    await expect(flashes(page)).to_contain_text("created")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("Water plants")
    await expect(rows(page).first).to_contain_text("2024-05-01")
    (stored,) = await api.records(project_id, "tasks")
    assert stored["points"] == 7
    assert stored["done"] is True
    assert stored["meta"] == {"tags": ["home"]}

    await page.get_by_role("link", name=f"Edit record {stored['id']}").click()
    await shot(page, "record-form")
    await expect(page.locator("#f-v-due")).to_have_value("2024-05-01")
    await page.locator("#f-v-points").fill("9")
    await page.locator("#f-v-done").uncheck()
    await page.get_by_role("button", name="Save").click()
    await expect(flashes(page)).to_contain_text(f"Record {stored['id']} saved.")
    (edited,) = await api.records(project_id, "tasks")
    assert edited["points"] == 9
    assert edited["done"] is False

    await accept_dialogs(page)
    await page.get_by_role("button", name=f"Delete record {stored['id']}").click()
    await expect(flashes(page)).to_contain_text(f"Record {stored['id']} deleted.")
    await expect(page.get_by_text("No records yet")).to_be_visible()
    assert await api.records(project_id, "tasks") == []


async def test_filters_offer_each_types_operators_and_sorting_and_paging_work(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Filters")
    await api.collection(project_id, "tasks", TASK_FIELDS)
    for number in range(1, 31):
        await api.record(
            project_id, "tasks", {"title": f"Task {number:02}", "points": number, "meta": None}
        )
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/tasks/records")
    await expect(rows(page)).to_have_count(25)

    # Paging: 25, then the last 5, and back.
    await page.get_by_role("link", name="Next →").click()
    await expect(rows(page)).to_have_count(5)
    await expect(rows(page).first).to_contain_text("Task 26")
    await page.get_by_role("link", name="← Previous").click()
    await expect(rows(page)).to_have_count(25)
    await expect(rows(page).first).to_contain_text("Task 01")

    # Sorting: click a header, then again for the other direction.
    await page.get_by_role("link", name="Points", exact=True).click()
    await expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Points")
    await page.get_by_role("link", name="Points", exact=True).click()
    await expect(page.locator("th[aria-sort=descending]")).to_contain_text("Points")
    await expect(rows(page).first).to_contain_text("Task 30")

    # The filter builder offers exactly what each field's type supports.
    await page.get_by_text("Filter", exact=True).click()
    row = page.locator("[data-filter-row]").first
    await row.locator("[data-filter-field]").select_option("points")
    points_ops = await row.locator("[data-filter-op] option").all_inner_texts()
    assert "greater than" in points_ops and "contains" not in points_ops
    await row.locator("[data-filter-field]").select_option("title")
    assert "contains" in await row.locator("[data-filter-op] option").all_inner_texts()
    await row.locator("[data-filter-field]").select_option("meta")
    assert await row.locator("[data-filter-op] option").all_inner_texts() == ["is empty"]

    await row.locator("[data-filter-field]").select_option("points")
    await row.locator("[data-filter-op]").select_option(label="greater than")
    await row.locator("[data-filter-value]").fill("20")
    await page.get_by_role("button", name="+ Add condition").click()
    second = page.locator("[data-filter-row]").nth(1)
    await second.locator("[data-filter-field]").select_option("title")
    await second.locator("[data-filter-op]").select_option(label="contains")
    await second.locator("[data-filter-value]").fill("2")
    await page.get_by_role("button", name="Apply filters").click()
    # points > 20 and "2" in the title: 21..29 (sorted on points, descending).
    await expect(rows(page)).to_have_count(9)
    await expect(rows(page).first).to_contain_text("Task 29")
    await shot(page, "explorer-filtered")

    # A value the field cannot take is reported, naming the filter.
    await page.locator("[data-filter-row]").first.locator("[data-filter-value]").fill("many")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("alert")).to_contain_text("not an integer")


async def test_a_record_containing_markup_is_shown_as_text(page: Page, api: AdminApi) -> None:
    project_id = await api.project("XSS")
    await api.collection(project_id, "notes", [{"name": "body", "type": "text"}])
    payload = "<script>alert('xss')</script><img src=x onerror=alert(1)>"
    record = await api.record(project_id, "notes", {"body": payload})
    dialogs: list[str] = []

    async def record_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", record_dialog)
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/notes/records")
    cell = rows(page).first.locator("td").nth(1)
    await expect(cell).to_have_text(payload)
    await page.goto(f"/admin/p/{project_id}/c/notes/records/{record['id']}")
    await expect(page.locator("#f-v-body")).to_have_value(payload)
    await shot(page, "xss-as-text")
    assert await page.locator("img[src=x]").count() == 0
    assert await page.locator("script:not([src]):not([type='application/json'])").count() == 0
    assert dialogs == []
    await expect(page).to_have_url(re.compile(f"/records/{record['id']}$"))
