"""The views admin page in Chromium (issue 17, item 6): "Orders by customer" built by
clicks with its live preview, published, its cURL copied and run against the server; then
a second version, its diff, and a rollback to the first."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in
from tests.server import TesseraServer

pytestmark = pytest.mark.browser


async def orders_and_customers(api: AdminApi) -> tuple[str, dict[str, Any], str]:
    """A project with customers ← orders; Ada's and Bob's orders; a records:read key."""
    project_id = await api.project("Views")
    await api.collection(project_id, "customers", [{"name": "name", "type": "string"}])
    await api.collection(
        project_id,
        "orders",
        [
            {"name": "title", "type": "string"},
            {"name": "amount", "type": "integer"},
            {"name": "status", "type": "string"},
            {"name": "customer", "type": "relation", "options": {"target": "customers"}},
        ],
    )
    ada = await api.record(project_id, "customers", {"name": "Ada"})
    bob = await api.record(project_id, "customers", {"name": "Bob"})
    for title, amount, status, customer in (
        ("Desk", 300, "paid", ada),
        ("Lamp", 40, "paid", ada),
        ("Chair", 120, "open", ada),
        ("Sofa", 900, "paid", bob),
    ):
        await api.record(
            project_id,
            "orders",
            {"title": title, "amount": amount, "status": status, "customer": customer["id"]},
        )
    for collection in ("orders", "customers"):  # open to any caller with records:read
        opened = await api.client.put(
            f"/api/projects/{project_id}/collections/{collection}/policies",
            json={"list": "", "read": ""},
        )
        assert opened.status_code == 200, opened.text
    key = await api.client.post(
        f"/api/projects/{project_id}/api-keys", json={"name": "web", "scopes": ["records:read"]}
    )
    assert key.status_code == 201, key.text
    return project_id, ada, key.json()["key"]


async def test_orders_by_customer_built_by_clicks_copied_run_changed_and_rolled_back(
    page: Page, api: AdminApi, server: TesseraServer
) -> None:
    project_id, ada, key = await orders_and_customers(api)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await sign_in(page)
    await page.goto(f"/admin/ext/views?project={project_id}")
    await expect(page.get_by_text("No views yet")).to_be_visible()
    await page.get_by_label("Base collection").select_option("orders")
    await page.get_by_role("button", name="Start building").click()
    await page.get_by_label("Join through").select_option("customer")
    await page.get_by_role("button", name="Apply").click()

    builder = page.locator("#view-builder")
    preview = page.locator("#view-preview")
    await builder.locator("input[name=name]").fill("orders_by_customer")
    for column in ("title", "amount", "customer.name"):
        await builder.locator(f"input[name=projection][value='{column}']").check()
    await expect(preview.locator("[data-preview-rows]")).to_contain_text("Sofa")

    # A required parameter, bound into a filter on the relation; a second, constant filter.
    await builder.locator("input[name=param_name]").fill("customer_id")
    await builder.locator("select[name=param_required]").select_option("yes")
    await builder.locator("input[name=param_example]").fill(str(ada["id"]))
    filters = builder.locator("[data-filter-row]")
    await filters.nth(0).locator("select[name=filter_field]").select_option("customer")
    await filters.nth(0).locator("select[name=filter_op]").select_option("eq")
    await filters.nth(0).locator("select[name=filter_param]").select_option("customer_id")
    await builder.get_by_role("button", name="+ Add filter").click()
    await filters.nth(1).locator("select[name=filter_field]").select_option("status")
    await expect(filters.nth(1).locator("select[name=filter_op] option")).not_to_have_count(0)
    await filters.nth(1).locator("select[name=filter_op]").select_option("eq")
    await filters.nth(1).locator("input[name=filter_value]").fill("paid")
    await builder.locator("select[name=sort_field]").select_option("amount")
    await builder.locator("select[name=sort_dir]").select_option("desc")

    rows = preview.locator("[data-preview-rows] tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Desk")
    await expect(rows.nth(1)).to_contain_text("Lamp")
    await expect(rows.nth(0)).to_contain_text("Ada")
    await shot(page, "views-builder")

    # An operator the field's type does not support is never offered; a wrong example is
    # named by its part in the preview, and the preview recovers when it is fixed.
    relation_ops = filters.nth(0).locator("select[name=filter_op] option")
    text_ops = filters.nth(1).locator("select[name=filter_op] option")
    assert "contains" in await text_ops.all_inner_texts()
    assert "contains" not in await relation_ops.all_inner_texts()
    await builder.locator("input[name=param_example]").fill("many")
    await expect(preview.locator("[data-problems]")).to_contain_text("params[0].example")
    await builder.locator("input[name=param_example]").fill(str(ada["id"]))
    await expect(rows).to_have_count(2)

    # Removing a filter refreshes the preview too (Ada's open order appears), and so does
    # adding it back.
    await filters.nth(1).get_by_role("button", name="Remove this filter").click()
    await expect(rows).to_have_count(3)
    await expect(rows.nth(1)).to_contain_text("Chair")
    await builder.get_by_role("button", name="+ Add filter").click()
    await filters.nth(1).locator("select[name=filter_field]").select_option("status")
    await filters.nth(1).locator("select[name=filter_param]").select_option("")
    await filters.nth(1).locator("input[name=filter_value]").fill("paid")
    await expect(rows).to_have_count(2)

    await builder.get_by_role("button", name="Save view").click()
    await expect(flashes(page)).to_contain_text("Saved orders_by_customer: version 1 is active.")

    await page.get_by_role("link", name="API & Usage").click()
    await expect(page.locator("[data-usage]")).to_contain_text("records:read")
    await page.get_by_role("button", name="Copy cURL").click()
    await expect(page.get_by_role("button", name="Copy cURL")).to_have_text("Copied")
    command = await page.evaluate("navigator.clipboard.readText()")
    meta = await api.client.get(f"/api/projects/{project_id}/views/orders_by_customer/meta")
    assert command == meta.json()["examples"]["curl"]
    assert command.startswith("curl ") and server.url in command
    await shot(page, "views-api-usage")

    ran = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", command],
        env={**os.environ, "TESSERA_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer.get("data") == [
        {"title": "Desk", "amount": 300, "customer.name": "Ada"},
        {"title": "Lamp", "amount": 40, "customer.name": "Ada"},
    ], answer

    # Version 2 adds a column; the versions tab shows what changed and rolls back.
    await page.get_by_role("link", name="Builder").click()
    await builder.locator("input[name=projection][value='status']").check()
    await builder.get_by_role("button", name="+ Then by").click()
    await builder.locator("select[name=sort_field]").nth(1).select_option("title")
    await expect(rows.nth(0)).to_contain_text("paid")
    await builder.get_by_role("button", name="Save as version 2").click()
    await expect(flashes(page)).to_contain_text("version 2 is active")
    await page.get_by_role("link", name="Versions").click()
    await page.get_by_role("link", name="Compare with active").click()
    diff = page.locator("[data-diff]")
    await expect(diff).to_contain_text("Version 1 compared with the active version 2")
    await expect(diff.locator(".diff-added").first).to_contain_text("status")
    await expect(diff).to_contain_text("amount descending, then title ascending")
    await shot(page, "views-versions-diff")
    await page.get_by_role("button", name="Activate version 1").click()
    await expect(flashes(page)).to_contain_text("Version 1 of orders_by_customer is active again.")
    active = await api.client.get(f"/api/projects/{project_id}/views/orders_by_customer/definition")
    assert active.json()["version"] == 1
    assert active.json()["projection"] == ["title", "amount", "customer.name"]
