"""Foreign-key violations of a records write, told in the collection's own names.

PostgreSQL names the constraint and the referencing table; which column the key covers
is one catalog lookup away. A delete refused by a ``RESTRICT`` key is a 409 naming the
collection and field that still point at the record; an insert or update naming a record
that does not exist is a 422 on that field's column (``customer_id``), nothing written.
"""

from __future__ import annotations

import asyncpg

from kernel.catalog.model import ProjectCatalog
from kernel.db.pool import ConnectionPool
from kernel.errors import Conflict, TesseraError, ValidationFailed

_KEY_COLUMNS = """
SELECT a.attname FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
WHERE c.conname = $1 AND c.conrelid = to_regclass($2)
"""


async def foreign_key_error(
    pool: ConnectionPool,
    catalog: ProjectCatalog,
    error: asyncpg.ForeignKeyViolationError,
    *,
    deleting: bool,
) -> TesseraError:
    """The client error for ``error``, raised by a delete (``deleting``) or a write."""
    table = getattr(error, "table_name", None) or ""
    qualified = f'"{catalog.project.schema}"."{table}"'
    column = await pool.fetchval(
        _KEY_COLUMNS, getattr(error, "constraint_name", None) or "", qualified
    )
    collection = next((c for c in catalog.collections.values() if c.table == table), None)
    field = next((f for f in collection.fields if f.column == column), None) if collection else None
    field_name = field.name if field is not None else column
    if deleting:
        where = f"{collection.name if collection else table}.{field_name}"
        return Conflict(
            f"the record is still linked from {where}; delete or unlink those records first",
            code="still_referenced",
            field=where,
        )
    return ValidationFailed(
        f"{column} names no existing record", code="not_found", field=column or None
    )
