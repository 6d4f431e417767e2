"""The audit log: who did what to which object, with the state before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.db.schema import audit_events
from kernel.security.principal import Principal


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
