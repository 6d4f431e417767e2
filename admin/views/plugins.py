"""The plugins page (every enabled plugin: version, distribution, hooks, config with
secrets masked) and the pages plugins add (``/admin/ext/<slug>``)."""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from admin.rendering import error_page, failure, redirect, render, success
from admin.routing import admin_router
from admin.session import SessionDep
from admin.site import SiteDep
from kernel import LoadedPlugin, NotFound, PanelContext, PanelRedirect, TesseraError

log = logging.getLogger(__name__)

router = admin_router()

MASK = "••••••••"


def shown_config(plugin: LoadedPlugin) -> dict[str, Any] | None:
    """The plugin's validated config as JSON, with its ``secret_keys`` masked."""
    if plugin.config is None:
        return None
    values = plugin.config.model_dump(mode="json")
    return {
        key: MASK if key in plugin.info.secret_keys and value not in (None, "") else value
        for key, value in values.items()
    }


@router.get("/plugins")
async def plugins_page(request: Request, site: SiteDep, session: SessionDep) -> Response:
    tessera = site.tessera
    described = tessera.describe_plugins()
    panels: dict[str, list[Any]] = {}
    for item in site.panels:
        panels.setdefault(item.plugin, []).append(item)
    plugins = [
        {
            **entry,
            "config": shown_config(tessera.plugins.get(entry["name"])),
            "panels": panels.get(entry["name"], []),
        }
        for entry in described
    ]
    return render(request, "plugins.html", plugins=plugins)


def _panel(slug: str, request: Request, site: Any, session: Any) -> Any:
    item = site.panel(slug)
    if item is None:
        raise NotFound(f"No plugin page is called {slug!r}.")
    request.state.panel = PanelContext(session.principal, session.csrf, item.url)
    return item


@router.get("/ext/{slug}")
async def plugin_panel(slug: str, request: Request, site: SiteDep, session: SessionDep) -> Response:
    item = _panel(slug, request, site, session)
    return await _render_panel(request, site, item)


@router.post("/ext/{slug}")
async def plugin_panel_post(
    slug: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    """A form posted to a plugin page: the plugin's ``handle`` decides (CSRF checked)."""
    item = _panel(slug, request, site, session)
    if item.panel.handle is None:
        raise NotFound(f"The page {slug!r} takes no forms.")
    back = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    try:
        outcome = await item.panel.handle(request, site.tessera)
    except TesseraError as error:
        return redirect(request, back, *(failure(entry.message) for entry in error.items))
    if isinstance(outcome, PanelRedirect):
        target = outcome.url if outcome.url.startswith("/admin") else back
        messages = [success(outcome.message)] if outcome.message else []
        return redirect(request, target, *messages)
    return render(request, "panel.html", item=item, body=Markup(outcome))


async def _render_panel(request: Request, site: Any, item: Any) -> Response:
    try:
        html = await item.panel.render(request, site.tessera)
    except Exception:
        log.exception("plugin %s: admin panel %r failed", item.plugin, item.panel.slug)
        return error_page(
            request,
            500,
            "This page failed",
            [f"The plugin {item.plugin} could not render it; the server log has the details."],
        )
    # The panel's HTML is the plugin's own markup (its contract: escape what it did not
    # write); the admin's Content-Security-Policy still forbids inline scripts in it.
    return render(request, "panel.html", item=item, body=Markup(html))
