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
``null`` (where they may not read it at all, it is not joined: its columns are ``NULL``) —
a row never shows, and a filter never probes, what the caller could not read directly.

The collections come from ``tessera.records.readable`` and the query machinery from
``kernel.query``, the surface any plugin has. A statement is compiled once per shape
(policies present, filters, sort, cursor nulls) and kept with the compiled view
(:mod:`plugins.views.cache`); it runs on the asyncpg pool and is cancelled past
``statement_timeout_ms``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa

from kernel import (
    BadRequest,
    FieldDef,
    FieldValueError,
    Forbidden,
    KernelSurface,
    NotFound,
    Operator,
    Principal,
    ProjectCatalog,
    Readable,
    Registry,
    ServiceUnavailable,
    Unauthorized,
)
from kernel.expr import Binder, to_sql
from kernel.query import (
    CompiledStatement,
    ListQuery,
    Params,
    SortKey,
    after_cursor,
    compile_statement,
    decode_cursor,
    encode_cursor,
    order_by,
    parse_list_query,
    split_cursor,
)
from kernel.security.access import require_member
from plugins.views.cache import (
    ActiveView,
    PageQuery,
    Readers,
    Shape,
    access_key,
    view_cache,
)
from plugins.views.config import ViewsConfig
from plugins.views.definition import CompiledView, Definition
from plugins.views.output import render
from plugins.views.params import parse_param

#: Where the plugin keeps the process's runner (``tessera.state``).
RUNNER_KEY = "views.core.runner"


class ViewRunner:
    def __init__(self, tessera: KernelSurface, config: ViewsConfig) -> None:
        self.tessera = tessera
        self.timeout_ms = int(config.statement_timeout_ms)
        self.cache = view_cache(tessera)

    async def run(
        self,
        project_id: str,
        name: str,
        items: Iterable[tuple[str, str]],
        principal: Principal,
    ) -> dict[str, Any]:
        """One page of view ``name`` (its active version) for ``principal``, a member of
        the project (policies decide the rows)."""
        require_member(principal, project_id)
        catalog, active = await self.cache.active(project_id, name)
        try:
            return await self._page(project_id, catalog, active, items, principal)
        except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
            # A schema change committed under this process's catalog: reload, retry once.
            await self.tessera.catalog.get(project_id, fresh=True)
            catalog, active = await self.cache.active(project_id, name)
            return await self._page(project_id, catalog, active, items, principal)

    async def run_unsaved(
        self,
        project_id: str,
        definition: Definition,
        items: Iterable[tuple[str, str]],
        principal: Principal,
    ) -> dict[str, Any]:
        """One page of ``definition``, which is not stored (a preview), for ``principal``:
        compiled now and kept nowhere; the same checks and statement as a stored view."""
        catalog = await self.tessera.catalog.get(project_id)
        active = self.cache.compile(catalog, definition)
        return await self._page(project_id, catalog, active, items, principal)

    async def _page(
        self,
        project_id: str,
        catalog: ProjectCatalog,
        active: ActiveView,
        items: Iterable[tuple[str, str]],
        principal: Principal,
    ) -> dict[str, Any]:
        view = active.view
        base, joined = self._readers(catalog, project_id, active, principal)
        everything, cursor = split_cursor(items)
        shape = tuple(item for item in everything if item[0] not in view.params)
        page = active.queries.get_or_make(shape, lambda: self._page_query(active, shape))
        query, sort = page.query, page.sort
        now = datetime.now(UTC)
        context = {**principal.context, "now": now, **query.values, "limit": query.limit + 1}
        context.update(self._params(view, dict(everything)))
        nulls = None
        if cursor is not None:
            position = decode_cursor(self.tessera.cursors, page.cursor_scope, cursor, sort)
            context.update(position.values)
            nulls = position.nulls
        statement_key: Hashable = (
            base.rule is not None,
            None if joined is None else joined.rule is not None,
            query.filter,
            page.sort_signature,
            nulls,
        )
        statement = active.statements.get_or_make(
            statement_key,
            lambda: _statement(view, self.tessera.operators, base, joined, query, sort, nulls),
        )
        rows = await self._fetch(statement, context)
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            next_cursor = encode_cursor(self.tessera.cursors, page.cursor_scope, sort, rows[-1])
        output = active.output
        return {
            "data": [render(output, item) for item in rows],
            "page": {"limit": query.limit, "next_cursor": next_cursor},
        }

    def _page_query(self, active: ActiveView, shape: Shape) -> PageQuery:
        """The query-string shape ``shape`` (no cursor, no parameters) parsed for the view
        (400 naming what does not parse), with what follows from it."""
        view = active.view
        query = parse_list_query(
            shape,
            view.resolve,
            self.tessera.operators,
            view.limits(self.tessera.settings.max_filters),
            id_field=view.id_field,
        )
        sort = query.sort if any(key == "sort" for key, _ in shape) else view.default_sort
        signature = tuple(key.signature for key in sort)
        scope = f"view:{active.id}:{active.version}|" + ",".join(signature)
        return PageQuery(query, sort, signature, scope)

    async def _fetch(
        self, statement: CompiledStatement, context: dict[str, Any]
    ) -> list[asyncpg.Record]:
        """The statement's rows; past the view statement timeout the query is cancelled
        and the answer is a 503 ``view_timeout``."""
        timeout_ms = self.timeout_ms
        try:
            async with self.tessera.db.pool.acquire() as conn:
                return await conn.fetch(
                    statement.sql, *statement.args(context), timeout=timeout_ms / 1000
                )
        except TimeoutError:
            raise ServiceUnavailable(
                f"the view took longer than {timeout_ms} ms",
                code="view_timeout",
                headers={"Retry-After": "1"},
            ) from None

    def _readers(
        self, catalog: ProjectCatalog, project_id: str, active: ActiveView, principal: Principal
    ) -> Readers:
        """The base and joined collections as ``principal`` may read them: checked once per
        access (:func:`access_key`) and compiled view, kept on it; a refusal of the base
        collection is raised, and checked again, on every request."""
        key = access_key(principal)
        readers = active.readers.get(key)
        if readers is None:
            view = active.view
            records = self.tessera.records
            base = records.readable(catalog, project_id, view.base.name, principal, "list")
            readers = (base, self._joined(view, catalog, project_id, principal))
            active.readers.put(key, readers)
        return readers

    def _joined(
        self, view: CompiledView, catalog: ProjectCatalog, project_id: str, principal: Principal
    ) -> Readable | None:
        """The joined collection as the caller may read it; ``None`` when they may not
        read it at all (its fields are then null)."""
        if view.join is None:
            return None
        try:
            return self.tessera.records.readable(
                catalog, project_id, view.join.target.name, principal, "read"
            )
        except (Forbidden, NotFound, Unauthorized):
            return None

    @staticmethod
    def _params(view: CompiledView, given: dict[str, str]) -> dict[str, Any]:
        """Context values of the filters that take parameters (``given``: the query
        string's values); 400 naming the parameter when one is missing or not of its
        type."""
        typed: dict[str, Any] = {}
        for name, spec in view.params.items():
            raw = given.get(name)
            if raw is None:
                if spec.required:
                    raise BadRequest(
                        f"parameter {name!r} is required", code="missing_param", field=name
                    )
                typed[name] = spec.default
                continue
            try:
                typed[name] = parse_param(spec.type, raw)
            except ValueError as error:
                raise BadRequest(str(error), code="invalid_param", field=name) from None
        values: dict[str, Any] = {}
        for key, (name, field, operator) in view.param_keys.items():
            value = typed[name]
            if value is not None and operator.name != "contains":
                try:
                    value = field.type.coerce(value)
                except FieldValueError as error:
                    raise BadRequest(error.message, code="invalid_param", field=name) from None
            values[key] = value
        return values


