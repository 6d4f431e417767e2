"""The records fast path: the generated records routes served without FastAPI's stack.

A records request is the hot path of every app built on Tessera. Through FastAPI it would
pass FastAPI's middleware stack (server errors, telemetry), be matched against every route
and have its dependencies solved, at a cost larger than the query's.
:class:`~kernel.api.app.TesseraApp` asks this fast path first, inside the request pipeline
(:mod:`kernel.api.pipeline`: body limit, auth, quotas, metrics, CORS and request ids apply
to both paths, from the same code): it matches the records routes' own compiled path
patterns and calls *the same endpoint functions* of :mod:`kernel.api.records` with the same
arguments the dependencies would give them (the kernel, the pipeline's principal, the parsed
body) and renders errors with the same handlers. Behaviour is identical; FastAPI still owns
the OpenAPI description and every other route, and anything the fast path does not
recognise (another method, another path) goes on to FastAPI unchanged.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from kernel.api.deps import parse_json_body
from kernel.api.errors import tessera_error, unexpected_error
from kernel.api.exchange import Exchange, principal_of
from kernel.errors import TesseraError

if TYPE_CHECKING:
    from kernel.runtime import Tessera

#: Endpoint parameters the fast path knows how to supply (everything else is a path param).
_INJECTED = frozenset({"request", "tessera", "principal", "body"})


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
    if any(isinstance(convertor, PathConvertor) for convertor in route.param_convertors.values()):
        raise TypeError(f"{route.path}: the fast path matches by segments; no ':path' parameters")
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

    def __init__(self, tessera: Tessera, routes: list[APIRoute], prefix: str) -> None:
        self.tessera = tessera
        self.prefix = prefix
        self.routes = [_compile(route) for route in routes]
        #: The routes by method and number of ``/`` in the path (no parameter holds one):
        #: a request tries only the patterns that can match it.
        self._by_shape: dict[tuple[str, int], list[_Route]] = {}
        for compiled in self.routes:
            for method in compiled.methods:
                shape = (method, compiled.route.path.count("/"))
                self._by_shape.setdefault(shape, []).append(compiled)

    def match(self, scope: Scope) -> tuple[_Route, dict[str, str]] | None:
        """The route and path parameters of an HTTP ``scope`` the fast path serves, or None."""
        path = scope["path"]
        if not path.startswith(self.prefix):
            return None
        for candidate in self._by_shape.get((scope["method"], path.count("/")), ()):
            found = candidate.pattern.match(path)
            if found is not None:
                return candidate, found.groupdict()
        return None

    async def serve(self, route: _Route, params: dict[str, str], exchange: Exchange) -> None:
        """Answer the request ``match`` recognised (the pipeline's steps have run), with the
        headers the steps added (as :meth:`Exchange.send` would add them)."""
        scope = exchange.scope
        receive = exchange.receive
        scope["route"] = route.route  # for anything that labels by route template
        request = Request(scope, receive)
        try:
            arguments: dict[str, Any] = params  # the path parameters, a fresh dict per match
            arguments["request"] = request
            arguments["tessera"] = self.tessera
            arguments["principal"] = principal_of(scope)
            if route.wants_body:
                arguments["body"] = parse_json_body(await _body(receive))
            response = await route.endpoint(**arguments)
        except _Disconnected:
            return
        except TesseraError as error:
            response = await tessera_error(request, error)
        except Exception as error:
            response = await unexpected_error(request, error)
        send = exchange.raw_send
        status = exchange.status = response.status_code
        headers = exchange.start_headers(response.raw_headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def records_fast_path(tessera: Tessera, routes: list[Any]) -> RecordsFastPath:
    """The fast path for the records router's routes (which must share a path prefix)."""
    api_routes = [route for route in routes if isinstance(route, APIRoute)]
    prefix = api_routes[0].path.split("{", 1)[0]
    if any(not route.path.startswith(prefix) for route in api_routes):
        raise ValueError("the records routes do not share a prefix")
    return RecordsFastPath(tessera, api_routes, prefix)
