"""``GET /api/projects/{p}/openapi.json``: one project's generated API, typed per collection.

The document is OpenAPI 3.1 (JSON Schema 2020-12): each collection gets a record schema,
a create schema (required fields required) and an update schema (everything optional),
built from the field types' own ``json_schema``; the create and update schemas also carry
what the field rules say in JSON Schema (``minLength``, ``maximum``, ``pattern``, ``enum``:
:meth:`kernel.rules.RuleType.json_schema`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response

from kernel.api.deps import PrincipalDep, TesseraDep
from kernel.api.openapi import (
    SECURITY,
    SECURITY_SCHEMES,
    error_response,
    error_schema_components,
    pipeline_errors,
)
from kernel.api.records import DEFAULT_MAX_LIMIT
from kernel.api.responses import json_response
from kernel.catalog.model import CollectionDef, FieldDef, ProjectCatalog
from kernel.catalog.system import SYSTEM_FIELDS
from kernel.numbers import INT64_MAX
from kernel.records.includes import includable
from kernel.records.runtime import runtime_for
from kernel.records.validation import rules_for
from kernel.security.access import require_member

router = APIRouter(prefix="/api/projects/{project_id}", tags=["schema"])


def _pascal(name: str) -> str:
    """``line_items`` → ``LineItems``; one-to-one, so schema names and operation ids never
    collide: a part that cannot start with a capital (empty, or a digit) keeps its ``_``
    (``x_1`` → ``X_1`` next to ``x1`` → ``X1``; ``a__b`` → ``A_B`` next to ``a_b`` → ``AB``)."""
    return "".join(
        part.capitalize() if part[:1].isalpha() else f"_{part}" for part in name.split("_")
    )


#: Keywords where the tighter of two bounds wins.
_LOWER_BOUNDS = ("minimum", "minLength")
_UPPER_BOUNDS = ("maximum", "maxLength")


def _tighten(schema: dict[str, Any], keywords: Mapping[str, Any]) -> None:
    """Add ``keywords`` to ``schema`` so that a value must satisfy both (the tighter bound,
    the common ``enum`` values, any other keyword given twice under ``allOf``)."""
    for keyword, value in keywords.items():
        present = schema.get(keyword)
        if present is None:
            schema[keyword] = value
        elif keyword in _LOWER_BOUNDS:
            schema[keyword] = max(present, value)
        elif keyword in _UPPER_BOUNDS:
            schema[keyword] = min(present, value)
        elif keyword == "enum":
            schema[keyword] = [item for item in present if item in value]
        else:  # two patterns, say: both must match
            schema.setdefault("allOf", []).append({keyword: value})


def _value_schema(
    field: FieldDef, nullable: bool, rules: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    schema = dict(field.type.json_schema()) if field.type else {}
    for keywords in rules:
        _tighten(schema, keywords)
    if field.display_name:
        schema.setdefault("title", field.display_name)
    if nullable:
        return {"anyOf": [schema, {"type": "null"}]} if schema else {}
    return schema


def collection_schemas(
    collection: CollectionDef, rules: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> dict[str, dict[str, Any]]:
    """The record, create and update schemas of ``collection``; ``rules`` maps a column to
    the JSON Schema keywords of each of its field rules (in the bodies only: stored
    records may predate a rule)."""
    name = _pascal(collection.name)
    fields = list(collection.live_fields.values())
    rules = rules or {}
    record = {
        "type": "object",
        "required": [*SYSTEM_FIELDS, *(f.column for f in fields if f.required)],
        "properties": {
            **{key: f.type.json_schema() for key, f in SYSTEM_FIELDS.items()},
            **{f.column: _value_schema(f, not f.required) for f in fields},
        },
    }
    create = {
        "type": "object",
        "additionalProperties": False,
        "required": [f.column for f in fields if f.required and not f.has_default],
        "properties": {
            f.column: _value_schema(f, not f.required, rules.get(f.column, ())) for f in fields
        },
    }
    update = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            f.column: _value_schema(f, not f.required, rules.get(f.column, ())) for f in fields
        },
    }
    return {f"{name}Record": record, f"{name}Create": create, f"{name}Update": update}


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _errors(*own: int, query: bool = False, body: bool = False, quotas: bool) -> dict[str, Any]:
    """The error responses of a records operation: ``own`` (what its code refuses) and
    what the request pipeline answers any operation of this shape
    (:func:`kernel.api.openapi.pipeline_errors`)."""
    statuses = set(own) | pipeline_errors(
        authenticated=True,
        path_params=True,
        query_params=query,
        body=body,
        typed_path=False,  # a record id that is not one names no record: 404
        project_route=True,
        quotas=quotas,
    )
    return {str(status): error_response(status, "Error") for status in sorted(statuses)}


def collection_paths(
    project_id: str, collection: CollectionDef, *, max_limit: int, quotas: bool
) -> dict[str, Any]:
    name = _pascal(collection.name)
    base = f"/api/projects/{project_id}/collections/{collection.name}"
    record_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
    }
    sortable = [f.column for f in collection.live_fields.values() if f.type.sortable]
    page = {
        "type": "object",
        "required": ["data", "page"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}Record"}},
            "page": {"$ref": "#/components/schemas/Page"},
        },
    }
    list_parameters = [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_limit},
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {
            "name": "sort",
            "in": "query",
            "schema": {"type": "string"},
            "description": "field:asc|desc, comma-separated; sortable: "
            + ", ".join(["id", "created_at", "updated_at", *sortable]),
        },
        {
            "name": "filter",
            "in": "query",
            "style": "deepObject",
            "explode": True,
            "schema": {"type": "object"},
            "description": "filter[field]=value or filter[field][op]=value",
        },
    ]
    tag = collection.name
    return {
        f"{base}/records": {
            "get": {
                "tags": [tag],
                "summary": f"List {collection.display_name}",
                "operationId": f"list{name}",
                "parameters": list_parameters,
                "responses": {
                    "200": {
                        "description": "a page",
                        "content": {"application/json": {"schema": page}},
                    },
                    **_errors(query=True, quotas=quotas),
                },
            },
            "post": {
                "tags": [tag],
                "summary": f"Create a {collection.display_name} record",
                "operationId": f"create{name}",
                "requestBody": {"required": True, **_json(f"{name}Create")},
                "responses": {
                    "201": {"description": "created", **_json(f"{name}Record")},
                    **_errors(409, body=True, quotas=quotas),
                },
            },
        },
        f"{base}/records/{{id}}": {
            "parameters": [record_id],
            "get": {
                "tags": [tag],
                "operationId": f"get{name}",
                "responses": {
                    "200": {"description": "the record", **_json(f"{name}Record")},
                    **_errors(quotas=quotas),
                },
            },
            "patch": {
                "tags": [tag],
                "operationId": f"update{name}",
                "requestBody": {"required": True, **_json(f"{name}Update")},
                "responses": {
                    "200": {"description": "updated", **_json(f"{name}Record")},
                    **_errors(409, body=True, quotas=quotas),
                },
            },
            "delete": {
                "tags": [tag],
                "operationId": f"delete{name}",
                "responses": {
                    "204": {"description": "deleted"},
                    **_errors(409, quotas=quotas),
                },
            },
        },
        f"{base}/validate": {
            "post": {
                "tags": [tag],
                "summary": f"Check a {collection.display_name} record without writing it",
                "operationId": f"validate{name}",
                "requestBody": {"required": True, **_json(f"{name}Create")},
                "responses": {
                    "200": {"description": "the verdict", **_json("Validation")},
                    **_errors(body=True, quotas=quotas),
                },
            },
        },
    }


def _describe_includes(
    catalog: ProjectCatalog,
    collection: CollectionDef,
    visible: Callable[[str], bool],
    schemas: dict[str, Any],
    paths: dict[str, Any],
) -> None:
    """Add the ``include`` parameter to the collection's reads and the expanded records
    (optional properties) to its record schema, for the includes whose collection
    ``visible`` admits."""
    offered = [i for i in includable(catalog, collection) if visible(i.collection)]
    if not offered:
        return
    properties = schemas[f"{_pascal(collection.name)}Record"]["properties"]
    for include in offered:
        target = {"$ref": f"#/components/schemas/{_pascal(include.collection)}Record"}
        properties[include.name] = (
            {"anyOf": [target, {"type": "null"}], "description": "with include"}
            if include.forward
            else {"type": ["array", "null"], "items": target, "description": "with include"}
        )
    parameter = {
        "name": "include",
        "in": "query",
        "schema": {"type": "string"},
        "description": "comma-separated, one hop: " + ", ".join(i.name for i in offered),
    }
    base = f"/api/projects/{catalog.project.id}/collections/{collection.name}/records"
    paths[base]["get"]["parameters"].append(parameter)
    paths[f"{base}/{{id}}"]["get"]["parameters"] = [parameter]


def project_openapi(
    catalog: ProjectCatalog,
    visible: Callable[[str], bool] = lambda name: True,
    *,
    deployment_max_limit: int = DEFAULT_MAX_LIMIT,
    quotas: bool = False,
    rules: Callable[[CollectionDef], Mapping[str, Sequence[Mapping[str, Any]]]] = lambda c: {},
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one project's records API, limited to the collections
    ``visible`` admits (a key restricted to some collections learns of no others).

    ``deployment_max_limit`` is the largest page unless the project sets its own;
    ``quotas``: a quota policy is enabled, so any operation may answer 429; ``rules``
    gives a collection's rule keywords by column (see :func:`collection_schemas`)."""
    project = catalog.project
    max_limit = project.settings.max_page_limit or deployment_max_limit
    schemas: dict[str, Any] = {
        **error_schema_components("Error"),
        "Page": {
            "type": "object",
            "required": ["limit", "next_cursor"],
            "properties": {
                "limit": {"type": "integer"},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "Validation": {
            "type": "object",
            "required": ["valid", "errors"],
            "properties": {
                "valid": {"type": "boolean"},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorItem"}},
            },
        },
    }
    paths: dict[str, Any] = {}
    for collection in sorted(catalog.live_collections.values(), key=lambda c: c.name):
        if not visible(collection.name):
            continue
        schemas.update(collection_schemas(collection, rules(collection)))
        paths.update(collection_paths(project.id, collection, max_limit=max_limit, quotas=quotas))
        _describe_includes(catalog, collection, visible, schemas, paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{project.name} — Tessera API",
            "version": str(project.catalog_version),
            "description": f"Records API of project {project.id}, generated from its catalog.",
        },
        "servers": [{"url": "/"}],
        "security": SECURITY,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@router.get(
    "/openapi.json",
    summary="OpenAPI 3.1 document of this project's records API",
    response_model=dict[str, Any],
)
async def get_project_openapi(
    project_id: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    catalog = await tessera.catalog.get(project_id, fresh=True)
    require_member(principal, project_id)
    now = datetime.now(UTC)

    def rules(collection: CollectionDef) -> dict[str, list[dict[str, Any]]]:
        queryable = runtime_for(catalog, collection, tessera.operators, now).queryable
        bound = rules_for(catalog, collection, queryable, tessera.rule_types, tessera.operators)
        return bound.json_schemas()

    document = project_openapi(
        catalog,
        principal.may_use,
        deployment_max_limit=tessera.settings.max_page_limit,
        quotas=bool(tessera.quota_policies),
        rules=rules,
    )
    for _, returned in tessera.plugins.call_each(
        "project_openapi_paths", tessera=tessera, catalog=catalog, visible=principal.may_use
    ):
        added = await returned if inspect.isawaitable(returned) else returned
        for path, item in added.items():
            document["paths"].setdefault(path, item)
    document["info"]["x-generated-at"] = datetime.now(UTC).isoformat()
    return json_response(document)
