"""Build the statements of the records API, once per shape (cached on the runtime).

Writes are single statements: a data-modifying CTE changes the row and, in the same
statement, appends the outbox event, so the write and its event commit together in one
round trip without an explicit transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from kernel.catalog.model import CollectionDef, FieldDef
from kernel.db.schema import events
from kernel.expr import Binder, Bound, to_sql
from kernel.query.contract import ListQuery
from kernel.query.keyset import after_cursor, order_by
from kernel.records.runtime import CollectionRuntime
from kernel.statements import CompiledStatement, Params, compile_statement

#: How many levels of cascading deletes get their events recorded (a deeper chain is
#: still deleted by PostgreSQL, without events).
MAX_CASCADE_DEPTH = 4


def _id_param(params: Params) -> Any:
    return params.dynamic("id", sa.BigInteger())


def select_one(
    runtime: CollectionRuntime, rule: Bound | None, *, lock: bool = False
) -> CompiledStatement:
    """``SELECT <record> WHERE id = :id [AND <rule>]``; with ``lock``, ``FOR UPDATE`` (the
    stored record an update is about to change, locked until its transaction ends)."""

    def build() -> CompiledStatement:
        params = Params()
        statement = sa.select(*runtime.output_columns()).where(
            runtime.table.c.id == _id_param(params)
        )
        if rule is not None:
            statement = statement.where(to_sql(rule, runtime.column, params))
        if lock:
            statement = statement.with_for_update()
        return compile_statement(statement, params)

    return runtime.statement(("lock" if lock else "get", rule is not None), build)


def exists_one(runtime: CollectionRuntime, rule: Bound | None) -> CompiledStatement:
    """``SELECT 1 WHERE id = :id [AND <rule>]`` — tells a 403 from a 404 after a refusal."""

    def build() -> CompiledStatement:
        params = Params()
        statement = sa.select(sa.literal(1)).where(runtime.table.c.id == _id_param(params))
        if rule is not None:
            statement = statement.where(to_sql(rule, runtime.column, params))
        return compile_statement(statement, params)

    return runtime.statement(("exists", rule is not None), build)


def select_by_ids(runtime: CollectionRuntime, rule: Bound | None) -> CompiledStatement:
    """``SELECT <record> WHERE id = ANY(:ids) [AND <rule>]`` — records a page includes."""

    def build() -> CompiledStatement:
        params = Params()
        ids = params.dynamic("ids", ARRAY(sa.BigInteger()))
        statement = sa.select(*runtime.output_columns()).where(runtime.table.c.id == sa.any_(ids))
        if rule is not None:
            statement = statement.where(to_sql(rule, runtime.column, params))
        return compile_statement(statement, params)

    return runtime.statement(("by_ids", rule is not None), build)


def select_linking(
    runtime: CollectionRuntime, rule: Bound | None, field: FieldDef
) -> CompiledStatement:
    """The records whose ``field`` holds one of ``:ids``, at most ``:per_parent`` for each
    id (the first by id), ``[AND <rule>]`` — the reverse side of a foreign key."""

    def build() -> CompiledStatement:
        params = Params()
        table = runtime.table
        link = table.c[field.column]
        rank = sa.func.row_number().over(partition_by=link, order_by=table.c.id)
        inner = sa.select(*table.c, rank.label("_rank")).where(
            link == sa.any_(params.dynamic("ids", ARRAY(sa.BigInteger())))
        )
        if rule is not None:
            inner = inner.where(to_sql(rule, runtime.column, params))
        ranked = inner.subquery("ranked")
        statement = (
            sa.select(*runtime.output_columns(ranked))
            .where(ranked.c._rank <= params.dynamic("per_parent", sa.Integer()))
            .order_by(ranked.c[field.column], ranked.c.id)
        )
        return compile_statement(statement, params)

    return runtime.statement(("linking", field.column, rule is not None), build)


def select_page(
    runtime: CollectionRuntime,
    rule: Bound | None,
    query: ListQuery,
    cursor_nulls: tuple[bool, ...] | None,
) -> CompiledStatement:
    """One page: rule, filters and keyset in ``WHERE``; ``LIMIT :limit`` (page size + 1)."""

    def build() -> CompiledStatement:
        params = Params()
        statement = sa.select(*runtime.output_columns())
        if rule is not None:
            statement = statement.where(to_sql(rule, runtime.column, params))
        if query.filter is not None:
            bound = Binder(runtime.queryable, runtime.operators).bind(query.filter)
            statement = statement.where(to_sql(bound, runtime.column, params))
        if cursor_nulls is not None:
            statement = statement.where(
                after_cursor(query.sort, runtime.column, params, cursor_nulls)
            )
        statement = statement.order_by(*order_by(query.sort, runtime.column)).limit(
            params.dynamic("limit", sa.Integer())
        )
        return compile_statement(statement, params)

    key = ("list", rule is not None, query.filter, query.sort_signature, cursor_nulls)
    return runtime.statement(key, build)


_EVENT_COLUMNS = [
    "project_id",
    "collection_id",
    "collection",
    "record_id",
    "type",
    "changed_fields",
    "row",
    "meta",
]


def _text_array(items: tuple[str, ...]) -> str:
    """``items`` as PostgreSQL's text of a ``text[]`` (``{"a","b"}``), every element quoted.

    A write's changed fields are bound as this text and cast in SQL: asyncpg encodes a
    list parameter by asking it and each element whether they are sequences themselves
    (``abc`` checks in Python): about 24,000 instructions per create of four fields,
    where one text costs a copy."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def _event_values(
    params: Params,
    project_id: str,
    collection: CollectionDef,
    record_id: Any,
    event_type: str,
    changed: tuple[str, ...],
    row: Any,
) -> list[Any]:
    """The selected values of one outbox event row (in ``_EVENT_COLUMNS`` order)."""
    return [
        params.static(project_id, sa.Text()),
        params.static(collection.id, sa.BigInteger()),
        params.static(collection.name, sa.Text()),
        record_id,
        params.static(event_type, sa.Text()),
        sa.cast(params.static(_text_array(changed), sa.Text()), ARRAY(sa.Text())),
        row,
        params.dynamic("meta", JSONB()),
    ]


