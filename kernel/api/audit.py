"""``GET /api/projects/{p}/audit``: the audit log, filterable, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Response

from kernel.api.access import require_schema_reader
from kernel.api.deps import PrincipalDep, TesseraDep
from kernel.api.responses import json_response
from kernel.db.schema import audit_events

router = APIRouter(prefix="/api/projects/{project_id}/audit", tags=["audit"])


def describe(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "action": row.action,
        "target_type": row.target_type,
        "target": row.target,
        "actor": row.actor,
        "before": row.before,
        "after": row.after,
        "created_at": row.created_at,
    }


@router.get("", summary="Audit events of the project")
async def list_audit(
    project_id: str,
    tessera: TesseraDep,
    principal: PrincipalDep,
    action: str | None = Query(default=None, description="exact action, or a prefix ending in '.'"),
    target_type: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
) -> Response:
    await tessera.catalog.get(project_id)
    require_schema_reader(principal, project_id)
    scope = f"audit:{project_id}"
    statement = sa.select(audit_events).where(audit_events.c.project_id == project_id)
    if action:
        statement = statement.where(
            audit_events.c.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else audit_events.c.action == action
        )
    if target_type:
        statement = statement.where(audit_events.c.target_type == target_type)
    if target:
        statement = statement.where(audit_events.c.target == target)
    if since:
        statement = statement.where(audit_events.c.created_at >= since)
    if until:
        statement = statement.where(audit_events.c.created_at < until)
    if cursor:
        (before,) = tessera.cursors.decode(scope, cursor)
        statement = statement.where(audit_events.c.id < int(before))
    statement = statement.order_by(audit_events.c.id.desc()).limit(limit + 1)
    async with tessera.db.engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    next_cursor = tessera.cursors.encode(scope, [rows[limit - 1].id]) if len(rows) > limit else None
    return json_response(
        {
            "data": [describe(row) for row in rows[:limit]],
            "page": {"limit": limit, "next_cursor": next_cursor},
        }
    )
