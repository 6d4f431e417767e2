"""Projects: the list, create, the project's home (its collections), rename, delete with a
typed confirmation, and settings — all through ``tessera.projects``."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.forms import FormErrors, checked, text
from admin.rendering import redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import load_project
from kernel import ProjectCreate, ProjectSettings, ProjectUpdate, TesseraError
from kernel.api.project_openapi import project_openapi
from kernel.api.responses import json_response

router = admin_router()


@router.get("/projects")
async def projects_page(request: Request, site: SiteDep, session: SessionDep) -> Response:
    return await _projects(request, site, session)


async def _projects(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "projects.html",
        status=status,
        projects=await site.tessera.projects.list(session.principal),
        values=values or {"id": "", "name": ""},
        errors=errors or FormErrors(),
    )


@router.post("/projects")
async def create_project(request: Request, site: SiteDep, session: SessionDep) -> Response:
    form = await request.form()
    values = {"id": text(form, "id"), "name": text(form, "name")}
    try:
        spec = ProjectCreate(id=values["id"], name=values["name"])
        created = await site.tessera.projects.create(spec, session.principal)
    except ValidationError as error:
        errors = FormErrors.from_validation(error, lambda loc: loc if loc in values else None)
    except TesseraError as error:
        errors = FormErrors.from_error(error, lambda name: name if name in values else None)
    else:
        return redirect(
            request,
            urls.project(created["id"]),
            success(f"Project {created['name']} created. Add its first collection."),
        )
    return await _projects(request, site, session, values=values, errors=errors, status=422)


async def project_home(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    """The project's page: its collections, the create-collection and rename forms."""
    view = await load_project(site, session, project_id)
    collections = sorted(view.catalog.live_collections.values(), key=lambda c: c.name)
    return render(
        request,
        "project.html",
        status=status,
        project=view.project,
        collections=collections,
        values={"collection_name": "", "display_name": "", "project_name": "", **(values or {})},
        errors=errors or FormErrors(),
    )


@router.get("/p/{project_id}")
async def project_page(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await project_home(request, site, session, project_id)


@router.get("/projects/{project_id}")
async def project_by_its_list_url(
    project_id: str, request: Request, session: SessionDep
) -> Response:
    """``/admin/projects/<id>``, the address a person guesses from ``/admin/projects``."""
    return redirect(request, urls.project(project_id))


@router.get("/p/{project_id}/openapi.json")
async def project_openapi_document(
    project_id: str, site: SiteDep, session: SessionDep, download: bool = False
) -> Response:
    """The project's OpenAPI document for the signed-in admin: what Swagger UI opens from
    the project page (``/docs?url=...``), or, with ``download``, a file for Postman."""
    catalog = await site.tessera.catalog.get(project_id, fresh=True)
    document = project_openapi(catalog, deployment_max_limit=site.tessera.settings.max_page_limit)
    headers = {}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{project_id}-openapi.json"'
    return json_response(document, headers=headers)


@router.post("/p/{project_id}/rename")
async def rename_project(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    name = text(form, "project_name")
    try:
        await site.tessera.projects.update(project_id, ProjectUpdate(name=name), session.principal)
    except ValidationError as error:
        errors = FormErrors.from_validation(error, lambda loc: "project_name")
    except TesseraError as error:
        errors = FormErrors.from_error(error, lambda field: "project_name")
    else:
        return redirect(request, urls.project(project_id), success(f"Project renamed to {name}."))
    return await project_home(
        request,
        site,
        session,
        project_id,
        values={"project_name": name},
        errors=errors,
        status=422,
    )


@router.get("/p/{project_id}/delete")
async def delete_page(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    return render(
        request,
        "project_delete.html",
        project=view.project,
        collections=len(view.catalog.live_collections),
        errors=FormErrors(),
    )


@router.post("/p/{project_id}/delete")
async def delete_project(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    try:
        await site.tessera.projects.delete(project_id, text(form, "confirm"), session.principal)
    except TesseraError as error:
        view = await load_project(site, session, project_id)
        return render(
            request,
            "project_delete.html",
            status=error.status,
            project=view.project,
            collections=len(view.catalog.live_collections),
            errors=FormErrors.from_error(error, lambda field: "confirm"),
        )
    return redirect(request, urls.DEFAULT, success(f"Project {project_id} and its data deleted."))


# -- settings ---------------------------------------------------------------------------

SETTINGS_NUMBERS = ("alias_grace_days", "purge_retention_days")
SETTINGS_FLAGS = ("maintenance", "allow_signup")


@functools.cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


@router.get("/p/{project_id}/settings")
async def settings_page(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    return _settings(request, view.project, dict(view.project["settings"]), FormErrors())


def _settings(
    request: Request,
    project: dict[str, Any],
    values: dict[str, Any],
    errors: FormErrors,
    status: int = 200,
) -> Response:
    return render(
        request,
        "project_settings.html",
        status=status,
        project=project,
        values=values,
        errors=errors,
        time_zones=time_zones(),
    )


def read_settings(form: Any) -> tuple[dict[str, Any], FormErrors]:
    """The settings a form filled in, checked with the kernel's own model (each problem
    next to its input) and the time zone against the IANA database."""
    values: dict[str, Any] = {name: checked(form, name) for name in SETTINGS_FLAGS}
    values["timezone"] = text(form, "timezone") or "UTC"
    for name in SETTINGS_NUMBERS:
        raw = text(form, name)
        values[name] = int(raw) if raw.lstrip("-").isdigit() else raw
    errors = FormErrors()
    try:
        ProjectSettings.model_validate(values)
    except ValidationError as error:
        errors = FormErrors.from_validation(error, lambda loc: loc.split(".")[0])
    try:
        zoneinfo.ZoneInfo(values["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.add("timezone", "Not a time zone; pick one from the list, e.g. Europe/Paris.")
    return values, errors


@router.post("/p/{project_id}/settings")
async def save_settings(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    values, errors = read_settings(await request.form())
    if not errors:
        try:
            await site.tessera.projects.update(
                project_id, ProjectUpdate(settings=values), session.principal
            )
        except TesseraError as error:
            errors = FormErrors.from_error(error)
        else:
            return redirect(request, urls.project(project_id, "settings"), success("Saved."))
    return _settings(request, view.project, values, errors, status=422)
