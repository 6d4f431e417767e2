"""Per-collection runtime objects derived from one catalog snapshot.

Building a SQLAlchemy table, binding policies and compiling statements happen once per
collection per catalog version (and again when a field alias expires); requests then only
look things up. Runtimes live in the snapshot's ``runtime`` dict and die with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kernel.catalog.model import AliasDef, CollectionDef, FieldDef, ProjectCatalog
from kernel.catalog.system import SYSTEM_FIELDS, queryable_fields
from kernel.expr import ExpressionError
from kernel.fields import FieldType, ForeignKey
from kernel.lru import LruCache
from kernel.operators import Operator
from kernel.query.contract import ListQuery
from kernel.registry import Registry
from kernel.security.policies import Access, PolicyRule, bind_policy
from kernel.statements import CompiledStatement

log = logging.getLogger(__name__)

#: Compiled statements kept per collection (least recently used dropped first); the keys
#: are shapes of requests (which columns, which filter operators), few in practice.
MAX_CACHED_STATEMENTS = 512
#: Distinct list query strings kept parsed per collection (filter values are part of them).
MAX_CACHED_LIST_QUERIES = 256


class CollectionRuntime:
    """Table, name resolution, policies and compiled statements of one collection."""

    def __init__(
        self,
        catalog: ProjectCatalog,
        collection: CollectionDef,
        operators: Registry[Operator],
        now: datetime,
    ) -> None:
        self.project_id = catalog.project.id
        self.collection = collection
        self.catalog_collections = catalog.collections
        self.operators = operators
        live = collection.live_fields
        self.table = sa.Table(
            collection.table,
            sa.MetaData(),
            *(sa.Column(f.column, f.type.sql_type()) for f in SYSTEM_FIELDS.values()),
            *(sa.Column(f.column, f.type.sql_type()) for f in live.values()),
            schema=catalog.project.schema,
        )
        self.field_aliases: dict[str, tuple[FieldDef, AliasDef]] = collection.live_field_aliases(
            now
        )
        self.valid_until = min(
            (alias.expires_at for _, alias in self.field_aliases.values()), default=None
        )
        #: Field and system names plus live aliases, for expressions (policies, filters).
        self.queryable: dict[str, FieldDef] = queryable_fields(collection, now)
        #: Names a client may use for a field without an alias.
        self.fields: dict[str, FieldDef] = {
            name: field for name, field in self.queryable.items() if name not in self.field_aliases
        }
        self.column_names = {f.column: f.name for f in live.values()}
        #: (JSON key, column) of every value a record carries, in output order. While an
        #: alias lives, reads also return the value under the old key.
        self.output: list[tuple[str, str]] = [(name, name) for name in SYSTEM_FIELDS]
        self.output += [(f.column, f.column) for f in live.values()]
        self.output += [
            (old + field.type.column_suffix, field.column)
            for old, (field, _) in self.field_aliases.items()
        ]
        #: The keys of a record row, in the order of :meth:`output_columns`.
        self.output_keys = tuple(key for key, _ in self.output)
        #: Per-value output conversions, for the types that have one and do not batch.
        self.json_converters: dict[str, Callable[[Any], Any]] = {
            f.column: f.type.to_json
            for f in live.values()
            if not type(f.type).keeps_json() and not type(f.type).batches_json()
        }
        #: Field types rendering a whole response's values at once (``to_json_many``).
        self.json_batchers: dict[str, FieldType] = {
            f.column: f.type for f in live.values() if type(f.type).batches_json()
        }
        self._policies: dict[str, PolicyRule] = {}
        self._statements: LruCache[Hashable, CompiledStatement] = LruCache(MAX_CACHED_STATEMENTS)
        self._list_queries: LruCache[tuple[tuple[str, str], ...], ListQuery] = LruCache(
            MAX_CACHED_LIST_QUERIES
        )

    def referencing(self, target: str) -> list[tuple[CollectionDef, FieldDef, ForeignKey]]:
        """Fields of the project whose foreign key to collection ``target`` cascades a
        delete or nulls the link (soft-dropped fields and collections too: their keys
        still act); restricting keys are left out."""
        found = []
        for collection in self.catalog_collections.values():
            for field in collection.fields:
                key = field.type.foreign_key() if field.type is not None else None
                if key is not None and key.target == target and key.on_delete != "restrict":
                    found.append((collection, field, key))
        return found

    def current(self, now: datetime) -> bool:
        """Whether the runtime still reflects the live aliases at ``now``."""
        return self.valid_until is None or now < self.valid_until

    def resolve(self, name: str) -> tuple[FieldDef, AliasDef | None] | None:
        """A client-supplied field name (current, column, or a live old name)."""
        field = self.fields.get(name)
        if field is not None:
            return field, None
        return self.field_aliases.get(name)

    def column(self, field: FieldDef) -> sa.Column:
        return self.table.c[field.column]

    def output_columns(self, source: sa.FromClause | None = None) -> list[Any]:
        """The selected columns of a record, read from the table or a CTE over it."""
        columns = (source if source is not None else self.table).c
        return [
            columns[column] if key == column else columns[column].label(key)
            for key, column in self.output
        ]

    def policy(self, action: str) -> PolicyRule:
        """The bound rule for ``action`` (bound once per runtime)."""
        rule = self._policies.get(action)
        if rule is None:
            try:
                rule = bind_policy(self.collection.policy(action), self.queryable, self.operators)
            except ExpressionError as error:
                # A rule that no longer binds (its field was dropped) fails closed.
                log.error("policy %s.%s no longer binds: %s", self.collection.name, action, error)
                rule = Access.ADMINS_ONLY
            self._policies[action] = rule
        return rule

    def statement(self, key: Hashable, build: Callable[[], CompiledStatement]) -> CompiledStatement:
        """The compiled statement for ``key``, built on first use."""
        return self._statements.get_or_make(key, build)

    def list_query(
        self, shape: tuple[tuple[str, str], ...], parse: Callable[[], ListQuery]
    ) -> ListQuery:
        """The parsed list query for the query-string items ``shape``, parsed on first use
        (a query that does not parse raises and is not kept). Callers only read it."""
        return self._list_queries.get_or_make(shape, parse)


def runtime_for(
    catalog: ProjectCatalog,
    collection: CollectionDef,
    operators: Registry[Operator],
    now: datetime,
) -> CollectionRuntime:
    """The collection's runtime in this snapshot, built on first use."""
    key = ("records", collection.id)
    runtime = catalog.runtime.get(key)
    if runtime is None or not runtime.current(now):
        runtime = CollectionRuntime(catalog, collection, operators, now)
        catalog.runtime[key] = runtime
    return runtime
