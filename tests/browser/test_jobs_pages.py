"""The jobs plugin's admin pages: a webhook created with its secret shown once, its
delivery log; a workflow built with forms, and its run log."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Page, expect

from plugins.jobs.signing import verify
from tests.browser.conftest import AdminApi, flashes, shot, sign_in
from tests.receiver import Receiver

pytestmark = pytest.mark.browser


async def test_webhook_page_creates_shows_the_secret_once_and_logs_deliveries(
    page: Page, api: AdminApi
) -> None:
    receiver = Receiver()
    try:
        project_id = await api.project("Hooks")
        await api.collection(project_id, "orders", [{"name": "title", "type": "string"}])
        await sign_in(page)
        await page.goto(f"/admin/ext/webhooks?project={project_id}")
        await expect(page.get_by_text("No webhooks yet")).to_be_visible()
        await page.get_by_label("URL").fill(receiver.url)
        await page.get_by_label("Events").fill("orders.*")
        await page.get_by_role("button", name="Create webhook").click()
        secret = page.locator("#webhook-secret")
        await expect(secret).to_be_visible()
        value = (await secret.inner_text()).strip()
        assert value.startswith("whsec_")
        await shot(page, "webhook-created")

        await page.goto(f"/admin/ext/webhooks?project={project_id}")
        await expect(page.locator("#webhook-secret")).to_have_count(0)
        await api.record(project_id, "orders", {"title": "Desk"})
        assert await asyncio.to_thread(receiver.arrived.wait, 20)
        request = receiver.requests[0]
        assert verify(value, request.body, request.headers["X-Tessera-Signature"])

        await page.get_by_role("link", name="Deliveries").click()
        await expect(page.get_by_role("cell", name="orders.insert")).to_be_visible()
        await expect(page.locator(".badge-success").first).to_be_visible()
        await page.get_by_role("button", name="Redeliver").click()
        await expect(flashes(page)).to_contain_text("Queued again")
        await shot(page, "webhook-deliveries")
    finally:
        receiver.close()


async def test_workflow_page_builds_a_workflow_and_shows_its_runs(
    page: Page, api: AdminApi
) -> None:
    project_id = await api.project("Flows")
    await api.collection(
        project_id,
        "orders",
        [{"name": "title", "type": "string"}, {"name": "status", "type": "string"}],
    )
    await sign_in(page)
    await page.goto(f"/admin/ext/workflows?project={project_id}")
    await page.get_by_label("Name").fill("Flag big ones")
    await page.get_by_label("and this holds (optional)").fill("title contains 'big'")
    await page.locator("select[name=action_0_type]").select_option("set_field")
    await page.locator("textarea[name=action_0_options]").fill(
        '{"field": "status", "value": "flagged"}'
    )
    await page.get_by_role("button", name="Create workflow").click()
    await expect(flashes(page)).to_contain_text("Workflow created")

    record = await api.record(project_id, "orders", {"title": "a big order"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await page.reload()
        if await page.locator(".badge-success", has_text="succeeded").count():
            break
        await asyncio.sleep(0.3)
    await expect(page.get_by_text("set_field: succeeded")).to_be_visible()
    await shot(page, "workflow-runs")
    stored = await api.client.get(
        f"/api/projects/{project_id}/collections/orders/records/{record['id']}"
    )
    assert stored.json()["status"] == "flagged"

    await page.locator("select[name=action_0_type]").select_option("set_field")
    await page.get_by_label("Name").fill("Broken")
    await page.locator("textarea[name=action_0_options]").fill("{not json")
    await page.get_by_role("button", name="Create workflow").click()
    await expect(flashes(page)).to_contain_text("options are not valid JSON")
