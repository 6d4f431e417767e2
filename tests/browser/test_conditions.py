"""The visual condition builder and the rules editor: a record rule built by clicks is the
same rule as the typed one, and an existing condition is read back into rows."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in

pytestmark = pytest.mark.browser

FIELDS = [
    {"name": "status", "type": "string"},
    {"name": "amount", "type": "integer"},
    {"name": "note", "type": "text"},
]
TYPED = "status = 'paid' and amount > 100"


async def test_a_rule_built_by_clicks_behaves_as_the_typed_one(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Conditions")
    for name in ("clicked", "typed"):
        await api.collection(project_id, name, FIELDS)
    typed = await api.client.post(
        f"/api/projects/{project_id}/collections/typed/rules",
        json={"name": "paid_note", "when": TYPED, "require": ["note"]},
    )
    assert typed.status_code == 201, typed.text

    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/clicked/rules")
    await page.get_by_label("Name", exact=True).fill("paid_note")
    when = page.locator("[data-condition-builder][data-target='f-when']")
    for field, op, value in (("Status", "=", "paid"), ("Amount", ">", "100")):
        await when.get_by_role("button", name="+ Add condition").click()
        row = when.locator("[data-condition-row]").last
        await row.get_by_label("Field").select_option(label=field)
        await row.get_by_label("Operator").select_option(label=op)
        await row.get_by_label("Value").fill(value)
    await expect(page.locator("#f-when")).to_have_value(TYPED)
    await page.get_by_label("Require (fields, comma-separated)").fill("note")
    await shot(page, "rules-condition-builder")
    await page.get_by_role("button", name="Add record rule").click()
    await expect(flashes(page)).to_contain_text("Rule paid_note added.")

    for name in ("clicked", "typed"):
        rules = await api.client.get(f"/api/projects/{project_id}/collections/{name}/rules")
        assert rules.json()["data"] == [{"name": "paid_note", "when": TYPED, "require": ["note"]}]
        records = f"/api/projects/{project_id}/collections/{name}/records"
        refused = await api.client.post(records, json={"status": "paid", "amount": 200})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["code"] == "paid_note"
        accepted = await api.client.post(records, json={"status": "paid", "amount": 50})
        assert accepted.status_code == 201, accepted.text


async def test_an_existing_policy_is_read_back_into_rows(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Conditions")
    await api.collection(project_id, "orders", FIELDS)
    policies = {"list": "status = 'paid' or amount >= 10", "read": "note is not null"}
    response = await api.client.put(
        f"/api/projects/{project_id}/collections/orders/policies", json=policies
    )
    assert response.status_code == 200, response.text
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/c/orders/policies")
    listing = page.locator("fieldset[data-policy]").nth(0)
    await expect(listing.locator("[data-condition-join]")).to_have_value("or")
    rows = listing.locator("[data-condition-row]")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).get_by_label("Field")).to_have_value("status")
    await expect(rows.nth(0).get_by_label("Operator")).to_have_value("eq")
    await expect(rows.nth(0).get_by_label("Value")).to_have_value("paid")
    await expect(rows.nth(1).get_by_label("Operator")).to_have_value("gte")
    reading = page.locator("fieldset[data-policy]").nth(1)
    await expect(reading.locator("[data-condition-row]").get_by_label("Operator")).to_have_value(
        "not_null"
    )
    # Changing a row rewrites the rule; saving keeps what the rows say.
    await rows.nth(1).get_by_label("Value").fill("20")
    await expect(listing.get_by_label("Rule", exact=True)).to_have_value(
        "status = 'paid' or amount >= 20"
    )
    await page.get_by_role("button", name="Save policies").click()
    await expect(flashes(page)).to_contain_text("Policies saved.")
    saved = await api.client.get(f"/api/projects/{project_id}/collections/orders")
    assert saved.json()["policies"]["list"] == "status = 'paid' or amount >= 20"
    assert saved.json()["policies"]["read"] == "note is not null"
