"""Projects and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import Listing, Shape, error_responses, json_response
from kernel.catalog.model import ProjectSettings
from kernel.projects import ProjectCreate, ProjectUpdate
from kernel.security.keys import KeySpec

router = APIRouter(prefix="/api/projects", tags=["projects"], dependencies=[SignedIn])


class Project(Shape):
    id: str
    name: str
    schema_: str = Field(alias="schema")
    catalog_version: int
    settings: ProjectSettings
    created_at: datetime
    updated_at: datetime


class ApiKey(Shape):
    """An API key as listed: never its secret."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    collections: list[str] | None
    role: str
    created_at: datetime
    created_by: dict[str, Any]
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewApiKey(ApiKey):
    """A key just created: with its secret, shown this once."""

    key: str


@router.post(
    "",
    status_code=201,
    summary="Create a project (and its schema p_<id>)",
    response_model=Project,
    responses=error_responses(409),
)
async def create_project(
    body: ProjectCreate, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.projects.create(body, principal), 201)


@router.get("", summary="Projects visible to the caller", response_model=Listing[Project])
async def list_projects(tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await tessera.projects.list(principal)})


@router.get("/{project_id}", summary="One project", response_model=Project)
async def get_project(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response(await tessera.projects.get(project_id, principal))


@router.patch(
    "/{project_id}", summary="Rename a project or change its settings", response_model=Project
)
async def update_project(
    project_id: str, body: ProjectUpdate, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.projects.update(project_id, body, principal))


@router.delete(
    "/{project_id}",
    status_code=204,
    summary="Delete a project and all its data (confirm=<project id> required)",
    responses=error_responses(422),
)
async def delete_project(
    project_id: str, tessera: TesseraDep, principal: PrincipalDep, confirm: str | None = None
) -> Response:
    await tessera.projects.delete(project_id, confirm, principal)
    return Response(status_code=204)


@router.post(
    "/{project_id}/api-keys",
    status_code=201,
    summary="Create an API key (shown once)",
    response_model=NewApiKey,
)
async def create_key(
    project_id: str, body: KeySpec, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.api_keys.create(project_id, body, principal), 201)


@router.get(
    "/{project_id}/api-keys",
    summary="API keys, without their secrets",
    response_model=Listing[ApiKey],
)
async def list_keys(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await tessera.api_keys.list(project_id, principal)})


@router.delete("/{project_id}/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    project_id: str, key_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await tessera.api_keys.revoke(project_id, key_id, principal)
    return Response(status_code=204)
