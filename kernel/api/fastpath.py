"""The records fast path: the generated records routes dispatched without FastAPI's routing
and dependency injection.

A records request is the hot path of every app built on Tessera. FastAPI would match it
against every route of the app, solve its dependencies (running the synchronous ones in a
thread pool) and wrap it in exception middleware on each call. This ASGI middleware
matches the records routes' own compiled path patterns and calls *the same endpoint
functions* of :mod:`kernel.api.records` with the same arguments the dependencies would
give them (the kernel, the principal, the parsed body), and renders errors with the same
handlers. Behaviour is identical; FastAPI still owns the OpenAPI description and every
other route. Anything the fast path does not recognise goes on to FastAPI unchanged.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kernel.api.deps import json_body
from kernel.api.errors import tessera_error, unexpected_error
from kernel.errors import TesseraError

#: Endpoint parameters the fast path knows how to supply (everything else is a path param).
_INJECTED = frozenset({"request", "tessera", "principal", "body"})


@dataclass(frozen=True, slots=True)
class _Route:
    route: APIRoute
    pattern: re.Pattern[str]
    methods: frozenset[str]
    endpoint: Callable[..., Awaitable[Response]]
    path_params: tuple[str, ...]
    wants_body: bool


def _compile(route: APIRoute) -> _Route:
    parameters = inspect.signature(route.endpoint).parameters
    unknown = set(parameters) - _INJECTED - set(route.param_convertors)
    if unknown:
        raise TypeError(f"fast path cannot supply {sorted(unknown)} to {route.path}")
    return _Route(
        route=route,
        pattern=route.path_regex,
        methods=frozenset(route.methods or ()),
        endpoint=route.endpoint,
        path_params=tuple(name for name in parameters if name in route.param_convertors),
        wants_body="body" in parameters,
    )


class RecordsFastPath:
    """Serves ``routes`` (the records router's routes) directly; passes the rest on."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute], prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.routes = [_compile(route) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        for candidate in self.routes:
            if method in candidate.methods:
                match = candidate.pattern.match(scope["path"])
                if match is not None:
                    await self._serve(candidate, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: _Route, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["route"] = route.route  # the request metrics label by route template
        request = Request(scope, receive)
        tessera = scope["app"].state.tessera
        try:
            arguments: dict[str, Any] = {name: params[name] for name in route.path_params}
            arguments["request"] = request
            arguments["tessera"] = tessera
            arguments["principal"] = await tessera.authenticator.principal(request.headers)
            if route.wants_body:
                arguments["body"] = await json_body(request)
            response = await route.endpoint(**arguments)
        except TesseraError as error:
            response = await tessera_error(request, error)
        except Exception as error:
            response = await unexpected_error(request, error)
        await response(scope, receive, send)


def records_fast_path(routes: list[Any]) -> dict[str, Any]:
    """Keyword arguments for ``app.add_middleware(RecordsFastPath, ...)``: the records
    router's API routes and the path prefix they share."""
    api_routes = [route for route in routes if isinstance(route, APIRoute)]
    prefix = api_routes[0].path.split("{", 1)[0]
    if any(not route.path.startswith(prefix) for route in api_routes):
        raise ValueError("the records routes do not share a prefix")
    return {"routes": api_routes, "prefix": prefix}
