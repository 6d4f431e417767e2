"""The generated records API (API.md, "Records"): thin, fast routes over RecordService.

Responses over an old name (a renamed collection or field within its grace period) carry
``Deprecation: true`` and a ``Link`` to the successor, so clients learn to move on.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response

from kernel.api.deps import JsonBody, PrincipalDep, TesseraDep
from kernel.api.responses import (
    ErrorItem,
    Page,
    Shape,
    error_responses,
    record_json_response,
)
from kernel.config import Settings
from kernel.errors import NotFound
from kernel.query import query_items
from kernel.query.contract import include_names
from kernel.records.service import Outcome

router = APIRouter(prefix="/api/projects/{project_id}/collections/{collection}", tags=["records"])

#: The page size's maximum unless the deployment or the project sets another.
DEFAULT_MAX_LIMIT = Settings.model_fields["max_page_limit"].default
_INCLUDE = {
    "name": "include",
    "in": "query",
    "schema": {"type": "string"},
    "example": "customer",
    "description": "relations to expand, comma-separated, one hop (see the Relations docs)",
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
_LIST_PARAMETERS = {
    "parameters": [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": DEFAULT_MAX_LIMIT},
            "description": f"page size; at most {DEFAULT_MAX_LIMIT} unless the deployment or "
            "the project sets another maximum (the project's own document has its exact one)",
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "sort", "in": "query", "schema": {"type": "string"}, "example": "created_at:desc"},
        {
            "name": "filter",
            "in": "query",
            "style": "deepObject",
            "explode": True,
            "schema": {"type": "object"},
            "description": "filter[field]=value or filter[field][op]=value",
        },
        _INCLUDE,
    ]
}


class Record(Shape):
    """A record: its system fields, then one key per field of its collection (the
    project's document, ``GET /api/projects/{p}/openapi.json``, types each)."""

    id: int
    created_at: datetime
    updated_at: datetime


class Validation(Shape):
    valid: bool
    errors: list[ErrorItem]


def _record_id(raw: str) -> int:
    # Record ids are BIGINT: anything that is not a non-negative 64-bit integer names no record.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > 2**63 - 1:
        raise NotFound(f"record {raw!r} not found", code="record_not_found")
    return int(raw)


def _include_param(query: bytes) -> tuple[str, ...]:
    """The relations a record request's ``include`` parameters name (``query``: raw)."""
    items = query_items(query.decode("latin-1"))
    return include_names(value for key, value in items if key == "include")


def deprecation_headers(request: Request, outcome: Outcome) -> dict[str, str] | None:
    """``Deprecation``/``Link`` headers when the request used an old name."""
    if outcome.collection_alias is None and not outcome.aliases:
        return None
    headers = {"Deprecation": "true"}
    path = request.url.path
    if outcome.collection_alias is not None:
        old = outcome.collection_alias.old_name
        path = path.replace(f"/collections/{old}", f"/collections/{outcome.collection.name}", 1)
        headers["Link"] = f'<{path}>; rel="successor-version"'
    if outcome.aliases:
        renamed = []
        for alias in outcome.aliases:
            field = outcome.collection.field_by_id(alias.field_id) if alias.field_id else None
            if field is not None:
                renamed.append(f"{alias.old_name}={field.name}")
        if renamed:
            headers["Tessera-Renamed-Fields"] = ", ".join(sorted(set(renamed)))
        headers.setdefault("Link", f'<{path}>; rel="successor-version"')
    return headers


def _respond(request: Request, outcome: Outcome, status: int = 200) -> Response:
    return record_json_response(outcome.data, status, deprecation_headers(request, outcome))


@router.get(
    "/records",
    summary="List records (query contract)",
    response_model=Page[Record],
    openapi_extra=_LIST_PARAMETERS,
)
async def list_records(
    project_id: str, collection: str, request: Request, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    # What request.query_params.multi_items() gives, without building the multidict.
    items = query_items(request.scope["query_string"].decode("latin-1"))
    outcome = await tessera.records.list(project_id, collection, items, principal)
    return _respond(request, outcome)


@router.post(
    "/records",
    status_code=201,
    summary="Create a record",
    response_model=Record,
    responses=error_responses(409),
    openapi_extra=_BODY,
)
async def create_record(
    project_id: str,
    collection: str,
    request: Request,
    body: JsonBody,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    outcome = await tessera.records.create(project_id, collection, body, principal)
    return _respond(request, outcome, 201)


@router.get(
    "/records/{record_id}",
    summary="Read a record",
    response_model=Record,
    openapi_extra={"parameters": [_INCLUDE]},
)
async def get_record(
    project_id: str,
    collection: str,
    record_id: str,
    request: Request,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    query: bytes = request.scope["query_string"]
    include = _include_param(query) if query else ()
    outcome = await tessera.records.get(
        project_id, collection, _record_id(record_id), principal, include
    )
    return _respond(request, outcome)


@router.patch(
    "/records/{record_id}",
    summary="Update some fields of a record",
    response_model=Record,
    responses=error_responses(409),
    openapi_extra=_BODY,
)
async def update_record(
    project_id: str,
    collection: str,
    record_id: str,
    request: Request,
    body: JsonBody,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    outcome = await tessera.records.update(
        project_id, collection, _record_id(record_id), body, principal
    )
    return _respond(request, outcome)


@router.delete(
    "/records/{record_id}",
    status_code=204,
    summary="Delete a record",
    responses=error_responses(409),
)
async def delete_record(
    project_id: str,
    collection: str,
    record_id: str,
    request: Request,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    outcome = await tessera.records.delete(project_id, collection, _record_id(record_id), principal)
    return Response(status_code=204, headers=deprecation_headers(request, outcome))


@router.post(
    "/validate",
    summary="Check a record against the schema without writing it",
    response_model=Validation,
    openapi_extra=_BODY,
)
async def validate_record(
    project_id: str,
    collection: str,
    request: Request,
    body: JsonBody,
    tessera: TesseraDep,
    principal: PrincipalDep,
) -> Response:
    outcome = await tessera.records.validate(project_id, collection, body, principal)
    return _respond(request, outcome)
