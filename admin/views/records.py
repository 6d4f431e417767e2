"""The data explorer: a page of records (keyset cursors, sort by column, filter builder),
and the record form (create, edit, delete) — all through ``tessera.records``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from admin import urls
from admin.forms import (
    MISSING,
    FormErrors,
    FormValueError,
    checked,
    number_step,
    read_value,
    show_value,
    text,
    widget_input,
)
from admin.paging import page_links
from admin.rendering import redirect, render, success
from admin.routing import admin_router
from admin.session import AdminSession, SessionDep
from admin.site import AdminSite, SiteDep
from admin.views.lookup import find_collection, load_project
from kernel import CollectionDef, FieldDef, TesseraError, queryable_fields
from kernel.expr import supports

router = admin_router()

PAGE_SIZE = 25
SHAPE_HINTS = {"scalar": "value", "list": "a, b, c", "pair": "low, high", "flag": "true or false"}


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the explorer's table and how clicking its header sorts."""

    name: str
    label: str
    sortable: bool
    direction: str | None  # "asc" / "desc" when the list is sorted on it
    sort_url: str | None
    key: str = ""  # the record's key for the value (the column: ``customer_id``)
    target: str | None = None  # a foreign key's collection: the value links to its record
    display: str | None = None  # the target's field shown instead of the id


@dataclass(frozen=True, slots=True)
class FilterRow:
    field: str
    op: str
    value: str


def filterable_fields(collection: CollectionDef) -> list[FieldDef]:
    """System columns and live fields, each once (by its own name)."""
    names = queryable_fields(collection, datetime.now(UTC))
    return [field for name, field in names.items() if field.name == name]


def operator_menu(site: AdminSite, fields: list[FieldDef]) -> dict[str, Any]:
    """Per field, exactly the operators its type supports (the filter builder's data)."""
    return {
        field.name: {
            "label": field.display_name,
            "operators": [
                {"name": name, "label": operator.label, "shape": operator.shape}
                for name, operator in site.tessera.operators.items()
                if supports(type(field.type), operator)
            ],
        }
        for field in fields
    }


def _columns(
    path: str, collection: CollectionDef, filters: list[tuple[str, str]], sort: str
) -> list[Column]:
    sorted_on, _, direction = sort.partition(":")
    fields = sorted(collection.live_fields.values(), key=lambda f: f.position)
    shown = [
        ("id", "ID", True, None),
        *((f.name, f.display_name, f.type.sortable, f) for f in fields),
        ("updated_at", "Updated", True, None),
    ]
    columns = []
    for name, label, sortable, field in shown:
        current = (direction or "asc") if name == sorted_on else None
        flipped = "desc" if current == "asc" else "asc"
        url = urls.with_query(path, [*filters, ("sort", f"{name}:{flipped}")]) if sortable else None
        key = field.type.foreign_key() if field else None
        target, display = (key.target, key.display) if key is not None else (None, None)
        record_key = field.column if field else name
        columns.append(Column(name, label, sortable, current, url, record_key, target, display))
    return columns


def linked_fields(collection: CollectionDef, limit: int) -> list[str]:
    """The fields whose linked records the explorer includes (to show their display
    field), at most ``limit`` (the deployment's ``max_includes``)."""
    return [f.name for f in collection.live_fields.values() if f.type.foreign_key()][:limit]


