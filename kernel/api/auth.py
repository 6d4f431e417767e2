"""Sign-in for admins; sign-up and sign-in for project users."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from kernel.api.deps import PrincipalDep, TesseraDep
from kernel.api.responses import Shape, error_responses, json_response

router = APIRouter(tags=["auth"])


class Credentials(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class Admin(Shape):
    id: int
    email: str


class AdminToken(Shape):
    token: str
    admin: Admin


class User(Shape):
    id: int
    email: str
    role: str


class NewUser(User):
    created_at: datetime


class UserToken(Shape):
    token: str
    user: User


@router.post(
    "/api/admin/login",
    summary="Admin sign-in → token",
    response_model=AdminToken,
    responses=error_responses(401),
)
async def admin_login(body: Credentials, tessera: TesseraDep) -> Response:
    return json_response(await tessera.identity.admin_login(body.email, body.password))


@router.post(
    "/api/projects/{project_id}/auth/signup",
    status_code=201,
    summary="Project user sign-up",
    response_model=NewUser,
    responses=error_responses(409),
)
async def signup(
    project_id: str, body: Credentials, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    user = await tessera.identity.signup(project_id, body.email, body.password, principal)
    return json_response(user, 201)


@router.post(
    "/api/projects/{project_id}/auth/login",
    summary="Project user sign-in → token",
    response_model=UserToken,
    responses=error_responses(401),
)
async def login(project_id: str, body: Credentials, tessera: TesseraDep) -> Response:
    return json_response(await tessera.identity.login(project_id, body.email, body.password))
