"""``AdminPanel``: a page a plugin adds to the admin UI, with its menu entry and forms."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kernel.security.principal import Principal


@dataclass(frozen=True, slots=True)
class PanelContext:
    """What the admin hands a panel on each request, as ``request.state.panel``.

    - ``principal``: the signed-in admin; call kernel services with it.
    - ``csrf_token``: put it in every form that posts back (``csrf_input()`` writes the
      hidden field).
    - ``url``: the panel's own address (``/admin/ext/<slug>``); forms post to it.
    """

    principal: Principal
    csrf_token: str
    url: str

    def csrf_input(self) -> str:
        return f'<input type="hidden" name="csrf" value="{html.escape(self.csrf_token)}">'

    def fragment_url(self, name: str) -> str:
        """The address of the panel's fragment ``name`` (see :class:`AdminPanel`)."""
        return f"{self.url}/fragments/{name}"


@dataclass(frozen=True, slots=True)
class PanelRedirect:
    """What ``handle`` returns to send the browser to ``url`` (an ``/admin`` address) with
    a success ``message``."""

    url: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class AdminPanel:
    """A menu entry and the page behind it.

    - ``slug``: URL part, the page is served at ``/admin/ext/<slug>``; unique.
    - ``title``: menu label and page heading.
    - ``render``: ``async (request, tessera) -> str`` returning the page body as HTML; the
      admin wraps it in its layout. Escape everything that is not your own markup. The
      page's query string is yours (``?project=shop``).
    - ``handle``: optional ``async (request, tessera) -> PanelRedirect | str`` for POSTs to
      the page. The admin has already checked the session and the CSRF token; read the form
      with ``await request.form()``. Return a :class:`PanelRedirect`, or HTML to show
      instead of a redirect (a secret shown once). A :class:`kernel.errors.TesseraError`
      is shown to the person as an error message on the page.
    - ``order``: position in the menu (lower first).
    - ``fragments``: optional named parts of the page, each ``async (request, tessera) ->
      str``, served alone (no layout) at ``/admin/ext/<slug>/fragments/<name>`` for GET and
      POST (a POST carries the CSRF token like any form; a GET has none, so it must
      change nothing). The admin's script refreshes one in place: a form with
      ``data-live-fragment="<fragment url>"`` and ``data-live-target="<selector>"`` posts
      its fields there as the person edits it and puts the answer into the target (a live
      preview). A :class:`kernel.errors.TesseraError` becomes a fragment with its messages.

    All callbacks find a :class:`PanelContext` in ``request.state.panel``. The admin's CSS
    classes (``panel``, ``table-wrap``, ``button``, ``button-primary``, ``field``,
    ``badge badge-success`` ...) are available to the markup; inline scripts are not.
    """

    slug: str
    title: str
    render: Callable[..., Any]
    order: int = 100
    handle: Callable[..., Any] | None = None
    fragments: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
