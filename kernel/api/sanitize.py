"""One check for what a request brings before any of it reaches PostgreSQL: its JSON body,
its path parameters and its query string.

PostgreSQL refuses NUL in text, ``jsonb`` refuses lone surrogates, ``bigint`` ends at 64
bits; left to the database, each is a 500. Here each is the client's error instead: 422
naming the place in the body, 404 for a path that cannot name anything, 400 naming the
query parameter. The records API checks its bodies in its own value coercion (one walk,
:mod:`kernel.records.values`); everything else goes through :func:`check_request`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from kernel.api.deps import parse_json_body
from kernel.errors import BadRequest, NotFound, ValidationFailed
from kernel.json_values import JsonLimits, JsonValueError, check_json_value
from kernel.numbers import INT64_MAX

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def check_json_body(value: Any, limits: JsonLimits) -> None:
    """Refuse a parsed request body holding what PostgreSQL cannot store (NUL in a string
    or key, a lone surrogate, an integer outside 64 bits, a number that is not finite) or
    nesting or weighing more than ``limits``: :class:`ValidationFailed` (422) whose
    ``field`` is the JSON path of the problem (``args.fields[0].name``; None for the body
    itself). Walks without recursion."""
    try:
        check_json_value(value, limits)
    except JsonValueError as error:
        raise ValidationFailed(error.reason, code=error.code, field=error.path or None) from None


def parse_checked_body(raw: bytes, limits: JsonLimits) -> Any:
    """``raw`` parsed as JSON (None when empty) and checked by :func:`check_json_body`.

    400 for text that is not JSON. JSON that only a lenient parser reads (a lone surrogate
    escape, ``NaN``) is a 422 naming where, as it would reach a route parsing that way."""
    try:
        value = parse_json_body(raw)
    except BadRequest as malformed:
        try:
            lenient = json.loads(raw)
        except (ValueError, RecursionError):
            raise malformed from None
        check_json_body(lenient, limits)
        raise
    check_json_body(value, limits)
    return value


def check_path_and_query(path_params: dict[str, Any], query: list[tuple[str, str]]) -> None:
    """404 when a path parameter cannot name anything (NUL in it, or digits beyond 64
    bits); 400 naming the parameter when a query value or name holds NUL."""
    for value in path_params.values():
        if isinstance(value, str) and ("\x00" in value or _beyond_int64(value)):
            raise NotFound("nothing is named like this", code="not_found")
    for name, value in query:
        if "\x00" in name or "\x00" in value:
            raise BadRequest("must not contain NUL characters", code="invalid_value", field=name)


async def check_request(request: Request) -> None:
    """FastAPI dependency running both checks on a platform route's request (the JSON body
    only when it is declared ``application/json`` or undeclared)."""
    check_path_and_query(request.path_params, request.query_params.multi_items())
    content_type = request.headers.get("content-type", "application/json")
    if request.method in _BODY_METHODS and content_type.startswith("application/json"):
        limits = JsonLimits.of(request.app.state.tessera.settings)
        parse_checked_body(await request.body(), limits)


def _beyond_int64(text: str) -> bool:
    digits = text.removeprefix("-")
    return digits.isascii() and digits.isdigit() and (len(digits) > 19 or int(digits) > INT64_MAX)
