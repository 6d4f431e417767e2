"""``DdlOperation``: the contract of a schema operation, and the plan it produces.

An operation is constructed with its validated arguments and an :class:`OpContext` whose
catalog is fresh from the database (read inside the engine's locked transaction when
applying). It then:

1. ``plan()`` — validates against the catalog and returns a :class:`Plan`: the DDL
   steps (issued through Alembic's operations, so the preview text is exactly what runs),
   warnings, and whether it is safe to apply (else a wizard for the UI);
2. ``impact(inspector)`` — optional read-only facts for the preview (rows, size,
   dependents); in apply, ``refuse(impact)`` may then refuse (rows that break a new
   constraint);
3. ``migrate_data(conn)`` — optional data changes after the DDL (a conversion copy);
4. ``write_catalog(writer)`` — after the DDL ran, the catalog rows, in the same
   transaction; returns the op's JSON result.

An op may also declare **concurrent steps** (``concurrent_steps(inspector)``): work run
before its transaction, outside any transaction, because PostgreSQL refuses it inside one
or because it must not hold the transaction's locks for its whole length (``CREATE INDEX
CONCURRENTLY`` on a large table). Each comes with its undo. Apply runs them under the op's
advisory locks, then builds the op again inside its transaction with
``context.concurrent_done`` set: its ``plan()`` leaves their work out and its
``preflight()`` checks it is there. If a step fails, or anything after it, the steps that
ran are undone and tables and catalog are as before (:mod:`kernel.ddl.concurrent`).

``changes()`` says what the op does to existing names (renames, drops, purges, type
changes): the engine has every reference holder rewrite or list what names them
(:mod:`kernel.references`), so no operation special-cases policies or any plugin's data.

The engine owns locking, ``lock_timeout``, the transaction, ``schema_ops`` status, the
audit event, the catalog version bump and the bus announcement. Operations never commit.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import DDLElement

from kernel.catalog.model import CollectionDef, FieldDef, ProjectCatalog
from kernel.errors import NotFound
from kernel.references import SchemaChange
from kernel.security.principal import Principal

#: What DDL is compiled for: PostgreSQL through asyncpg, the driver that runs it.
_DIALECT = PGDialect_asyncpg()

if TYPE_CHECKING:
    from kernel.catalog.writer import CatalogWriter
    from kernel.ddl.inspect import SchemaInspector
    from kernel.surface import KernelSurface


@dataclass(frozen=True, slots=True)
class Step:
    """One DDL or data step: what it does in words, and the calls that do it."""

    description: str
    run: Callable[[Operations], None]


@dataclass(frozen=True, slots=True)
class ConcurrentStep:
    """A step run before the op's transaction, outside any transaction, and its ``undo``
    (run if the step, a later one or the transaction fails). Both must be safe to run on
    their own and to repeat (``IF NOT EXISTS`` / ``IF EXISTS``)."""

    description: str
    run: Callable[[Operations], None]
    undo: Callable[[Operations], None]


def render_steps(steps: list[Step] | list[ConcurrentStep]) -> list[str]:
    """The SQL each step issues, rendered by Alembic exactly as it will run."""
    statements: list[str] = []
    for step in steps:
        statements.extend(render(step.run))
    return statements


def statements(run: Callable[[Operations], None]) -> list[str]:
    """The SQL statements ``run`` issues through Alembic's operations, one per item, exactly
    as they are to be executed: a statement given as text (``ops.execute(str)``) as
    written, a construct compiled for PostgreSQL with its values inline.

    Alembic's own offline output is not exact enough to execute: it escapes ``%`` for
    another driver's parameter style, turns tabs into spaces and ends statements with
    ``;`` and a newline, which a literal may hold too. So the statements are taken from
    Alembic's one place that issues them (its implementation's ``_exec``) and compiled for
    asyncpg, the driver that runs them, whose numbered parameters leave ``%`` alone."""
    context = MigrationContext.configure(
        dialect=_DIALECT,
        opts={"as_sql": True, "output_buffer": io.StringIO(), "literal_binds": True},
    )
    issued: list[str] = []

    def record(construct: Any, execution_options: Any = None, *args: Any, **kwargs: Any) -> None:
        if isinstance(construct, str):
            issued.append(construct)
            return
        literal = {} if isinstance(construct, DDLElement) else {"literal_binds": True}
        issued.append(str(construct.compile(dialect=_DIALECT, compile_kwargs=literal)).strip())

    context.impl._exec = record  # type: ignore[method-assign]
    run(Operations(context))
    return issued


def render(run: Callable[[Operations], None]) -> list[str]:
    """The statements of ``run`` (:func:`statements`) for people to read: each on one line,
    runs of whitespace as one space."""
    return [" ".join(sql.split()) for sql in statements(run)]


@dataclass(slots=True)
class Plan:
    """What an operation will do.

    ``safe`` False means apply refuses (the change could fail or lose data) and ``wizard``
    describes the guided alternative the UI walks through, as a list of ops.
    """

    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    safe: bool = True
    wizard: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class OpContext:
    """What an operation may consult: the project catalog, the kernel, the actor, the time."""

    catalog: ProjectCatalog
    tessera: KernelSurface
    actor: Principal
    now: datetime
    #: True inside apply's transaction once the op's concurrent steps ran.
    concurrent_done: bool = False

    @property
    def schema(self) -> str:
        return self.catalog.project.schema

    def collection(self, name: str, *, include_deleted: bool = False) -> CollectionDef:
        """The collection called ``name`` (by current name), or a 404 naming it."""
        collection = self.catalog.collections.get(name)
        if collection is None or (collection.is_deleted and not include_deleted):
            raise NotFound(
                f"collection {name!r} not found", code="collection_not_found", field="collection"
            )
        return collection

    def field(
        self, collection: CollectionDef, name: str, *, include_deleted: bool = False
    ) -> FieldDef:
        """The field ``name`` of ``collection``, or a 404 naming it."""
        found = collection.field(name)
        if found is None or (found.is_deleted and not include_deleted):
            raise NotFound(
                f"field {name!r} not found in {collection.name!r}",
                code="field_not_found",
                field="field",
            )
        return found


class DdlOperation(ABC):
    """Base class of schema operations.

    Class attributes: ``name`` (the op name in ``/schema/apply``; unique across plugins),
    ``label`` (for the UI and history), ``Args`` (pydantic model of the arguments),
    ``admin_only`` (only admins may apply it, not keys with ``schema:write``).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    admin_only: ClassVar[bool] = False

    def __init__(self, args: BaseModel, context: OpContext) -> None:
        self.args = args
        self.context = context

    @classmethod
    def lock_names(cls, args: BaseModel) -> list[str]:
        """Collection names to lock exclusively (the project is always locked shared).

        Decided from the arguments alone, before the catalog is read. The default is the
        ``collection`` argument, else ``name``; ops touching several collections (renames,
        relations) return all of them, old and new names alike.
        """
        for attribute in ("collection", "name"):
            value = getattr(args, attribute, None)
            if isinstance(value, str):
                return [value]
        return []

    def target(self) -> tuple[str, str]:
        """``(target_type, target)`` for the audit log, e.g. ``("field", "orders.total")``."""
        names = self.lock_names(self.args)
        return "collection", ",".join(names) or self.context.catalog.project.id

    def before(self) -> Any:
        """The state this op changes, as JSON for the audit log (``None``: nothing before)."""
        return None

    @abstractmethod
    def plan(self) -> Plan:
        """Validate against ``self.context.catalog`` and return the plan.

        Raise :mod:`kernel.errors` exceptions (422 for bad arguments, 404 for unknown
        names, 409 for clashes). Must not touch the database.
        """

    def changes(self) -> list[SchemaChange]:
        """What this op does to existing collections and fields, known after ``plan()``.

        Renames make every reference holder rewrite what names the old name, in the op's
        transaction; drops, purges and type changes make them list their dependents
        (refused or warned about, see :mod:`kernel.references`). The default: nothing.
        """
        return []

    async def preflight(self, inspector: SchemaInspector) -> None:
        """Checks that need the database (dependents of a column to purge), run after
        ``plan()`` in preview and, inside the locks, in apply. Raise to refuse."""

    async def concurrent_steps(self, inspector: SchemaInspector) -> list[ConcurrentStep]:
        """Steps to run before the transaction, outside it (see the module's docstring),
        decided after ``plan()`` and ``preflight()`` from what the database says (a table's
        size). A preview lists their SQL first in its ``ddl``. Read only. Default: none."""
        return []

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        """Read-only facts for the preview: rows affected, estimated duration, dependents."""
        return {}

    def refuse(self, impact: dict[str, Any]) -> None:
        """Raise to refuse applying, given what :meth:`impact` found (existing rows that
        break a new constraint). Called in apply only, inside the locks: a preview shows
        the same facts instead of refusing. The default accepts."""

    async def migrate_data(self, conn: AsyncConnection) -> None:
        """Move or convert data after the DDL steps and before the catalog writes, in the
        same transaction (the copy step of a type-change wizard). The default does nothing."""

    @abstractmethod
    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        """Write the catalog rows for the change (after its DDL ran, same transaction) and
        return the op's result as JSON."""
