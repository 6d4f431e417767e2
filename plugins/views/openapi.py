"""Each view in its project's OpenAPI document: its parameters and its typed rows
(hook ``project_openapi_paths``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernel import KernelSurface, ProjectCatalog
from plugins.views.cache import view_cache
from plugins.views.definition import CompiledView

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
    learn of; a view that no longer compiles is left out. The views come compiled from the
    process's view cache (:meth:`ViewCache.every_active`): a warm document compiles none."""
    project_id = catalog.project.id
    paths: dict[str, Any] = {}
    for name, active in await view_cache(tessera).every_active(catalog):
        view = active.view
        involved = [view.base.name] + ([view.join.target.name] if view.join else [])
        if all(visible(collection) for collection in involved):
            paths[f"/api/projects/{project_id}/views/{name}"] = {"get": _operation(name, view)}
    return paths


def _operation(name: str, view: CompiledView) -> dict[str, Any]:
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
        "summary": view.definition.description or f"View {name}",
        "operationId": f"view_{name}",
        "tags": ["views"],
        "parameters": parameters,
        "responses": {
            "200": {"description": "One page", "content": {"application/json": {"schema": page}}},
            "400": {"description": "A parameter or query is invalid", "content": error},
            "403": {"description": "Not allowed", "content": error},
            "404": {"description": "No such view", "content": error},
        },
    }
