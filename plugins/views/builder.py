"""The builder tab: base collection and join, columns, filters (type-aware operators, a
value or a parameter), parameters, sort and limits, beside a live preview of the first rows.

The form works without a script (save, then see the preview); with the admin's script the
preview follows every edit (``data-live-fragment``), operators follow the chosen field (the
admin's filter builder), parameter and sort rows can be added (``data-repeat``) and a filter's
parameter menu offers the parameters typed so far (``data-options-from``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernel import ErrorItem, PanelContext
from plugins.views.form import PARAM_TYPES, FieldChoice, join_relation, value_text
from plugins.views.markup import e, href, option, problems

CELL_LIMIT = 80


@dataclass(frozen=True, slots=True)
class BuilderState:
    """What the builder shows: the project, the view (``None`` while new), its active
    version, the draft definition, the fields on offer and any problems to show."""

    project: str
    view: str | None
    version: int
    draft: dict[str, Any]
    choices: Sequence[FieldChoice]
    relations: dict[str, str]  # relation field → target collection
    collections: Sequence[str]
    name: str = ""
    problems: Sequence[ErrorItem] = ()


def base_picker(context: PanelContext, state: BuilderState) -> str:
    """A GET form choosing the base collection and the join: the fields offered follow."""
    base = state.draft.get("base_collection", "")
    join = join_relation(state.draft) or ""
    keep = (
        f'<input type="hidden" name="view" value="{e(state.view)}">'
        if state.view
        else '<input type="hidden" name="new" value="1">'
    )
    bases = "".join(option(name, name, name == base) for name in state.collections)
    joins = option("", "— no join —", not join) + "".join(
        option(field, f"{field} → {target}", field == join)
        for field, target in state.relations.items()
    )
    return (
        f'<form method="get" action="{e(context.url)}" class="filter-bar" data-base-picker>'
        f'<input type="hidden" name="project" value="{e(state.project)}">{keep}'
        f'<label class="field">Base collection <select name="base">{bases}</select></label>'
        f'<label class="field">Join through <select name="join">{joins}</select></label>'
        '<button type="submit" class="button">Apply</button>'
        '<p class="hint">Changing these changes the fields below; save to keep it.</p></form>'
    )


def _operator_menu(choices: Sequence[FieldChoice]) -> str:
    menu = {
        choice.name: {
            "label": choice.name,
            "operators": [
                {"name": op.name, "label": op.label, "shape": op.shape} for op in choice.operators
            ],
        }
        for choice in choices
    }
    text = json.dumps(menu).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="filter-operators">{text}</script>'


def _columns(state: BuilderState) -> str:
    chosen = list(state.draft.get("projection") or [])
    by_name = {choice.name: choice for choice in state.choices}
    ordered = [name for name in chosen if name in by_name]
    ordered += [choice.name for choice in state.choices if choice.name not in chosen]
    boxes = "".join(
        f'<label class="choice"><input type="checkbox" name="projection" value="{e(name)}"'
        f"{' checked' if name in chosen else ''}> {e(name)} "
        f'<span class="muted small">{e(by_name[name].type_name)}</span></label>'
        for name in ordered
    )
    return (
        '<fieldset class="field"><legend>Columns</legend>'
        f'<div class="choices view-columns">{boxes}</div></fieldset>'
    )


def _filter_row(state: BuilderState, index: int, spec: dict[str, Any]) -> str:
    by_name = {choice.name: choice for choice in state.choices}
    field = spec.get("field", "")
    fields = option("", "Field…", not field) + "".join(
        option(choice.name, choice.name, choice.name == field) for choice in state.choices
    )
    usable = by_name[field].operators if field in by_name else ()
    ops = "".join(
        f'<option value="{e(op.name)}" data-shape="{e(op.shape)}"'
        f"{' selected' if op.name == spec.get('op') else ''}>{e(op.label)}</option>"
        for op in usable
    )
    declared = [p.get("name", "") for p in state.draft.get("params") or [] if p.get("name")]
    bound = spec.get("param") or ""
    params = option("", "— the value —", not bound) + "".join(
        option(name, name, name == bound) for name in declared
    )
    value = "" if bound else value_text(spec.get("value"))
    return (
        '<div class="filter-row view-filter-row" data-filter-row>'
        f'<label class="visually-hidden" for="vf-field-{index}">Field</label>'
        f'<select id="vf-field-{index}" name="filter_field" data-filter-field>{fields}</select>'
        f'<label class="visually-hidden" for="vf-op-{index}">Condition</label>'
        f'<select id="vf-op-{index}" name="filter_op" data-filter-op>{ops}</select>'
        f'<label class="visually-hidden" for="vf-value-{index}">Value</label>'
        f'<input id="vf-value-{index}" name="filter_value" value="{e(value)}" '
        'placeholder="value" data-filter-value>'
        f'<label class="visually-hidden" for="vf-param-{index}">or parameter</label>'
        f'<select id="vf-param-{index}" name="filter_param" '
        f'data-options-from="[data-param-name]">{params}</select>'
        '<button type="button" class="link-button" data-remove-filter '
        'aria-label="Remove this filter">Remove</button></div>'
    )


def _filters(state: BuilderState) -> str:
    specs = [*(state.draft.get("filters") or []), {}]
    rows = "".join(_filter_row(state, index, spec) for index, spec in enumerate(specs, 1))
    return (
        '<fieldset class="field" data-filter-builder><legend>Filters</legend>'
        f"{_operator_menu(state.choices)}"
        '<p class="hint">Each filter compares a field with a value, or with a parameter the '
        "caller passes (<code>?customer_id=7</code>). The operators are those the field's "
        "type supports; <em>in</em> and <em>between</em> take comma-separated values.</p>"
        f'<div class="filter-rows" data-filter-rows>{rows}</div>'
        '<button type="button" class="button button-quiet" data-add-filter>+ Add filter</button>'
        "</fieldset>"
    )


def _param_row(index: int, spec: dict[str, Any]) -> str:
    kind = spec.get("type", "integer")
    types = "".join(option(name, name, name == kind) for name in PARAM_TYPES)
    required = option("no", "optional", not spec.get("required")) + option(
        "yes", "required", bool(spec.get("required"))
    )

    def box(part: str, label: str, value: Any, extra: str = "") -> str:
        return (
            f'<label class="field">{label} <input id="vp-{part}-{index}" name="param_{part}" '
            f'value="{e(value_text(value))}"{extra}></label>'
        )

    return (
        '<div class="view-param-row" data-repeat-row>'
        + box("name", "Name", spec.get("name"), ' data-param-name placeholder="customer_id"')
        + f'<label class="field">Type <select id="vp-type-{index}" name="param_type">'
        f"{types}</select></label>"
        f'<label class="field">Required <select id="vp-required-{index}" '
        f'name="param_required">{required}</select></label>'
        + box("default", "Default", spec.get("default"))
        + box("example", "Example", spec.get("example"))
        + box("description", "Description", spec.get("description"))
        + '<button type="button" class="link-button" data-repeat-remove '
        'aria-label="Remove this parameter">Remove</button></div>'
    )


def _params(state: BuilderState) -> str:
    specs = list(state.draft.get("params") or []) or [{}]
    rows = "".join(_param_row(index, spec) for index, spec in enumerate(specs, 1))
    return (
        '<fieldset class="field" data-repeat><legend>Parameters</legend>'
        '<p class="hint">Typed values the caller passes as query parameters; bind one to a '
        "filter above. The preview passes each its example.</p>"
        f"{rows}"
        '<button type="button" class="button button-quiet" data-repeat-add>+ Add parameter</button>'
        "</fieldset>"
    )


def _sort(state: BuilderState) -> str:
    keys = [part.partition(":") for part in (state.draft.get("sort") or "").split(",") if part]
    keys = keys or [("", "", "asc")]
    rows = []
    for index, (name, _, direction) in enumerate(keys, 1):
        fields = option("", "— field —", not name) + "".join(
            option(c.name, c.name, c.name == name) for c in state.choices if c.sortable
        )
        directions = option("asc", "ascending", direction != "desc") + option(
            "desc", "descending", direction == "desc"
        )
        rows.append(
            '<div class="view-sort-row" data-repeat-row>'
            f'<label class="field">Sort by <select id="vs-field-{index}" name="sort_field">'
            f"{fields}</select></label>"
            f'<label class="field">Direction <select id="vs-dir-{index}" name="sort_dir">'
            f"{directions}</select></label>"
            '<button type="button" class="link-button" data-repeat-remove '
            'aria-label="Remove this sort key">Remove</button></div>'
        )
    return (
        '<fieldset class="field" data-repeat><legend>Sort</legend>'
        + "".join(rows)
        + '<button type="button" class="button button-quiet" data-repeat-add>+ Then by</button>'
        '<p class="hint">Ties are broken by id, so pages never repeat or skip a row.</p>'
        "</fieldset>"
    )


def _limits(state: BuilderState) -> str:
    limit = state.draft.get("limit") or {}
    return (
        '<fieldset class="field"><legend>Rows per request</legend><div class="form-inline">'
        '<label class="field">Default <input name="limit_default" inputmode="numeric" '
        f'value="{e(limit.get("default", 25))}" class="input-small"></label>'
        '<label class="field">Maximum <input name="limit_max" inputmode="numeric" '
        f'value="{e(limit.get("max", 200))}" class="input-small"></label></div></fieldset>'
    )


def builder_form(context: PanelContext, state: BuilderState) -> str:
    """The builder form: posts ``action=save`` to the panel and its fields to the preview
    fragment as they change."""
    where = {"project": state.project, "view": state.view, "new": None if state.view else 1}
    draft = state.draft
    join = join_relation(draft) or ""
    naming = (
        ""
        if state.view
        else '<label class="field">Name <input name="name" required '
        f'pattern="[a-z][a-z0-9_]{{0,62}}" value="{e(state.name)}" '
        'placeholder="orders_by_customer"></label>'
    )
    shown = problems(state.problems, "Not saved: fix these parts") if state.problems else ""
    save = "Save view" if not state.view else f"Save as version {state.version + 1}"
    return (
        f"{shown}"
        f'<form method="post" action="{href(context.url, **where)}" class="stack view-builder" '
        f'id="view-builder" data-live-fragment="{href(context.fragment_url("preview"), **where)}" '
        'data-live-target="#view-preview">'
        f'{context.csrf_input()}<input type="hidden" name="action" value="save">'
        f'<input type="hidden" name="base_collection" value="{e(draft.get("base_collection"))}">'
        f'<input type="hidden" name="join" value="{e(join)}">'
        f"{naming}"
        '<label class="field">Description <input name="description" '
        f'value="{e(draft.get("description"))}"></label>'
        f"{_columns(state)}{_filters(state)}{_params(state)}{_sort(state)}{_limits(state)}"
        f'<div class="actions"><button type="submit" class="button button-primary">{e(save)}'
        "</button></div></form>"
    )


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    shown = json.dumps(value) if isinstance(value, dict | list | bool) else str(value)
    return e(shown if len(shown) <= CELL_LIMIT else shown[: CELL_LIMIT - 1] + "…")


def preview_rows(page: dict[str, Any], columns: Sequence[str]) -> str:
    """The preview's table of rows, as the API returned them."""
    rows = page["data"]
    if not rows:
        return '<p class="muted" data-preview-empty>No rows match (as you, right now).</p>'
    head = "".join(f'<th scope="col">{e(name)}</th>' for name in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(name))}</td>" for name in columns) + "</tr>"
        for row in rows
    )
    more = " More rows follow." if page["page"]["next_cursor"] else ""
    return (
        f'<p class="muted small">The first {len(rows)} rows, as the API returns them to you.'
        f"{more}</p>"
        f'<div class="table-wrap"><table data-preview-rows><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
