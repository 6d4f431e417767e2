"""The admin's guards that need no browser: CSRF on every form post, first-run setup only
from this machine, masked plugin secrets, redirects that stay in the admin, plugin panels."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import BaseModel

from admin import cookies, flash
from admin.app import VIEWS
from admin.routing import require_login_csrf, require_session_csrf
from admin.urls import safe_next
from admin.views.keys import pending_scopes
from admin.views.plugins import MASK, shown_config
from kernel import SCOPES, PluginError, PluginInfo
from kernel.api.app import create_app
from kernel.config import Settings
from kernel.db.engine import Database
from kernel.db.migrate import migrate, plugin_migrations
from kernel.plugins import LoadedPlugin, load_plugins
from tests.conftest import ADMIN_EMAIL, Api, running
from tests.fake_plugins import FakeDistributions
from tests.services import create_database, drop_database

CSRF_CHECKS = {require_session_csrf, require_login_csrf}


def test_every_admin_form_post_checks_a_csrf_token() -> None:
    posts = [
        route
        for view in VIEWS
        for route in view.router.routes
        if "POST" in getattr(route, "methods", ())
    ]
    assert len(posts) >= 15
    unguarded = [
        route.path
        for route in posts
        if not any(dependency.dependency in CSRF_CHECKS for dependency in route.dependencies)
    ]
    assert unguarded == []


@pytest.fixture
async def settings_without_admin(
    postgres_server: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Settings]:
    url = await create_database(postgres_server, prefix="tessera_no_admin")
    db = await Database.connect(url, pool_size=1, connect_timeout=10)
    try:
        await migrate(db.engine, plugin_migrations(load_plugins(Settings())))
    finally:
        await db.close()
    yield make_settings(database_url=url, admin_email=None, admin_password=None)
    await drop_database(postgres_server, url)


async def test_first_run_setup_is_offered_on_this_machine_only(
    settings_without_admin: Settings,
) -> None:
    async with running(settings_without_admin) as local:
        # httpx's ASGI transport calls from 127.0.0.1: the machine itself.
        assert (await local.get("/admin")).headers["location"] == "/admin/setup"
        assert (await local.get("/admin/setup")).status_code == 200

        remote_transport = httpx.ASGITransport(app=local.app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(
            transport=remote_transport, base_url="http://tessera.test"
        ) as remote:
            assert (await remote.get("/admin")).headers["location"] == "/admin/projects"
            setup = await remote.get("/admin/setup")
            assert setup.status_code == 404
            assert "create the first admin" not in setup.text.lower()
            login = await remote.get("/admin/login")
            assert login.status_code == 200
            assert "No admin account exists yet" in login.text


class StorageConfig(BaseModel):
    region: str = "eu-west-1"
    secret_access_key: str = "hunter2-hunter2"


def test_plugin_config_is_shown_with_its_secret_keys_masked() -> None:
    plugin = LoadedPlugin(
        name="storage.fake",
        obj=object(),
        distribution="fake",
        version="1.0",
        info=PluginInfo(config=StorageConfig, secret_keys=frozenset({"secret_access_key"})),
        config=StorageConfig(),
    )
    assert shown_config(plugin) == {"region": "eu-west-1", "secret_access_key": MASK}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/p/shop", "/admin/p/shop"),
        ("https://evil.example/admin", "/admin/projects"),
        ("//evil.example/admin", "/admin/projects"),
        ("/admin\\..\\evil", "/admin/projects"),
        ("/api/projects", "/admin/projects"),
        (None, "/admin/projects"),
    ],
)
def test_redirects_after_forms_stay_in_the_admin(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_forged_flash_cookie_shows_nothing() -> None:
    value = flash.encode(b"key", [flash.Flash("success", "Saved")])
    assert flash.decode(b"key", value) == [flash.Flash("success", "Saved")]
    assert flash.decode(b"other key", value) == []
    assert flash.decode(b"key", value.replace(".", "x.", 1)) == []


PANEL_PLUGIN = """
    from kernel import AdminPanel, hookimpl

    async def render(request, tessera):
        return "<p>{name}</p>"

    @hookimpl
    def register_admin_panels(tessera):
        return [AdminPanel(slug="reports", title="{name}", render=render)]
