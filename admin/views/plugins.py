"""The plugins page (every enabled plugin: version, distribution, hooks, config with
secrets masked) and the pages plugins add (``/admin/ext/<slug>``)."""

from __future__ import annotations

import logging
from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

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


@router.api_route("/ext/{slug}/fragments/{name}", methods=["GET", "POST"])
async def plugin_panel_fragment(
    slug: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    """A named part of a plugin page, alone (no layout): what ``data-live-fragment``
    swaps in. The ``X-Admin-Fragment`` header tells the script it got a fragment (and not,
    say, the login page after the session ended)."""
    item = _panel(slug, request, site, session)
    render_fragment = item.panel.fragments.get(name)
    if render_fragment is None:
        raise NotFound(f"The page {slug!r} has no part called {name!r}.")
    status = 200
    try:
        html = await render_fragment(request, site.tessera)
    except TesseraError as error:
        status = error.status
        html = _error_fragment([entry.message for entry in error.items])
    except Exception:
        log.exception("plugin %s: admin fragment %r/%r failed", item.plugin, slug, name)
        status = 500
        html = _error_fragment(
            [f"The plugin {item.plugin} could not show this part; the server log has the details."]
        )
    return HTMLResponse(
        html, status, headers={"Cache-Control": "no-store", "X-Admin-Fragment": "1"}
    )


def _error_fragment(messages: list[str]) -> str:
    items = "".join(f"<li>{escape(message)}</li>" for message in messages)
    return f'<div class="flash flash-error" role="alert"><ul>{items}</ul></div>'


async def _render_panel(request: Request, site: Any, item: Any) -> Response:
    try:
        html = await item.panel.render(request, site.tessera)
    except TesseraError:
        raise  # an error page with its own status (an unknown project is a 404, not a bug)
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
