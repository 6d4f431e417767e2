"""``GET /api/projects/{p}/audit``: the audit log, filterable, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response

from kernel.api.deps import PrincipalDep, TesseraDep
from kernel.api.responses import Page, Shape, json_response
from kernel.audit import audit_page

router = APIRouter(prefix="/api/projects/{project_id}/audit", tags=["audit"])


class AuditEvent(Shape):
    id: int
    action: str
    target_type: str
    target: str
    actor: dict[str, Any]
    before: Any
    after: Any
    created_at: datetime


@router.get("", summary="Audit events of the project", response_model=Page[AuditEvent])
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
    page = await audit_page(
        tessera,
        principal,
        project_id,
        action=action,
        target_type=target_type,
        target=target,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return json_response(page)
