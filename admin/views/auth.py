"""Sign-in, sign-out and the first-run setup of the very first admin.

First run: while no admin exists, ``/admin`` leads to a "create the first admin" form, but
only for requests from the machine itself (127.0.0.1 or ::1), so a server that is reachable
from a network never offers its admin account to whoever comes first. Once an admin exists
the form is gone (404).
"""

from __future__ import annotations

import ipaddress

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from admin import cookies, csrf, session
from admin.forms import FormErrors, text
from admin.rendering import error_page, redirect, render, success
from admin.routing import admin_router, require_login_csrf, require_session_csrf
from admin.site import AdminSite, SiteDep
from admin.urls import DEFAULT, safe_next
from kernel import TesseraError

router = admin_router(session_csrf=False)


def is_loopback(request: Request) -> bool:
    """Whether the request comes from this machine (behind a local reverse proxy, uvicorn
    puts the forwarded client's address here)."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pre_login_page(
    request: Request, site: AdminSite, template: str, status: int = 200, **context: object
) -> Response:
    binding, new = session.login_binding(request)
    token = csrf.make_token(site.csrf_key, csrf.LOGIN, binding)
    response = render(request, template, status=status, csrf_token=token, **context)
    if new:
        cookies.set_cookie(response, request, cookies.LOGIN, binding)
    return response


async def home(request: Request, site: SiteDep) -> Response:
    """``/admin`` itself (added by :func:`admin.app.build_router`: an included router
    cannot serve its prefix): first-run setup, or the projects."""
    if not await site.has_admin() and is_loopback(request):
        return redirect(request, "/admin/setup")
    return redirect(request, DEFAULT)


@router.get("/login")
async def login_page(request: Request, site: SiteDep, next: str | None = None) -> Response:
    if not await site.has_admin() and is_loopback(request):
        return redirect(request, "/admin/setup")
    if await session.optional_session(request) is not None:
        return redirect(request, safe_next(next))
    return _pre_login_page(
        request,
        site,
        "login.html",
        next=safe_next(next),
        email="",
        errors=FormErrors(),
        no_admin=not await site.has_admin(),
    )


@router.post("/login", dependencies=[Depends(require_login_csrf)])
async def login(request: Request, site: SiteDep) -> Response:
    form = await request.form()
    email, target = text(form, "email"), safe_next(text(form, "next"))
    password = form.get("password")
    try:
        signed_in = await site.tessera.identity.admin_login(email, password)
    except TesseraError as error:
        return _pre_login_page(
            request,
            site,
            "login.html",
            status=error.status,
            next=target,
            email=email,
            errors=FormErrors.from_error(error, lambda name: name if name == "email" else None),
            no_admin=False,
        )
    response = redirect(request, target)
    session.start(response, request, site, signed_in["token"])
    return response


@router.post("/logout", dependencies=[Depends(require_session_csrf)])
async def logout(request: Request) -> Response:
    response = redirect(request, "/admin/login", success("You are signed out."))
    session.end(response, request)
    return response


async def _setup_allowed(request: Request, site: AdminSite) -> bool:
    return is_loopback(request) and not await site.has_admin()


def _setup_gone(request: Request) -> Response:
    return error_page(
        request,
        404,
        "Not found",
        ["First-run setup is only offered on this machine, and only until an admin exists."],
    )


@router.get("/setup")
async def setup_page(request: Request, site: SiteDep) -> Response:
    if not await _setup_allowed(request, site):
        return _setup_gone(request)
    return _pre_login_page(request, site, "setup.html", email="", errors=FormErrors())


@router.post("/setup", dependencies=[Depends(require_login_csrf)])
async def setup(request: Request, site: SiteDep) -> Response:
    if not await _setup_allowed(request, site):
        return _setup_gone(request)
    form = await request.form()
    email, password = text(form, "email"), form.get("password")
    errors = FormErrors()
    if password != form.get("password_again"):
        errors.add("password_again", "The two passwords differ.")
    if not errors:
        try:
            await site.tessera.identity.create_admin(email, password)  # type: ignore[arg-type]
        except TesseraError as error:
            errors = FormErrors.from_error(
                error, lambda name: name if name in {"email", "password"} else None
            )
    if errors:
        return _pre_login_page(request, site, "setup.html", status=422, email=email, errors=errors)
    signed_in = await site.tessera.identity.admin_login(email, password)
    response = redirect(
        request, DEFAULT, success("Welcome to Tessera. Your admin account is ready.")
    )
    session.start(response, request, site, signed_in["token"])
    return response
