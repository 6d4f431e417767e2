"""The platform's OpenAPI document (``/openapi.json``): FastAPI's, completed with what every
route answers because of the request pipeline and the error handlers, not its own code.

A route documents its success shape (``response_model=``) and the errors its own logic
raises (``responses=error_responses(...)``, :mod:`kernel.api.responses`). The rest follows
from the route's shape and is added here, so a new route, a plugin's included, is described
truthfully without repeating it (:func:`pipeline_errors` says which and why). FastAPI's own
422 body (``{"detail": ...}``) is never sent: the error handlers answer with the error body
of API.md, and the document says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from kernel.api.deps import current_principal
from kernel.api.responses import ERROR_MEANINGS, ErrorBody

REF_PREFIX = "#/components/schemas/"
#: How a caller authenticates (API.md, Conventions).
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY = [{"bearer": []}, {"apiKey": []}]
#: FastAPI's validation error schemas, which describe a body the server never sends.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def pipeline_errors(
    *,
    authenticated: bool,
    path_params: bool,
    query_params: bool,
    body: bool,
    typed_path: bool,
    project_route: bool,
    quotas: bool,
) -> set[int]:
    """The error statuses a route of this shape can answer whatever its own code does.

    - 503 on every route: the authentication step looks an API key up in the database,
      and every database connection may be busy.
    - 401 and 403 where the route needs the caller: bad or missing credentials, or
      credentials that are not enough (another project's, a missing scope).
    - 404 with path parameters: a path naming nothing (an unknown project, NUL in it).
    - 400 with query parameters or a body: a malformed value, JSON that does not parse.
    - 413 and 422 with a body: over the size limit; values that break the schema.
    - 422 with a typed path parameter (an integer id) that does not parse.
    - 429 on project routes when a quota policy is enabled.
    """
    statuses = {503}
    if authenticated:
        statuses |= {401, 403}
    if path_params:
        statuses.add(404)
    if query_params or body:
        statuses.add(400)
    if body:
        statuses |= {413, 422}
    if typed_path:
        statuses.add(422)
    if project_route and quotas:
        statuses.add(429)
    return statuses


def error_schema_components(name: str = "ErrorBody") -> dict[str, Any]:
    """The error body's schema as ``components/schemas`` entries: ``name``, and the
    schemas it refers to."""
    schema = ErrorBody.model_json_schema(ref_template=REF_PREFIX + "{model}")
    definitions = schema.pop("$defs", {})
    return {**definitions, name: schema}


def error_response(status: int, name: str = "ErrorBody") -> dict[str, Any]:
    """A response of ``status`` with the error body (the ``name`` schema of components)."""
    return {
        "description": ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": f"{REF_PREFIX}{name}"}}},
    }


def _typed(parameter: dict[str, Any]) -> bool:
    """A path parameter FastAPI validates (an integer), answering 422 when it does not parse."""
    return parameter["in"] == "path" and parameter.get("schema", {}).get("type") != "string"


def _needs_caller(dependant: Dependant) -> bool:
    return any(
        dependency.call is current_principal or _needs_caller(dependency)
        for dependency in dependant.dependencies
    )


def _add_errors(operation: dict[str, Any], statuses: Iterable[int]) -> None:
    """Document ``statuses`` (keeping a route's own description of one) and drop FastAPI's
    422 where the route cannot answer 422 (its query errors are 400s)."""
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        existing = responses.get(str(status))
        if existing is None or _is_fastapi_validation(existing):
            responses[str(status)] = error_response(status)
    if _is_fastapi_validation(responses.get("422", {})):
        del responses["422"]


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref") == f"{REF_PREFIX}HTTPValidationError"


def complete_document(
    document: dict[str, Any], routes: Iterable[Any], *, quotas: bool
) -> dict[str, Any]:
    """``document`` (FastAPI's, for ``routes``) with every operation's pipeline errors
    (:func:`pipeline_errors`) and security added, and FastAPI's validation error schema
    replaced by the error body. Changes ``document`` in place and returns it."""
    callers = {
        (route.path_format, method.lower()): _needs_caller(route.dependant)
        for route in iter_route_contexts(routes)
        if isinstance(route.original_route, APIRoute)
        for method in route.methods or ()
    }
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    for name, schema in error_schema_components().items():
        schemas.setdefault(name, schema)
    components["securitySchemes"] = {**SECURITY_SCHEMES, **components.get("securitySchemes", {})}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = operation.get("parameters", ())
            places = {parameter["in"] for parameter in parameters}
            authenticated = callers.get((path, method), False)
            statuses = pipeline_errors(
                authenticated=authenticated,
                path_params="path" in places,
                query_params="query" in places,
                body="requestBody" in operation,
                typed_path=any(_typed(parameter) for parameter in parameters),
                project_route=path.startswith("/api/projects/{project_id}"),
                quotas=quotas,
            )
            _add_errors(operation, statuses)
            if authenticated:
                operation.setdefault("security", SECURITY)
    return document
