"""Route lookup whose cost does not grow with the app's route count.

FastAPI's router (``APIRouter.app``) answers a request by asking its routes, in declaration
order, ``route.matches(scope)``: the first full match serves it, else the first partial
match (the path matches, the method does not: a 405), else a redirect when the path with its
trailing slash toggled matches, else a 404. The app's router holds one route per included
router (FastAPI's ``_IncludedRouter``), whose ``matches`` in turn asks each of that router's
routes, setting FastAPI's per-route context in the scope each time: about 2 µs a route, some
200 µs for a request to a route declared late among the ~110 routes of the built-in plugins
(or for a 404), and more with every plugin.

:class:`RouteIndex` takes the place of the app router's dispatch (the router's
``middleware_stack``, which FastAPI leaves as the router's own ``app``). For each HTTP
request it runs FastAPI's own dispatch, ``APIRouter.app``, unchanged, on a copy of the
router that holds only the *candidates*: the app's routes that could match the request's
path, or the path with its trailing slash toggled (the redirect check), in their original
order. A route that cannot match answers ``Match.NONE`` wherever it stands, so leaving it
out changes none of the rules above: the same route serves the request, with the same scope
(``scope["route"]``, ``scope["endpoint"]``, the path params), the same 405 and redirect;
``scope["router"]`` is the app's whole router, as before. A copy is made once per set of
candidates and kept (the sets are few: subsets of the app's routes, one per included
router, that one path can reach). Websocket and lifespan scopes go to the whole router.

The index: each route the app serves (``fastapi.routing.iter_route_contexts``: the routes of
every included router, at any depth, with their prefixes) is filed, for the app route it
belongs to, in a tree of path segments: a literal segment under its text; a segment of
parameters whose convertor never matches ``/`` (``str``, ``int``, ``float``, ``uuid``)
under "any one segment"; from a segment with any other convertor on (``{rest:path}``, a
custom one), as "this prefix, then one segment or more". A request's candidates are the
routes filed at the nodes its path's segments reach. Correctness never depends on what
the index understands: what it cannot read is a candidate for every request (a ``Mount``,
a ``Host``, a route class with its own ``matches``, a route whose compiled pattern is not
the one its path gives). A path ending in a newline (which a pattern's ``$`` lets match
before it) is not narrowed. An app with FastAPI's low-priority routes (``frontend``, tried
after all others) is not narrowed at all.

What is left is per included router: FastAPI matches within the router that serves the
request (and again when it dispatches to the route), so that router's size still counts;
the other routers' sizes no longer do. The index is built once the app's routes are final
(:func:`kernel.api.app.create_app`, after every router is included) and again should a
route be added to the app itself later. A route added later to a router already included
is not seen (nor by the fast path, which is built at the same moment): plugins declare
their routes before ``register_routes`` returns them (docs/plugins.md says so); asking
FastAPI's routes version on every request would walk every included router again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from fastapi.routing import (
    APIRoute,
    APIRouter,
    APIWebSocketRoute,
    RouteContext,
    iter_route_contexts,
)
from starlette._utils import get_route_path
from starlette.convertors import (
    CONVERTOR_TYPES,
    FloatConvertor,
    IntegerConvertor,
    StringConvertor,
    UUIDConvertor,
)
from starlette.routing import PARAM_REGEX, Route, WebSocketRoute, compile_path
from starlette.types import Receive, Scope, Send

#: Convertors whose pattern never matches ``/`` (exact types: a subclass may differ).
_ONE_SEGMENT_CONVERTORS = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)
#: ``matches`` implementations that match by the route's compiled path pattern (and the
#: method, or the scope type): the ones whose routes the index can file by their path.
_PATTERN_MATCHES = frozenset(
    {Route.matches, APIRoute.matches, WebSocketRoute.matches, APIWebSocketRoute.matches}
)

#: A path's segments as filed: a literal segment's text, or None for "any one segment".
Shape = tuple[str | None, ...]


def _one_segment(segment: str) -> bool:
    """Whether the parameters of ``segment`` (of a route path) all stay within a segment."""
    for param in PARAM_REGEX.finditer(segment):
        convertor = CONVERTOR_TYPES.get((param.group(2) or ":str")[1:])
        if type(convertor) not in _ONE_SEGMENT_CONVERTORS:
            return False
    return True


def route_shape(route: RouteContext) -> tuple[Shape, bool] | None:
    """How the index files ``route``: the segments its pattern's paths start with, and
    whether more segments may follow them (True: one or more; False: none); None when the
    index cannot tell which paths it matches, so that it is a candidate for every path."""
    path = route.path
    if type(route.original_route).matches not in _PATTERN_MATCHES or not isinstance(path, str):
        return None
    if not path.startswith("/") or route.path_regex.pattern != compile_path(path)[0].pattern:
        return None
    shape: list[str | None] = []
    for segment in path[1:].split("/"):
        if PARAM_REGEX.search(segment) is None:
            shape.append(segment)
        elif _one_segment(segment):
            shape.append(None)
        else:
            return tuple(shape), True
    return tuple(shape), False


@dataclass
class _Node:
    """A node of the index's tree: the paths whose segments so far led here."""

    literal: dict[str, _Node] = field(default_factory=dict)
    any_segment: _Node | None = None
    #: The app routes with a route whose paths end here.
    ends: set[int] = field(default_factory=set)
    #: The app routes with a route whose paths go on past here (one segment or more).
    continues: set[int] = field(default_factory=set)

    def child(self, key: str | None) -> _Node:
        if key is None:
            if self.any_segment is None:
                self.any_segment = _Node()
            return self.any_segment
        return self.literal.setdefault(key, _Node())


