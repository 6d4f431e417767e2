"""The proof that a column has a value in every record, built before an op's transaction
(:class:`kernel.PrebuiltCheck`, the kernel's way of building ``CHECK`` constraints and unique
indexes on a large table while it keeps taking writes) so that ``SET NOT NULL`` in the
transaction skips its scan: ``restore_field`` and ``swap_fields`` of a required field."""

from __future__ import annotations

import sqlalchemy as sa

from kernel import PrebuiltCheck, transient_name


def value_proof(
    schema: str, table: str, collection_id: int, column: str, final: str, field: str
) -> PrebuiltCheck:
    """The proof that ``column`` has a value in every record, for a ``SET NOT NULL`` of
    the column named ``final`` (the same, or ``column`` once renamed) to skip its scan:
    ``field`` is the field it makes required."""
    return PrebuiltCheck(
        schema,
        table,
        None,
        transient_name(collection_id, f"not_null_{final}", column),
        sa.column(column).is_not(None),
        f"{field} has a value in every record",
    )
