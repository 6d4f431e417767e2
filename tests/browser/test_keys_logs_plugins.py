"""API keys (shown once, used, revoked), the logs of schema ops and audit events, and the
plugins page with the example plugin's own page."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Dialog, Page, expect

from tests.browser.conftest import AdminApi, flashes, shot, sign_in
from tests.server import TesseraServer

pytestmark = pytest.mark.browser


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_create_an_api_key_see_it_once_use_it_and_revoke_it(
    page: Page, api: AdminApi, server: TesseraServer
) -> None:
    project_id = await api.project("Keys")
    await api.collection(project_id, "products", [{"name": "name", "type": "string"}])
    await api.collection(project_id, "secrets", [{"name": "value", "type": "string"}])
    await api.record(project_id, "products", {"name": "Desk"})
    for collection in ("products", "secrets"):
        opened = await api.client.put(
            f"/api/projects/{project_id}/collections/{collection}/policies", json={"list": ""}
        )
        assert opened.status_code == 200, opened.text
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}/keys")
    await expect(page.get_by_text("No API keys yet")).to_be_visible()

    await page.locator("#f-name").fill("storefront")
    await page.get_by_label("records:read").uncheck()
    await page.get_by_role("button", name="Create key").click()
    await expect(page.locator("#f-scopes-error")).to_be_visible()

    await page.get_by_label("records:read").check()
    await page.get_by_role("checkbox", name="products").check()
    await page.get_by_label("Role (optional)").fill("storefront")
    await page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-value")
    await expect(secret).to_be_visible()
    key = (await secret.inner_text()).strip()
    assert key.startswith("tsk_")
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await shot(page, "api-key-created")

    base = f"{server.url}/api/projects/{project_id}/collections"
    async with httpx.AsyncClient(headers={"X-API-Key": key}) as client:
        listed = await client.get(f"{base}/products/records")
        assert listed.status_code == 200, listed.text
        assert [r["name"] for r in listed.json()["data"]] == ["Desk"]
        assert (await client.get(f"{base}/secrets/records")).status_code == 403

        # Shown once: the list never shows the secret again.
        await page.goto(f"/admin/p/{project_id}/keys")
        assert key not in await page.content()
        row = page.locator("tbody tr", has_text="storefront")
        await expect(row).to_contain_text(key[:12])
        await expect(row).to_contain_text("records:read")
        await shot(page, "api-keys")

        page.on("dialog", accept)
        await page.get_by_role("button", name="Revoke key storefront").click()
        await expect(flashes(page)).to_contain_text("revoked")
        await expect(row).to_contain_text("revoked")
        assert (await client.get(f"{base}/products/records")).status_code == 401


async def test_logs_show_schema_ops_with_status_and_audit_events(page: Page, api: AdminApi) -> None:
    project_id = await api.project("Logs")
    await api.collection(project_id, "orders", [{"name": "title", "type": "string"}])
    created = await api.client.post(
        f"/api/projects/{project_id}/collections/orders/records", json={"title": "first"}
    )
    assert created.status_code == 201, created.text
    # Refused before it ran: answered, not recorded.
    refused = await api.client.post(
        f"/api/projects/{project_id}/schema/apply",
        json={
            "op": "add_field",
            "args": {"collection": "nothing", "field": {"name": "x", "type": "string"}},
        },
    )
    assert refused.status_code == 404
    # Ran and failed (a required field without a default on a collection with records).
    failed = await api.client.post(
        f"/api/projects/{project_id}/schema/apply",
        json={
            "op": "add_field",
            "args": {
                "collection": "orders",
                "field": {"name": "due", "type": "date", "required": True},
            },
        },
    )
    assert failed.status_code == 422
    await api.client.post(
        f"/api/projects/{project_id}/api-keys", json={"name": "ci", "scopes": ["records:read"]}
    )
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}")
    await page.get_by_role("link", name="Logs", exact=True).click()

    entries = page.locator(".log-entry")
    await expect(entries).to_have_count(2)
    applied = entries.filter(has_text="create_collection")
    await expect(applied).to_contain_text("applied")
    await applied.locator("summary").click()
    await expect(applied.locator("pre.code").last).to_contain_text("CREATE TABLE")
    await expect(applied.locator(".transitions")).to_contain_text("pending")
    failed_entry = entries.filter(has_text="add_field")
    await expect(failed_entry).to_contain_text("failed")
    await failed_entry.locator("summary").click()
    await expect(failed_entry.locator(".error-list")).to_contain_text("default")
    await shot(page, "logs-schema")

    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Filter").click()
    await expect(entries).to_have_count(1)
    await expect(entries.first).to_contain_text("add_field")

    await page.get_by_role("link", name="Audit events").click()
    audit = page.locator(".log-entry")
    await expect(audit.filter(has_text="project.create")).to_have_count(1)
    await expect(audit.filter(has_text="schema.create_collection")).to_have_count(1)
    await expect(audit.filter(has_text="api_key.create")).to_have_count(1)
    await page.get_by_label("Action").fill("schema.")
    await page.get_by_role("button", name="Filter").click()
    await expect(audit).to_have_count(1)
    await audit.first.locator("summary").click()
    await expect(audit.first.locator(".log-body")).to_contain_text("orders")
    await shot(page, "logs-audit")


async def test_plugins_page_lists_the_built_ins_and_the_example_plugins_page(
    page: Page,
) -> None:
    await sign_in(page)
    await page.get_by_role("link", name="Plugins").click()
    for name in (
        "field_types.core",
        "operators.core",
        "schema.core",
        "schema.evolution",
        "transports.postgres",
        "admin",
    ):
        plugin = page.locator(f"#plugin-{name.replace('.', '-')}")
        await expect(plugin).to_contain_text("tessera")
    core = page.locator("#plugin-field_types-core")
    await expect(core).to_contain_text("register_field_types")
    await expect(core).to_contain_text("field type")
    hello = page.locator("#plugin-hello")
    await expect(hello).to_contain_text("tessera-hello 1.0.0")
    await expect(hello).to_contain_text("register_admin_panels")
    await expect(hello.locator("table")).to_contain_text("greeting")
    await expect(hello.locator("table")).to_contain_text("Bonjour")
    await shot(page, "plugins")

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Hello").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Hello")
    await expect(page.locator(".plugin-panel")).to_have_text("Bonjour from a plugin page.")
    await shot(page, "plugin-panel")
