"""The admin's route class: kernel errors become pages, and every page gets security
headers.

- :class:`~admin.session.LoginRequired`: a GET goes to the login page (coming back after);
  anything else gets a 403 page.
- :class:`~admin.csrf.CsrfRejected`: a 403 page.
- :class:`~kernel.TesseraError` not handled by the view: a page with its status and
  messages (404 for an unknown project, 403 for a refused action ...).
- anything else is a bug: logged with its traceback, and a 500 page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from admin import cookies, csrf
from admin.flash import Flash
from admin.rendering import error_page, redirect
from admin.session import LoginRequired
from admin.site import get_site
from kernel import TesseraError

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def login_url(request: Request) -> str:
    """The login page, coming back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/admin/login?next={quote(target, safe='')}"


def _refuse_login(request: Request, error: LoginRequired) -> Response:
    if request.method in {"GET", "HEAD"}:
        messages = [] if error.reason is None else [Flash("info", error.reason)]
        response: Response = redirect(request, login_url(request), *messages)
    else:
        response = error_page(
            request, 403, "Sign in as an admin", [error.reason or "This needs an admin session."]
        )
    if request.cookies.get(cookies.SESSION):
        cookies.clear_cookie(response, request, cookies.SESSION)
    return response


class AdminRoute(APIRoute):
    """An ``APIRoute`` whose handler renders the admin's error pages."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as error:
                response = _refuse_login(request, error)
            except csrf.CsrfRejected:
                response = error_page(
                    request,
                    403,
                    "This form has expired",
                    [
                        "The form was missing its security token or it did not match your "
                        "session. Go back, reload the page and try again."
                    ],
                )
            except TesseraError as error:
                response = error_page(
                    request,
                    error.status,
                    _TITLES.get(error.status, "Something went wrong"),
                    [item.message for item in error.items],
                )
            except RequestValidationError:
                response = error_page(
                    request, 404, "Page not found", ["This address does not name a page."]
                )
            except Exception:
                log.exception("admin page %s %s failed", request.method, request.url.path)
                response = error_page(
                    request,
                    500,
                    "Something went wrong",
                    ["This is a bug in Tessera or a plugin; the server log has the details."],
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handle


_TITLES = {
    400: "That request was not understood",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "That conflicts with the current state",
    422: "That could not be saved",
    429: "Too many requests",
}


async def require_session_csrf(request: Request) -> None:
    """The CSRF check of forms shown to a signed-in admin (bound to the session cookie)."""
    await csrf.check(request, get_site(request).csrf_key, csrf.SESSION)


async def require_login_csrf(request: Request) -> None:
    """The CSRF check of forms shown before sign-in (bound to the pre-login cookie)."""
    await csrf.check(request, get_site(request).csrf_key, csrf.LOGIN)


def admin_router(*, session_csrf: bool = True) -> APIRouter:
    """A router for one group of admin pages. With ``session_csrf`` (the default) every
    POST it serves must carry the session's CSRF token; routers that serve forms shown
    before sign-in declare :func:`require_login_csrf` on those routes instead."""
    dependencies = [Depends(require_session_csrf)] if session_csrf else []
    return APIRouter(route_class=AdminRoute, dependencies=dependencies)
