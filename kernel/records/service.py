"""The records API: list, read, create, update, delete and validate, policy-checked.

Every call resolves the project's catalog from the in-process cache, checks the principal's
project, scope and key restrictions, applies the collection policy (SQL for reads, updates
and deletes; Python on the candidate row for creates) and runs one precompiled statement on
the asyncpg pool. A reference the cached catalog does not know (a collection or field just
added by another process), or a statement that hits a just-renamed column, reloads the
catalog once and retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from kernel.catalog.model import AliasDef, CollectionDef, ProjectCatalog
from kernel.catalog.system import SYSTEM_FIELDS
from kernel.db.errors import translate_postgres_error
from kernel.db.pool import ConnectionPool
from kernel.errors import (
    FieldErrors,
    Forbidden,
    NotFound,
    TesseraError,
    Unauthorized,
    ValidationFailed,
)
from kernel.expr import Bound, evaluate
from kernel.fields import RenderContext
from kernel.json_values import JsonLimits
from kernel.query.contract import Limits, ListQuery, parse_list_query, split_cursor
from kernel.query.keyset import decode_cursor, encode_cursor
from kernel.records import statements
from kernel.records.foreign_keys import foreign_key_error
from kernel.records.includes import Include, resolve_includes
from kernel.records.readable import Readable
from kernel.records.runtime import CollectionRuntime, runtime_for
from kernel.records.validation import RecordRules, rules_for
from kernel.records.values import candidate_row, coerce_body
from kernel.registry import Registry
from kernel.rules import RuleType
from kernel.security.policies import Access, policy_refusal
from kernel.security.principal import Principal
from kernel.statements import CompiledStatement

if TYPE_CHECKING:
    from kernel.runtime import Tessera

T = TypeVar("T")
#: One try at a records call against a catalog snapshot (retried once on a newer one).
Attempt = Callable[[ProjectCatalog], Awaitable["Outcome"]]

#: Error codes that may only mean "this process's catalog is behind".
_STALE_CODES = frozenset({"collection_not_found", "unknown_field"})


@dataclass(slots=True)
class Outcome:
    """What a records call returns to the HTTP layer: the data, plus the aliases the
    request went through (for ``Deprecation`` headers)."""

    data: Any
    collection: CollectionDef
    aliases: list[AliasDef] = field(default_factory=list)
    collection_alias: AliasDef | None = None


@dataclass(slots=True)
class Target:
    """A resolved collection for one request."""

    catalog: ProjectCatalog
    runtime: CollectionRuntime
    alias: AliasDef | None
    rule: Bound | None
    now: datetime

    @property
    def collection(self) -> CollectionDef:
        return self.runtime.collection

    def rules(self, rule_types: Registry[RuleType]) -> RecordRules:
        """The collection's validation rules, bound once per catalog snapshot."""
        runtime = self.runtime
        return rules_for(
            self.catalog, runtime.collection, runtime.queryable, rule_types, runtime.operators
        )


