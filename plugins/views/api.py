"""Routes: ``/api/projects/{p}/views`` (API.md, "Views"), thin over :class:`ViewService`
and :class:`ViewRunner`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from kernel import hot_route
from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import Listing, Page, Shape, error_responses, json_response
from kernel.query import query_items
from plugins.views.definition import Definition, NewView
from plugins.views.runner import view_runner
from plugins.views.service import ViewService

router = APIRouter(prefix="/api/projects/{project_id}", tags=["views"], dependencies=[SignedIn])


class View(Shape):
    """A view with its active version's definition."""

    name: str
    version: int
    base_collection: str
    projection: list[str]
    created_by: dict[str, Any]
    created_at: datetime


class ViewMeta(Shape):
    """How to call a view (API.md, "Views")."""

    url_template: str
    method: str
    auth: list[dict[str, Any]]
    params: list[dict[str, Any]]
    filters: list[dict[str, Any]]
    sort: dict[str, Any]
    pagination: dict[str, Any]
    response: dict[str, Any]
    examples: dict[str, str]


class Version(Shape):
    version: int
    active: bool
    created_at: datetime
    created_by: dict[str, Any]


@router.post(
    "/views",
    status_code=201,
    summary="Create a view (version 1, active)",
    response_model=View,
    responses=error_responses(409, 422),
)
async def create_view(
    project_id: str, body: NewView, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await ViewService(tessera).create(project_id, body, principal), 201)


@router.get("/views", summary="Views of the project", response_model=Listing[View])
async def list_views(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await ViewService(tessera).list(project_id, principal)})


@router.get("/views/{name}/definition", summary="A view's active definition", response_model=View)
async def get_definition(
    project_id: str, name: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await ViewService(tessera).get(project_id, name, principal))


@router.put(
    "/views/{name}/definition",
    summary="Change a view: a new version, made active",
    response_model=View,
    responses=error_responses(422),
)
async def change_definition(
    project_id: str, name: str, body: Definition, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await ViewService(tessera).change(project_id, name, body, principal))


@router.delete(
    "/views/{name}",
    status_code=204,
    summary="Delete a view with every version",
    responses=error_responses(403, 404),
)
async def delete_view(
    project_id: str, name: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await ViewService(tessera).delete(project_id, name, principal)
    return Response(status_code=204)


@router.get(
    "/views/{name}/versions", summary="Every version, newest first", response_model=Listing[Version]
)
async def list_versions(
    project_id: str, name: str, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response({"data": await ViewService(tessera).versions(project_id, name, principal)})


@router.post(
    "/views/{name}/versions/{version}/activate",
    summary="Make a version active (rollback)",
    response_model=View,
    responses=error_responses(422),
)
async def activate_version(
    project_id: str, name: str, version: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    activated = await ViewService(tessera).activate(project_id, name, version, principal)
    return json_response(activated)


@router.get(
    "/views/{name}",
    summary="Run a view: its parameters and the query contract",
    response_model=Page[dict[str, Any]],
    responses=error_responses(400),
)
@hot_route  # every page a client shows: served by the fast path, as the records routes
async def run_view(
    project_id: str, name: str, request: Request, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    runner = view_runner(tessera)
    # What request.query_params.multi_items() gives, without building the multidict.
    items = query_items(request.scope["query_string"].decode("latin-1"))
    return json_response(await runner.run(project_id, name, items, principal))


@router.get(
    "/views/{name}/meta",
    summary="How to call a view: URL, params, filters, sort, limits, auth, examples",
    response_model=ViewMeta,
)
async def view_meta(
    project_id: str, name: str, request: Request, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    meta = await ViewService(tessera).meta(
        project_id, name, principal, str(request.base_url).rstrip("/")
    )
    return json_response(meta)
