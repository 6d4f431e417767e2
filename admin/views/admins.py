"""Admins: the list, adding one, changing your own password and deleting another admin
with a typed confirmation — all through ``tessera.identity``, audited as the ``tessera
admin`` commands are, with the signed-in admin as the actor."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from admin import session as admin_session
from admin.forms import FormErrors, text
from admin.rendering import redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from kernel import NotFound, TesseraError

router = admin_router()

PAGE = "/admin/admins"
#: The kernel's field names → the inputs of the "change your password" form.
PASSWORD_INPUTS = {"current_password": "current_password", "password": "new_password"}


async def _page(
    request: Request,
    site: AdminSite,
    *,
    email: str = "",
    add_errors: FormErrors | None = None,
    password_errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "admins.html",
        status=status,
        admins=await site.tessera.identity.list_admins(),
        email=email,
        add_errors=add_errors or FormErrors(),
        password_errors=password_errors or FormErrors(),
    )


def _mismatch(form: Any, name: str, again: str) -> FormErrors:
    """An error on ``again`` when the two password inputs differ."""
    errors = FormErrors()
    if form.get(name) != form.get(again):
        errors.add(again, "The two passwords differ.")
    return errors


@router.get("/admins")
async def admins_page(request: Request, site: SiteDep, session: SessionDep) -> Response:
    return await _page(request, site)


@router.post("/admins")
async def add_admin(request: Request, site: SiteDep, session: SessionDep) -> Response:
    form = await request.form()
    email = text(form, "email")
    errors = _mismatch(form, "password", "password_again")
    if not errors:
        try:
            await site.tessera.identity.create_admin(
                email,
                form.get("password"),  # type: ignore[arg-type]
                actor=session.principal,
            )
        except TesseraError as error:
            errors = FormErrors.from_error(
                error, lambda name: name if name in {"email", "password"} else None
            )
    if errors:
        return await _page(request, site, email=email, add_errors=errors, status=422)
    added = success(f"Admin {email.lower()} added. They can sign in with the password you chose.")
    return redirect(request, PAGE, added)


@router.post("/admins/password")
async def change_own_password(request: Request, site: SiteDep, session: SessionDep) -> Response:
    form = await request.form()
    errors = _mismatch(form, "new_password", "new_password_again")
    if not errors:
        try:
            signed_in = await site.tessera.identity.change_own_admin_password(
                session.principal, form.get("current_password"), form.get("new_password")
            )
        except TesseraError as error:
            errors = FormErrors.from_error(error, PASSWORD_INPUTS.get)
    if errors:
        return await _page(request, site, password_errors=errors, status=422)
    changed = success("Your password is changed. Your other sessions are signed out.")
    response = redirect(request, PAGE, changed)
    # The old session's token was revoked with the others: this browser gets a new one.
    admin_session.start(response, request, site, signed_in["token"])
    return response


async def _admin(site: AdminSite, admin_id: int) -> dict[str, Any]:
    """The admin ``admin_id``; :class:`NotFound` (a 404 page) when there is none."""
    for admin in await site.tessera.identity.list_admins():
        if admin["id"] == admin_id:
            return admin
    raise NotFound(f"no admin with id {admin_id}", code="admin_not_found")


def _delete_page(
    request: Request,
    session: AdminSession,
    admin: dict[str, Any],
    errors: FormErrors,
    status: int = 200,
) -> Response:
    return render(
        request,
        "admin_delete.html",
        status=status,
        admin=admin,
        own_account=admin["id"] == session.principal.id,
        errors=errors,
    )


@router.get("/admins/{admin_id}/delete")
async def delete_page(
    admin_id: int, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return _delete_page(request, session, await _admin(site, admin_id), FormErrors())


@router.post("/admins/{admin_id}/delete")
async def delete_admin(
    admin_id: int, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    admin = await _admin(site, admin_id)
    form = await request.form()
    errors = FormErrors()
    if text(form, "confirm").lower() != admin["email"]:
        errors.add("confirm", f"Type the admin's email, {admin['email']}, to confirm.")
        return _delete_page(request, session, admin, errors, status=422)
    try:
        await site.tessera.identity.delete_admin(admin["email"], actor=session.principal)
    except TesseraError as error:
        return _delete_page(
            request, session, admin, FormErrors.from_error(error), status=error.status
        )
    deleted = success(f"Admin {admin['email']} deleted; their sessions are signed out.")
    return redirect(request, PAGE, deleted)
