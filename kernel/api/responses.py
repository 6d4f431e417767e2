"""JSON responses serialised with orjson (dates, times and UUIDs included), and how a route
declares them in the OpenAPI document.

A route returns :func:`json_response` and names the shape it returns with
``response_model=`` (FastAPI then documents it; the returned response is sent as is, not
validated again), and the errors only its own logic raises with
``responses=error_responses(409, ...)``. The errors every route of a kind can answer (401
without credentials, 400 for a malformed body, 413, 503...) are added to the document by
:mod:`kernel.api.openapi` from the route's shape, so no route has to repeat them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import orjson
from fastapi.responses import JSONResponse as FastAPIJSONResponse
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict


class JSONResponse(FastAPIJSONResponse):
    """orjson's rendering; a FastAPI ``JSONResponse`` so routes' ``response_model`` shows
    in the OpenAPI document (FastAPI documents other response classes as a string)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(content, status_code=status_code, headers=headers)


class RecordJSONResponse(Response):
    """A records API body: every key is a string (field names), so orjson is not asked to
    handle other keys, which costs it a check per key. Its headers are built directly
    (``content-length``, ``content-type``, then ``headers``): the records routes never
    answer 1xx, 204 or 304 with a JSON body."""

    media_type = "application/json"

    def __init__(
        self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = orjson.dumps(content)
        self.raw_headers = [
            (b"content-length", str(len(self.body)).encode()),
            (b"content-type", b"application/json"),
        ]
        if headers:
            self.raw_headers += [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ]


def record_json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return RecordJSONResponse(content, status_code=status_code, headers=headers)


class ErrorItem(BaseModel):
    field: str | None
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error (API.md, Conventions)."""

    errors: list[ErrorItem]


#: What each error status means, as the OpenAPI document says it (API.md, Conventions).
ERROR_MEANINGS = {
    400: "malformed query or body",
    401: "no or bad credentials",
    403: "denied",
    404: "unknown",
    409: "conflict (duplicate name, unique violation, referenced row, busy table)",
    413: "request body too large",
    422: "validation",
    429: "quota or rate limit (Retry-After, X-RateLimit-* headers)",
    503: "busy: every database connection is in use (Retry-After)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering these error statuses with the error body."""
    return {
        status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]} for status in statuses
    }


class Shape(BaseModel):
    """Base of the documented response shapes: the keys named are always there; more may
    be (plugins and later versions add keys, clients ignore what they do not know)."""

    model_config = ConfigDict(extra="allow")


class PageInfo(BaseModel):
    limit: int
    next_cursor: str | None


Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """A page of a list: ``{"data": [...], "page": {"limit", "next_cursor"}}``."""

    data: list[Item]
    page: PageInfo


class Listing(BaseModel, Generic[Item]):
    """A whole list, unpaged: ``{"data": [...]}``."""

    data: list[Item]
