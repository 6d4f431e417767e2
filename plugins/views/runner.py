"""Run a view: its active definition plus the caller's query, compiled to one statement.

The statement is built with SQLAlchemy from catalog identifiers only; every value (a
definition's constants, parameters, the caller's filters, the cursor) is a bind parameter::

    SELECT <projection> FROM (
        SELECT b.<columns>, j.<columns>
        FROM <base> AS b
        LEFT JOIN <target> AS j ON j.id = b.<relation> AND <target read rule>
        WHERE <base list rule>
    ) AS v
    WHERE <definition filters> AND <request filters> AND <after cursor>
    ORDER BY <sort>, id LIMIT :limit

The base collection is checked exactly as the records list is (project, ``records:read``,
a key's collections, the ``list`` policy and its row rule). The joined collection is read
as an ``include`` is: its ``read`` policy and row rule sit in the join condition, so where
the caller may not read the joined record (or the collection at all) the joined fields are
``null`` — a row never shows, and a filter never probes, what the caller could not read
directly. The statement runs under ``SET LOCAL statement_timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from kernel import (
    BadRequest,
    Conflict,
    FieldDef,
    FieldValueError,
    Forbidden,
    KernelSurface,
    NotFound,
    Principal,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from kernel.expr import Binder, to_sql
from kernel.query.contract import ListQuery, parse_list_query, split_cursor
from kernel.query.keyset import after_cursor, order_by
from kernel.records.runtime import runtime_for
from kernel.records.service import RecordService, Target
from kernel.statements import Params
from plugins.views.config import ViewsConfig
from plugins.views.definition import CompiledView, Definition, compile_definition
from plugins.views.params import parse_param

#: PostgreSQL's SQLSTATE for a statement cancelled by ``statement_timeout``.
QUERY_CANCELED = "57014"


class ViewRunner:
    def __init__(self, tessera: KernelSurface, config: ViewsConfig) -> None:
        self.tessera = tessera
        self.config = config
        self.records = RecordService(tessera)  # type: ignore[arg-type]

    async def run(
        self,
        project_id: str,
        row: Any,
        items: Iterable[tuple[str, str]],
        principal: Principal,
    ) -> dict[str, Any]:
        """One page of the view ``row`` (its active definition) for ``principal``."""
        now = datetime.now(UTC)
        catalog, view = await self._compiled(project_id, row, now)
        base = self.records.target(
            catalog, project_id, view.base.name, principal, "records:read", "list"
        )
        joined = self._joined(view, catalog, project_id, principal)
        shape, cursor = split_cursor(items)
        query = parse_list_query(
            shape,
            view.resolve,
            self.tessera.operators,
            view.limits(self.tessera.settings.max_filters),
            id_field=view.id_field,
            extra_params=frozenset(view.params),
        )
        sort = query.sort if any(k for k, _ in shape if k == "sort") else view.default_sort
        context = {**principal.context, "now": now, **query.values, "limit": query.limit + 1}
        context.update(self._params(view, query))
        scope = f"view:{row.id}:{row.active_version}|" + ",".join(k.signature for k in sort)
        nulls = None
        if cursor is not None:
            raw_values = self.tessera.cursors.decode(scope, cursor)
            if len(raw_values) != len(sort):
                raise BadRequest("cursor does not match the sort", code="invalid_cursor")
            for index, (key, raw) in enumerate(zip(sort, raw_values, strict=True)):
                context[f"k{index}"] = None if raw is None else key.field.type.coerce(raw)
            nulls = tuple(raw is None for raw in raw_values)
        statement, params = self._statement(view, catalog, base, joined, query, sort, nulls)
        values = {name: param.resolve(context) for name, param in params.by_name.items()}
        rows = await self._fetch(statement, values)
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1]._mapping
            next_cursor = self.tessera.cursors.encode(
                scope, [last[key.field.column] for key in sort]
            )
        return {
            "data": [self._record(view, item._mapping) for item in rows],
            "page": {"limit": query.limit, "next_cursor": next_cursor},
        }

    async def _fetch(self, statement: sa.Select, values: dict[str, Any]) -> list[Any]:
        """The statement's rows, under the view statement timeout (503 ``view_timeout``
        past it)."""
        timeout_ms = int(self.config.statement_timeout_ms)
        try:
            async with self.tessera.db.engine.begin() as conn:
                await conn.execute(sa.text(f"SET LOCAL statement_timeout = {timeout_ms}"))
                return list((await conn.execute(statement, values)).all())
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != QUERY_CANCELED:
                raise
            raise ServiceUnavailable(
                f"the view took longer than {timeout_ms} ms",
                code="view_timeout",
                headers={"Retry-After": "1"},
            ) from None

    async def _compiled(self, project_id: str, row: Any, now: datetime) -> tuple[Any, CompiledView]:
        """The catalog and the view compiled against it. A definition that does not fit
        this process's catalog is tried once more on a freshly loaded one (a rename
        rewrites it with the schema change, which another process may have applied); if
        it still does not fit, 409 ``view_outdated``."""
        definition = Definition.model_validate(row.definition)
        catalogs = self.tessera.catalog
        catalog = await catalogs.get(project_id)
        for fresh in (False, True):
            if fresh:
                catalog = await catalogs.get(project_id, fresh=True)
            try:
                compiled = compile_definition(
                    definition, catalog, self.tessera.operators, now, lenient=True
                )
            except ValidationFailed as error:
                problems = "; ".join(f"{item.field}: {item.message}" for item in error.items)
            else:
                return catalog, compiled
        raise Conflict(
            f"the view no longer fits the schema ({problems}); change its definition",
            code="view_outdated",
        )

    def _joined(
        self, view: CompiledView, catalog: Any, project_id: str, principal: Principal
    ) -> Target | None:
        """The joined collection as the caller may read it; ``None`` when they may not
        read it at all (its fields are then null)."""
        if view.join is None:
            return None
        try:
            return self.records.target(
                catalog, project_id, view.join.target.name, principal, "records:read", "read"
            )
        except (Forbidden, NotFound, Unauthorized):
            return None

    @staticmethod
    def _params(view: CompiledView, query: ListQuery) -> dict[str, Any]:
        """Context values of the filters that take parameters; 400 naming the parameter
        when one is missing or not of its type."""
        given: dict[str, Any] = {}
        for name, spec in view.params.items():
            raw = query.extra.get(name)
            if raw is None:
                if spec.required:
                    raise BadRequest(
                        f"parameter {name!r} is required", code="missing_param", field=name
                    )
                given[name] = spec.default
                continue
            try:
                given[name] = parse_param(spec.type, raw)
            except ValueError as error:
                raise BadRequest(str(error), code="invalid_param", field=name) from None
        values: dict[str, Any] = {}
        for key, (name, field, operator) in view.param_keys.items():
            value = given[name]
            if value is not None and operator.name != "contains":
                try:
                    value = field.type.coerce(value)
                except FieldValueError as error:
                    raise BadRequest(error.message, code="invalid_param", field=name) from None
            values[key] = value
        return values

    @staticmethod
    def _statement(
        view: CompiledView,
        catalog: Any,
        base: Target,
        joined: Target | None,
        query: ListQuery,
        sort: tuple,
        nulls: tuple[bool, ...] | None,
    ) -> tuple[sa.Select, Params]:
        params = Params()
        b = base.runtime.table.alias("b")
        columns = [
            b.c[label.removeprefix("b_")].label(label) for label in _labels(view.base_fields)
        ]
        inner = sa.select(*columns)
        if view.join is not None:
            j = runtime_for(catalog, view.join.target, base.runtime.operators, base.now)
            j = j.table.alias("j")
            columns += [
                j.c[label.removeprefix("j_")].label(label) for label in _labels(view.joined_fields)
            ]
            condition = j.c.id == b.c[view.join.relation.column.removeprefix("b_")]
            if joined is None:
                condition = sa.and_(condition, sa.false())
            elif joined.rule is not None:
                condition = sa.and_(condition, to_sql(joined.rule, lambda f: j.c[f.column], params))
            inner = sa.select(*columns).select_from(b.outerjoin(j, condition))
        if base.rule is not None:
            inner = inner.where(to_sql(base.rule, lambda f: b.c[f.column], params))
        v = inner.subquery("v")

        def column(field: FieldDef) -> Any:
            return v.c[field.column]

        selected = {view.fields[name].column for name in view.projection}
        selected |= {key.field.column for key in sort}
        statement = sa.select(*(v.c[label] for label in sorted(selected)))
        binder = Binder(view.fields, base.runtime.operators)
        for node in (view.filter, query.filter):
            if node is not None:
                statement = statement.where(to_sql(binder.bind(node), column, params))
        if nulls is not None:
            statement = statement.where(after_cursor(sort, column, params, nulls))
        statement = statement.order_by(*order_by(sort, column)).limit(
            params.dynamic("limit", sa.Integer())
        )
        return statement, params

    @staticmethod
    def _record(view: CompiledView, row: Any) -> dict[str, Any]:
        record = {}
        for name in view.projection:
            field = view.fields[name]
            value = row[field.column]
            if value is not None and not type(field.type).keeps_json():
                value = field.type.to_json(value)
            record[name] = value
        return record


def _labels(fields: dict[str, FieldDef]) -> list[str]:
    """The distinct labels of ``fields`` (a field is reachable by name and by column)."""
    return list(dict.fromkeys(field.column for field in fields.values()))
