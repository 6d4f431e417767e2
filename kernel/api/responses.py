"""JSON responses serialised with orjson (dates, times and UUIDs included)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class JSONResponse(Response):
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
