"""``GET .../views/{v}/meta``: everything a client needs to call a view, with examples
that work when pasted (the API key is read from ``$TESSERA_API_KEY``)."""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import urlencode

from kernel import Operator, Registry
from kernel.expr import supports
from plugins.views.definition import CompiledView

#: What the TypeScript example declares for each field type's JSON value.
TS_TYPES = {
    "integer": "number",
    "float": "number",
    "boolean": "boolean",
    "relation": "number",
    "system_id": "number",
    "json": "unknown",
}
#: An example for a parameter that declares none.
PLACEHOLDERS = {
    "integer": 1,
    "float": 1.5,
    "string": "text",
    "boolean": True,
    "date": "2026-01-31",
    "datetime": "2026-01-31T12:00:00Z",
}


def describe_meta(
    view: CompiledView,
    base_url: str,
    project_id: str,
    name: str,
    sort: str | None,
    operators: Registry[Operator],
) -> dict[str, Any]:
    path = f"/api/projects/{project_id}/views/{name}"
    params = [
        {
            "name": spec.name,
            "type": spec.type,
            "required": spec.required,
            "example": _example(spec),
            "default": spec.default,
            "description": spec.description,
        }
        for spec in view.params.values()
    ]
    template = "&".join(f"{p['name']}={{{p['name']}}}" for p in params)
    fields = {name: view.fields[name] for name in view.projection}
    example_query = {p["name"]: _text(p["example"]) for p in params if p["example"] is not None}
    url = f"{base_url}{path}" + (f"?{urlencode(example_query)}" if example_query else "")
    limit = view.definition.limit
    return {
        "url_template": f"{base_url}{path}" + (f"?{template}" if template else ""),
        "method": "GET",
        "auth": [
            {"type": "bearer", "header": "Authorization", "format": "Bearer <token>"},
            {"type": "api_key", "header": "X-API-Key", "scope": "records:read"},
        ],
        "params": params,
        "filters": [
            {
                "field": field_name,
                "type": field.type_name,
                "operators": sorted(
                    op_name for op_name, op in operators.items() if supports(type(field.type), op)
                ),
            }
            for field_name, field in fields.items()
        ],
        "sort": {
            "fields": [n for n, field in fields.items() if field.type.sortable],
            "default": sort,
        },
        "pagination": {
            "mode": "cursor",
            "default_limit": limit.default,
            "max_limit": limit.max,
            "cursor_param": "cursor",
            "next_cursor": "page.next_cursor",
        },
        "response": {"fields": {n: field.type_name for n, field in fields.items()}},
        "examples": {
            "curl": f'curl -sS -H "X-API-Key: $TESSERA_API_KEY" {shlex.quote(url)}',
            "fetch": _fetch(url, fields),
            "axios": _axios(f"{base_url}{path}", example_query),
            "postman_url": url,
        },
    }


def _example(spec: Any) -> Any:
    if spec.example is not None:
        return spec.example
    if spec.default is not None:
        return spec.default
    return PLACEHOLDERS[spec.type]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fetch(url: str, fields: dict[str, Any]) -> str:
    row = "; ".join(
        f"{json.dumps(n)}: {TS_TYPES.get(f.type_name, 'string')} | null" for n, f in fields.items()
    )
    return (
        f"const response = await fetch({json.dumps(url)}, {{\n"
        '  headers: { "X-API-Key": process.env.TESSERA_API_KEY ?? "" },\n'
        "});\n"
        f"const page: {{ data: {{ {row} }}[]; page: {{ limit: number; "
        "next_cursor: string | null } } = await response.json();"
    )


def _axios(url: str, query: dict[str, str]) -> str:
    return (
        f"const {{ data: page }} = await axios.get({json.dumps(url)}, {{\n"
        f"  params: {json.dumps(query)},\n"
        '  headers: { "X-API-Key": process.env.TESSERA_API_KEY },\n'
        "});"
    )
