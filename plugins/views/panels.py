"""The views admin page (``/admin/ext/views``): the project's views; per view a builder with
a live preview, its versions (diff, rollback) and its API & Usage.

Addresses (the page's query string): ``?project=p`` lists; ``&new=1&base=orders`` builds a
new view; ``&view=v`` opens one, with ``&tab=versions`` (``&diff=2``) or ``&tab=api``, or asks to
confirm its deletion with ``&delete=1``;
``&base=...&join=...`` change the base and join the builder offers. Everything goes
through :class:`ViewService` and the runtime as the signed-in admin, like the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kernel import (
    AdminPanel,
    BadRequest,
    Conflict,
    ErrorItem,
    KernelSurface,
    PanelContext,
    PanelRedirect,
    TesseraError,
    ValidationFailed,
)
from plugins.views.builder import BuilderState, base_picker, builder_form, preview_rows
from plugins.views.definition import Definition
from plugins.views.delete_card import delete_button, delete_card
from plugins.views.form import (
    definition_from_draft,
    draft_from_form,
    field_choices,
    join_relation,
    new_view_from_draft,
    relation_targets,
    skeleton,
)
from plugins.views.markup import address, e, grid, href, option, problems
from plugins.views.preview import preview
from plugins.views.service import ViewService
from plugins.views.usage_tab import usage_tab
from plugins.views.versions_tab import versions_tab

TABS = (("builder", "Builder"), ("versions", "Versions"), ("api", "API & Usage"))


async def _project(request: Any, tessera: KernelSurface) -> tuple[str, str | None]:
    """The project picker's HTML and the chosen project (the first when none is asked)."""
    context = request.state.panel
    projects = await tessera.projects.list(context.principal)
    wanted = request.query_params.get("project")
    ids = [p["id"] for p in projects]
    chosen = wanted if wanted in ids else ids[0] if ids else None
    if chosen is None:
        return (
            '<p class="muted">No projects yet: <a href="/admin/projects">create one</a> first.</p>',
            None,
        )
    options = "".join(
        option(p["id"], f"{p['name']} ({p['id']})", p["id"] == chosen) for p in projects
    )
    picker = (
        f'<form method="get" action="{e(context.url)}" class="filter-bar">'
        f'<label class="field">Project <select name="project">{options}</select></label>'
        '<button type="submit" class="button">Show</button></form>'
    )
    return picker, chosen


async def render(request: Any, tessera: KernelSurface) -> str:
    picker, project = await _project(request, tessera)
    lead = (
        '<p class="lead">Saved queries published as read-only endpoints: pick a collection, '
        "columns, filters and parameters, watch the first rows as you go, then call it from "
        "your frontend.</p>"
    )
    if project is None:
        return lead + picker
    query = request.query_params
    if query.get("view"):
        return picker + await _view_page(request, tessera, project, query["view"])
    if query.get("new"):
        draft = {"base_collection": query.get("base", ""), "projection": []}
        if query.get("join"):
            draft["join"] = {"relation": query["join"]}
        heading = f"{_back(request.state.panel, project)}<h2>New view</h2>"
        return picker + heading + await _builder(request, tessera, project, None, 0, draft)
    return lead + picker + await _list(request.state.panel, tessera, project)


async def _list(context: PanelContext, tessera: KernelSurface, project: str) -> str:
    views = await ViewService(tessera).list(project, context.principal)
    rows = [
        [
            f'<a href="{href(context.url, project=project, view=v["name"])}">'
            f"<strong>{e(v['name'])}</strong></a>",
            e(v["version"]),
            e(v["base_collection"]),
            e(", ".join(v["projection"])),
            f'<a href="{href(context.url, project=project, view=v["name"], tab="api")}">'
            "API &amp; Usage</a>",
        ]
        for v in views
    ]
    catalog = await tessera.catalog.get(project)
    bases = "".join(option(name, name, False) for name in sorted(catalog.live_collections))
    start = (
        '<section class="panel"><h2>New view</h2>'
        f'<form method="get" action="{e(context.url)}" class="form-inline">'
        f'<input type="hidden" name="project" value="{e(project)}">'
        '<input type="hidden" name="new" value="1">'
        f'<label class="field">Base collection <select name="base">{bases}</select></label>'
        '<button type="submit" class="button button-primary">Start building</button></form>'
        "</section>"
        if bases
        else '<p class="muted">Create a collection first: a view reads one.</p>'
    )
    table = grid(
        ["View", "Version", "Base", "Columns", ""], rows, "No views yet — start one below."
    )
    return f"<h2>Views</h2>{table}{start}"


