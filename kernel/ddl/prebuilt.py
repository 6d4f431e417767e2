"""Unique indexes and ``CHECK`` constraints built before an op's transaction, so that a
large table keeps taking writes while they are built and checked.

Each is built under a transient name (:func:`kernel.catalog.names.transient_name`) on the
columns as they are before the op, by concurrent steps (:class:`ConcurrentStep`); the op's
transaction then only renames it to its final name — or drops it, when it was built only as
a *proof*: that a column has no empty value, once ``SET NOT NULL`` used it; that the stored
records keep a rule, before a type change adds the rule's own constraint back. PostgreSQL
keeps an index or constraint on its columns through their renames, and renaming one is a
catalog change, not a scan. Ops of plugin ``schema.evolution`` (``swap_fields``,
``restore_field``, ``change_field_type``) and of plugin ``rules.core``
(``set_field_rules``) build this way; so may any plugin's (exported from ``kernel``).

Why a ``CHECK`` constraint is added ``NOT VALID`` and validated *before* the transaction
rather than after it: ``ADD CONSTRAINT ... NOT VALID`` holds ``ACCESS EXCLUSIVE`` only for
a moment and, from then on, refuses every write that breaks it; ``VALIDATE CONSTRAINT``
then scans the stored rows under ``SHARE UPDATE EXCLUSIVE``, which lets reads and writes go
on. Validating after the op's commit would leave a change already made when a stored row
breaks the rule, with no way back but another change; validated before it, a row that
breaks the rule fails the step, the steps are undone and nothing changed. The price: from
the moment it is added, the constraint refuses the writes that break the rule it is about
to carry (for a swap, reading the replacement's column as the field: records the swap
would refuse to take over); a unique index does the same from the moment its build can see
writes.

The steps run in that order (:func:`build_steps`): every brief ``ACCESS EXCLUSIVE``
first, so a busy table fails the op (``lock_timeout``) before any long work ran; then the
index builds; then the validations. Neither of the long kinds blocks writes.

An op builds this way on a table of ``ddl_concurrent_index_rows`` rows or more, by the
planner's estimate, and says so in its preview's ``impact.index_build``
(:func:`build_before`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from alembic.operations import Operations
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from kernel.catalog.model import CollectionDef
from kernel.ddl.inspect import SchemaInspector
from kernel.ddl.operation import ConcurrentStep, OpContext, Step
from kernel.errors import Conflict

#: Conditions and names are compiled for asyncpg, the driver that runs them (it leaves
#: ``%`` in literals alone: see :func:`kernel.ddl.operation.statements`).
_PG = PGDialect_asyncpg()


def _quoted(schema: str, name: str) -> str:
    quote = _PG.identifier_preparer.quote
    return f"{quote(schema)}.{quote(name)}"


def _drop_index(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_index(
        name, table_name=table, schema=schema, postgresql_concurrently=True, if_exists=True
    )


def _build_index(schema: str, table: str, name: str, columns: list[str], ops: Operations) -> None:
    _drop_index(schema, table, name, ops)  # one a dead process left: rebuilt, never trusted
    ops.create_index(name, table, columns, unique=True, schema=schema, postgresql_concurrently=True)


def _drop_check(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_constraint(name, table, type_="check", schema=schema, if_exists=True)


def _add_check(schema: str, table: str, name: str, condition: Any, ops: Operations) -> None:
    """Add the constraint ``NOT VALID``, dropping one of its name a dead process left
    (never trusted), in one statement: the table's ``ACCESS EXCLUSIVE`` lock is taken, and
    writes queue behind it, once rather than twice."""
    quote = _PG.identifier_preparer.quote
    ops.execute(
        f"ALTER TABLE {_quoted(schema, table)} DROP CONSTRAINT IF EXISTS {quote(name)}, "
        f"ADD CONSTRAINT {quote(name)} CHECK ({compiled_condition(condition)}) NOT VALID"
    )


def _validate_check(schema: str, table: str, name: str, ops: Operations) -> None:
    quote = _PG.identifier_preparer.quote
    ops.execute(f"ALTER TABLE {_quoted(schema, table)} VALIDATE CONSTRAINT {quote(name)}")


def _rename_index(schema: str, old: str, new: str, ops: Operations) -> None:
    """Without ``IF EXISTS``: a transient index gone by now fails the transaction rather
    than leave a field the catalog calls unique without its index."""
    quote = _PG.identifier_preparer.quote
    ops.execute(f"ALTER INDEX {quote(schema)}.{quote(old)} RENAME TO {quote(new)}")


def _rename_check(schema: str, table: str, old: str, new: str, ops: Operations) -> None:
    quote = _PG.identifier_preparer.quote
    ops.execute(
        f"ALTER TABLE {_quoted(schema, table)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}"
    )


@dataclass(frozen=True, slots=True)
class PrebuiltIndex:
    """A unique index ``name`` over ``columns`` (named as they are before the op), built
    as ``transient``; ``label`` says what it covers, in field names."""

    schema: str
    table: str
    name: str
    transient: str
    columns: list[str]
    label: str

    def build(self) -> ConcurrentStep:
        return ConcurrentStep(
            f"build unique index {self.name} on {self.label} as {self.transient}, "
            "concurrently (writes go on)",
            partial(_build_index, self.schema, self.table, self.transient, self.columns),
            partial(_drop_index, self.schema, self.table, self.transient),
        )

    def swap_in(self) -> Step:
        """In the transaction: the index takes its name."""
        return Step(
            f"rename index {self.transient} to {self.name}",
            partial(_rename_index, self.schema, self.transient, self.name),
        )

    async def ready(self, inspector: SchemaInspector, collection: CollectionDef) -> bool:
        return await inspector.valid_unique_index(collection, self.transient, self.columns)


@dataclass(frozen=True, slots=True)
class PrebuiltCheck:
    """A ``CHECK`` constraint ``name`` (``None``: a proof, dropped once used) whose
    ``condition`` names the columns as they are before the op, built as ``transient``;
    ``label`` says what it checks."""

    schema: str
    table: str
    name: str | None
    transient: str
    condition: Any
    label: str

    def add(self) -> ConcurrentStep:
        return ConcurrentStep(
            f"add check constraint {self.transient} ({self.label}) NOT VALID",
            partial(_add_check, self.schema, self.table, self.transient, self.condition),
            partial(_drop_check, self.schema, self.table, self.transient),
        )

    def validate(self) -> ConcurrentStep:
        return ConcurrentStep(
            f"validate check constraint {self.transient} ({self.label}) on the stored "
            "records (writes go on)",
            partial(_validate_check, self.schema, self.table, self.transient),
            partial(_drop_check, self.schema, self.table, self.transient),
        )

    def swap_in(self) -> Step:
        """In the transaction: the constraint takes its name, or (a proof) is dropped;
        a proof's step goes after the ``SET NOT NULL`` it lets skip its scan, and before
        a type change of its column (which would check it again, scanning)."""
        if self.name is None:
            return Step(
                f"drop check constraint {self.transient} (it proved {self.label})",
                partial(_drop_check, self.schema, self.table, self.transient),
            )
        return Step(
            f"rename check constraint {self.transient} to {self.name}",
            partial(_rename_check, self.schema, self.table, self.transient, self.name),
        )

    async def ready(self, inspector: SchemaInspector, collection: CollectionDef) -> bool:
        return await inspector.valid_check(collection, self.transient)


def build_steps(indexes: list[PrebuiltIndex], checks: list[PrebuiltCheck]) -> list[ConcurrentStep]:
    """The steps that build them, in the order the module's docstring explains."""
    return (
        [check.add() for check in checks]
        + [index.build() for index in indexes]
        + [check.validate() for check in checks]
    )


