"""Schema operations: preview, apply, history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from kernel.api.access import require_schema_reader
from kernel.api.deps import PrincipalDep, TesseraDep
from kernel.api.responses import json_response
from kernel.db.schema import schema_ops
from kernel.ddl.engine import describe_op
from kernel.errors import NotFound

router = APIRouter(prefix="/api/projects/{project_id}/schema", tags=["schema"])


class OpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: str = Field(max_length=100, description="operation name, e.g. add_field")
    args: dict[str, Any] = Field(default_factory=dict)
    override_maintenance: bool = Field(
        default=False, description="apply even though the project is in maintenance mode"
    )


@router.post("/preview", summary="Plan an operation: DDL, warnings, impact — changes nothing")
async def preview(
    project_id: str, body: OpRequest, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    return json_response(await tessera.schema.preview(project_id, body.op, body.args, principal))


@router.post("/apply", summary="Apply an operation; recorded in the history either way")
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


@router.get("/ops", summary="Operation history, newest first")
async def list_ops(
    project_id: str,
    tessera: TesseraDep,
    principal: PrincipalDep,
    status: str | None = None,
    op: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
) -> Response:
    await tessera.catalog.get(project_id)
    require_schema_reader(principal, project_id)
    scope = f"ops:{project_id}"
    statement = sa.select(schema_ops).where(schema_ops.c.project_id == project_id)
    if status:
        statement = statement.where(schema_ops.c.status == status)
    if op:
        statement = statement.where(schema_ops.c.op == op)
    if cursor:
        (before,) = tessera.cursors.decode(scope, cursor)
        statement = statement.where(schema_ops.c.id < int(before))
    statement = statement.order_by(schema_ops.c.id.desc()).limit(limit + 1)
    async with tessera.db.engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    next_cursor = tessera.cursors.encode(scope, [rows[limit - 1].id]) if len(rows) > limit else None
    return json_response(
        {
            "data": [describe_op(row) for row in rows[:limit]],
            "page": {"limit": limit, "next_cursor": next_cursor},
        }
    )


@router.get("/ops/{op_id}", summary="One operation with its status transitions")
async def get_op(
    project_id: str, op_id: int, tessera: TesseraDep, principal: PrincipalDep
) -> Response:
    await tessera.catalog.get(project_id)
    require_schema_reader(principal, project_id)
    async with tessera.db.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(schema_ops).where(
                    schema_ops.c.project_id == project_id, schema_ops.c.id == op_id
                )
            )
        ).one_or_none()
    if row is None:
        raise NotFound(f"no schema operation {op_id}", code="op_not_found")
    return json_response(describe_op(row))
