"""DDL steps shared by the schema plugins, each a call on Alembic's ``Operations``.

Every function takes its arguments first and ``ops`` last, so an operation binds them
with ``functools.partial`` into a :class:`kernel.Step` whose preview text is exactly what
runs. Unique indexes are always named by ``unique_index_name``: purge, rename and swap
rely on finding them by that name.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from alembic.operations import Operations
from sqlalchemy.dialects import postgresql

from kernel import (
    FieldPlacement,
    ProjectCatalog,
    ResolvedField,
    Step,
    check_steps,
    field_column,
    system_columns,
    unique_index_name,
)

_PG = postgresql.dialect()


def create_table(schema: str, table: str, fields: list[ResolvedField], ops: Operations) -> None:
    ops.create_table(table, *system_columns(), *(field_column(f) for f in fields), schema=schema)


def add_column(schema: str, table: str, field: ResolvedField, ops: Operations) -> None:
    ops.add_column(table, field_column(field), schema=schema)


def rename_table(schema: str, old: str, new: str, ops: Operations) -> None:
    ops.rename_table(old, new, schema=schema)


def rename_column(schema: str, table: str, old: str, new: str, ops: Operations) -> None:
    ops.alter_column(table, old, new_column_name=new, schema=schema)


def set_nullable(schema: str, table: str, column: str, nullable: bool, ops: Operations) -> None:
    ops.alter_column(table, column, nullable=nullable, schema=schema)


def drop_column(schema: str, table: str, column: str, ops: Operations) -> None:
    ops.drop_column(table, column, schema=schema)


def drop_table(schema: str, table: str, ops: Operations) -> None:
    ops.drop_table(table, schema=schema)


def set_default(schema: str, table: str, column: str, default: Any, ops: Operations) -> None:
    ops.alter_column(table, column, server_default=default, schema=schema)


def change_type(
    schema: str, table: str, column: str, sql_type: Any, using: str, ops: Operations
) -> None:
    ops.alter_column(table, column, type_=sql_type, postgresql_using=using, schema=schema)


def create_unique(schema: str, table: str, column: str, ops: Operations) -> None:
    ops.create_index(
        unique_index_name(table, [column]), table, [column], unique=True, schema=schema
    )


def rename_index(schema: str, old: str, new: str, ops: Operations) -> None:
    quote = _PG.identifier_preparer.quote
    ops.execute(f"ALTER INDEX IF EXISTS {quote(schema)}.{quote(old)} RENAME TO {quote(new)}")


def new_field_steps(
    catalog: ProjectCatalog,
    collection: str,
    table: str,
    fields: list[ResolvedField],
    paths: list[str],
) -> list[Step]:
    """After new fields' columns (which come with the table or add_column): each unique
    field's index, the DDL its type adds (a foreign key, an index: ``extra_ddl``), then
    the ``CHECK`` constraints of its rules. ``paths`` are the request paths of the fields'
    specs, for the types' errors."""
    schema = catalog.project.schema
    steps = []
    for field, where in zip(fields, paths, strict=True):
        if field.unique:
            steps.append(
                Step(
                    f"unique index on {field.name}",
                    partial(create_unique, schema, table, field.column),
                )
            )
        placement = FieldPlacement(catalog, collection, field.name, field.required, where)
        steps.extend(field.field_type.extra_ddl(schema, table, field.column, placement))
        steps.extend(check_steps(schema, table, field.rules))
    return steps


def unique_index_rename(
    schema: str, table: str, column: str, new_table: str, new_column: str
) -> Step:
    """Rename a unique field's index along with its table or column: the index must keep the
    name ``unique_index_name`` gives it, or purge mistakes it for a dependent and a new
    unique field reusing the old name collides with it."""
    old, new = unique_index_name(table, [column]), unique_index_name(new_table, [new_column])
    return Step(f"rename index {old} to {new}", partial(rename_index, schema, old, new))
