"""Plugins' hot routes (``kernel.hot_route``): served by the fast path, answering exactly as
FastAPI does; a route the fast path cannot serve that way is refused at load. The saved
view run route is one: its answers, errors included, are the same through both paths."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from kernel.config import Settings
from kernel.errors import PluginError
from tests.conftest import Api, running
from tests.fake_plugins import FakeDistributions
from tests.test_hooks import new_project, probe, signed_in
from tests.test_views import ORDERS_BY_CUSTOMER, create_view, shop, views

#: A plugin with a hot route read and written under a project, behind ``SignedIn``: echoes
#: what it was given. ``tests/test_pipeline.py`` runs the pipeline's checks against it.
HOT_ROUTE_PLUGIN = """
from fastapi import APIRouter, Request, Response

from kernel import hookimpl, hot_route
from kernel.api.deps import JsonBody, PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import json_response


@hookimpl
def register_routes(tessera):
    router = APIRouter(
        prefix="/api/projects/{project_id}/hot", tags=["hot"], dependencies=[SignedIn]
    )

    @router.get("/{collection}", summary="Echo a read")
    @hot_route
    async def read_hot(
        project_id: str, collection: str, request: Request, tessera: TesseraDep,
        principal: PrincipalDep,
    ) -> Response:
        return json_response({
            "project": project_id,
            "collection": collection,
            "caller": principal.kind,
            "query": request.query_params.multi_items(),
            "path_params": request.path_params,
            "kernel": tessera is request.app.state.tessera,
        })

    @router.post("/{collection}", summary="Echo a write")
    @hot_route
    async def write_hot(
        project_id: str, collection: str, principal: PrincipalDep, body: JsonBody
    ) -> Response:
        if body == {"fail": "not_found"}:
            from kernel.errors import NotFound
            raise NotFound("no such thing", code="thing_not_found")
        if body == {"fail": "http"}:
            from fastapi import HTTPException
            raise HTTPException(status_code=418, detail="teapot")
        return json_response({"collection": collection, "body": body})

    return [router]
"""

#: Hot routes the fast path cannot serve as FastAPI would, and what the refusal says.
REFUSED = {
    "a query parameter": (
        "async def bad(project_id: str, limit: int = 10) -> Response:",
        "cannot supply ['limit']",
    ),
    "an int path parameter": (
        "async def bad(project_id: int) -> Response:",
        "path parameter 'project_id' must be a plain str",
    ),
    "another dependency": (
        "async def bad(project_id: str, extra: Annotated[str, Depends(extra)]) -> Response:",
        "cannot supply the dependency 'extra'",
    ),
    "a ':path' parameter": (
        "async def bad(project_id: str) -> Response:",
        "no ':path' parameters",
    ),
    "a dict answer": ("async def bad(project_id: str) -> dict:", "returns a Response"),
    "a path a kernel route takes": (
        "async def bad(project_id: str, name: str) -> Response:",
        "/api/projects/{project_id}/collections/{collection}, declared before, takes some",
    ),
}
_PATHS = {
    "a ':path' parameter": "/api/bad/{project_id:path}",
    "a path a kernel route takes": "/api/projects/{project_id}/collections/{name}",
}
_BAD_ROUTE = """
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from kernel import hookimpl, hot_route


async def extra() -> str:
    return "x"


@hookimpl
def register_routes():
    router = APIRouter()

    @router.get("{path}")
    @hot_route
    {signature}
        return Response()

    return [router]
