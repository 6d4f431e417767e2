"""The audit log and the schema-op history, read through the same kernel services as the
REST routes (``kernel.audit.audit_page``, ``tessera.schema.history``): one definition of
the filters, the pagination and the permission check. Pages pass through JSON, so values
arrive as the API shows them (ISO dates as text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from kernel import Principal
from kernel.audit import audit_page
from kernel.runtime import Tessera

PAGE_SIZE = 25


def _as_shown(page: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(page))


async def schema_ops(
    tessera: Tessera,
    principal: Principal,
    project_id: str,
    *,
    status: str | None,
    op: str | None,
    cursor: str | None,
) -> dict[str, Any]:
    """``{"data": [op, ...], "page": {...}}``, newest first, as ``GET .../schema/ops``."""
    page = await tessera.schema.history(
        project_id,
        principal,
        status=status or None,
        op=op or None,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    return _as_shown(page)


async def audit_events(
    tessera: Tessera,
    principal: Principal,
    project_id: str,
    *,
    action: str | None,
    target_type: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
) -> dict[str, Any]:
    """``{"data": [event, ...], "page": {...}}``, newest first, as ``GET .../audit``."""
    page = await audit_page(
        tessera,
        principal,
        project_id,
        action=action or None,
        target_type=target_type or None,
        target=target or None,
        since=since,
        until=until,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    return _as_shown(page)
