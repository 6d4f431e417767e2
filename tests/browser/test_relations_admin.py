"""Links in the admin (issue 16): the record form's picker searches the linked collection
page by page, and the explorer shows the linked record's display field as a link."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import AdminApi, shot, sign_in

pytestmark = pytest.mark.browser


async def test_link_orders_to_customers_from_the_field_form(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Builder links")
    await api.collection(project_id, "customers", [{"name": "name", "type": "string"}])
    await api.collection(project_id, "orders", [{"name": "title", "type": "string"}])
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/orders")
    form = page.locator("form[data-field-form]")
    await form.locator("#f-name").fill("customer")
    await form.get_by_label("Type").select_option("relation")
    await form.locator("#f-opt-relation-target").select_option("customers")
    await form.locator("#f-opt-relation-on_delete").select_option("cascade")
    await form.locator("#f-opt-relation-display_field").fill("name")
    await shot(page, "relation-builder")
    await form.get_by_role("button", name="Add field").click()
    await expect(page.get_by_role("status")).to_contain_text("Field customer added")
    described = await api.client.get(f"/api/projects/{project_id}/collections/orders")
    field = next(f for f in described.json()["fields"] if f["name"] == "customer")
    assert field["options"]["target"] == "customers"
    assert field["options"]["on_delete"] == "cascade"


async def test_pick_a_linked_record_by_searching_and_paging(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Links")
    await api.collection(project_id, "customers", [{"name": "name", "type": "string"}])
    relation = {"target": "customers", "display_field": "name"}
    await api.collection(
        project_id,
        "orders",
        [
            {"name": "title", "type": "string"},
            {"name": "customer", "type": "relation", "options": relation},
        ],
    )
    for number in range(25):
        await api.record(project_id, "customers", {"name": f"Client {number:02d}"})
    ada = await api.record(project_id, "customers", {"name": "Ada Lovelace"})
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/orders/records/new")
    search = page.get_by_role("searchbox", name="Search linked records")
    await search.click()
    choices = page.locator(".picker-results button")
    await expect(choices).to_have_count(20)  # one page, not the whole collection
    await page.get_by_role("button", name="More").click()
    await expect(choices).to_have_count(26)
    await search.fill("lovelace")
    await expect(choices).to_have_count(1)
    await shot(page, "relation-picker")
    await choices.first.click()
    await expect(page.locator("#f-v-customer")).to_have_value(str(ada["id"]))
    await page.locator("#f-v-title").fill("Desk")
    await page.get_by_role("button", name="Create record").click()
    await page.goto(f"/admin/p/{project_id}/c/orders/records")
    link = page.get_by_role("link", name="Ada Lovelace")
    await expect(link).to_have_attribute(
        "href", f"/admin/p/{project_id}/c/customers/records/{ada['id']}"
    )
