"""The records fast path: the generated records routes served before FastAPI's stack.

A records request is the hot path of every app built on Tessera. Through FastAPI it would
pass the app's middleware stack (server errors, telemetry, body limit, metrics), be matched
against every route and have its dependencies solved, at a cost larger than the query's.
:class:`~kernel.api.app.TesseraApp` asks this fast path first: it matches the records
routes' own compiled path patterns and calls *the same endpoint functions* of
:mod:`kernel.api.records` with the same arguments the dependencies would give them (the
kernel, the principal, the parsed body), renders errors with the same handlers, applies the
same body size limit and feeds the same request metrics. Behaviour is identical; FastAPI
still owns the OpenAPI description and every other route, and anything the fast path does
not recognise (another method, another path) goes on to FastAPI unchanged.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kernel.api.deps import parse_json_body
from kernel.api.errors import tessera_error, unexpected_error
from kernel.api.middleware import REQUEST_METRICS
from kernel.errors import PayloadTooLarge, TesseraError

if TYPE_CHECKING:
    from kernel.runtime import Tessera

#: Endpoint parameters the fast path knows how to supply (everything else is a path param).
_INJECTED = frozenset({"request", "tessera", "principal", "body"})
#: The headers :meth:`Authenticator.principal` reads.
_CREDENTIALS = {b"authorization": "authorization", b"x-api-key": "x-api-key"}


@dataclass(frozen=True, slots=True)
class _Route:
    route: APIRoute
    pattern: re.Pattern[str]
    methods: frozenset[str]
    endpoint: Callable[..., Awaitable[Response]]
    wants_body: bool


def _compile(route: APIRoute) -> _Route:
    parameters = inspect.signature(route.endpoint).parameters
    unknown = set(parameters) - _INJECTED - set(route.param_convertors)
    if unknown:
        raise TypeError(f"fast path cannot supply {sorted(unknown)} to {route.path}")
    unused = set(route.param_convertors) - set(parameters)
    if unused:
        raise TypeError(f"{route.path}: the endpoint does not take {sorted(unused)}")
    return _Route(
        route=route,
        pattern=route.path_regex,
        methods=frozenset(route.methods or ()),
        endpoint=route.endpoint,
        wants_body="body" in parameters,
    )


class _Disconnected(Exception):
    """The client went away before its body arrived: there is nobody to answer."""


class RecordsFastPath:
    """Serves ``routes`` (the records router's routes, all under ``prefix``)."""

    def __init__(
        self, tessera: Tessera, routes: list[APIRoute], prefix: str, body_limit: int
    ) -> None:
        self.tessera = tessera
        self.prefix = prefix
        self.routes = [_compile(route) for route in routes]
        self.body_limit = body_limit

    def match(self, scope: Scope) -> tuple[_Route, dict[str, str]] | None:
        """The route and path parameters of an HTTP ``scope`` the fast path serves, or None."""
        path = scope["path"]
        if not path.startswith(self.prefix):
            return None
        method = scope["method"]
        for candidate in self.routes:
            if method in candidate.methods:
                found = candidate.pattern.match(path)
                if found is not None:
                    return candidate, found.groupdict()
        return None

    async def serve(
        self, route: _Route, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer the request ``match`` recognised."""
        started = time.perf_counter()
        scope["route"] = route.route  # for anything that labels by route template
        request = Request(scope, receive)
        credentials: dict[str, str] = {}
        declared_length = 0
        for name, value in scope["headers"]:
            header = _CREDENTIALS.get(name)
            if header is not None:
                credentials.setdefault(header, value.decode("latin-1"))
            elif name == b"content-length" and value.isdigit():
                declared_length = int(value)
        try:
            if declared_length > self.body_limit:
                raise PayloadTooLarge(self._too_large())
            tessera = self.tessera
            arguments: dict[str, Any] = params  # the path parameters, a fresh dict per match
            arguments["request"] = request
            arguments["tessera"] = tessera
            principal = tessera.authenticator.known(credentials)
            if principal is None:
                principal = await tessera.authenticator.principal(credentials)
            arguments["principal"] = principal
            if route.wants_body:
                arguments["body"] = parse_json_body(await self._body(receive))
            response = await route.endpoint(**arguments)
        except _Disconnected:
            return
        except TesseraError as error:
            response = await tessera_error(request, error)
        except Exception as error:
            response = await unexpected_error(request, error)
        status = response.status_code
        headers = response.raw_headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        elapsed = time.perf_counter() - started
        REQUEST_METRICS.record(scope["method"], route.route.path, status, elapsed)

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_limit:
                raise PayloadTooLarge(self._too_large())
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> str:
        return f"request body is larger than {self.body_limit} bytes"


def records_fast_path(tessera: Tessera, routes: list[Any], body_limit: int) -> RecordsFastPath:
    """The fast path for the records router's routes (which must share a path prefix)."""
    api_routes = [route for route in routes if isinstance(route, APIRoute)]
    prefix = api_routes[0].path.split("{", 1)[0]
    if any(not route.path.startswith(prefix) for route in api_routes):
        raise ValueError("the records routes do not share a prefix")
    return RecordsFastPath(tessera, api_routes, prefix, body_limit)
