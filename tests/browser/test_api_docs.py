"""``/docs`` works on a machine without internet: every request to a host other than the
server is blocked, and Swagger UI still renders the platform's and a project's operations."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Route, expect

from tests.browser.conftest import AdminApi, shot, sign_in

pytestmark = pytest.mark.browser


async def offline(page: Page) -> list[str]:
    """Abort every request that leaves 127.0.0.1; return the list of those blocked."""
    blocked: list[str] = []

    async def only_this_machine(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_this_machine)
    return blocked


async def test_swagger_ui_renders_offline_for_the_platform_and_a_project(
    page: Page, api: AdminApi
) -> None:
    blocked = await offline(page)
    await page.goto("/docs")
    await expect(
        page.locator(".opblock-summary-path", has_text="/api/projects").first
    ).to_be_visible()

    project_id = await api.project("Docs")
    await api.collection(project_id, "orders", [{"name": "title", "type": "string"}])
    await sign_in(page)
    await page.goto(f"/admin/p/{project_id}")
    link = page.get_by_role("link", name="Open in Swagger")
    await page.goto(await link.get_attribute("href") or "")
    path = f"/api/projects/{project_id}/collections/orders/records"
    await expect(page.locator(".opblock-summary-path", has_text=path).first).to_be_visible()
    await shot(page, "swagger-project")
    assert blocked == []