class RecordService:
    def __init__(self, tessera: Tessera) -> None:
        self.tessera = tessera
        self.json_limits = JsonLimits.of(tessera.settings)

    @property
    def _pool(self) -> ConnectionPool:
        return self.tessera.db.pool

    # -- resolution -------------------------------------------------------------------

    def target(
        self,
        catalog: ProjectCatalog,
        project_id: str,
        name: str,
        principal: Principal,
        scope: str,
        action: str,
    ) -> Target:
        """Collection ``name`` of the catalog as ``principal`` may use it for ``action``:
        the project, the ``scope``, a key's collections and the action's policy are
        checked (``Forbidden``; an unknown collection is ``NotFound``); ``rule`` is the row
        rule still to apply, ``None`` when every record qualifies. No I/O."""
        if not principal.belongs_to(project_id):
            raise Forbidden("credentials of another project", code="wrong_project")
        now = datetime.now(UTC)
        resolved = catalog.resolve_collection(name, now)
        if resolved is None:
            raise NotFound(f"collection {name!r} not found", code="collection_not_found")
        collection, alias = resolved
        if not principal.can(scope):
            raise Forbidden(f"this credential lacks the {scope} scope", code="missing_scope")
        if principal.collections is not None and not any(
            principal.may_use(known) for known in _names_of(catalog, collection, now)
        ):
            raise Forbidden(
                f"this key may not access {collection.name!r}", code="collection_not_allowed"
            )
        runtime = runtime_for(catalog, collection, self.tessera.operators, now)
        rule = runtime.policy(action)
        if principal.is_admin:
            bound = None
        elif rule is Access.ADMINS_ONLY:
            raise policy_refusal(
                principal, f"only admins may {action} records of {collection.name!r}"
            )
        else:
            bound = None if rule is Access.ANYONE else rule
        return Target(catalog, runtime, alias, bound, now)

    def readable(
        self,
        catalog: ProjectCatalog,
        project_id: str,
        name: str,
        principal: Principal,
        action: str = "list",
    ) -> Readable:
        """Collection ``name`` as ``principal`` may read it (``action``: ``list`` or
        ``read``), for a plugin's own ``SELECT`` (see :mod:`kernel.records.readable`).
        Checked as the records API checks a read, with the ``records:read`` scope:
        ``Forbidden`` (or ``Unauthorized`` for an anonymous caller a policy refuses),
        ``NotFound`` for an unknown collection. No I/O. The answer depends on ``catalog``,
        on the principal's kind, project, scopes and collections alone, and on the time
        only through the collection's old names (plugins may keep it by those: see
        docs/plugins.md)."""
        target = self.target(catalog, project_id, name, principal, "records:read", action)
        return Readable(target.collection, target.runtime.table, target.rule)

    async def _fresh(self, project_id: str, attempt: Attempt) -> Outcome:
        """Run ``attempt``; if it fails in a way a stale catalog explains, reload and retry
        once. Old names the request used are noted for the aliases' usage statistics."""
        catalogs = self.tessera.catalog
        catalog = catalogs.cached(project_id) or await catalogs.get(project_id)
        retry_on: ProjectCatalog | None = None
        try:
            outcome = await attempt(catalog)
        except TesseraError as error:
            if not any(item.code in _STALE_CODES for item in error.items):
                raise
            # Only a catalog that moved on explains it; checking costs one indexed query.
            retry_on = await catalogs.get(project_id, fresh=True)
            if retry_on.version == catalog.version:
                raise
        except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
            # The table changed under a statement of this snapshot: a schema change committed.
            retry_on = await catalogs.refresh(project_id)
        if retry_on is not None:
            outcome = await attempt(retry_on)
        if outcome.aliases or outcome.collection_alias:
            self.tessera.alias_usage.record([outcome.collection_alias, *outcome.aliases])
        return outcome

    def _context(self, target: Target, principal: Principal, **values: Any) -> dict[str, Any]:
        return {**principal.context, "now": target.now, **values}

    async def _output(
        self, target: Target, principal: Principal, row: asyncpg.Record
    ) -> dict[str, Any]:
        """One row of a record statement as a record (a read or a write's answer): as
        :meth:`_records`, without its list and its coroutine."""
        runtime = target.runtime
        record = dict(zip(runtime.output_keys, row, strict=False))
        for column, convert in runtime.json_converters.items():
            if record[column] is not None:
                record[column] = convert(record[column])
        if runtime.json_batchers:
            await self._render_batches(target, principal, [record])
        return record

    async def _records(
        self, target: Target, principal: Principal, rows: Sequence[asyncpg.Record]
    ) -> list[dict[str, Any]]:
        """Rows of a record statement as records (JSON-ready values)."""
        runtime = target.runtime
        # Every record statement selects runtime.output_columns(), in this order, so the
        # lengths always match.
        keys = runtime.output_keys
        records = [dict(zip(keys, row, strict=False)) for row in rows]
        for column, convert in runtime.json_converters.items():
            for record in records:
                if record[column] is not None:
                    record[column] = convert(record[column])
        if runtime.json_batchers:
            await self._render_batches(target, principal, records)
        return records

    async def _render_batches(
        self, target: Target, principal: Principal, records: list[dict[str, Any]]
    ) -> None:
        """One ``to_json_many`` call per batching field for the whole response."""
        runtime = target.runtime
        context = RenderContext(
            self.tessera, runtime.project_id, runtime.collection.name, principal
        )
        for column, field_type in runtime.json_batchers.items():
            present = [record for record in records if record[column] is not None]
            if not present:
                continue
            rendered = await field_type.to_json_many([r[column] for r in present], context)
            for record, value in zip(present, rendered, strict=True):
                record[column] = value

    async def _run(
        self,
        target: Target,
        method: Callable[..., Awaitable[T]],
        statement: CompiledStatement,
        context: dict[str, Any],
        *,
        deleting: bool = False,
    ) -> T:
        """``method`` (one of the pool's ``fetch``, ``fetchrow``, ``fetchval``) on the
        statement filled from ``context``; PostgreSQL errors a client caused become 4xx
        (a foreign key violated by a delete, ``deleting``, or by a write: see
        :mod:`kernel.records.foreign_keys`)."""
        try:
            return await method(statement.sql, *statement.args(context))
        except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError):
            raise
        except asyncpg.ForeignKeyViolationError as error:
            raise await foreign_key_error(
                self._pool, target.catalog, error, deleting=deleting
            ) from None
        except asyncpg.PostgresError as error:
            translated = translate_postgres_error(error, target.runtime.column_names)
            if translated is None:
                raise
            raise translated from None

    # -- reads ------------------------------------------------------------------------

    async def list(
        self,
        project_id: str,
        name: str,
        items: Iterable[tuple[str, str]],
        principal: Principal,
    ) -> Outcome:
        """One page of records: ``{"data": [...], "page": {"limit", "next_cursor"}}``.

        A client walks pages with one query string and a new cursor each time, so the query
        is parsed once per collection runtime and shape (everything but the cursor)."""
        shape, cursor = split_cursor(items)

        async def attempt(catalog: ProjectCatalog) -> Outcome:
            target = self.target(catalog, project_id, name, principal, "records:read", "list")
            runtime = target.runtime
            query = runtime.list_query(
                shape,
                lambda: parse_list_query(
                    shape,
                    runtime.resolve,
                    self.tessera.operators,
                    self.limits(target.catalog),
                    id_field=SYSTEM_FIELDS["id"],
                ),
            )
            includes = self._includes(target, query.include)
            return await self._page(target, query, cursor, principal, includes)

        return await self._fresh(project_id, attempt)

    def limits(self, catalog: ProjectCatalog) -> Limits:
        settings = self.tessera.settings
        return Limits(
            default_limit=settings.default_page_limit,
            max_limit=catalog.project.settings.max_page_limit or settings.max_page_limit,
            max_filters=settings.max_filters,
        )

    async def _page(
        self,
        target: Target,
        query: ListQuery,
        cursor: str | None,
        principal: Principal,
        includes: list[Include],
    ) -> Outcome:
        """The page after ``cursor`` (None: the first page), with ``includes`` expanded.
        ``query`` may be shared between requests: it is only read."""
        runtime = target.runtime
        scope = f"{runtime.collection.id}|{query.sort_signature}"
        context = self._context(target, principal, **query.values, limit=query.limit + 1)
        nulls: tuple[bool, ...] | None = None
        if cursor is not None:
            position = decode_cursor(self.tessera.cursors, scope, cursor, query.sort)
            context.update(position.values)
            nulls = position.nulls
        statement = statements.select_page(runtime, target.rule, query, nulls)
        rows = await self._run(target, self._pool.fetch, statement, context)
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            next_cursor = encode_cursor(self.tessera.cursors, scope, query.sort, rows[-1])
        records = await self._records(target, principal, rows)
        if includes:
            await self._expand(target, principal, includes, records)
        return Outcome(
            data={
                "data": records,
                "page": {"limit": query.limit, "next_cursor": next_cursor},
            },
            collection=runtime.collection,
            aliases=query.aliases_used,
            collection_alias=target.alias,
        )

    async def get(
        self,
        project_id: str,
        name: str,
        record_id: int,
        principal: Principal,
        include: tuple[str, ...] = (),
    ) -> Outcome:
        """One record, with the relations named in ``include`` expanded."""

        async def attempt(catalog: ProjectCatalog) -> Outcome:
            target = self.target(catalog, project_id, name, principal, "records:read", "read")
            includes = self._includes(target, include)
            statement = statements.select_one(target.runtime, target.rule)
            context = self._context(target, principal, id=record_id)
            row = await self._run(target, self._pool.fetchrow, statement, context)
            if row is None:
                raise NotFound(f"record {record_id} not found", code="record_not_found")
            record = await self._output(target, principal, row)
            if includes:
                await self._expand(target, principal, includes, [record])
            return Outcome(record, target.collection, [], target.alias)

        return await self._fresh(project_id, attempt)

    # -- includes ---------------------------------------------------------------------

    def _includes(self, target: Target, names: tuple[str, ...]) -> list[Include]:
        if not names:
            return []
        limit = self.tessera.settings.max_includes
        return resolve_includes(target.runtime, target.catalog, names, limit)

    async def _expand(
        self,
        target: Target,
        principal: Principal,
        includes: list[Include],
        records: list[dict[str, Any]],
    ) -> None:
        """Put each include's records into ``records``: one query per include (see
        :mod:`kernel.records.includes`)."""
        for include in includes:
            key = include.field.column if include.forward else "id"
            ids = {record[key] for record in records if record[key] is not None}
            found = await self._linked(target, principal, include, ids) if ids else {}
            missing = None if include.forward else []
            for record in records:
                linked = record[key]
                record[include.name] = None if found is None else found.get(linked, missing)

    async def _linked(
        self, target: Target, principal: Principal, include: Include, ids: set[int]
    ) -> dict[int, Any] | None:
        """The records of an include for ``ids``, read as ``principal``: by id (forward)
        or lists by the id they link to (reverse). ``None`` when the caller may not read
        the collection at all."""
        action = "read" if include.forward else "list"
        try:
            linked = self.target(
                target.catalog,
                target.runtime.project_id,
                include.collection,
                principal,
                "records:read",
                action,
            )
        except (Forbidden, NotFound, Unauthorized):
            return None
        context = self._context(linked, principal, ids=sorted(ids))
        if include.forward:
            statement = statements.select_by_ids(linked.runtime, linked.rule)
        else:
            context["per_parent"] = self.tessera.settings.include_per_parent
            statement = statements.select_linking(linked.runtime, linked.rule, include.field)
        rows = await self._run(linked, self._pool.fetch, statement, context)
        records = await self._records(linked, principal, rows)
        if include.forward:
            return {record["id"]: record for record in records}
        grouped: dict[int, Any] = {}
        for record in records:
            grouped.setdefault(record[include.field.column], []).append(record)
        return grouped

    # -- writes -----------------------------------------------------------------------

    async def create(
        self,
        project_id: str,
        name: str,
        body: Any,
        principal: Principal,
        meta: dict[str, Any] | None = None,
    ) -> Outcome:
        """Create a record. ``meta`` is added to the outbox event (a workflow's depth)."""

        async def attempt(catalog: ProjectCatalog) -> Outcome:
            target = self.target(catalog, project_id, name, principal, "records:write", "create")
            runtime = target.runtime
            values, aliases = coerce_body(runtime, body, partial=False, limits=self.json_limits)
            rules = target.rules(self.tessera.rule_types)
            checked = bool(rules)
            candidate = candidate_row(runtime, values) if checked or target.rule is not None else {}
            if checked:
                FieldErrors(rules.errors(candidate)).raise_if_any()
            if self.tessera.quota_policies:
                await self._check_write_quota(project_id, runtime.collection.name, "create")
            context = self._context(
                target, principal, meta={**(meta or {}), "actor": principal.actor()}
            )
            if target.rule is not None and not evaluate(target.rule, candidate, context):
                raise policy_refusal(
                    principal, "the collection's create rule does not allow this record"
                )
            columns = tuple(sorted(values))
            statement = statements.insert_record(runtime, columns)
            context.update({f"v.{column}": value for column, value in values.items()})
            row = await self._run(target, self._pool.fetchrow, statement, context)
            self.tessera.events.committed()
            record = await self._output(target, principal, row)
            return Outcome(record, runtime.collection, aliases, target.alias)

        return await self._fresh(project_id, attempt)

    async def update(
        self,
        project_id: str,
        name: str,
        record_id: int,
        body: Any,
        principal: Principal,
        meta: dict[str, Any] | None = None,
    ) -> Outcome:
        """Update some fields of a record; ``meta`` is added to the outbox event."""

        async def attempt(catalog: ProjectCatalog) -> Outcome:
            target = self.target(catalog, project_id, name, principal, "records:write", "update")
            runtime = target.runtime
            values, aliases = coerce_body(runtime, body, partial=True, limits=self.json_limits)
            if self.tessera.quota_policies:
                await self._check_write_quota(project_id, runtime.collection.name, "update")
            columns = tuple(sorted(values))
            statement = statements.update_record(runtime, columns, target.rule)
            context = self._context(
                target,
                principal,
                id=record_id,
                meta={**(meta or {}), "actor": principal.actor()},
                **{f"v.{column}": value for column, value in values.items()},
            )
            rules = target.rules(self.tessera.rule_types)
            if rules:
                row = await self._update_checked(target, rules, values, statement, context)
            else:
                row = await self._run(target, self._pool.fetchrow, statement, context)
            if row is None:
                await self._explain_refusal(target, context, principal, "update")
            self.tessera.events.committed()
            record = await self._output(target, principal, row)
            return Outcome(record, runtime.collection, aliases, target.alias)

        return await self._fresh(project_id, attempt)

    async def _update_checked(
        self,
        target: Target,
        rules: RecordRules,
        values: dict[str, Any],
        statement: CompiledStatement,
        context: dict[str, Any],
    ) -> asyncpg.Record | None:
        """The update of a collection with rules, in one transaction: lock the stored
        record, check the rules on it with the patch applied (a 422 listing every broken
        rule, before the database's own CHECK constraints could refuse with less), then
        run ``statement``."""
        runtime = target.runtime
        lock = statements.select_one(runtime, target.rule, lock=True)
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await self._run(runtime, conn.fetchrow, lock, context)
            if stored is not None:
                merged = {**dict(zip(runtime.output_keys, stored, strict=False)), **values}
                FieldErrors(rules.errors(merged)).raise_if_any()
            return await self._run(runtime, conn.fetchrow, statement, context)

    async def delete(
        self, project_id: str, name: str, record_id: int, principal: Principal
    ) -> Outcome:
        async def attempt(catalog: ProjectCatalog) -> Outcome:
            target = self.target(catalog, project_id, name, principal, "records:write", "delete")
            runtime = target.runtime
            if self.tessera.quota_policies:
                await self._check_write_quota(project_id, runtime.collection.name, "delete")
            statement = statements.delete_record(runtime, target.rule)
            context = self._context(
                target, principal, id=record_id, meta={"actor": principal.actor()}
            )
            row = await self._run(target, self._pool.fetchrow, statement, context, deleting=True)
            if row is None:
                raise NotFound(f"record {record_id} not found", code="record_not_found")
            self.tessera.events.committed()
            return Outcome(None, runtime.collection, [], target.alias)

        return await self._fresh(project_id, attempt)

    async def validate(
        self, project_id: str, name: str, body: Any, principal: Principal
    ) -> Outcome:
        """The "try input" check: would this record be accepted? Writes nothing."""

        async def attempt(catalog: ProjectCatalog) -> Outcome:
            target = self.target(catalog, project_id, name, principal, "records:read", "read")
            record = body.get("record") if isinstance(body, dict) else None
            runtime = target.runtime
            try:
                values, aliases = coerce_body(
                    runtime, record, partial=False, limits=self.json_limits
                )
                FieldErrors(
                    target.rules(self.tessera.rule_types).errors(candidate_row(runtime, values))
                ).raise_if_any()
            except ValidationFailed as error:
                return Outcome(
                    {"valid": False, "errors": error.body()["errors"]},
                    target.collection,
                    [],
                    target.alias,
                )
            return Outcome({"valid": True, "errors": []}, target.collection, aliases, target.alias)

        return await self._fresh(project_id, attempt)

    async def _explain_refusal(
        self, target: Target, context: dict[str, Any], principal: Principal, action: str
    ) -> None:
        """After a write matched no row: a policy refusal (403, or 401 without credentials)
        if the record is visible (the new values break the rule), else 404."""
        statement = statements.exists_one(target.runtime, target.rule)
        visible = await self._run(target, self._pool.fetchval, statement, context)
        record_id = context["id"]
        if visible:
            raise policy_refusal(
                principal, f"the collection's {action} rule does not allow this change"
            )
        raise NotFound(f"record {record_id} not found", code="record_not_found")

    async def _check_write_quota(self, project_id: str, collection: str, action: str) -> None:
        """Every quota policy's check of a write (callers skip the call when there are
        none: a coroutine less per write)."""
        for policy in self.tessera.quota_policies:
            await policy.check_write(project_id, collection, action)


def _names_of(catalog: ProjectCatalog, collection: CollectionDef, now: datetime) -> list[str]:
    """The collection's name and its live old names (a key restricted to a collection keeps
    working through a rename)."""
    return [collection.name] + [
        old
        for old, (target, _) in catalog.live_collection_aliases(now).items()
        if target.id == collection.id
    ]