"""


def test_two_plugins_claiming_one_admin_page_stop_startup_naming_both(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings]
) -> None:
    for name in ("panels.one", "panels.two"):
        module = name.replace(".", "_")
        fake_distributions.add(
            f"tests-{module}", {name: module}, {module: PANEL_PLUGIN.format(name=name)}
        )
    with pytest.raises(PluginError) as error:
        create_app(make_settings())
    assert "admin panel 'reports' is registered by both panels.one and panels.two" in str(
        error.value
    )


# -- a newcomer's paths ---------------------------------------------------------------------


def admin_cookie(admin_headers: dict[str, str]) -> dict[str, str]:
    """The admin session cookie for the token behind ``admin_headers``."""
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    return {"Cookie": f"{cookies.SESSION}={token}"}


async def test_a_404_under_admin_knows_who_is_signed_in(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    signed_in = await client.get("/admin/no/such/page", headers=admin_cookie(admin_headers))
    assert signed_in.status_code == 404
    assert ADMIN_EMAIL in signed_in.text and "Sign out" in signed_in.text
    anonymous = await client.get("/admin/no/such/page")
    assert anonymous.status_code == 404
    assert ADMIN_EMAIL not in anonymous.text and "Sign out" not in anonymous.text


async def test_admin_projects_id_redirects_to_the_project_page(
    client: httpx.AsyncClient, admin_headers: dict[str, str], project: str
) -> None:
    response = await client.get(f"/admin/projects/{project}", headers=admin_cookie(admin_headers))
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/p/{project}"


async def test_the_project_page_links_its_openapi_for_swagger_and_postman(
    client: httpx.AsyncClient, admin_headers: dict[str, str], project: str
) -> None:
    session = admin_cookie(admin_headers)
    await Api(client, admin_headers, project).create_collection(
        "orders", [{"name": "title", "type": "string"}]
    )
    page = await client.get(f"/admin/p/{project}", headers=session)
    document_url = f"/admin/p/{project}/openapi.json"
    assert f'href="/docs?url={document_url}"' in page.text
    assert f'href="{document_url}?download=1"' in page.text

    download = await client.get(f"{document_url}?download=1", headers=session)
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f'attachment; filename="{project}-openapi.json"'
    )
    document = download.json()
    assert document["openapi"] == "3.1.0"
    assert f"/api/projects/{project}/collections/orders/records" in document["paths"]

    assert (await client.get(document_url)).status_code == 303  # to the login page
    assert (
        await client.get("/admin/p/pnosuchproject/openapi.json", headers=session)
    ).status_code == 404


async def test_docs_are_served_from_installed_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert (await client.get(f"/docs/assets/{asset}")).status_code == 200
    assert (await client.get("/docs/assets/index.html")).status_code == 404
    other = await client.get("/docs", params={"url": "/api/projects/shop/openapi.json"})
    assert "url: '/api/projects/shop/openapi.json'" in other.text
    for foreign in (
        "https://example.com/openapi.json",
        "//example.com/x.json",
        "/x.json';alert(1)//",
    ):
        refused = await client.get("/docs", params={"url": foreign})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["field"] == "url"


async def test_the_key_form_marks_scopes_no_installed_plugin_serves(
    client: httpx.AsyncClient, admin_headers: dict[str, str], project: str
) -> None:
    pending = pending_scopes(client.app.state.tessera)  # type: ignore[attr-defined]
    page = await client.get(f"/admin/p/{project}/keys", headers=admin_cookie(admin_headers))
    assert page.status_code == 200
    for scope in SCOPES:
        if scope in pending:
            assert f"<code>{scope}</code> <span" in page.text
            assert f"(arrives with {pending[scope]})" in page.text
        else:
            assert f"<code>{scope}</code></label>" in page.text
    assert "records:read" not in pending
