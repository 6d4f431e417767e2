"""The one place where exceptions become the error body of API.md."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from kernel.api.responses import json_response
from kernel.db.pool import PoolTimeout
from kernel.errors import TesseraError

if TYPE_CHECKING:
    from kernel.config import Settings

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"field": field, "code": code, "message": message}]}


def error_response(error: TesseraError) -> Response:
    """The response for ``error``: its status, its error body, its headers."""
    return json_response(error.body(), error.status, headers=error.headers)


async def tessera_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, TesseraError)
    return error_response(error)


async def http_error(request: Request, error: Exception) -> Any:
    assert isinstance(error, StarletteHTTPException)
    code = STATUS_CODES.get(error.status_code, "error")
    message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
    headers = getattr(error, "headers", None)
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return json_response(error_body(code, message), error.status_code, headers=headers)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: the methods of *every* route at the request's path.

    Starlette's router answers 405 from the first route whose path matches and names only
    that route's methods; ``GET`` and ``POST`` at one path are two routes, so a ``PUT``
    there would be told only ``GET`` is allowed."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        route_methods = route.methods
        if route_methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route_methods
    return ", ".join(sorted(methods))


async def validation_error(request: Request, error: Exception) -> Any:
    """FastAPI's own validation errors: 400 for JSON that does not parse, else 422."""
    assert isinstance(error, RequestValidationError)
    items = []
    status = 422
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ()) if part not in ("body",)]
        if problem.get("type") == "json_invalid":
            status = 400
            items.append(
                {"field": None, "code": "malformed_json", "message": "body is not valid JSON"}
            )
            continue
        if location and location[0] in {"query", "path", "header"}:
            status = 400 if location[0] == "query" else status
            location = location[1:]
        items.append(
            {
                "field": ".".join(location) or None,
                "code": problem.get("type", "invalid"),
                "message": problem.get("msg", "invalid"),
            }
        )
    return json_response({"errors": items}, status)


def client_error(error: Exception, settings: Settings) -> TesseraError | None:
    """The client error ``error`` stands for, or ``None`` for a bug: a ``TesseraError``
    itself; SQLAlchemy's pool finding no connection free within ``db_acquire_timeout`` as
    the same 503 the records pool gives (:class:`PoolTimeout`)."""
    if isinstance(error, TesseraError):
        return error
    if isinstance(error, sqlalchemy.exc.TimeoutError):
        return PoolTimeout(settings.db_acquire_timeout)
    return None


async def control_pool_busy(request: Request, error: Exception) -> Any:
    known = client_error(error, request.app.state.tessera.settings)
    assert known is not None
    return error_response(known)


async def unexpected_error(request: Request, error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return json_response(
        error_body("internal", "internal error; the server log has the details"), 500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TesseraError, tessera_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, control_pool_busy)
    app.add_exception_handler(Exception, unexpected_error)