def _tabs(context: PanelContext, project: str, view: str, current: str) -> str:
    current_mark = ' aria-current="page"'
    links = "".join(
        f'<a href="{href(context.url, project=project, view=view, tab=tab)}"'
        f"{current_mark if tab == current else ''}>{e(label)}</a>"
        for tab, label in TABS
    )
    return (
        f"{_back(context, project)}<h2>View <code>{e(view)}</code></h2>"
        f'<nav class="tabs" aria-label="View">{links}</nav>'
    )


def _back(context: PanelContext, project: str) -> str:
    return f'<p class="small"><a href="{href(context.url, project=project)}">← All views</a></p>'


async def _view_page(
    request: Any,
    tessera: KernelSurface,
    project: str,
    name: str,
    draft: dict[str, Any] | None = None,
    found: list[ErrorItem] | None = None,
) -> str:
    context: PanelContext = request.state.panel
    service = ViewService(tessera)
    view = await service.get(project, name, context.principal)
    if draft is None and request.query_params.get("delete"):
        return await _delete_page(context, service, project, name)
    tab = request.query_params.get("tab", "builder") if draft is None else "builder"
    body = _tabs(context, project, name, tab)
    if tab == "versions":
        versions = await service.versions(project, name, context.principal)
        wanted = request.query_params.get("diff", "")
        diff = int(wanted) if wanted.isdigit() else None
        return body + versions_tab(context, project, name, versions, diff)
    if tab == "api":
        base_url = str(request.base_url).rstrip("/")
        meta = await service.meta(project, name, context.principal, base_url)
        return body + usage_tab(meta, await _collections_read(tessera, project, view))
    if draft is None:
        draft = {key: view[key] for key in Definition.model_fields if key in view}
        query = request.query_params
        if "base" in query:
            draft["base_collection"] = query["base"]
            draft.pop("join", None)
            if query.get("join"):
                draft["join"] = {"relation": query["join"]}
    builder = await _builder(request, tessera, project, name, view["version"], draft, found)
    return body + builder + delete_button(context, project, name)


async def _delete_page(
    context: PanelContext, service: ViewService, project: str, name: str, problem: str = ""
) -> str:
    versions = await service.versions(project, name, context.principal)
    return _back(context, project) + delete_card(context, project, name, len(versions), problem)


async def _collections_read(
    tessera: KernelSurface, project: str, view: dict[str, Any]
) -> list[str]:
    """The collections ``view`` reads: its base, and the one it joins (while it fits)."""
    read = [view["base_collection"]]
    relation = join_relation(view)
    if relation:
        catalog = await tessera.catalog.get(project)
        now = datetime.now(UTC)
        try:
            shape = skeleton(catalog, tessera.operators, now, read[0], relation)
        except ValidationFailed:
            return read
        if shape.join is not None:
            read.append(shape.join.target.name)
    return read


async def _builder(
    request: Any,
    tessera: KernelSurface,
    project: str,
    view: str | None,
    version: int,
    draft: dict[str, Any],
    found: list[ErrorItem] | None = None,
    name: str = "",
) -> str:
    """The builder tab for ``draft``, with the problems ``found`` by a failed save."""
    context: PanelContext = request.state.panel
    catalog = await tessera.catalog.get(project)
    collections = sorted(catalog.live_collections)
    if not collections:
        return '<p class="muted">Create a collection first: a view reads one.</p>'
    if draft.get("base_collection") not in collections:
        draft["base_collection"] = collections[0]
    now = datetime.now(UTC)
    join = join_relation(draft)
    notes: list[ErrorItem] = []
    try:
        shape = skeleton(catalog, tessera.operators, now, draft["base_collection"], join)
    except ValidationFailed as error:
        notes = list(error.items)
        draft.pop("join", None)
        shape = skeleton(catalog, tessera.operators, now, draft["base_collection"], None)
    state = BuilderState(
        project=project,
        view=view,
        version=version,
        draft=draft,
        choices=field_choices(shape, tessera.operators, now),
        relations=relation_targets(shape),
        collections=collections,
        name=name,
        problems=found or (),
    )
    shown = problems(notes, "The join was left out") if notes else ""
    first_rows = await _preview_html(tessera, project, draft, context)
    return (
        f"{shown}{base_picker(context, state)}"
        '<div class="view-builder-layout">'
        f'<section class="panel">{builder_form(context, state)}</section>'
        '<section class="panel view-preview" aria-labelledby="view-preview-title">'
        '<h2 id="view-preview-title">Preview</h2>'
        f'<div id="view-preview" aria-live="polite">{first_rows}</div></section></div>'
    )


