"""Preview an unsaved definition: its first rows, through the API's own validation and
policy-checked runtime, as the person building it."""

from __future__ import annotations

from typing import Any

from kernel import KernelSurface, Principal
from kernel.security.access import require_schema_reader
from plugins.views.definition import Definition
from plugins.views.form import value_text
from plugins.views.runner import view_runner
from plugins.views.service import ViewService

PREVIEW_ROWS = 5


def preview_query(definition: Definition, rows: int) -> list[tuple[str, str]]:
    """The query a preview runs: ``rows`` rows (within the view's maximum), each parameter
    set to its example, or else its default."""
    items = [("limit", str(min(rows, definition.limit.max)))]
    for param in definition.params:
        value = param.example if param.example is not None else param.default
        if value is not None:
            items.append((param.name, value_text(value)))
    return items


async def preview(
    tessera: KernelSurface,
    project_id: str,
    definition: Definition,
    principal: Principal,
    rows: int = PREVIEW_ROWS,
) -> dict[str, Any]:
    """The first ``rows`` rows of ``definition`` as ``principal`` would get them from the
    saved view: 422 naming the part for a definition that does not validate, 400 naming a
    required parameter without an example, 403 for anyone who may not define views."""
    require_schema_reader(principal, project_id)
    await ViewService(tessera).compile(project_id, definition)
    runner = view_runner(tessera)
    return await runner.run_unsaved(
        project_id, definition, preview_query(definition, rows), principal
    )
