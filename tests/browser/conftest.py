"""Browser tests: Debian's Chromium, driven by Playwright, against a real ``tessera serve``.

One server runs for the session on the session database, with the example plugin
(docs/examples/tessera-hello) installed by pip into a folder on its PYTHONPATH. Each test
gets a fresh browser context at 1280×800. Screenshots of every screen are saved under
``test-artifacts/screenshots/``.

Playwright's async API runs on the session's event loop, like every other async test (its
sync API would hold a loop of its own and starve pytest-asyncio's).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET_KEY, unique_id
from tests.server import REPO, TesseraServer, tessera_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
EXAMPLE = REPO / "docs" / "examples" / "tessera-hello"


def pip_install_example(target: Path, build: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        cwd=build,
    )


@pytest.fixture(scope="session")
def hello_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, installed with pip into a folder of its own."""
    target = tmp_path_factory.mktemp("hello-site")
    pip_install_example(target, tmp_path_factory.mktemp("hello-build"))
    return target


def server_env(database_url: str, data_dir: Path, site: Path, **extra: str) -> dict[str, str]:
    return tessera_env(
        TESSERA_DATABASE_URL=database_url,
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_SECRET_KEY=SECRET_KEY,
        TESSERA_PLUGINS__CONFIG='{"hello": {"greeting": "Bonjour"}}',
        PYTHONPATH=f"{site}:{REPO}",
        **extra,
    )


@pytest.fixture(scope="session")
def server(
    database_url: str, hello_site: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TesseraServer]:
    env = server_env(
        database_url,
        tmp_path_factory.mktemp("browser-data"),
        hello_site,
        TESSERA_ADMIN_EMAIL=ADMIN_EMAIL,
        TESSERA_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with TesseraServer(env) as running:
        yield running


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, server: TesseraServer) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 800}, locale="en-GB"
    )
    context.set_default_timeout(15_000)
    opened = await context.new_page()
    yield opened
    await context.close()


class AdminApi:
    """The REST API as an admin, to set the scene quickly (the flows under test use the UI)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @classmethod
    async def sign_in(cls, base_url: str) -> AdminApi:
        client = httpx.AsyncClient(base_url=base_url, timeout=30)
        response = await client.post(
            "/api/admin/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        return cls(client)

    async def project(self, name: str = "Browser test") -> str:
        project_id = unique_id("b")
        response = await self.client.post("/api/projects", json={"id": project_id, "name": name})
        assert response.status_code == 201, response.text
        return project_id

    async def collection(self, project_id: str, name: str, fields: list[dict[str, Any]]) -> None:
        response = await self.client.post(
            f"/api/projects/{project_id}/collections", json={"name": name, "fields": fields}
        )
        assert response.status_code == 201, response.text

    async def record(
        self, project_id: str, collection: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/projects/{project_id}/collections/{collection}/records", json=body
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def records(
        self, project_id: str, collection: str, **params: str
    ) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/api/projects/{project_id}/collections/{collection}/records", params=params
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def project_ids(self) -> list[str]:
        return [p["id"] for p in (await self.client.get("/api/projects")).json()["data"]]


@pytest.fixture(scope="session")
async def api(server: TesseraServer) -> AsyncIterator[AdminApi]:
    admin = await AdminApi.sign_in(server.url)
    yield admin
    await admin.client.aclose()


async def shot(page: Page, name: str) -> None:
    """Save a screenshot of the whole page as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    await page.goto("/admin/login")
    await page.locator("#f-email").fill(email)
    await page.locator("#f-password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/admin/projects$"))


def flashes(page: Page) -> Any:
    """The page's flash messages (success, info and errors)."""
    return page.locator(".flashes")
