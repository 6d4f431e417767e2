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
    handle other keys, which costs it a check per key."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def record_json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return RecordJSONResponse(content, status_code=status_code, headers=headers)
