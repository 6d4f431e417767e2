"""The schema-op history of a project: what ``GET .../schema/ops`` and the admin show."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from kernel.db.schema import schema_ops
from kernel.errors import NotFound
from kernel.pages import newest_first
from kernel.security.access import require_schema_reader
from kernel.security.principal import Principal

if TYPE_CHECKING:
    from kernel.runtime import Tessera


def describe_op(row: Any) -> dict[str, Any]:
    """A ``schema_ops`` row as the API shows it."""
    return {
        "id": row.id,
        "op": row.op,
        "args": row.args,
        "status": row.status,
        "ddl": row.ddl,
        "warnings": row.warnings,
        "impact": row.impact,
        "result": row.result,
        "error": row.error,
        "transitions": row.transitions,
        "actor": row.actor,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def append_transition(column: Any, status: str, at: datetime) -> Any:
    """``transitions`` with ``{"status": status, "at": at}`` appended (an UPDATE value)."""
    entry = sa.literal([{"status": status, "at": at.isoformat()}], JSONB)
    return column.op("||")(entry)


async def ops_page(
    tessera: Tessera,
    principal: Principal,
    project_id: str,
    *,
    status: str | None = None,
    op: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of operations, newest first (``{"data", "page"}``), optionally only one
    status or one op. Admins and ``schema:write`` keys only; 404 for an unknown project."""
    await tessera.catalog.get(project_id)
    require_schema_reader(principal, project_id)
    statement = sa.select(schema_ops).where(schema_ops.c.project_id == project_id)
    if status:
        statement = statement.where(schema_ops.c.status == status)
    if op:
        statement = statement.where(schema_ops.c.op == op)
    return await newest_first(
        tessera,
        statement,
        schema_ops,
        scope=f"ops:{project_id}",
        limit=limit,
        cursor=cursor,
        describe=describe_op,
    )


async def one_op(
    tessera: Tessera, principal: Principal, project_id: str, op_id: int
) -> dict[str, Any]:
    """One operation with its status transitions; 404 ``op_not_found``."""
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
    return describe_op(row)