async def _preview_html(
    tessera: KernelSurface, project: str, draft: dict[str, Any], context: PanelContext
) -> str:
    """The first rows of ``draft``, or what keeps it from running, naming the part."""
    try:
        definition = definition_from_draft(draft)
        page = await preview(tessera, project, definition, context.principal)
    except ValidationFailed as error:
        return problems(error.items, "This definition does not validate yet")
    except BadRequest as error:
        return problems(
            error.items, "The preview needs a value: give each required parameter an example"
        )
    except TesseraError as error:
        return problems(error.items, "The preview failed")
    return preview_rows(page, definition.projection)


def _form_draft(form: Any, tessera: KernelSurface, catalog: Any) -> dict[str, Any]:
    """The posted builder form as a draft, its values typed by the fields it offers."""
    base = str(form.get("base_collection") or "")
    join = str(form.get("join") or "") or None
    try:
        fields = skeleton(catalog, tessera.operators, datetime.now(UTC), base, join).fields
    except ValidationFailed:
        fields = {}
    return draft_from_form(form, fields, tessera.operators)


async def preview_fragment(request: Any, tessera: KernelSurface) -> str:
    """The live preview of the builder's current (unsaved) fields."""
    project = request.query_params.get("project", "")
    catalog = await tessera.catalog.get(project)
    draft = _form_draft(await request.form(), tessera, catalog)
    return await _preview_html(tessera, project, draft, request.state.panel)


async def handle(request: Any, tessera: KernelSurface) -> PanelRedirect | str:
    context: PanelContext = request.state.panel
    form = await request.form()
    query = request.query_params
    project, view = query.get("project", ""), query.get("view") or None
    service = ViewService(tessera)
    action = form.get("action")
    if action == "activate" and view is not None:
        wanted = str(form.get("version") or "")
        if not wanted.isdigit():
            raise ValidationFailed("choose a version to activate", code="invalid_version")
        version = int(wanted)
        await service.activate(project, view, version, context.principal)
        back = address(context.url, project=project, view=view, tab="versions")
        return PanelRedirect(back, f"Version {version} of {view} is active again.")
    if action == "delete" and view is not None:
        if str(form.get("confirm") or "").strip() != view:
            problem = f"Type {view} exactly to delete the view."
            picker, _ = await _project(request, tessera)
            return picker + await _delete_page(context, service, project, view, problem)
        await service.delete(project, view, context.principal)
        back = address(context.url, project=project)
        return PanelRedirect(back, f"View {view} and its versions deleted.")
    if action != "save":
        raise ValidationFailed("unknown form action", code="unknown_action")
    catalog = await tessera.catalog.get(project)
    draft = _form_draft(form, tessera, catalog)
    name = view or str(form.get("name") or "").strip()
    try:
        if view is not None:
            saved = await service.change(
                project, view, definition_from_draft(draft), context.principal
            )
        else:
            spec = new_view_from_draft(draft, name)
            saved = await service.create(project, spec, context.principal)
    except (ValidationFailed, Conflict) as error:
        picker, _ = await _project(request, tessera)
        if view is not None:
            return picker + await _view_page(request, tessera, project, view, draft, error.items)
        page = await _builder(request, tessera, project, None, 0, draft, error.items, name)
        return picker + page
    target = address(context.url, project=project, view=name)
    return PanelRedirect(target, f"Saved {name}: version {saved['version']} is active.")


PANELS = [
    AdminPanel(
        slug="views",
        title="Views",
        render=render,
        handle=handle,
        fragments={"preview": preview_fragment},
        order=15,
    )
]
