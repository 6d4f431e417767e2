"""``schema_ops`` status writes of the engine: the op ``pending``, its transitions, its
failure. Each runs in its own short transaction; an op the reconciler has marked
``interrupted`` stays so (only unfinished ops change)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from kernel.db.engine import Database
from kernel.db.schema import schema_ops
from kernel.ddl.history import append_transition
from kernel.ddl.reconcile import UNFINISHED, mark_failed
from kernel.errors import TesseraError
from kernel.security.principal import Principal

log = logging.getLogger(__name__)


async def record_pending(
    db: Database, op_id: int, project_id: str, op_name: str, raw_args: Any, principal: Principal
) -> None:
    """Insert the op's row, ``pending``, under the id its lease holds."""
    now = datetime.now(UTC)
    async with db.engine.begin() as conn:
        await conn.execute(
            schema_ops.insert().values(
                id=op_id,
                project_id=project_id,
                op=str(op_name)[:100],
                args=raw_args if isinstance(raw_args, dict) else {"value": raw_args},
                status="pending",
                transitions=[{"status": "pending", "at": now.isoformat()}],
                actor=principal.actor(),
            )
        )


async def record_transition(db: Database, op_id: int, status: str) -> None:
    """Move an unfinished op to ``status``."""
    async with db.engine.begin() as conn:
        await conn.execute(
            schema_ops.update()
            .where(schema_ops.c.id == op_id, schema_ops.c.status.in_(UNFINISHED))
            .values(
                status=status,
                transitions=append_transition(schema_ops.c.transitions, status, datetime.now(UTC)),
            )
        )


async def record_failure(
    db: Database, op_id: int, error: TesseraError | None, detail: str | None = None
) -> None:
    """Mark an unfinished op ``failed`` with ``error``'s body (``None``: an internal error
    described by ``detail``). A failure to record is logged, not raised."""
    now = datetime.now(UTC)
    body = (
        {"status": error.status, **error.body()}
        if error is not None
        else {"status": 500, "errors": [{"field": None, "code": "internal", "message": detail}]}
    )
    try:
        async with db.engine.begin() as conn:
            await conn.execute(mark_failed(op_id, body, now))
    except Exception:
        log.exception("could not record schema op %s as failed", op_id)
