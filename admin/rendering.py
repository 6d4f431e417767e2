"""Pages: Jinja2 templates (autoescaped) wrapped in the admin layout, and redirects.

Every page gets the signed-in admin, its CSRF token, the menu (with plugin panels) and the
flash messages waiting for it; a page that shows flash messages clears them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from admin import cookies, flash
from admin.static_files import static_url
from kernel import condition_builder_html

TEMPLATES = Path(__file__).parent / "templates"
CELL_LIMIT = 80


def human_bytes(size: Any) -> str:
    """``1536`` → ``1.5 kB``."""
    number = float(size or 0)
    for unit in ("bytes", "kB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{number:.0f} {unit}" if unit == "bytes" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} GB"


def when(value: Any) -> str:
    """A moment (a datetime or its ISO text) as ``2024-05-01 14:03 UTC``; a date as is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(tz=value.tzinfo).strftime("%Y-%m-%d %H:%M %Z").strip()
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def cell(value: Any) -> str:
    """A record value, short enough for a table cell (the template escapes it)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat(sep=" ", timespec="seconds")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        shown = orjson.dumps(value).decode()
    else:
        shown = str(value)
    return shown if len(shown) <= CELL_LIMIT else shown[: CELL_LIMIT - 1] + "…"


def as_json(value: Any) -> str:
    """Pretty JSON for ``<pre>`` blocks (DDL arguments, audit before/after)."""
    return orjson.dumps(
        value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str
    ).decode()


def json_text(value: Any) -> str:
    """Compact JSON as plain text (escaped like any text when it lands in an attribute)."""
    return orjson.dumps(value, default=str).decode()


def condition_builder(*args: Any, **kwargs: Any) -> Markup:
    """:func:`kernel.condition_builder_html` for templates (the kernel escapes every value)."""
    return Markup(condition_builder_html(*args, **kwargs))


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals["static_url"] = static_url
environment.globals["condition_builder_html"] = condition_builder
environment.filters.update(
    human_bytes=human_bytes, when=when, cell=cell, as_json=as_json, json_text=json_text
)


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    csrf_token: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` for this request; ``csrf_token`` overrides the session's (for
    the forms shown before sign-in)."""
    site = getattr(request.state, "admin", None)
    session = getattr(request.state, "session", None)
    flashes = flash.take(request, site.flash_key) if site is not None else []
    html = environment.get_template(template).render(
        request=request,
        session=session,
        csrf_token=csrf_token if csrf_token is not None else session.csrf if session else "",
        panels=site.panels if site is not None and session is not None else [],
        flashes=flashes,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if cookies.FLASH in request.cookies:
        cookies.clear_cookie(response, request, cookies.FLASH)
    return response


def redirect(request: Request, url: str, *messages: flash.Flash) -> RedirectResponse:
    """A 303 to ``url`` (a path of the admin) carrying ``messages`` for the next page."""
    response = RedirectResponse(url, status_code=303)
    site = getattr(request.state, "admin", None)
    if site is not None:
        flash.put(response, request, site.flash_key, list(messages))
    return response


def error_page(request: Request, status: int, title: str, messages: list[str]) -> Response:
    return render(request, "error.html", status=status, code=status, title=title, messages=messages)


def success(message: str) -> flash.Flash:
    return flash.Flash("success", message)


def failure(message: str) -> flash.Flash:
    return flash.Flash("error", message)
