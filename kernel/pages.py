"""Pages of a control-plane listing (audit log, schema ops, deliveries...), newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from kernel.surface import KernelSurface


async def newest_first(
    tessera: KernelSurface,
    statement: sa.Select[Any],
    table: sa.Table,
    *,
    scope: str,
    limit: int,
    cursor: str | None,
    describe: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Rows of ``statement`` (a select on ``table``, filtered by the caller) by descending
    ``id``: ``{"data": [describe(row), ...], "page": {"limit", "next_cursor"}}``.

    The cursor is signed and bound to ``scope`` (name the listing and its owner, e.g.
    ``"audit:<project>"``), so one listing's cursor is a 400 ``invalid_cursor`` on another.
    """
    if cursor:
        (before,) = tessera.cursors.decode(scope, cursor)
        statement = statement.where(table.c.id < int(before))
    statement = statement.order_by(table.c.id.desc()).limit(limit + 1)
    async with tessera.db.engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    following = tessera.cursors.encode(scope, [rows[limit - 1].id]) if len(rows) > limit else None
    return {
        "data": [describe(row) for row in rows[:limit]],
        "page": {"limit": limit, "next_cursor": following},
    }