"""


def hot_plugin(distributions: FakeDistributions) -> None:
    probe(distributions, "probe.hot", HOT_ROUTE_PLUGIN)


@pytest.fixture(scope="module")
async def hot_client(
    tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings]
) -> Any:
    distributions = FakeDistributions(tmp_path_factory.mktemp("hot") / "site")
    distributions.root.mkdir()
    distributions.activate()
    hot_plugin(distributions)
    try:
        async with running(make_settings()) as client:
            yield client
    finally:
        distributions.deactivate()


@pytest.fixture
async def hot_api(hot_client: httpx.AsyncClient) -> Api:
    return await new_project(hot_client, await signed_in(hot_client))


@contextmanager
def served_paths(client: httpx.AsyncClient) -> Iterator[list[str]]:
    """The route templates the fast path serves while the block runs."""
    fast_path = client.app.fast_path  # type: ignore[attr-defined]
    served: list[str] = []
    original = fast_path.serve

    async def spying(route: Any, *args: Any) -> None:
        served.append(route.route.path)
        await original(route, *args)

    fast_path.serve = spying
    try:
        yield served
    finally:
        del fast_path.serve


@contextmanager
def through_fastapi(client: httpx.AsyncClient) -> Iterator[None]:
    """Every request of the block served by FastAPI (the fast path matches nothing)."""
    pipeline = client.app.pipeline  # type: ignore[attr-defined]
    original = pipeline.fast_route
    pipeline.fast_route = lambda scope: None
    try:
        yield
    finally:
        pipeline.fast_route = original


async def both_ways(
    client: httpx.AsyncClient, method: str, url: str, *, step_refuses: bool = False, **kw: Any
) -> httpx.Response:
    """The fast path's answer, checked to be the one FastAPI gives (status, body, headers
    but the request id), and to come from the fast path (unless a pipeline step refuses
    the request before any route: ``step_refuses``)."""
    with served_paths(client) as served:
        fast = await client.request(method, url, **kw)
    assert len(served) == (0 if step_refuses else 1), f"fast path: {served} for {method} {url}"
    with through_fastapi(client), served_paths(client) as served:
        slow = await client.request(method, url, **kw)
    assert served == []
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content)

    def headers(response: httpx.Response) -> dict[str, str]:
        return {name: value for name, value in response.headers.items() if name != "x-request-id"}

    assert headers(fast) == headers(slow)
    return fast


# --- a plugin's hot route -----------------------------------------------------------------


async def test_a_plugin_hot_route_is_served_by_the_fast_path(hot_api: Api) -> None:
    client = hot_api.client
    url = hot_api.url("/hot/notes?a=1&a=2&b=")
    with served_paths(client) as served:
        response = await client.get(url, headers=hot_api.headers)
    assert served == ["/api/projects/{project_id}/hot/{collection}"]
    assert response.status_code == 200
    assert response.json() == {
        "project": hot_api.project,
        "collection": "notes",
        "caller": "admin",
        "query": [["a", "1"], ["a", "2"], ["b", ""]],
        "path_params": {"project_id": hot_api.project, "collection": "notes"},
        "kernel": True,
    }


@pytest.mark.parametrize(
    ("method", "body", "credentials", "status"),
    [
        ("GET", None, True, 200),
        ("GET", None, False, 401),  # the router's SignedIn
        ("GET", None, "bad", 401),
        ("POST", b'{"x": [1, 2]}', True, 200),
        ("POST", b'{"x": ', True, 400),
        ("POST", b'{"x": ', False, 401),  # the caller before the body
        ("POST", b'{"fail": "not_found"}', True, 404),
        ("POST", b'{"fail": "http"}', True, 418),
        ("POST", b'{"text": "a\\u0000b"}', True, 422),
    ],
)
async def test_a_plugin_hot_route_answers_as_fastapi_does(
    hot_api: Api, method: str, body: bytes | None, credentials: bool | str, status: int
) -> None:
    headers = {"Content-Type": "text/plain" if body == b'{"x": ' else "application/json"}
    if credentials == "bad":
        headers["X-API-Key"] = "tsk_not-a-key"
    elif credentials:
        headers.update(hot_api.headers)
    url = hot_api.url("/hot/notes")
    step_refuses = body is not None and b"u0000" in body  # the sanitising step's 422
    response = await both_ways(
        hot_api.client, method, url, step_refuses=step_refuses, content=body, headers=headers
    )
    assert response.status_code == status, response.text
    if status >= 400:
        assert set(response.json()) == {"errors"}


async def test_a_hot_route_keeps_its_openapi_description(hot_api: Api) -> None:
    document = (await hot_api.client.get("/openapi.json")).json()
    operations = document["paths"]["/api/projects/{project_id}/hot/{collection}"]
    assert operations["get"]["summary"] == "Echo a read"
    assert operations["post"]["summary"] == "Echo a write"
    assert "401" in operations["get"]["responses"]


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_a_hot_route_the_fast_path_cannot_serve_is_refused_at_load(
    fake_distributions: FakeDistributions, make_settings: Callable[..., Settings], case: str
) -> None:
    signature, refusal = REFUSED[case]
    source = _BAD_ROUTE.replace("{path}", _PATHS.get(case, "/api/bad/{project_id}"))
    source = source.replace("{signature}", signature)
    probe(fake_distributions, "probe.badhot", source)
    with pytest.raises(PluginError, match=f"plugin probe.badhot: hot route .*{re.escape(refusal)}"):
        async with running(make_settings()):
            pass


# --- the saved view run route -------------------------------------------------------------


async def test_the_view_run_route_answers_the_same_through_both_paths(api: Api) -> None:
    customers = await shop(api)
    await create_view(api, ORDERS_BY_CUSTOMER)
    for collection in ("orders", "customers"):
        await api.set_policies(collection, list="", read="")
    url = views(api, "/orders_by_customer")
    customer = customers[1]["id"]
    customers_only = await api.key(["records:read"], collections=["customers"])
    cases: list[tuple[str, dict[str, Any], dict[str, str], int, str | None]] = [
        ("page", {"customer_id": customer, "limit": 3}, api.headers, 200, None),
        ("missing param", {}, api.headers, 400, "missing_param"),
        ("wrong type", {"customer_id": "seven"}, api.headers, 400, None),
        ("unknown param", {"customer_id": 1, "colour": "red"}, api.headers, 400, None),
        ("limit too big", {"customer_id": 1, "limit": 201}, api.headers, 400, None),
        ("forged cursor", {"customer_id": 1, "cursor": "abc.def"}, api.headers, 400, None),
        ("anonymous", {"customer_id": 1}, {}, 401, "unauthorized"),
        ("bad key", {"customer_id": 1}, {"X-API-Key": "tsk_no"}, 401, "invalid_api_key"),
        ("key without the base", {"customer_id": 1}, customers_only, 403, None),
    ]
    for name, params, headers, status, code in cases:
        response = await both_ways(api.client, "GET", url, params=params, headers=headers)
        assert response.status_code == status, (name, response.text)
        if code is not None:
            assert response.json()["errors"][0]["code"] == code, name
    page = (await both_ways(api.client, "GET", url, params=cases[0][1], headers=api.headers)).json()
    assert len(page["data"]) == 3 and page["page"]["next_cursor"]
    unknown = await both_ways(api.client, "GET", views(api, "/nope"), headers=api.headers)
    assert unknown.status_code == 404
    elsewhere = await both_ways(
        api.client, "GET", f"/api/projects/{api.project}x/views/nope", headers=api.headers
    )
    assert elsewhere.status_code == 404
