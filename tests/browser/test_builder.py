"""The collection builder: a collection with fields of three types, each type with its own
options form, and the policies editor."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in

pytestmark = pytest.mark.browser


async def add_field(page: Page, name: str, type_label: str, **inputs: object) -> None:
    """Fill the add-field form; ``inputs`` by input id (``required``, ``opt-string-max_length``)."""
    form = page.locator("form[data-field-form]")
    await form.locator("#f-name").fill(name)
    await form.get_by_label("Type").select_option(label=type_label)
    for input_id, value in inputs.items():
        control = form.locator(f"#f-{input_id.replace('.', '-')}")
        if isinstance(value, bool):
            await control.set_checked(value)
        else:
            await control.fill(str(value))
    await form.get_by_role("button", name="Add field").click()


async def test_build_a_collection_with_three_field_types(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Builder")
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}")
    await page.locator("#f-collection_name").fill("orders")
    await page.get_by_role("button", name="Create collection").click()
    await expect(page).to_have_url(re.compile(f"/admin/p/{project_id}/c/orders$"))
    await expect(page.get_by_text("No fields yet — add one")).to_be_visible()

    # The options form follows the chosen type: a string has a maximum length, an integer
    # has no options at all.
    form = page.locator("form[data-field-form]")
    await form.get_by_label("Type").select_option(label="Short text (string)")
    await expect(form.get_by_label("Max Length")).to_be_visible()
    await form.get_by_label("Type").select_option(label="Integer (integer)")
    await expect(form.get_by_label("Max Length")).to_be_hidden()
    integer_options = form.locator('[data-options-for="integer"]')
    await expect(integer_options).to_be_visible()
    await expect(integer_options).to_contain_text("This type takes no options.")

    await add_field(
        page, "title", "Short text (string)", **{"opt.string.max_length": 40, "required": True}
    )
    await expect(flashes(page)).to_contain_text("Field title added.")
    await add_field(page, "amount", "Integer (integer)", default=0)
    await expect(flashes(page)).to_contain_text("Field amount added.")
    await add_field(page, "paid", "Yes / no (boolean)")
    await expect(flashes(page)).to_contain_text("Field paid added.")

    # A field the kernel refuses shows why, next to the input that caused it.
    await add_field(page, "title", "Long text (text)")
    await expect(page.locator("#f-name-error")).to_contain_text("already exists")
    await add_field(page, "note", "Short text (string)", **{"opt.string.max_length": 0})
    await expect(page.locator("#f-opt-string-max_length-error")).to_be_visible()
    await add_field(page, "count", "Integer (integer)", default="many")
    await expect(page.locator("#f-default-error")).to_contain_text("integer")

    rows = page.locator("section[aria-labelledby=fields-title] tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("max_length=40")
    await expect(rows.nth(0)).to_contain_text("required")
    await expect(rows.nth(1)).to_contain_text("Integer")
    await expect(rows.nth(2)).to_contain_text("Yes / no")
    await shot(page, "collection-builder")

    described = (await api.client.get(f"/api/projects/{project_id}/collections/orders")).json()
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["title"]["type"] == "string"
    assert fields["title"]["options"] == {"max_length": 40}
    assert fields["title"]["required"] is True
    assert fields["amount"]["default"] == 0
    assert fields["paid"]["type"] == "boolean"


async def test_policies_are_edited_with_their_rules_checked(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Policies")
    await api.collection(
        project_id,
        "posts",
        [{"name": "title", "type": "string"}, {"name": "published", "type": "boolean"}],
    )
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/posts/policies")
    await expect(page.get_by_role("heading", name="Writing rules")).to_be_visible()

    list_policy = page.locator("fieldset[data-policy]").nth(0)
    await list_policy.get_by_label("Whoever matches a rule").check()
    await list_policy.get_by_label("Rule", exact=True).fill("published = tru and")
    read_policy = page.locator("fieldset[data-policy]").nth(1)
    await read_policy.get_by_label("Anyone, even signed out").check()
    await expect(read_policy.get_by_label("Rule", exact=True)).to_be_hidden()
    await page.get_by_role("button", name="Save policies").click()
    await expect(page.locator("#f-rule-list-error")).to_be_visible()
    await shot(page, "policies-error")

    await (
        page.locator("fieldset[data-policy]")
        .nth(0)
        .get_by_label("Rule", exact=True)
        .fill("published = true or @auth.role = 'editor'")
    )
    await page.get_by_role("button", name="Save policies").click()
    await expect(flashes(page)).to_contain_text("Policies saved.")
    await shot(page, "policies")
    policies = (await api.client.get(f"/api/projects/{project_id}/collections/posts")).json()[
        "policies"
    ]
    assert policies == {
        "list": "published = true or @auth.role = 'editor'",
        "read": "",
        "create": None,
        "update": None,
        "delete": None,
    }
