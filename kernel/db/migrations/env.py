"""Alembic environment for the platform schema ``tessera``.

Only the ``tessera`` schema belongs to Alembic: project schemas (``p_*``) are owned by the
DDL engine, so autogenerate must never see them (or it would propose dropping every table).
Migrations always run on a connection handed over by ``kernel.db.migrate``.
"""

from __future__ import annotations

from alembic import context

from kernel.db.schema import SCHEMA, metadata


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return True


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_schemas=True,
        include_name=include_name,
        version_table_schema=SCHEMA,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
