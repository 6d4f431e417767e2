"""The audit log: who did what to which object, with the state before and after."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.db.schema import audit_events
from kernel.pages import newest_first
from kernel.security.access import require_schema_reader
from kernel.security.principal import Principal

if TYPE_CHECKING:
    from kernel.surface import KernelSurface


async def record_audit(
    conn: AsyncConnection,
    *,
    actor: Principal,
    action: str,
    target_type: str,
    target: str,
    project_id: str | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Add one audit event inside the caller's transaction, so it commits (or not) with the
    change it describes. ``action`` reads ``<object>.<verb>`` (``collection.create``)."""
    await conn.execute(
        audit_events.insert().values(
            project_id=project_id,
            actor=actor.actor(),
            action=action,
            target_type=target_type,
            target=target,
            before=before,
            after=after,
        )
    )


def describe_audit_event(row: Any) -> dict[str, Any]:
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


async def audit_page(
    tessera: KernelSurface,
    principal: Principal,
    project_id: str,
    *,
    action: str | None = None,
    target_type: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of the project's audit log, newest first: ``{"data", "page"}`` as
    ``GET /api/projects/{p}/audit`` answers. ``action`` is exact, or a prefix when it ends
    in ``.``; ``since`` is inclusive, ``until`` exclusive. Admins and ``schema:write`` keys
    only; 404 for an unknown project, 400 for a cursor of another listing."""
    await tessera.catalog.get(project_id)
    require_schema_reader(principal, project_id)
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
    return await newest_first(
        tessera,
        statement,
        audit_events,
        scope=f"audit:{project_id}",
        limit=limit,
        cursor=cursor,
        describe=describe_audit_event,
    )
