"""The confirmation a view's deletion asks for: what goes with it, and the view's name
typed back (like deleting a project), posted with ``action=delete``."""

from __future__ import annotations

from kernel import PanelContext
from plugins.views.markup import e, href


def delete_button(context: PanelContext, project: str, view: str) -> str:
    """The link from a view's page to its confirmation."""
    link = href(context.url, project=project, view=view, delete=1)
    return f'<p class="actions"><a class="button button-danger" href="{link}">Delete view</a></p>'


def delete_card(
    context: PanelContext, project: str, view: str, versions: int, problem: str = ""
) -> str:
    """The confirmation for deleting ``view`` with its ``versions`` versions; ``problem`` is
    what was wrong with the last try."""
    page = href(context.url, project=project, view=view)
    invalid = " field-invalid" if problem else ""
    described = ' aria-describedby="view-delete-problem"' if problem else ""
    shown = f'<p class="field-error" id="view-delete-problem">{e(problem)}</p>' if problem else ""
    plural = "" if versions == 1 else "s"
    return (
        '<section class="confirm-card" data-view-delete>'
        f"<h2>Delete view <code>{e(view)}</code>?</h2>"
        f"<p>Its {versions} version{plural} go with it, and its endpoint "
        f"<code>GET /api/projects/{e(project)}/views/{e(view)}</code> answers 404 from then "
        "on: apps calling it stop working. It cannot be undone.</p>"
        f'<form method="post" action="{page}" class="stack" novalidate>'
        f'{context.csrf_input()}<input type="hidden" name="action" value="delete">'
        f'<div class="field{invalid}"><label for="view-delete-confirm">Type the view name, '
        f"{e(view)}, to confirm</label>"
        '<input id="view-delete-confirm" name="confirm" type="text" required autocomplete="off" '
        f'autocapitalize="off" spellcheck="false"{described}>{shown}</div>'
        '<div class="actions">'
        '<button type="submit" class="button button-danger">Delete this view</button>'
        f'<a class="button button-quiet" href="{page}">Cancel</a></div></form></section>'
    )
