"""Collections: create one, the collection builder (fields, dropped fields, old names,
rename), adding a field with its type's own options form, and a field's page (rename,
change type, drop). Changes to existing fields go through the preview pages of
:mod:`admin.views.schema_ops`; creating collections and fields applies at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.field_types import option_error_input, type_choices
from admin.forms import (
    MISSING,
    FormErrors,
    FormValueError,
    checked,
    read_options,
    read_value,
    text,
    widget_input,
)
from admin.rendering import redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import ProjectView, find_collection, find_field, load_project
from admin.views.projects import project_home
from kernel import AliasDef, CollectionDef, TesseraError

router = admin_router()

ADD_FIELD_INPUTS = {"name", "display_name", "type", "default", "required", "unique"}


@router.post("/p/{project_id}/collections")
async def create_collection(
    project_id: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    values = {"collection_name": text(form, "collection_name"), "display_name": ""}
    args: dict[str, Any] = {"name": values["collection_name"], "fields": []}
    if display := text(form, "display_name"):
        args["display_name"] = values["display_name"] = display
    try:
        await site.tessera.schema.apply(project_id, "create_collection", args, session.principal)
    except TesseraError as error:
        inputs = {"name": "collection_name", "display_name": "display_name"}
        errors = FormErrors.from_error(error, lambda name: inputs.get(name.removeprefix("args.")))
        return await project_home(
            request, site, session, project_id, values=values, errors=errors, status=error.status
        )
    return redirect(
        request,
        urls.collection(project_id, args["name"]),
        success(f"Collection {args['name']} created. Now add its fields."),
    )


@dataclass(frozen=True, slots=True)
class OldName:
    """A live alias as the builder lists it: ``old`` still reaches ``current``."""

    alias: AliasDef
    kind: str
    old: str
    current: str


def aliases_of(view: ProjectView, collection: CollectionDef) -> list[OldName]:
    """The collection's live old names and its fields', newest first."""
    now = datetime.now(UTC)
    found = [
        OldName(alias, "collection", old, collection.name)
        for old, (target, alias) in view.catalog.live_collection_aliases(now).items()
        if target.id == collection.id
    ]
    found += [
        OldName(alias, "field", old, field.name)
        for old, (field, alias) in collection.live_field_aliases(now).items()
    ]
    return sorted(found, key=lambda item: item.alias.created_at, reverse=True)


async def builder(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    name: str,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, alias = find_collection(view.catalog, name)
    if alias is not None:
        return redirect(request, urls.collection(project_id, collection.name))
    retention = timedelta(days=view.catalog.project.settings.purge_retention_days)
    dropped = [
        {"field": field, "purge_from": (field.deleted_at or datetime.now(UTC)) + retention}
        for field in collection.deleted_fields.values()
    ]
    types = type_choices(site.tessera, sorted(view.catalog.live_collections))
    blank = {"name": "", "display_name": "", "type": types[0].name, "default": ""}
    return render(
        request,
        "collection.html",
        status=status,
        project=view.project,
        collection=collection,
        fields=sorted(collection.live_fields.values(), key=lambda f: f.position),
        dropped=dropped,
        aliases=aliases_of(view, collection),
        types=types,
        values={**blank, **(values or {})},
        errors=errors or FormErrors(),
    )


@router.get("/p/{project_id}/c/{name}")
async def collection_page(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await builder(request, site, session, project_id, name)


def read_field_spec(site: AdminSite, form: Any) -> tuple[dict[str, Any], FormErrors]:
    """The ``add_field`` spec an add-field form describes, and problems found reading it
    (the kernel checks the rest)."""
    type_name = text(form, "type")
    spec: dict[str, Any] = {
        "name": text(form, "name"),
        "type": type_name,
        "required": checked(form, "required"),
        "unique": checked(form, "unique"),
    }
    if display := text(form, "display_name"):
        spec["display_name"] = display
    errors = FormErrors()
    type_class = site.tessera.field_types.get(type_name)
    if type_class is None:
        errors.add("type", "Choose one of the field types.")
        return spec, errors
    try:
        spec["options"] = read_options(type_class.Options, form, f"opt.{type_name}.")
    except FormValueError as error:
        errors.add(f"opt.{type_name}.{error.key}", error.message)
    raw_default = form.get("default")
    if isinstance(raw_default, str) and raw_default.strip():
        try:
            default = read_value(widget_input(type_class), raw_default)
        except FormValueError as error:
            errors.add("default", error.message)
        else:
            if default is not MISSING:
                spec["default"] = default
    return spec, errors


@router.post("/p/{project_id}/c/{name}/fields")
async def add_field(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    form = await request.form()
    spec, errors = read_field_spec(site, form)
    if not errors:
        try:
            await site.tessera.schema.apply(
                project_id, "add_field", {"collection": name, "field": spec}, session.principal
            )
        except TesseraError as error:
            errors = FormErrors.from_error(error, _add_field_inputs(spec["type"]))
        else:
            return redirect(
                request,
                urls.collection(project_id, name),
                success(f"Field {spec['name']} added."),
            )
    values = {key: text(form, key) for key in ("name", "display_name", "type", "default")}
    values["required"], values["unique"] = spec["required"], spec["unique"]
    values["options"] = {key: value for key, value in form.multi_items() if key.startswith("opt.")}
    return await builder(
        request, site, session, project_id, name, values=values, errors=errors, status=422
    )


def _add_field_inputs(type_name: str) -> Any:
    def inputs(kernel_field: str) -> str | None:
        short = kernel_field.removeprefix("args.").removeprefix("field.")
        if short in ADD_FIELD_INPUTS:
            return short
        return option_error_input(type_name, short)

    return inputs


@router.get("/p/{project_id}/c/{name}/f/{field_name}")
async def field_page(
    project_id: str,
    name: str,
    field_name: str,
    request: Request,
    site: SiteDep,
    session: SessionDep,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, collection_alias = find_collection(view.catalog, name)
    field, field_alias = find_field(collection, field_name)
    if collection_alias is not None or field_alias is not None:
        return redirect(request, urls.field(project_id, collection.name, field.name))
    return render(
        request,
        "field.html",
        project=view.project,
        collection=collection,
        field=field,
        types=type_choices(site.tessera),
        errors=FormErrors(),
    )
