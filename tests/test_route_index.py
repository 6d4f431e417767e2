"""The route index (kernel/api/route_index.py): FastAPI's own routing decisions, over the
candidate routes only.

For every route of a fully loaded app (every built-in plugin, a realtime transport) and of an
app holding every kind of route (nested routers with prefixes, ``{x:path}``, a custom
convertor, a Mount, a Host, websocket routes, a route class with its own ``matches``), and
for paths made from each route's (sample params, one literal segment changed, trailing
slashes, a segment more or fewer, a trailing newline, a root path) with every method: the
narrowed router decides exactly what the whole router decides (the route, full or partial,
the path params; or the redirect; or nothing), and no route that matches is ever left out.
Then through the app: 404, 405 with ``Allow``, the redirect, the ``{rest:path}`` and
frontend routes, metrics by route template.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import PlainTextResponse
from starlette.routing import PARAM_REGEX, BaseRoute, Host, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from kernel.api.app import create_app
from kernel.api.route_index import RouteIndex, route_shape
from kernel.config import Settings
from tests.conftest import running
from tests.fake_plugins import FakeDistributions
from tests.test_realtime_transport import PLUGIN

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: A sample value per convertor name (anything else: the custom convertor's).
SAMPLES = {
    "str": "sample",
    "int": "42",
    "float": "1.5",
    "uuid": str(uuid.UUID(int=7)),
    "path": "deep/er",
    "route_index_hex": "beef",
}
UNKNOWN_PATHS = (
    "/",
    "",
    "nowhere",
    "//",
    "/nope",
    "/nope/",
    "/nope\n",
    "/api",
    "/api/",
    "/api/projects/",
    "/api//projects",
    "/admin",
    "/admin/",
    "/docs/",
    "/healthz/",
    "/HEALTHZ",
)


class HexConvertor(Convertor[str]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class OwnMatching(APIRoute):
    """A route class with its own ``matches``: the index cannot read it."""

    def matches(self, scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        return super().matches(scope)


async def endpoint() -> dict[str, str]:
    return {}


async def plain(request: Any) -> PlainTextResponse:
    return PlainTextResponse("plain")


async def socket(websocket: WebSocket) -> None:
    await websocket.close()


def every_kind_app(static: Path) -> FastAPI:
    """An app with every kind of route the index files or must leave to FastAPI."""
    register_url_convertor("route_index_hex", HexConvertor())
    inner = APIRouter(routes=[Mount("/static", app=StaticFiles(directory=static))])
    inner.add_api_route("/items/{item_id:int}", endpoint, methods=["GET"])
    inner.add_api_route("/items/{item_id:int}", endpoint, methods=["DELETE"])
    inner.add_api_route("/items/{name}.json", endpoint, methods=["GET"])
    inner.add_api_route("/items/new", endpoint, methods=["POST"])
    inner.add_api_route("/files/{rest:path}", endpoint, methods=["GET"])
    inner.add_api_route("/files/{rest:path}/raw", endpoint, methods=["GET"])
    inner.add_api_route("/hex/{value:route_index_hex}", endpoint, methods=["GET"])
    inner.add_api_route("/m/{x:float}/{u:uuid}", endpoint, methods=["PUT"])
    inner.add_api_route("/slash/", endpoint, methods=["GET"])
    inner.add_route("/plain/{word}", plain, methods=["GET"])
    inner.add_api_websocket_route("/ws/{room}", socket)
    own = APIRouter(route_class=OwnMatching)
    own.add_api_route("/own/{thing}", endpoint, methods=["GET"])
    outer = APIRouter()
    outer.include_router(inner, prefix="/v1")
    outer.include_router(own)
    app = FastAPI()
    app.add_api_route("/", endpoint, methods=["GET"])
    app.include_router(outer, prefix="/api")
    app.include_router(inner)
    app.mount("/sub", Starlette(routes=[Route("/page", plain)]))
    app.add_api_route("/items/{item_id:int}", endpoint, methods=["PATCH"])
    app.router.routes.append(Host("other.test", app=Starlette(routes=[Route("/h", plain)])))
    return app


@pytest.fixture(scope="module")
def loaded_app(
    make_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> FastAPI:
    """The app with every built-in plugin and a realtime transport (an SSE one, as a
    third-party plugin would add it)."""
    distributions = FakeDistributions(tmp_path_factory.mktemp("sse") / "site")
    distributions.root.mkdir()
    distributions.add("tests-sse", {"tests.sse": "tests_sse_plugin"}, {"tests_sse_plugin": PLUGIN})
    distributions.activate()
    try:
        return create_app(make_settings())
    finally:
        distributions.deactivate()


def scope_for(
    path: str, method: str = "GET", root_path: str = "", host: str = "example.test"
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("tessera.test", 80),
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", host.encode())],
    }


def sample_path(route: RouteContext) -> str:
    return PARAM_REGEX.sub(lambda param: SAMPLES[(param.group(2) or ":str")[1:]], route.path)


def variants(path: str) -> Iterator[str]:
    """``path``, and paths that differ from it in one way a lookup could trip over."""
    yield from (path, path + "/", path.rstrip("/") or "/", path + "/more", path + "\n")
    yield path.rsplit("/", 1)[0] or "/"
    segments = path.split("/")
    for position in range(1, len(segments)):
        for other in ("zz", "", segments[position].upper()):
            yield "/".join([*segments[:position], other, *segments[position + 1 :]])


def lookup(routes: list[BaseRoute], make: Callable[[], dict[str, Any]]) -> Any:
    """What ``APIRouter.app`` decides over ``routes``: the first full match, else the first
    partial one, each as (kind, the serving route, its path params); else a redirect; else
    None. Within an included router, the first full then partial match of its routes."""
    partial = None
    for app_route in routes:
        kind = app_route.matches(make())[0]
        if kind is Match.FULL:
            return served(app_route, make, Match.FULL)
        if kind is Match.PARTIAL and partial is None:
            partial = app_route
    if partial is not None:
        return served(partial, make, Match.PARTIAL)
    scope = make()
    route_path = get_route_path(scope)
    if route_path == "/":
        return None
    toggled = scope["path"].rstrip("/") if route_path.endswith("/") else scope["path"] + "/"
    for app_route in routes:
        if app_route.matches({**make(), "path": toggled})[0] is not Match.NONE:
            return ("redirect", toggled)
    return None


def served(app_route: BaseRoute, make: Callable[[], dict[str, Any]], kind: Match) -> Any:
    for route in iter_route_contexts([app_route]):
        found, child = route.matches(make())
        if found is kind:
            return (kind, route.original_route, child.get("path_params"))
    raise AssertionError(f"{app_route} matched, none of its routes did")


def assert_same_decisions(
    app: FastAPI, paths: set[str], hosts: tuple[str, ...] = ("example.test",)
) -> int:
    """For each of ``paths`` (plus a root path), method and host: the narrowed router decides
    as the whole one, and holds every route that matches the path or its toggled spelling."""
    index = RouteIndex(app.router)
    routes = app.router.routes
    checked = 0
    for path in sorted(paths):
        for method, root_path, host in itertools.product(METHODS, ("", "/base"), hosts):

            def make(
                path: str = path, method: str = method, root: str = root_path, host: str = host
            ) -> dict[str, Any]:
                return scope_for(path, method, root, host)

            narrowed = index.narrowed(make())
            assert lookup(routes, make) == lookup(narrowed.routes, make), (method, path)
            scope = make()
            full_path = scope["path"]
            toggled = (
                full_path.rstrip("/") if get_route_path(scope).endswith("/") else full_path + "/"
            )
            for candidate in (make(), {**make(), "path": toggled}):
                for app_route in routes:
                    if app_route.matches(candidate)[0] is not Match.NONE:
                        assert app_route in narrowed.routes, (method, path, app_route)
            checked += 1
    return checked


def paths_of(app: FastAPI) -> set[str]:
    paths = set(UNKNOWN_PATHS)
    for route in iter_route_contexts(app.router.routes):
        if isinstance(route.path, str) and route.path.startswith("/"):
            paths.update(variants(sample_path(route)))
    return paths


def test_every_route_of_the_loaded_app_is_found_as_by_a_linear_scan(loaded_app: FastAPI) -> None:
    app = loaded_app
    paths = [route.path for route in iter_route_contexts(app.router.routes)]
    assert len(paths) > 100
    assert "/api/projects/{project_id}/realtime/collections/{collection}" in paths
    assert isinstance(app.router.middleware_stack, RouteIndex)
    assert assert_same_decisions(app, paths_of(app)) > 10_000


def test_every_kind_of_route_is_found_as_by_a_linear_scan(tmp_path: Path) -> None:
    app = every_kind_app(tmp_path)
    paths = paths_of(app) | {"/sub/page", "/sub", "/static/x", "/v1/static/a/b", "/h"}
    assert assert_same_decisions(app, paths, ("example.test", "other.test")) > 1_000


def test_what_the_index_cannot_read_is_a_candidate_everywhere(tmp_path: Path) -> None:
    app = every_kind_app(tmp_path)
    index = RouteIndex(app.router)
    shapes = {route.path: route_shape(route) for route in iter_route_contexts(app.router.routes)}
    assert shapes["/items/{item_id:int}"] == (("items", None), False)
    assert shapes["/api/v1/items/{name}.json"] == (("api", "v1", "items", None), False)
    assert shapes["/files/{rest:path}/raw"] == (("files",), True)
    assert shapes["/hex/{value:route_index_hex}"] == (("hex",), True)
    assert shapes["/slash/"] == (("slash", ""), False)
    for unreadable in ("/static", "/api/own/{thing}", "/sub", None):
        assert shapes[unreadable] is None
    mount = next(n for n, route in enumerate(app.router.routes) if isinstance(route, Mount))
    host = next(n for n, route in enumerate(app.router.routes) if isinstance(route, Host))
    for path in ("/", "/anything/at/all", "/items/1", ""):
        assert {mount, host} <= index.candidates(path)
    assert index.candidates("/items/1\n") == set(range(len(app.router.routes)))


def test_only_routes_that_could_match_are_tried(loaded_app: FastAPI) -> None:
    app = loaded_app
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    meta = index.narrowed(scope_for("/api/projects/p1/views/v1/meta"))
    assert [route.path for route in iter_route_contexts(meta.routes)] == [
        route.path
        for route in iter_route_contexts(app.router.routes)
        if route.path.startswith("/api/projects/{project_id}/views")
    ]
    assert index.narrowed(scope_for("/no/such/route")).routes == []
    assert index.narrowed(scope_for("/healthz")) is index.narrowed(scope_for("/healthz/"))


# --- through the app ----------------------------------------------------------------------


async def test_unknown_path_is_a_404_with_the_error_body(client: httpx.AsyncClient) -> None:
    for path in ("/no/such/route", "/api/projects/p1/views/v1/nope", "/api"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {
            "errors": [{"field": None, "code": "not_found", "message": "Not Found"}]
        }


async def test_wrong_method_is_a_405_naming_every_allowed_method(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put("/api/projects")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["code"] == "method_not_allowed"
    response = await client.post("/api/projects/p1/views/v1/meta")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_trailing_slash_redirects_to_the_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/projects/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "http://tessera.test/api/projects"
    response = await client.get("/healthz/?deep=1", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "http://tessera.test/healthz?deep=1"


async def test_a_route_needing_a_caller_still_refuses_none(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/projects/p1/views/v1/meta")
    assert response.status_code == 401


async def test_path_parameter_routes_and_assets_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/admin/no/such/page", "/admin/other", "/admin/"):
        caught = await client.get(path, follow_redirects=False)
        assert caught.status_code == 404, path  # the admin's {rest:path} page, not the API's
        assert caught.headers["content-type"].startswith("text/html")
        assert "Page not found" in caught.text
    asset = await client.get("/docs/assets/swagger-ui.css")
    assert asset.status_code == 200


async def test_a_body_refused_on_no_route_is_the_apps_404(client: httpx.AsyncClient) -> None:
    body = b'{"name": "a\\u0000b"}'
    headers = {"Content-Type": "application/json"}
    response = await client.post("/no/such/route", content=body, headers=headers)
    assert response.status_code == 404
    response = await client.post("/api/admin/login", content=body, headers=headers)
    assert response.status_code == 422


async def test_metrics_name_the_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/projects/p1/views/v1/meta")
    await client.put("/api/projects")
    text = (await client.get("/metrics")).text
    route = "/api/projects/{project_id}/views/{name}/meta"
    assert f'tessera_http_requests_total{{method="GET",route="{route}",status="401"}}' in text
    assert 'tessera_http_requests_total{method="PUT",route="/api/projects",status="405"}' in text


async def test_a_route_added_to_the_app_later_is_served(
    make_settings: Callable[..., Settings],
) -> None:
    async with running(make_settings()) as client:
        app = client.app  # type: ignore[attr-defined]
        assert (await client.get("/late")).status_code == 404
        app.add_api_route("/late", endpoint, methods=["GET"])
        response = await client.get("/late")
        assert response.status_code == 200


async def test_frontend_routes_leave_the_router_whole(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>front</p>")
    app = every_kind_app(tmp_path)
    app.router.frontend("/front", directory=tmp_path)
    app.router.middleware_stack = RouteIndex(app.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example.test") as client:
        assert (await client.get("/front/index.html")).text == "<p>front</p>"
        assert (await client.get("/items/3")).status_code == 200
        assert (await client.put("/items/3")).status_code == 405
        assert (await client.get("/sub/page")).text == "plain"
        assert (await client.get("/nowhere")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("GET", "/items/3", 200, "{}"),
        ("PATCH", "/items/3", 200, "{}"),
        ("PUT", "/items/3", 405, None),
        ("GET", "/files/a/b/c", 200, "{}"),
        ("GET", "/api/v1/hex/beef", 200, "{}"),
        ("GET", "/api/v1/hex/BEEF", 404, None),
        ("GET", "/sub/page", 200, "plain"),
        ("GET", "/h", 404, None),
        ("PUT", "/m/1.5/00000000-0000-0000-0000-000000000007", 200, "{}"),
        ("GET", "/plain/word", 200, "plain"),
        ("GET", "/api/own/thing", 200, "{}"),
        ("GET", "/slash", 307, None),
        ("GET", "/static/", 404, None),
    ],
)
async def test_every_kind_of_route_is_served_through_the_index(
    tmp_path: Path, method: str, path: str, status: int, text: str | None
) -> None:
    app = every_kind_app(tmp_path)
    app.router.middleware_stack = RouteIndex(app.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example.test") as client:
        response = await client.request(method, path, follow_redirects=False)
    assert response.status_code == status
    if text is not None:
        assert response.text == text