async def build_before(
    context: OpContext, inspector: SchemaInspector, collection: CollectionDef, wanted: bool
) -> dict[str, Any]:
    """Which way an op builds what it ``wanted`` to build, for its preview's
    ``impact.index_build``: ``concurrently`` (before its transaction) when it wants
    anything and the table has ``ddl_concurrent_index_rows`` rows or more (estimated), with
    ``estimated_rows`` and ``threshold``."""
    threshold = context.tessera.settings.ddl_concurrent_index_rows
    estimate = await inspector.estimated_rows(collection, threshold)
    return {
        "concurrently": wanted and estimate >= threshold,
        "estimated_rows": estimate,
        "threshold": threshold,
    }


async def refuse_missing(
    inspector: SchemaInspector,
    collection: CollectionDef,
    built: Sequence[PrebuiltIndex | PrebuiltCheck],
) -> None:
    """In the transaction, after the build: a 409 ``concurrent_step_failed`` when any of
    ``built`` is missing or not valid (dropped meanwhile by hand or a reconcile pass)."""
    absent = [item.transient for item in built if not await item.ready(inspector, collection)]
    if absent:
        raise Conflict(
            f"what was built before this change ({', '.join(absent)}) is missing or not "
            "valid; nothing changed: apply again",
            code="concurrent_step_failed",
        )


class ProvesBeforehand:
    """For an op (a :class:`kernel.DdlOperation`) whose transaction would scan the table
    to check what its ``proofs`` (built in ``plan()``) check: on a table of
    ``ddl_concurrent_index_rows`` rows or more they are added and validated before the
    transaction, and ``plan()`` — seeing ``context.concurrent_done`` — swaps them in there
    (:meth:`PrebuiltCheck.swap_in`: a proof is dropped, a named constraint renamed)
    instead of scanning; ``build`` says which way it went (``impact.index_build``)."""

    context: OpContext
    collection: CollectionDef
    proofs: list[PrebuiltCheck]
    build: dict[str, Any]

    async def concurrent_steps(self, inspector: SchemaInspector) -> list[ConcurrentStep]:
        wanted = bool(self.proofs)
        self.build = await build_before(self.context, inspector, self.collection, wanted)
        return build_steps([], self.proofs) if self.build["concurrently"] else []

    async def preflight(self, inspector: SchemaInspector) -> None:
        if self.context.concurrent_done:
            await refuse_missing(inspector, self.collection, self.proofs)


def compiled_condition(condition: Any) -> str:
    """A condition as the SQL it compiles to (what a transient name's digest covers)."""
    return str(condition.compile(dialect=_PG, compile_kwargs={"literal_binds": True}))
