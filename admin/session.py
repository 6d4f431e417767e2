"""The signed-in admin: a session cookie holding the admin JWT the kernel issued.

``require_session`` is the dependency of every page behind the login. It accepts only an
admin token (a project user's token, an expired or forged one, or none at all raise
:class:`LoginRequired`, which the router turns into a redirect to the login page for a GET
and a 403 page otherwise).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from admin import cookies, csrf
from admin.site import AdminSite, get_site
from kernel import Principal, Unauthorized


class LoginRequired(Exception):
    """No usable admin session; ``reason`` is shown on the login page (or ``None``)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AdminSession:
    """The admin a request acts for, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str

    @property
    def email(self) -> str:
        return self.principal.email or ""


async def require_session(request: Request) -> AdminSession:
    """The signed-in admin; raises :class:`LoginRequired` otherwise. The token is resolved
    as the API resolves bearer tokens (``KernelSurface.resolve_token``: cached per
    process, refused once expired or once its admin is gone)."""
    site = get_site(request)
    token = request.cookies.get(cookies.SESSION)
    if not token:
        raise LoginRequired()
    try:
        principal = await site.tessera.resolve_token(token)
    except Unauthorized:
        raise LoginRequired("Your session has expired. Sign in again.") from None
    if not principal.is_admin:
        raise LoginRequired("Only admins may use the admin. Sign in with an admin account.")
    session = AdminSession(principal, csrf.make_token(site.csrf_key, csrf.SESSION, token))
    request.state.session = session
    return session


async def optional_session(request: Request) -> AdminSession | None:
    """The signed-in admin, or ``None`` (for pages anyone may see, such as a 404, that
    still show who is signed in)."""
    try:
        return await require_session(request)
    except LoginRequired:
        return None


def start(response: Response, request: Request, site: AdminSite, token: str) -> None:
    """Sign in: keep ``token`` for as long as it is valid; the pre-login cookie goes."""
    cookies.set_cookie(
        response, request, cookies.SESSION, token, max_age=site.tessera.tokens.ttl_seconds
    )
    cookies.clear_cookie(response, request, cookies.LOGIN)


def end(response: Response, request: Request) -> None:
    cookies.clear_cookie(response, request, cookies.SESSION)


def login_binding(request: Request) -> tuple[str, bool]:
    """The pre-login cookie's value that login forms bind their CSRF token to, and whether
    it is new (then the response must set it)."""
    existing = request.cookies.get(cookies.LOGIN)
    if existing:
        return existing, False
    return secrets.token_urlsafe(32), True


SessionDep = Annotated[AdminSession, Depends(require_session)]
