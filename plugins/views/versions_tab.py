"""The versions tab: every version of a view, a readable diff of any one against the
active version, and rollback (make it active) one click away."""

from __future__ import annotations

import json
from typing import Any

from kernel import PanelContext
from plugins.views.diff import PartChange, diff_definitions
from plugins.views.markup import e, grid, href


def _who(actor: dict[str, Any]) -> str:
    return str(actor.get("email") or actor.get("name") or actor.get("kind", ""))


def _activate_button(context: PanelContext, project: str, view: str, version: int) -> str:
    action = href(context.url, project=project, view=view, tab="versions")
    return (
        f'<form method="post" action="{action}" class="form-inline">{context.csrf_input()}'
        '<input type="hidden" name="action" value="activate">'
        f'<input type="hidden" name="version" value="{version}">'
        f'<button type="submit" class="button button-small">Activate version {version}</button>'
        "</form>"
    )


def _lines(lines: tuple[str, ...], marked: tuple[str, ...], sign: str, kind: str) -> str:
    """``lines`` one per row, those in ``marked`` flagged as removed or added."""
    items = []
    for line in lines:
        if line in marked:
            items.append(
                f'<li class="diff-{kind}"><span aria-hidden="true">{sign} </span>'
                f'<span class="visually-hidden">{kind}: </span>{e(line)}</li>'
            )
        else:
            items.append(f"<li>{e(line)}</li>")
    return f'<ul class="diff-lines">{"".join(items)}</ul>'


def _change_row(change: PartChange) -> list[str]:
    note = f'<p class="muted small">{e(change.note)}</p>' if change.note else ""
    return [
        f"<strong>{e(change.label)}</strong>{note}",
        _lines(change.before, change.removed, "−", "removed"),
        _lines(change.after, change.added, "+", "added"),
    ]


def diff_section(selected: dict[str, Any], active: dict[str, Any]) -> str:
    """Version ``selected`` against the ``active`` one, part by part."""
    changes = diff_definitions(selected["definition"], active["definition"])
    older, newer = selected["version"], active["version"]
    table = grid(
        ["Part", f"Version {older}", f"Active (version {newer})"],
        [_change_row(change) for change in changes],
        f"Version {older} and the active version define the same view.",
    )
    return (
        f'<section class="panel view-diff" data-diff aria-labelledby="diff-title">'
        f'<h2 id="diff-title">Version {older} compared with the active version {newer}</h2>'
        f"{table}"
        '<details><summary>Both definitions as JSON</summary><div class="two-up">'
        f"<pre>{e(_json(selected['definition']))}</pre>"
        f"<pre>{e(_json(active['definition']))}</pre></div></details></section>"
    )


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def versions_tab(
    context: PanelContext, project: str, view: str, versions: list[dict[str, Any]], diff: int | None
) -> str:
    """The table of versions (newest first) and, for ``diff``, its comparison."""
    active = next(item for item in versions if item["active"])
    rows = []
    for item in versions:
        number = item["version"]
        if item["active"]:
            state, compare, activate = (
                '<span class="badge badge-success">active</span>',
                "",
                "",
            )
        else:
            state = '<span class="badge badge-neutral">kept</span>'
            link = href(context.url, project=project, view=view, tab="versions", diff=number)
            compare = f'<a href="{link}">Compare with active</a>'
            activate = _activate_button(context, project, view, number)
        rows.append(
            [
                f"<strong>{number}</strong>",
                e(str(item["created_at"])[:19].replace("T", " ")),
                e(_who(item["created_by"])),
                state,
                compare,
                activate,
            ]
        )
    parts = [
        '<p class="lead">Every saved change is a version; one is active. Compare any version '
        "with the active one, and activate it to roll back.</p>",
        grid(["Version", "Saved", "By", "State", "", ""], rows, "No versions."),
    ]
    selected = next((item for item in versions if item["version"] == diff), None)
    if selected is not None and not selected["active"]:
        parts.append(diff_section(selected, active))
    return "".join(parts)
