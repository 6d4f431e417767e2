"""API keys: create (scopes, optional collections, role; the secret is shown once, on the
page that answers the form), list and revoke — through ``tessera.api_keys``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.forms import FormErrors, text
from admin.rendering import redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import load_project
from kernel import SCOPES, KeySpec, TesseraError
from kernel.runtime import Tessera

router = admin_router()

KEY_INPUTS = {"name", "scopes", "collections", "role"}


def pending_scopes(tessera: Tessera) -> dict[str, str]:
    """Scopes whose capability no enabled plugin provides yet, with what would provide it
    (the form marks them: a key may carry them, but they open nothing today)."""
    pending = {}
    if not len(tessera.storage_backends):
        pending.update(dict.fromkeys(("files:read", "files:write"), "a storage plugin"))
    if not len(tessera.transports):
        pending["realtime"] = "a realtime transport plugin"
    return pending


async def _page(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    *,
    created: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    view = await load_project(site, session, project_id)
    response = render(
        request,
        "keys.html",
        status=status,
        project=view.project,
        keys=await site.tessera.api_keys.list(project_id, session.principal),
        created=created,
        scopes=SCOPES,
        pending_scopes=pending_scopes(site.tessera),
        collections=sorted(view.catalog.live_collections),
        values=values or {"name": "", "scopes": ["records:read"], "collections": [], "role": ""},
        errors=errors or FormErrors(),
    )
    return response


@router.get("/p/{project_id}/keys")
async def keys_page(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await _page(request, site, session, project_id)


@router.post("/p/{project_id}/keys")
async def create_key(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "scopes": [s for s in form.getlist("scopes") if isinstance(s, str)],
        "collections": [c for c in form.getlist("collections") if isinstance(c, str)],
        "role": text(form, "role"),
    }
    raw: dict[str, Any] = {"name": values["name"], "scopes": values["scopes"]}
    if values["collections"]:
        raw["collections"] = values["collections"]
    if values["role"]:
        raw["role"] = values["role"]
    try:
        spec = KeySpec.model_validate(raw)
        created = await site.tessera.api_keys.create(project_id, spec, session.principal)
    except ValidationError as error:
        errors = FormErrors.from_validation(error, lambda loc: loc.split(".")[0])
    except TesseraError as error:
        errors = FormErrors.from_error(error, lambda name: name if name in KEY_INPUTS else None)
    else:
        # The secret exists only in this response: it is never stored, so it is shown here
        # (not after a redirect) and the page is marked not to be cached.
        return await _page(request, site, session, project_id, created=created, status=201)
    return await _page(request, site, session, project_id, values=values, errors=errors, status=422)


@router.post("/p/{project_id}/keys/{key_id}/revoke")
async def revoke_key(
    project_id: str, key_id: int, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    await site.tessera.api_keys.revoke(project_id, key_id, session.principal)
    revoked = success(f"Key {key_id} revoked; it no longer works.")
    return redirect(request, urls.project(project_id, "keys"), revoked)
