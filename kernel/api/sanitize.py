"""The request step that keeps what PostgreSQL cannot store from reaching it through any
route: in the path, the query string and a JSON body.

PostgreSQL refuses NUL in text, ``jsonb`` refuses lone surrogates, ``bigint`` ends at 64
bits; left to the database, each is a 500. Here each is the client's error instead: 404 for
a path that cannot name anything, 400 naming the query parameter, 422 naming the place in
the body. (The server decodes paths and query strings as UTF-8 with invalid bytes
replaced, so no lone surrogate gets there.) The records routes check their bodies, and
their record ids, in their own value coercion (one walk, :mod:`kernel.records.values`);
this step leaves those to them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Sequence
from typing import Any

from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from kernel.api.deps import CALLER_CHECKS, parse_json_body
from kernel.api.exchange import Exchange, RequestStep
from kernel.errors import BadRequest, NotFound, TesseraError, ValidationFailed
from kernel.json_values import JsonLimits, JsonValueError, check_json_value
from kernel.numbers import INT64_MAX, INT64_MIN

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: A path segment of 19 digits or more: maybe an integer beyond 64 bits.
_LONG_NUMBER_SEGMENT = re.compile(r"/(-?[0-9]{19,})(?=/|$)")


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


def _has_number_beyond_int64(path: str) -> bool:
    """Whether a segment of ``path`` is an integer outside 64 bits (an id of nothing)."""
    return any(
        not INT64_MIN <= int(found) <= INT64_MAX for found in _LONG_NUMBER_SEGMENT.findall(path)
    )


def check_query(query: bytes) -> None:
    """400 naming the parameter when a name or value of ``query`` (raw) holds NUL."""
    if b"%00" not in query and b"\x00" not in query:
        return
    for name, value in QueryParams(query).multi_items():
        if "\x00" in name or "\x00" in value:
            raise BadRequest("must not contain NUL characters", code="invalid_value", field=name)


class Sanitize(RequestStep):
    """The step: the path and query string of every request; the JSON body (declared
    ``application/json``, or undeclared) of a write to any route but the records routes.

    The records routes (``Exchange.fast_route``, ``checks_its_own``) check their own bodies
    and record ids; ``app_routes`` are the app's routes as its router holds them,
    ``routes`` those of the routers the app included, as they were declared. The body is
    read ahead and handed to the route whole. When it is refused, a caller the route would
    refuse (no or bad credentials) hears that 401 instead: the caller comes before the
    body; and a request no route takes gets the app's 404 or 405.
    """

    def __init__(
        self,
        limits: JsonLimits,
        app_routes: Sequence[BaseRoute],
        routes: Sequence[BaseRoute],
    ) -> None:
        self.limits = limits
        self.app_routes = app_routes
        self.routes = routes

    def enter(self, exchange: Exchange) -> Awaitable[None] | None:
        scope = exchange.scope
        path: str = scope["path"]
        fast_route = exchange.fast_route
        checks_its_own = fast_route is not None and fast_route[0].checks_its_own
        if "\x00" in path or (  # the path is percent-decoded
            not checks_its_own
            and _LONG_NUMBER_SEGMENT.search(path) is not None
            and _has_number_beyond_int64(path)
        ):
            raise NotFound("nothing is named like this", code="not_found")
        query: bytes = scope["query_string"]
        if query:
            check_query(query)
        if scope["method"] in _BODY_METHODS:
            content_type = exchange.headers.get(b"content-type", b"application/json")
            if content_type.startswith(b"application/json") and not checks_its_own:
                return self._check_body(exchange)
        return None

    async def _check_body(self, exchange: Exchange) -> None:
        body = await exchange.read_body()
        if body is None:  # the client went away; the route hears it
            return
        try:
            parse_checked_body(body, self.limits)
        except TesseraError:
            scope = exchange.scope
            if not any(route.matches(scope)[0] is Match.FULL for route in self.app_routes):
                return  # no route takes the request: the app answers 404 or 405
            self._check_caller(scope)
            raise

    def _check_caller(self, scope: Scope) -> None:
        """Raise what the route's caller dependencies (``PrincipalDep``, ``SignedIn``, at
        any depth) would raise for this request's caller."""
        for route in self.routes:
            if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
                pending = list(route.dependant.dependencies)
                while pending:
                    dependency = pending.pop()
                    check = CALLER_CHECKS.get(dependency.call)
                    if check is not None:
                        check(scope)
                    pending.extend(dependency.dependencies)
                return
