"""Unique indexes and ``CHECK`` constraints built before an op's transaction, so that a
large table keeps taking writes while they are built and checked.

Each is built under a transient name (:func:`kernel.transient_name`) on the columns as they
are before the op, by concurrent steps (:class:`kernel.ConcurrentStep`); the op's
transaction then only renames it to its final name (a constraint proving a column has no
empty value is dropped instead, once ``SET NOT NULL`` used it). PostgreSQL keeps an index
or constraint on its columns through their renames, and renaming one is a catalog change,
not a scan.

Why a ``CHECK`` constraint is added ``NOT VALID`` and validated *before* the transaction
rather than after it: ``ADD CONSTRAINT ... NOT VALID`` holds ``ACCESS EXCLUSIVE`` only for
a moment and, from then on, refuses every write that breaks it; ``VALIDATE CONSTRAINT``
then scans the stored rows under ``SHARE UPDATE EXCLUSIVE``, which lets reads and writes go
on. Validating after the op's commit would leave a change already made when a stored row
breaks the rule, with no way back but another change; validated before it, a row that
breaks the rule fails the step, the steps are undone and nothing changed. The price: from
the moment it is added, the constraint refuses the writes that break the rule it is about
to carry, reading the replacement's column as the field (records the swap would refuse to
take over); a unique index does the same from the moment its build can see writes.

The steps run in that order (:func:`build_steps`): every brief ``ACCESS EXCLUSIVE``
first, so a busy table fails the op (``lock_timeout``) before any long work ran; then the
index builds; then the validations. Neither of the long kinds blocks writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from alembic.operations import Operations
from sqlalchemy.dialects import postgresql

from kernel import CollectionDef, ConcurrentStep, SchemaInspector, Step
from plugins.schema.steps import rename_index

_PG = postgresql.dialect()


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
    _drop_check(schema, table, name, ops)
    ops.create_check_constraint(name, table, condition, schema=schema, postgresql_not_valid=True)


def _validate_check(schema: str, table: str, name: str, ops: Operations) -> None:
    quote = _PG.identifier_preparer.quote
    ops.execute(f"ALTER TABLE {_quoted(schema, table)} VALIDATE CONSTRAINT {quote(name)}")


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
            partial(rename_index, self.schema, self.transient, self.name),
        )

    async def ready(self, inspector: SchemaInspector, collection: CollectionDef) -> bool:
        return await inspector.valid_unique_index(collection, self.transient, self.columns)


@dataclass(frozen=True, slots=True)
class PrebuiltCheck:
    """A ``CHECK`` constraint ``name`` (``None``: one that only proves a column has no
    empty value, dropped once used) whose ``condition`` names the columns as they are
    before the op, built as ``transient``; ``label`` says what it checks."""

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
        a proof's step goes after the ``SET NOT NULL`` it lets skip its scan."""
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


def compiled(condition: Any) -> str:
    """A condition as the SQL it compiles to (what a transient name's digest covers)."""
    return str(condition.compile(dialect=_PG, compile_kwargs={"literal_binds": True}))
