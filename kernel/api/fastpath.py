"""The fast path: the records routes, and plugins' hot routes, served without FastAPI's stack.

A records request is the hot path of every app built on Tessera. Through FastAPI it would
pass FastAPI's middleware stack (server errors, telemetry), be matched against FastAPI's routes
and have its dependencies solved, at a cost larger than the query's.
:class:`~kernel.api.app.TesseraApp` asks this fast path first, inside the request pipeline
(:mod:`kernel.api.pipeline`: body limit, auth, quotas, metrics, CORS and request ids apply
to both paths, from the same code): it matches the routes' own compiled path patterns and
calls *the same endpoint functions* with the same arguments the dependencies would give
them (the request, the kernel, the pipeline's principal, the parsed body) and renders
errors with the same handlers. Behaviour is identical; FastAPI still owns the OpenAPI
description and every other route, and anything the fast path does not recognise (another
method, another path) goes on to FastAPI unchanged.

Besides the kernel's records routes, it serves the routes plugins mark with
:func:`kernel.hot_route.hot_route`; :func:`hot_routes` refuses at load a marked route
whose dependencies or parameters it could not supply exactly as FastAPI would.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor, StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope

from kernel.api.deps import (
    current_principal,
    get_tessera,
    json_body,
    parse_json_body,
    signed_in,
)
from kernel.api.errors import tessera_error, unexpected_error
from kernel.api.exchange import Exchange, principal_of, signed_in_principal
from kernel.errors import PluginError, TesseraError
from kernel.hot_route import is_hot_route

if TYPE_CHECKING:
    from kernel.runtime import Tessera

#: The records endpoints' parameters the fast path supplies (every other one is a path param).
_INJECTED = frozenset({"request", "tessera", "principal", "body"})

#: What one of a hot route's arguments is made from, given the request (None: the body).
Supply = Callable[[Request], Any] | None


@dataclass(frozen=True, slots=True)
class _Route:
    """A route the fast path serves.

    ``supplies`` is None for a records route, whose arguments are always the request, the
    kernel, the principal and (``wants_body``) the body, and which checks its own body and
    record ids (``checks_its_own``, :mod:`kernel.api.sanitize`). For a hot route it holds,
    in the order FastAPI solves the route's dependencies, the argument name (None for a
    router's dependency) and how to make its value.
    """

    route: APIRoute
    pattern: re.Pattern[str]
    methods: frozenset[str]
    endpoint: Callable[..., Awaitable[Response]]
    wants_body: bool
    supplies: tuple[tuple[str | None, Supply], ...] | None = None

    @property
    def checks_its_own(self) -> bool:
        return self.supplies is None


def _check_path(route: APIRoute) -> None:
    if any(isinstance(convertor, PathConvertor) for convertor in route.param_convertors.values()):
        raise TypeError(f"{route.path}: the fast path matches by segments; no ':path' parameters")


def _compile(route: APIRoute) -> _Route:
    parameters = inspect.signature(route.endpoint).parameters
    unknown = set(parameters) - _INJECTED - set(route.param_convertors)
    if unknown:
        raise TypeError(f"fast path cannot supply {sorted(unknown)} to {route.path}")
    unused = set(route.param_convertors) - set(parameters)
    if unused:
        raise TypeError(f"{route.path}: the endpoint does not take {sorted(unused)}")
    _check_path(route)
    return _Route(
        route=route,
        pattern=route.path_regex,
        methods=frozenset(route.methods or ()),
        endpoint=route.endpoint,
        wants_body="body" in parameters,
    )


def _signed_in(request: Request) -> None:
    signed_in_principal(request.scope)


def _principal(request: Request) -> Any:
    return principal_of(request.scope)


def _the_request(request: Request) -> Request:
    return request


def _dependency_supplies(tessera: Tessera) -> dict[Callable[..., Any], Supply]:
    """The dependencies a hot route may have, and what the fast path gives in their place."""
    return {
        get_tessera: lambda request: tessera,
        current_principal: _principal,
        signed_in: _signed_in,
        json_body: None,
    }


def _compile_hot(route: APIRoute, tessera: Tessera) -> _Route:
    """A plugin's hot route, or TypeError saying what the fast path cannot serve as FastAPI
    would: dependencies other than those of :func:`kernel.hot_route.hot_route`, query,
    header, cookie or body parameters, path parameters that are not plain ``str``, an
    endpoint that is not async or does not say it returns a ``Response``."""
    _check_path(route)
    dependant = route.dependant
    if not inspect.iscoroutinefunction(route.endpoint):
        raise TypeError(f"{route.path}: a hot route's endpoint is async")
    returns = get_typed_return_annotation(route.endpoint)
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        raise TypeError(f"{route.path}: a hot route's endpoint returns a Response")
    other = [
        field.name
        for fields in (dependant.query_params, dependant.header_params, dependant.cookie_params)
        for field in fields
    ] + [field.name for field in dependant.body_params]
    if other:
        raise TypeError(
            f"{route.path}: the fast path cannot supply {sorted(other)} (read query parameters "
            "from request.query_params)"
        )
    for special in ("websocket", "http_connection", "response", "background_tasks"):
        name = getattr(dependant, f"{special}_param_name")
        if name is not None:
            raise TypeError(f"{route.path}: the fast path cannot supply {name!r}")
    for field in dependant.path_params:
        converts = route.param_convertors.get(field.name)
        if field.field_info.annotation is not str or field.field_info.metadata:
            raise TypeError(f"{route.path}: path parameter {field.name!r} must be a plain str")
        if not isinstance(converts, StringConvertor):
            raise TypeError(f"{route.path}: path parameter {field.name!r} takes no convertor")
    known = _dependency_supplies(tessera)
    supplies: list[tuple[str | None, Supply]] = []
    if dependant.request_param_name is not None:
        supplies.append((dependant.request_param_name, _the_request))
    for dependency in dependant.dependencies:
        if dependency.call not in known:
            raise TypeError(
                f"{route.path}: the fast path cannot supply the dependency "
                f"{getattr(dependency.call, '__name__', dependency.call)!r}"
            )
        supplies.append((dependency.name, known[dependency.call]))
    return _Route(
        route=route,
        pattern=route.path_regex,
        methods=frozenset(route.methods or ()),
        endpoint=route.endpoint,
        wants_body=any(supply is None for _, supply in supplies),
        supplies=tuple(supplies),
    )


class _Disconnected(Exception):
    """The client went away before its body arrived: there is nobody to answer."""


def _common_prefix(paths: list[str]) -> str:
    """The longest start, ending at a ``/``, that every path's literal beginning shares."""
    literal = [path.split("{", 1)[0] for path in paths]
    shortest = min(literal, key=len, default="")
    length = 0
    while length < len(shortest) and all(path[length] == shortest[length] for path in literal):
        length += 1
    return shortest[:length].rpartition("/")[0] + "/"


