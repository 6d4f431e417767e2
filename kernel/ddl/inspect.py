"""Read-only facts about project tables for previews and preflight checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.catalog.model import CollectionDef
from kernel.db.schema import aliases

#: Rows below which an exact count is cheap enough for a preview.
EXACT_COUNT_LIMIT = 200_000
#: A rough rewrite speed for estimating how long a table rewrite takes.
REWRITE_BYTES_PER_SECOND = 50 * 1024 * 1024


class SchemaInspector:
    """Queries ``pg_catalog`` and project tables on ``conn``; changes nothing."""

    def __init__(self, conn: AsyncConnection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def qualified(self, collection: CollectionDef) -> str:
        """The table's quoted, schema-qualified name, as a *value* for ``to_regclass``."""
        return f'"{self.schema}"."{collection.table}"'

    async def empty_values(self, collection: CollectionDef, column: str) -> int:
        """How many records have no value in ``column``."""
        table = sa.table(collection.table, sa.column(column), schema=self.schema)
        statement = sa.select(sa.func.count()).select_from(table).where(table.c[column].is_(None))
        return (await self.conn.execute(statement)).scalar_one()

    async def table_size(self, collection: CollectionDef) -> dict[str, int]:
        """``{"rows": n, "bytes": b}``; rows are exact for small tables, estimated above."""
        row = (
            await self.conn.execute(
                sa.text(
                    "SELECT c.reltuples::bigint AS estimate, pg_total_relation_size(c.oid) AS bytes"
                    " FROM pg_class c WHERE c.oid = to_regclass(:qualified)"
                ),
                {"qualified": self.qualified(collection)},
            )
        ).one_or_none()
        if row is None:
            return {"rows": 0, "bytes": 0}
        rows = row.estimate
        if rows < EXACT_COUNT_LIMIT:
            table = sa.table(collection.table, schema=self.schema)
            rows = (
                await self.conn.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
        return {"rows": int(rows), "bytes": int(row.bytes)}

    async def estimated_rows(self, collection: CollectionDef, enough: int) -> int:
        """The planner's row estimate (``pg_class.reltuples``, kept by ANALYZE and
        autovacuum); a table never analyzed has none, so its rows are counted, stopping at
        ``enough``."""
        estimate = (
            await self.conn.execute(
                sa.text("SELECT c.reltuples FROM pg_class c WHERE c.oid = to_regclass(:qualified)"),
                {"qualified": self.qualified(collection)},
            )
        ).scalar_one_or_none()
        if estimate is not None and estimate >= 0:
            return int(estimate)
        table = sa.table(collection.table, schema=self.schema)
        counted = sa.select(sa.literal(1)).select_from(table).limit(enough).subquery()
        statement = sa.select(sa.func.count()).select_from(counted)
        return (await self.conn.execute(statement)).scalar_one()

    async def duplicates(
        self, collection: CollectionDef, columns: dict[str, str], sample_size: int = 5
    ) -> dict[str, Any]:
        """Groups of stored records that share values in every one of ``columns`` (field
        name → column; a record with an empty one never collides), as a unique index over
        them would meet them: ``{groups, rows, sample}``, the sample the biggest groups
        first, each ``{values: {field: value}, count}``."""
        table = sa.table(collection.table, *map(sa.column, columns.values()), schema=self.schema)
        count = sa.func.count().label("count")
        groups = (
            sa.select(*table.c, count)
            .where(*(column.is_not(None) for column in table.c))
            .group_by(*table.c)
            .having(sa.func.count() > 1)
            .subquery()
        )
        totals = (
            await self.conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(groups.c["count"]), 0))
            )
        ).one()
        sample_rows = (
            await self.conn.execute(
                sa.select(groups).order_by(groups.c["count"].desc()).limit(sample_size)
            )
        ).all()
        names = list(columns)
        sample = [
            {
                "values": {name: _json_scalar(row[index]) for index, name in enumerate(names)},
                "count": row[-1],
            }
            for row in sample_rows
        ]
        return {"groups": totals[0], "rows": int(totals[1]), "sample": sample}

    async def valid_unique_index(
        self, collection: CollectionDef, name: str, columns: list[str]
    ) -> bool:
        """Whether the table has a valid unique index ``name`` over exactly ``columns``, in
        order (one a concurrent build finished)."""
        row = (
            await self.conn.execute(
                sa.text(
                    """
                    SELECT x.indisvalid AND x.indisunique AND x.indrelid = to_regclass(:table)
                           AND ARRAY(
                               SELECT a.attname::text
                                 FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, position)
                                 JOIN pg_attribute a
                                   ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                                ORDER BY k.position
                           ) = CAST(:columns AS text[])
                      FROM pg_index x
                     WHERE x.indexrelid = to_regclass(:index)
                    """
                ),
                {
                    "table": self.qualified(collection),
                    "index": f'"{self.schema}"."{name}"',
                    "columns": columns,
                },
            )
        ).scalar_one_or_none()
        return bool(row)

    async def valid_check(self, collection: CollectionDef, name: str) -> bool:
        """Whether the table has a ``CHECK`` constraint ``name`` that is validated (added
        ``NOT VALID`` and then checked by ``VALIDATE CONSTRAINT``, or added validated)."""
        row = (
            await self.conn.execute(
                sa.text(
                    "SELECT convalidated FROM pg_constraint"
                    " WHERE conrelid = to_regclass(:table) AND conname = :name AND contype = 'c'"
                ),
                {"table": self.qualified(collection), "name": name},
            )
        ).scalar_one_or_none()
        return bool(row)

    async def impact(self, collection: CollectionDef, *, rewrite: bool) -> dict[str, Any]:
        """Rows affected and an estimate of the time the change holds its lock."""
        size = await self.table_size(collection)
        seconds = size["bytes"] / REWRITE_BYTES_PER_SECOND if rewrite else 0.0
        return {
            "rows": size["rows"],
            "table_bytes": size["bytes"],
            "rewrites_table": rewrite,
            "estimated_seconds": round(seconds, 3),
        }

    async def column_dependents(self, collection: CollectionDef, column: str) -> list[str]:
        """Indexes, constraints, foreign keys of other tables and views that use ``column``."""
        rows = (
            await self.conn.execute(
                sa.text(
                    """
                    SELECT 'index ' || i.relname AS what
                      FROM pg_index x
                      JOIN pg_class i ON i.oid = x.indexrelid
                      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
                     WHERE x.indrelid = CAST(:regclass AS regclass) AND a.attname = :column
                       AND NOT x.indisprimary
                    UNION
                    SELECT 'constraint ' || c.conname
                      FROM pg_constraint c
                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                     WHERE c.conrelid = CAST(:regclass AS regclass) AND a.attname = :column
                       AND c.contype <> 'p'
                    UNION
                    SELECT 'reference from ' || c.conrelid::regclass::text
                      FROM pg_constraint c
                      JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = ANY (c.confkey)
                     WHERE c.confrelid = CAST(:regclass AS regclass) AND a.attname = :column
                    UNION
                    SELECT 'view ' || r.ev_class::regclass::text
                      FROM pg_depend d
                      JOIN pg_rewrite r ON r.oid = d.objid
                      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                     WHERE d.classid = 'pg_rewrite'::regclass
                       AND d.refobjid = CAST(:regclass AS regclass) AND a.attname = :column
                       AND r.ev_class <> d.refobjid
                    """
                ),
                {"regclass": self.qualified(collection), "column": column},
            )
        ).scalars()
        return sorted(rows)

    async def blocking_locks(
        self, collection: CollectionDef, older_than_ms: int
    ) -> list[dict[str, Any]]:
        """Other sessions holding a lock on the table in a transaction older than the limit."""
        rows = (
            await self.conn.execute(
                sa.text(
                    """
                    SELECT a.pid, l.mode, a.state,
                           extract(epoch FROM now() - a.xact_start)::float AS seconds
                      FROM pg_locks l
                      JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE l.relation = to_regclass(:qualified)
                       AND l.granted
                       AND a.pid <> pg_backend_pid()
                       AND a.xact_start < now() - make_interval(secs => :seconds)
                    """
                ),
                {
                    "qualified": self.qualified(collection),
                    "seconds": older_than_ms / 1000,
                },
            )
        ).mappings()
        return [dict(row) for row in rows]

    async def alias_usage(self, alias_ids: list[int], days: int = 7) -> dict[str, Any]:
        """Which of these old names clients used in the last ``days`` days."""
        recent: list[dict[str, Any]] = []
        if alias_ids:
            cutoff = datetime.now(UTC) - timedelta(days=days)
            rows = (
                await self.conn.execute(
                    sa.select(aliases.c.old_name, aliases.c.last_used_at).where(
                        aliases.c.id.in_(alias_ids), aliases.c.last_used_at > cutoff
                    )
                )
            ).all()
            recent = [{"old_name": r.old_name, "last_used_at": r.last_used_at} for r in rows]
        return {"aliases": len(alias_ids), "used_in_last_days": days, "recently_used": recent}


def _json_scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)