def _with_event(
    runtime: CollectionRuntime,
    params: Params,
    write: Any,
    event_type: str,
    changed: tuple[str, ...],
) -> Any:
    """``WITH w AS (<write> RETURNING *), e AS (INSERT INTO events ...) SELECT <record>``;
    a delete adds the events of what it cascades to (``_cascade_events``)."""
    written = write.returning(*runtime.table.c).cte("w")
    values = _event_values(
        params,
        runtime.project_id,
        runtime.collection,
        written.c.id,
        event_type,
        changed,
        sa.func.to_jsonb(sa.literal_column(written.name)),
    )
    event = sa.insert(events).from_select(_EVENT_COLUMNS, sa.select(*values)).cte("e")
    statement = sa.select(*runtime.output_columns(written)).add_cte(event)
    if event_type == "delete":
        deleted = sa.select(written.c.id)
        cascades = _cascade_events(runtime, params, deleted, runtime.collection.name)
        if cascades:
            statement = statement.add_cte(*cascades)
    return statement


def _cascade_events(
    runtime: CollectionRuntime, params: Params, deleted: Any, target: str, depth: int = 0
) -> list[Any]:
    """Outbox events for the rows PostgreSQL deletes (``cascade``) or nulls (``set_null``)
    when the records of ``target`` whose ids ``deleted`` selects are deleted, following
    cascades up to ``MAX_CASCADE_DEPTH`` levels. Every CTE of one statement reads the
    same snapshot and foreign-key actions run at its end, so the rows are still there."""
    if depth >= MAX_CASCADE_DEPTH:
        return []
    schema = runtime.table.schema
    ctes: list[Any] = []
    for collection, field, key in runtime.referencing(target):
        tag = len(params.by_name)
        rows = sa.table(
            collection.table,
            sa.column("id", sa.BigInteger()),
            sa.column(field.column, sa.BigInteger()),
            schema=schema,
        ).alias(f"r{tag}")
        linked = rows.c[field.column].in_(deleted)
        row = sa.func.to_jsonb(sa.literal_column(rows.name))
        if key.on_delete == "set_null":
            nulled = sa.func.jsonb_build_object(params.static(field.column, sa.Text()), sa.null())
            row = sa.type_coerce(row.op("||")(nulled), JSONB())
            event_type, changed = "update", (field.name,)
        else:
            event_type, changed = "delete", ()
        values = _event_values(
            params, runtime.project_id, collection, rows.c.id, event_type, changed, row
        )
        selected = sa.select(*values).where(linked)
        ctes.append(sa.insert(events).from_select(_EVENT_COLUMNS, selected).cte(f"c{tag}"))
        if key.on_delete == "cascade":
            cascaded = sa.select(rows.c.id).where(linked)
            ctes += _cascade_events(runtime, params, cascaded, collection.name, depth + 1)
    return ctes


def _field_names(runtime: CollectionRuntime, columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(runtime.column_names.get(column, column) for column in columns)


def insert_record(runtime: CollectionRuntime, columns: tuple[str, ...]) -> CompiledStatement:
    """Insert the given columns (values from context keys ``v.<column>``)."""

    def build() -> CompiledStatement:
        params = Params()
        table = runtime.table
        values = {c: params.dynamic(f"v.{c}", table.c[c].type) for c in columns}
        write = sa.insert(table).values(values) if values else sa.insert(table).values({})
        statement = _with_event(runtime, params, write, "insert", _field_names(runtime, columns))
        return compile_statement(statement, params)

    return runtime.statement(("insert", columns), build)


def update_record(
    runtime: CollectionRuntime, columns: tuple[str, ...], rule: Bound | None
) -> CompiledStatement:
    """Update the given columns of record ``id``.

    With a rule, the row must satisfy it both before the change and after it: the second
    check compiles the rule with the new values in place of the changed columns, so a user
    cannot move a record out of their own reach (e.g. give it to someone else).
    """

    def build() -> CompiledStatement:
        params = Params()
        table = runtime.table
        new_values = {c: params.dynamic(f"v.{c}", table.c[c].type) for c in columns}
        write = (
            sa.update(table)
            .where(table.c.id == _id_param(params))
            .values({**new_values, "updated_at": sa.func.now()})
        )
        if rule is not None:

            def after_change(field: FieldDef) -> Any:
                if field.column in new_values:
                    return params.dynamic(f"v.{field.column}", table.c[field.column].type)
                return table.c[field.column]

            write = write.where(to_sql(rule, runtime.column, params)).where(
                to_sql(rule, after_change, params)
            )
        statement = _with_event(runtime, params, write, "update", _field_names(runtime, columns))
        return compile_statement(statement, params)

    return runtime.statement(("update", columns, rule is not None), build)


def delete_record(runtime: CollectionRuntime, rule: Bound | None) -> CompiledStatement:
    """Delete record ``id`` (when the rule allows), recording the old row in the event,
    and one event per row a foreign key cascades the delete to (or nulls)."""

    def build() -> CompiledStatement:
        params = Params()
        table = runtime.table
        write = sa.delete(table).where(table.c.id == _id_param(params))
        if rule is not None:
            write = write.where(to_sql(rule, runtime.column, params))
        statement = _with_event(runtime, params, write, "delete", ())
        return compile_statement(statement, params)

    return runtime.statement(("delete", rule is not None), build)