class FastPath:
    """Serves ``routes``: the records routes and the plugins' hot routes, compiled."""

    def __init__(self, tessera: Tessera, routes: list[_Route]) -> None:
        self.tessera = tessera
        self.routes = routes
        self.prefix = _common_prefix([compiled.route.path for compiled in routes])
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
            if route.supplies is None:
                arguments: dict[str, Any] = params  # the path parameters, a fresh dict
                arguments["request"] = request
                arguments["tessera"] = self.tessera
                arguments["principal"] = principal_of(scope)
                if route.wants_body:
                    arguments["body"] = parse_json_body(await _body(receive))
            else:
                arguments = await _hot_arguments(route, params, request)
            response = await route.endpoint(**arguments)
        except _Disconnected:
            return
        except TesseraError as error:
            response = await tessera_error(request, error)
        except Exception as error:
            response = await _handled(request, error)
        send = exchange.raw_send
        status = exchange.status = response.status_code
        headers = exchange.start_headers(response.raw_headers)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


async def _hot_arguments(route: _Route, params: dict[str, str], request: Request) -> dict[str, Any]:
    """A hot route's arguments, made in the order FastAPI solves its dependencies (so the
    same check fails first); the scope gets the path parameters and endpoint, as FastAPI's
    router would set them."""
    scope = request.scope
    scope["path_params"] = params
    scope["endpoint"] = route.endpoint
    arguments: dict[str, Any] = dict(params)
    for name, supply in route.supplies or ():
        if supply is None:
            value = parse_json_body(await _body(request.receive))
        else:
            value = supply(request)
        if name is not None:
            arguments[name] = value
    return arguments


async def _handled(request: Request, error: Exception) -> Response:
    """The answer the app's exception handler for ``error`` gives (FastAPI's lookup: the
    closest class in its MRO), the 500 of :func:`unexpected_error` for any other."""
    handlers = request.app.exception_handlers
    for cls in type(error).__mro__:
        handler = handlers.get(cls)
        if handler is not None and cls is not Exception:
            return await handler(request, error)  # type: ignore[no-any-return]
    return await unexpected_error(request, error)  # type: ignore[no-any-return]


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def records_routes(routes: list[Any]) -> list[_Route]:
    """The records router's routes, compiled for the fast path."""
    return [_compile(route) for route in routes if isinstance(route, APIRoute)]


def hot_routes(
    tessera: Tessera, plugin_name: str, routes: list[Any], earlier: list[Any]
) -> list[_Route]:
    """The routes among a plugin's ``routes`` whose endpoint is marked
    :func:`~kernel.hot_route.hot_route`, compiled; :class:`PluginError` naming the
    plugin and route for one the fast path cannot serve, or whose requests FastAPI would
    give, in part, to a route declared before it (among ``earlier``, in the order the app
    includes them, then ``routes`` before it): the fast path is asked first."""
    compiled = []
    for index, route in enumerate(routes):
        if isinstance(route, APIRoute) and is_hot_route(route.endpoint):
            try:
                compiled.append(_compile_hot(route, tessera))
                _refuse_shadowed(route, [*earlier, *routes[:index]])
            except TypeError as error:
                raise PluginError(f"plugin {plugin_name}: hot route {error}") from None
    return compiled


def _refuse_shadowed(route: APIRoute, earlier: list[Any]) -> None:
    for other in earlier:
        if isinstance(other, Route) and other.methods & (route.methods or set()):
            shadows = _overlap(route.path, other.path, is_prefix=False)
        elif isinstance(other, Mount):
            shadows = _overlap(route.path, other.path, is_prefix=True)
        else:
            continue  # a websocket route, or one for other methods
        if shadows:
            raise TypeError(f"{route.path}: {other.path}, declared before, takes some of its paths")


def _overlap(path: str, other: str, *, is_prefix: bool) -> bool:
    """Whether a request path could match both template ``path`` (no ``:path`` parameter)
    and template ``other`` (a mount's prefix when ``is_prefix``), segment by segment."""
    segments, others = path.split("/"), other.split("/")
    for index, pattern in enumerate(others):
        if pattern.endswith(":path}"):
            return True  # the rest of any path
        if index == len(segments):
            return False
        if pattern != segments[index] and "{" not in pattern and "{" not in segments[index]:
            return False
    return is_prefix or len(segments) == len(others)
