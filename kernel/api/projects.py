"""Projects and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response

from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import json_response
from kernel.projects import ProjectCreate, ProjectUpdate
from kernel.security.keys import KeySpec

router = APIRouter(prefix="/api/projects", tags=["projects"], dependencies=[SignedIn])


@router.post("", status_code=201, summary="Create a project (and its schema p_<id>)")
async def create_project(
    body: ProjectCreate, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.projects.create(body, principal), 201)


@router.get("", summary="Projects visible to the caller")
async def list_projects(tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await tessera.projects.list(principal)})


@router.get("/{project_id}", summary="One project")
async def get_project(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response(await tessera.projects.get(project_id, principal))


@router.patch("/{project_id}", summary="Rename a project or change its settings")
async def update_project(
    project_id: str, body: ProjectUpdate, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.projects.update(project_id, body, principal))


@router.delete(
    "/{project_id}",
    status_code=204,
    summary="Delete a project and all its data (confirm=<project id> required)",
)
async def delete_project(
    project_id: str, tessera: TesseraDep, principal: PrincipalDep, confirm: str | None = None
) -> Response:
    await tessera.projects.delete(project_id, confirm, principal)
    return Response(status_code=204)


@router.post("/{project_id}/api-keys", status_code=201, summary="Create an API key (shown once)")
async def create_key(
    project_id: str, body: KeySpec, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.api_keys.create(project_id, body, principal), 201)


@router.get("/{project_id}/api-keys", summary="API keys, without their secrets")
async def list_keys(project_id: str, tessera: TesseraDep, principal: PrincipalDep) -> Response:
    return json_response({"data": await tessera.api_keys.list(project_id, principal)})


@router.delete("/{project_id}/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    project_id: str, key_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await tessera.api_keys.revoke(project_id, key_id, principal)
    return Response(status_code=204)