@router.get("/p/{project_id}/c/{name}/records")
async def explorer(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    collection, alias = find_collection(view.catalog, name)
    path = urls.collection(project_id, collection.name, "records")
    if alias is not None:
        return redirect(request, urls.with_query(path, list(request.query_params.multi_items())))
    params = request.query_params
    rows = [
        FilterRow(field, op, value)
        for field, op, value in zip(
            params.getlist("ff"), params.getlist("fo"), params.getlist("fv"), strict=False
        )
        if field and op
    ]
    sort, cursor, trail = params.get("sort", ""), params.get("cursor", ""), params.getlist("trail")
    filter_params = [(key, value) for row in rows for key, value in _row_params(row)]
    items = [(f"filter[{row.field}][{row.op}]", row.value) for row in rows]
    items += [("sort", sort)] if sort else []
    items += [("cursor", cursor)] if cursor else []
    items.append(("limit", str(PAGE_SIZE)))
    linked = linked_fields(collection, site.tessera.settings.max_includes)
    items += [("include", ",".join(linked))] if linked else []
    errors = FormErrors()
    records: list[dict[str, Any]] = []
    next_cursor = None
    try:
        outcome = await site.tessera.records.list(
            project_id, collection.name, items, session.principal
        )
    except TesseraError as error:
        errors = FormErrors.from_error(error)
    else:
        records = outcome.data["data"]
        next_cursor = outcome.data["page"]["next_cursor"]
    sort_params = [("sort", sort)] if sort else []
    fields = filterable_fields(collection)
    return render(
        request,
        "records.html",
        project=view.project,
        collection=collection,
        columns=_columns(path, collection, filter_params, sort),
        records=records,
        filters=rows,
        fields=fields,
        operators=operator_menu(site, fields),
        all_operators=[(n, op.label) for n, op in site.tessera.operators.items()],
        shape_hints=SHAPE_HINTS,
        pages=page_links(path, filter_params + sort_params, cursor, trail, next_cursor),
        errors=errors,
        filtered=bool(rows),
        here=urls.with_query(path, list(params.multi_items())),
    )


def _row_params(row: FilterRow) -> list[tuple[str, str]]:
    return [("ff", row.field), ("fo", row.op), ("fv", row.value)]


# -- the record form ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordInput:
    """One field of the record form."""

    field: FieldDef
    kind: str
    value: str
    step: str
    #: For a link: the picker's data URL (``admin.views.picker``), else empty.
    picker: str = ""

    @property
    def name(self) -> str:
        return f"v.{self.field.name}"


def record_inputs(
    project_id: str, collection: CollectionDef, values: dict[str, Any], *, typed: bool
) -> list[RecordInput]:
    """The form's inputs for ``collection``, filled from ``values``: a record's stored values,
    or (``typed``) the text a person typed, shown again as it was. A link gets a picker."""
    inputs = []
    for field in sorted(collection.live_fields.values(), key=lambda f: f.position):
        kind = widget_input(field.type)
        # typed text is by field name; a stored record by column (``customer_id``)
        raw = values.get(field.name if typed else field.column)
        shown = raw if typed and isinstance(raw, str) else show_value(kind, raw)
        step = number_step(field.type) if kind == "number" else ""
        key = field.type.foreign_key()
        picker = ""
        if key is not None:
            query = [("display", key.display)] if key.display else []
            picker = urls.with_query(urls.collection(project_id, key.target, "pick"), query)
        inputs.append(RecordInput(field, kind, shown, step, picker))
    return inputs


def read_record(collection: CollectionDef, form: Any, *, partial: bool) -> tuple[dict, FormErrors]:
    """The JSON body a record form describes. An empty input leaves the field out of a new
    record (so its default applies) and empties it in an edit."""
    body: dict[str, Any] = {}
    errors = FormErrors()
    for field in collection.live_fields.values():
        kind, name = widget_input(field.type), f"v.{field.name}"
        if kind == "checkbox":
            body[field.name] = checked(form, name)
            continue
        raw = form.get(name)
        try:
            value = read_value(kind, raw if isinstance(raw, str) else "")
        except FormValueError as error:
            errors.add(name, error.message)
            continue
        if value is not MISSING:
            body[field.name] = value
        elif partial:
            body[field.name] = None
    return body, errors


def _typed_values(collection: CollectionDef, form: Any) -> dict[str, Any]:
    """What the person typed, to show again next to the errors."""
    values: dict[str, Any] = {}
    for field in collection.live_fields.values():
        name = f"v.{field.name}"
        if widget_input(field.type) == "checkbox":
            values[field.name] = checked(form, name)
        else:
            raw = form.get(name)
            values[field.name] = raw if isinstance(raw, str) else ""
    return values


async def _record_form(
    request: Request,
    site: AdminSite,
    session: AdminSession,
    project_id: str,
    name: str,
    record_id: int | None,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, _ = find_collection(view.catalog, name)
    record = None
    if record_id is not None:
        outcome = await site.tessera.records.get(
            project_id, collection.name, record_id, session.principal
        )
        record = outcome.data
    return render(
        request,
        "record_form.html",
        status=status,
        project=view.project,
        collection=collection,
        record=record,
        inputs=record_inputs(
            project_id,
            collection,
            values if values is not None else record or {},
            typed=values is not None,
        ),
        errors=errors or FormErrors(),
    )


def _field_inputs(collection: CollectionDef) -> Any:
    def inputs(kernel_field: str) -> str | None:
        if kernel_field in collection.live_fields:
            return f"v.{kernel_field}"
        return None

    return inputs


@router.get("/p/{project_id}/c/{name}/records/new")
async def new_record(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    return await _record_form(request, site, session, project_id, name, None, values={})


@router.post("/p/{project_id}/c/{name}/records/new")
async def create_record(
    project_id: str, name: str, request: Request, site: SiteDep, session: SessionDep
) -> Response:
    view = await load_project(site, session, project_id)
    collection, _ = find_collection(view.catalog, name)
    form = await request.form()
    body, errors = read_record(collection, form, partial=False)
    if not errors:
        try:
            outcome = await site.tessera.records.create(
                project_id, collection.name, body, session.principal
            )
        except TesseraError as error:
            errors = FormErrors.from_error(error, _field_inputs(collection))
        else:
            return redirect(
                request,
                urls.collection(project_id, collection.name, "records"),
                success(f"Record {outcome.data['id']} created."),
            )
    return await _record_form(
        request,
        site,
        session,
        project_id,
        collection.name,
        None,
        values=_typed_values(collection, form),
        errors=errors,
        status=422,
    )


@router.get("/p/{project_id}/c/{name}/records/{record_id}")
async def edit_record(
    project_id: str,
    name: str,
    record_id: int,
    request: Request,
    site: SiteDep,
    session: SessionDep,
) -> Response:
    return await _record_form(request, site, session, project_id, name, record_id)


@router.post("/p/{project_id}/c/{name}/records/{record_id}")
async def update_record(
    project_id: str,
    name: str,
    record_id: int,
    request: Request,
    site: SiteDep,
    session: SessionDep,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, _ = find_collection(view.catalog, name)
    form = await request.form()
    body, errors = read_record(collection, form, partial=True)
    if not errors:
        try:
            await site.tessera.records.update(
                project_id, collection.name, record_id, body, session.principal
            )
        except TesseraError as error:
            errors = FormErrors.from_error(error, _field_inputs(collection))
        else:
            return redirect(
                request,
                urls.collection(project_id, collection.name, "records"),
                success(f"Record {record_id} saved."),
            )
    return await _record_form(
        request,
        site,
        session,
        project_id,
        collection.name,
        record_id,
        values=_typed_values(collection, form),
        errors=errors,
        status=422,
    )


@router.post("/p/{project_id}/c/{name}/records/{record_id}/delete")
async def delete_record(
    project_id: str,
    name: str,
    record_id: int,
    request: Request,
    site: SiteDep,
    session: SessionDep,
) -> Response:
    view = await load_project(site, session, project_id)
    collection, _ = find_collection(view.catalog, name)
    form = await request.form()
    back = urls.safe_next(
        text(form, "back"), urls.collection(project_id, collection.name, "records")
    )
    await site.tessera.records.delete(project_id, collection.name, record_id, session.principal)
    return redirect(request, back, success(f"Record {record_id} deleted."))