class RouteIndex:
    """The dispatch of ``router`` (an app's router), narrowed to the candidate routes.

    An ASGI app; install it as ``router.middleware_stack`` once the router's routes are
    final. The module docstring says what it does and why the result is FastAPI's own.
    """

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._build()

    def _build(self) -> None:
        routes = self.router.routes
        self._route_count = len(routes)
        self._root = _Node()
        #: The app routes that are candidates for every path.
        self._always: set[int] = set()
        self._everything = frozenset(range(len(routes)))
        self._narrowed: dict[frozenset[int], APIRouter] = {}
        self._whole = any(True for _ in self.router._iter_low_priority_routes())
        for position, app_route in enumerate(routes):
            for route in iter_route_contexts([app_route]):
                self._file(position, route_shape(route))

    def _file(self, position: int, shape: tuple[Shape, bool] | None) -> None:
        if shape is None:
            self._always.add(position)
            return
        segments, continues = shape
        node = self._root
        for key in segments:
            node = node.child(key)
        (node.continues if continues else node.ends).add(position)

    def candidates(self, route_path: str) -> set[int]:
        """The positions, among the router's routes, of those that could match a request
        for ``route_path`` (the path the router matches: ``get_route_path``)."""
        if not route_path.startswith("/"):
            return set(self._always)  # every pattern the index read starts with "/"
        if route_path.endswith("\n"):
            return set(self._everything)
        found = set(self._always)
        nodes = [self._root]
        for segment in route_path[1:].split("/"):
            reached: list[_Node] = []
            for node in nodes:
                found |= node.continues
                child = node.literal.get(segment)
                if child is not None:
                    reached.append(child)
                if node.any_segment is not None:
                    reached.append(node.any_segment)
            nodes = reached
            if not nodes:
                return found
        for node in nodes:
            found |= node.ends
        return found

    def narrowed(self, scope: Scope) -> APIRouter:
        """A copy of the router holding only the routes that could take the HTTP request
        ``scope``: those that could match its path or, when the router would check for a
        redirect, the path with the trailing slash toggled (as ``APIRouter.app`` does)."""
        route_path = get_route_path(scope)
        found = self.candidates(route_path)
        if self.router.redirect_slashes and route_path != "/":
            path: str = scope["path"]
            toggled = path.rstrip("/") if route_path.endswith("/") else path + "/"
            redirect = {"path": toggled, "root_path": scope.get("root_path", "")}
            found |= self.candidates(get_route_path(redirect))
        key = frozenset(found)
        narrowed = self._narrowed.get(key)
        if narrowed is None:
            narrowed = self._narrowed[key] = self._copy_with(sorted(key))
        return narrowed

    def _copy_with(self, positions: Iterable[int]) -> APIRouter:
        narrowed = copy.copy(self.router)
        narrowed.routes = [self.router.routes[position] for position in positions]
        return narrowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self.router
        if len(router.routes) != self._route_count:
            self._build()
        if scope["type"] != "http" or self._whole:
            await router.app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = router
        await self.narrowed(scope).app(scope, receive, send)
