"""References that follow the schema: what stored things name collections and fields.

Policies, workflow conditions, webhook patterns, views, rules, relation options and any
third-party plugin's data name collections and fields. Each owner registers a
:class:`ReferenceHolder` (hook ``register_reference_holders``); the DDL engine asks every
holder, inside the schema op's locked transaction:

- on a rename, to **rewrite** its stored references (atomically with the DDL: if the op
  fails, nothing is rewritten; if a rewrite fails, the op fails);
- on a drop, a purge, a type change (and in every preview), **who depends** on what the op
  touches. A purge is refused while anything depends on what it removes; a drop is refused
  while a *blocking* dependent exists (one that would fail, not merely go quiet, while the
  field is hidden); a type change and a drop otherwise warn, listing the dependents.

An operation says what it changes through :meth:`kernel.ddl.operation.DdlOperation.changes`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.catalog.model import ProjectCatalog

if TYPE_CHECKING:
    from kernel.catalog.writer import CatalogWriter
    from kernel.surface import KernelSurface

ChangeKind = Literal["rename", "drop", "purge", "change_type"]


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One thing a schema op does to a name: a collection (``field`` ``None``) or a field.

    ``collection`` is the collection's name before the op; ``new_name`` is set for a rename
    (the collection's new name, or the field's).
    """

    kind: ChangeKind
    collection_id: int
    collection: str
    field: str | None = None
    new_name: str | None = None

    def describe(self) -> str:
        subject = self.collection if self.field is None else f"{self.collection}.{self.field}"
        if self.kind == "rename":
            return f"rename {subject} to {self.new_name}"
        return f"{self.kind.replace('_', ' ')} {subject}"


@dataclass(frozen=True, slots=True)
class Dependent:
    """Something stored that names a collection or field.

    ``kind`` is the holder's name (``policy``, ``workflow``, ``webhook``); ``name`` says
    which one (``workflow 3 'notify shipping'``); ``detail`` how it depends
    (``condition names status``). ``blocking``: it would fail, not merely go quiet, while
    the subject is dropped (a policy rule naming a hidden field).
    """

    kind: str
    name: str
    detail: str
    blocking: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "detail": self.detail,
            "blocking": self.blocking,
        }

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.detail})"


@dataclass(frozen=True, slots=True)
class ReferenceContext:
    """What a holder works with: the op's connection (inside its locked transaction; read
    only in a preview), the project's catalog as it was before the op, a catalog writer
    (``None`` in a preview) and the op's time."""

    conn: AsyncConnection
    project_id: str
    catalog: ProjectCatalog
    writer: CatalogWriter | None
    now: datetime


class ReferenceHolder(ABC):
    """Base class of the owners of stored references; one instance per process, built as
    ``Holder(tessera)``. ``name`` is the kind of thing it holds, shown to people."""

    name: ClassVar[str]

    def __init__(self, tessera: KernelSurface) -> None:
        self.tessera = tessera

    @abstractmethod
    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        """What this holder stores that names ``change``'s subject (for a rename: what
        :meth:`rewrite` will rewrite). Read only; called in previews too."""

    @abstractmethod
    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        """Rewrite stored references for the rename ``change`` on ``context.conn`` (the
        op's transaction; never commit) and return what was rewritten. Raising fails the
        whole op, which is rolled back."""
