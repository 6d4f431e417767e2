"""Each view in its project's OpenAPI document: its parameters and its typed rows
(hook ``project_openapi_paths``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kernel import KernelSurface, ProjectCatalog, TesseraError
from plugins.views.definition import CompiledView, Definition, compile_definition
from plugins.views.tables import active_views, views

PARAM_SCHEMAS = {
    "integer": {"type": "integer", "format": "int64"},
    "float": {"type": "number"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


async def view_paths(
    tessera: KernelSurface, catalog: ProjectCatalog, visible: Callable[[str], bool]
) -> dict[str, Any]:
    """``GET /api/projects/{p}/views/{v}`` of every view whose collections the caller may
    learn of; a view that no longer compiles is left out."""
    project_id = catalog.project.id
    async with tessera.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                active_views().where(views.c.project_id == project_id).order_by(views.c.name)
            )
        ).all()
    paths: dict[str, Any] = {}
    now = datetime.now(UTC)
    for row in rows:
        try:
            view = compile_definition(
                Definition.model_validate(row.definition),
                catalog,
                tessera.operators,
                now,
                lenient=True,
            )
        except TesseraError:
            continue
        involved = [view.base.name] + ([view.join.target.name] if view.join else [])
        if all(visible(name) for name in involved):
            paths[f"/api/projects/{project_id}/views/{row.name}"] = {"get": _operation(row, view)}
    return paths


def _operation(row: Any, view: CompiledView) -> dict[str, Any]:
    limit = view.definition.limit
    parameters = [
        {
            "name": spec.name,
            "in": "query",
            "required": spec.required,
            "schema": PARAM_SCHEMAS[spec.type],
            **({"example": spec.example} if spec.example is not None else {}),
            **({"description": spec.description} if spec.description else {}),
        }
        for spec in view.params.values()
    ]
    parameters += [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": limit.max},
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "sort", "in": "query", "schema": {"type": "string"}},
    ]
    properties = {}
    for name in view.projection:
        field = view.fields[name]
        schema = {
            key: value for key, value in field.type.json_schema().items() if key != "readOnly"
        }
        properties[name] = {"anyOf": [schema, {"type": "null"}]}
    row_schema = {"type": "object", "properties": properties, "required": list(properties)}
    page = {
        "type": "object",
        "required": ["data", "page"],
        "properties": {
            "data": {"type": "array", "items": row_schema},
            "page": {"$ref": "#/components/schemas/Page"},
        },
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "summary": view.definition.description or f"View {row.name}",
        "operationId": f"view_{row.name}",
        "tags": ["views"],
        "parameters": parameters,
        "responses": {
            "200": {"description": "One page", "content": {"application/json": {"schema": page}}},
            "400": {"description": "A parameter or query is invalid", "content": error},
            "403": {"description": "Not allowed", "content": error},
            "404": {"description": "No such view", "content": error},
        },
    }
