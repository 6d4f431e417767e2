"""The audit log and the schema-op history, read through the REST routes' own functions.

Calling the route functions (rather than repeating their queries) keeps one definition of
the filters, the pagination and the permission check (``require_schema_reader``). Their
JSON answers are decoded, so values arrive as the API shows them (ISO dates as text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from kernel import Principal
from kernel.api import audit, schema
from kernel.runtime import Tessera

PAGE_SIZE = 25


def _decode(response: Any) -> dict[str, Any]:
    return orjson.loads(response.body)


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
    response = await schema.list_ops(
        project_id,
        tessera,
        principal,
        status=status or None,
        op=op or None,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    return _decode(response)


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
    response = await audit.list_audit(
        project_id,
        tessera,
        principal,
        action=action or None,
        target_type=target_type or None,
        target=target or None,
        since=since,
        until=until,
        limit=PAGE_SIZE,
        cursor=cursor or None,
    )
    return _decode(response)
