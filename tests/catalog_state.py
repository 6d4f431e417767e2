"""What a schema change can touch, read straight from PostgreSQL: catalog rows, columns,
indexes. Tests compare snapshots before and after to prove a change left nothing behind."""

from __future__ import annotations

from typing import Any

import asyncpg

from kernel.catalog.model import SYSTEM_COLUMNS


async def table_columns(pg: asyncpg.Connection, project: str, table: str) -> dict[str, Any]:
    """Column name → (data_type, is_nullable, character_maximum_length), in table order."""
    rows = await pg.fetch(
        "SELECT column_name, data_type, is_nullable, character_maximum_length"
        " FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2"
        " ORDER BY ordinal_position",
        f"p_{project}",
        table,
    )
    return {
        row["column_name"]: (row["data_type"], row["is_nullable"], row["character_maximum_length"])
        for row in rows
    }


async def schema_tables(pg: asyncpg.Connection, project: str) -> set[str]:
    rows = await pg.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
        f"p_{project}",
    )
    return {row["table_name"] for row in rows}


async def catalog_fields(pg: asyncpg.Connection, project: str, collection: str) -> dict[str, Any]:
    """Field name → (type, column, required, unique, is_deleted) of the catalog rows."""
    rows = await pg.fetch(
        "SELECT f.name, f.type, f.sql_column_name, f.required, f.is_unique, f.is_deleted"
        " FROM tessera.fields f JOIN tessera.collections c ON c.id = f.collection_id"
        " WHERE c.project_id = $1 AND c.name = $2 ORDER BY f.position",
        project,
        collection,
    )
    return {
        row["name"]: (
            row["type"],
            row["sql_column_name"],
            row["required"],
            row["is_unique"],
            row["is_deleted"],
        )
        for row in rows
    }


async def column_values(
    pg: asyncpg.Connection, project: str, table: str, column: str
) -> dict[int, Any]:
    rows = await pg.fetch(f'SELECT id, "{column}" AS value FROM "p_{project}"."{table}"')
    return {row["id"]: row["value"] for row in rows}


async def snapshot(pg: asyncpg.Connection, project: str) -> dict[str, Any]:
    """Everything a schema change could touch: catalog rows, aliases, policies, API keys,
    the catalog version, and the tables' columns and indexes."""
    queries = {
        "collections": "SELECT * FROM tessera.collections WHERE project_id = $1 ORDER BY id",
        "fields": "SELECT f.* FROM tessera.fields f JOIN tessera.collections c"
        " ON c.id = f.collection_id WHERE c.project_id = $1 ORDER BY f.id",
        "aliases": "SELECT * FROM tessera.aliases WHERE project_id = $1 ORDER BY id",
        "policies": "SELECT p.* FROM tessera.policies p JOIN tessera.collections c"
        " ON c.id = p.collection_id WHERE c.project_id = $1 ORDER BY p.collection_id, p.action",
        "keys": "SELECT id, collections FROM tessera.api_keys WHERE project_id = $1 ORDER BY id",
        "version": "SELECT catalog_version FROM tessera.projects WHERE id = $1",
    }
    state: dict[str, Any] = {
        name: [dict(row) for row in await pg.fetch(sql, project)] for name, sql in queries.items()
    }
    state["columns"] = [
        dict(row)
        for row in await pg.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default,"
            " character_maximum_length FROM information_schema.columns WHERE table_schema = $1"
            " ORDER BY table_name, ordinal_position",
            f"p_{project}",
        )
    ]
    state["indexes"] = [
        dict(row)
        for row in await pg.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname",
            f"p_{project}",
        )
    ]
    state["tables"] = await schema_tables(pg, project)
    return state


#: information_schema's ``data_type`` of each core field type's column.
CORE_COLUMN_TYPES = {
    "string": "character varying",
    "text": "text",
    "integer": "bigint",
    "float": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamp with time zone",
    "json": "jsonb",
}


async def catalog_mismatches(pg: asyncpg.Connection, project: str) -> list[str]:
    """Where the catalog and information_schema disagree about the project's tables (empty:
    they agree). Each collection's table exists with the system columns and one column per
    field — dropped ones too, their data is kept — of the field type's column type (core
    types), NOT NULL for a required live field; no other table or column exists."""
    fields = await pg.fetch(
        "SELECT c.sql_table_name AS table_name, f.sql_column_name AS column_name, f.type,"
        " f.required AND NOT f.is_deleted AS not_null"
        " FROM tessera.collections c LEFT JOIN tessera.fields f ON f.collection_id = c.id"
        " WHERE c.project_id = $1",
        project,
    )
    columns = await pg.fetch(
        "SELECT table_name, column_name, data_type, is_nullable = 'NO' AS not_null"
        " FROM information_schema.columns WHERE table_schema = $1",
        f"p_{project}",
    )
    actual = {(row["table_name"], row["column_name"]): row for row in columns}
    tables = {row["table_name"] for row in fields}
    problems = [
        f"table {name}: {'no collection' if name not in tables else 'missing'}"
        for name in sorted(tables ^ {table for table, _ in actual})
    ]
    expected = {(table, column) for table in tables for column in SYSTEM_COLUMNS}
    for row in fields:
        if row["column_name"] is None:
            continue  # a collection without fields
        key = (row["table_name"], row["column_name"])
        expected.add(key)
        column = actual.get(key)
        if column is None:
            continue
        data_type = CORE_COLUMN_TYPES.get(row["type"], column["data_type"])
        if (column["data_type"], column["not_null"]) != (data_type, row["not_null"]):
            problems.append(
                f"{'.'.join(key)}: catalog {row['type']}, not null {row['not_null']};"
                f" column {column['data_type']}, not null {column['not_null']}"
            )
    problems += [f"{'.'.join(key)}: no column" for key in sorted(expected - actual.keys())]
    problems += [f"{'.'.join(key)}: no field" for key in sorted(actual.keys() - expected)]
    return problems
