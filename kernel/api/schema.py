"""Schema operations: preview, apply, history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from kernel.api.deps import PrincipalDep, SignedIn, TesseraDep
from kernel.api.responses import Page, Shape, error_responses, json_response

router = APIRouter(
    prefix="/api/projects/{project_id}/schema", tags=["schema"], dependencies=[SignedIn]
)


class OpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: str = Field(max_length=100, description="operation name, e.g. add_field")
    args: dict[str, Any] = Field(default_factory=dict)
    override_maintenance: bool = Field(
        default=False, description="apply even though the project is in maintenance mode"
    )


class Preview(Shape):
    """What an operation would do; ``safe`` False means apply refuses it and ``wizard``
    describes the guided alternative."""

    op: str
    args: dict[str, Any]
    ddl: list[str]
    steps: list[str]
    warnings: list[Any]
    safe: bool
    wizard: dict[str, Any] | None
    impact: dict[str, Any]


class Operation(Shape):
    """A recorded schema operation with its status transitions."""

    id: int
    op: str
    args: Any
    status: str
    ddl: Any
    warnings: Any
    impact: Any
    result: Any
    error: Any
    transitions: list[dict[str, Any]]
    actor: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


#: An operation can be refused because a name is taken or a table is busy.
_OP_ERRORS = error_responses(409)


@router.post(
    "/preview",
    summary="Plan an operation: DDL, warnings, impact — changes nothing",
    response_model=Preview,
    responses=_OP_ERRORS,
)
async def preview(
    project_id: str, body: OpRequest, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.schema.preview(project_id, body.op, body.args, principal))


@router.post(
    "/apply",
    summary="Apply an operation; recorded in the history either way",
    response_model=Operation,
    responses=_OP_ERRORS,
)
async def apply(
    project_id: str, body: OpRequest, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    applied = await tessera.schema.apply(
        project_id,
        body.op,
        body.args,
        principal,
        override_maintenance=body.override_maintenance,
    )
    return json_response(applied)


@router.get("/ops", summary="Operation history, newest first", response_model=Page[Operation])
async def list_ops(
    project_id: str,
    tessera: TesseraDep,
    principal: PrincipalDep,
    status: str | None = None,
    op: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
) -> Response:
    page = await tessera.schema.history(
        project_id, principal, status=status, op=op, limit=limit, cursor=cursor
    )
    return json_response(page)


@router.get(
    "/ops/{op_id}", summary="One operation with its status transitions", response_model=Operation
)
async def get_op(
    project_id: str, op_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.schema.operation(project_id, op_id, principal))