def view_runner(tessera: KernelSurface) -> ViewRunner:
    """The process's runner (made by the plugin's ``startup``, after the view cache)."""
    runner: ViewRunner = tessera.state[RUNNER_KEY]
    return runner


def _statement(
    view: CompiledView,
    operators: Registry[Operator],
    base: Readable,
    joined: Readable | None,
    query: ListQuery,
    sort: tuple[SortKey, ...],
    nulls: tuple[bool, ...] | None,
) -> CompiledStatement:
    """The page statement (see the module); ``joined`` None: the caller may not read the
    joined collection, whose fields are then null."""
    params = Params()
    b = base.table.alias("b")
    columns = [b.c[label.removeprefix("b_")].label(label) for label in _labels(view.base_fields)]
    source: sa.FromClause = b
    if view.join is not None and joined is None:
        columns += [
            sa.null().cast(field.type.sql_type()).label(label)
            for label, field in _labels(view.joined_fields).items()
        ]
    elif view.join is not None and joined is not None:
        j = joined.table.alias("j")
        columns += [
            j.c[label.removeprefix("j_")].label(label) for label in _labels(view.joined_fields)
        ]
        condition = j.c.id == b.c[view.join.relation.column.removeprefix("b_")]
        rule = joined.condition(j, params)
        source = b.outerjoin(j, condition if rule is None else sa.and_(condition, rule))
    inner = sa.select(*columns).select_from(source)
    rule = base.condition(b, params)
    if rule is not None:
        inner = inner.where(rule)
    v = inner.subquery("v")

    def column(field: FieldDef) -> Any:
        return v.c[field.column]

    selected = {view.fields[name].column for name in view.projection}
    selected |= {key.field.column for key in sort}
    statement = sa.select(*(v.c[label] for label in sorted(selected)))
    binder = Binder(view.fields, operators)
    for node in (view.filter, query.filter):
        if node is not None:
            statement = statement.where(to_sql(binder.bind(node), column, params))
    if nulls is not None:
        statement = statement.where(after_cursor(sort, column, params, nulls))
    statement = statement.order_by(*order_by(sort, column)).limit(
        params.dynamic("limit", sa.Integer())
    )
    return compile_statement(statement, params)


def _labels(fields: dict[str, FieldDef]) -> dict[str, FieldDef]:
    """``fields`` by distinct label (a field is reachable by name and by column)."""
    return {field.column: field for field in fields.values()}
