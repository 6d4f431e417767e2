"""What views name, kept true through schema changes.

A definition names collections and fields by name: its base collection, the relation it
joins through, and the fields of its projection, filters and sort (``title`` on the base,
``customer.name`` on the joined collection; a field may be named by its column too). A
rename rewrites every stored version **in place** (the version numbers and the active
pointer do not move, so a rollback after a rename still runs); a drop, a purge or a type
change lists the views as dependents (a purge is refused while one exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from kernel import CollectionDef, Dependent, ReferenceContext, ReferenceHolder, SchemaChange
from plugins.views.tables import view_versions, views

#: ``(collection, field or None)`` a definition names, and where.
Named = tuple[tuple[str, str | None], str]


class ViewReferences(ReferenceHolder):
    name = "view"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        subject = (change.collection, change.field)
        found: dict[tuple[str, str], Dependent] = {}
        for row in await self._rows(context, lock=False):
            for named, where in DefinitionNames(row.definition, context).named():
                if named == subject and (row.name, where) not in found:
                    found[(row.name, where)] = Dependent(
                        "view", f"{row.name!r} v{row.version}", where
                    )
        return list(found.values())

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        rewritten: dict[str, Dependent] = {}
        for row in await self._rows(context, lock=True):
            definition = DefinitionNames(row.definition, context).renamed(change)
            if definition != row.definition:
                await context.conn.execute(
                    view_versions.update()
                    .where(
                        view_versions.c.view_id == row.view_id,
                        view_versions.c.version == row.version,
                    )
                    .values(definition=definition)
                )
                rewritten[row.name] = Dependent("view", repr(row.name), change.describe())
        return list(rewritten.values())

    async def _rows(self, context: ReferenceContext, *, lock: bool) -> list[Any]:
        query = (
            sa.select(
                views.c.name,
                view_versions.c.view_id,
                view_versions.c.version,
                view_versions.c.definition,
            )
            .join(view_versions, view_versions.c.view_id == views.c.id)
            .where(views.c.project_id == context.project_id)
            .order_by(views.c.name, view_versions.c.version)
        )
        if lock:
            query = query.with_for_update(of=view_versions)
        return list((await context.conn.execute(query)).all())


class DefinitionNames:
    """The names in one stored definition, resolved against the catalog before the op."""

    def __init__(self, definition: dict[str, Any], context: ReferenceContext) -> None:
        self.definition = definition
        resolved = context.catalog.resolve_collection(definition["base_collection"], context.now)
        self.base: CollectionDef | None = resolved[0] if resolved else None
        self.relation = (definition.get("join") or {}).get("relation")
        self.target: CollectionDef | None = None
        field = _field(self.base, self.relation)
        key = field.type.foreign_key() if field is not None and field.type else None
        if key is not None:
            target = context.catalog.resolve_collection(key.target, context.now)
            self.target = target[0] if target else None

    def named(self) -> Iterator[Named]:
        base = self.definition["base_collection"]
        yield (base, None), "base collection"
        if self.relation:
            yield (base, _canonical(self.base, self.relation)), "join"
            if self.target is not None:
                yield (self.target.name, None), "joined collection"
        for name, where in self._field_names():
            collection, field = self._owner(name)
            if collection is not None:
                yield (collection.name, _canonical(collection, field)), where

    def renamed(self, change: SchemaChange) -> dict[str, Any]:
        """The definition after the rename ``change`` (unchanged if it names nothing of it)."""
        definition = dict(self.definition)
        if change.field is None:
            if definition["base_collection"] == change.collection:
                definition["base_collection"] = change.new_name
            return definition

        def rename(name: str) -> str:
            collection, field = self._owner(name)
            if collection is None or collection.name != change.collection:
                return name
            new = _renamed_token(collection, field, change)
            return new if collection is self.base else f"{self.relation}.{new}"

        definition["projection"] = [rename(name) for name in definition["projection"]]
        definition["filters"] = [
            {**item, "field": rename(item["field"])} for item in definition.get("filters", [])
        ]
        if definition.get("sort"):
            definition["sort"] = _map_sort(definition["sort"], rename)
        if self.relation and self.base is not None and self.base.name == change.collection:
            new_relation = _renamed_token(self.base, self.relation, change)
            if new_relation != self.relation:
                definition = _with_relation(definition, self.relation, new_relation)
        return definition

    def _owner(self, name: str) -> tuple[CollectionDef | None, str]:
        if self.relation and name.startswith(f"{self.relation}."):
            return self.target, name.partition(".")[2]
        return self.base, name

    def _field_names(self) -> Iterator[tuple[str, str]]:
        for index, name in enumerate(self.definition["projection"]):
            yield name, f"projection[{index}]"
        for index, item in enumerate(self.definition.get("filters", [])):
            yield item["field"], f"filters[{index}]"
        for name in _sort_names(self.definition.get("sort")):
            yield name, "sort"


def _field(collection: CollectionDef | None, name: str | None) -> Any:
    if collection is None or name is None:
        return None
    return next((f for f in collection.fields if name in {f.name, f.column}), None)


def _canonical(collection: CollectionDef | None, name: str) -> str:
    """The field's name for a name that may be its column (``customer_id``)."""
    field = _field(collection, name)
    return field.name if field is not None else name


def _renamed_token(collection: CollectionDef, name: str, change: SchemaChange) -> str:
    field = _field(collection, name)
    if field is None or field.name != change.field or change.new_name is None:
        return name
    if name == field.name:
        return change.new_name
    return change.new_name + (field.type.column_suffix if field.type else "")


def _sort_names(sort: str | None) -> list[str]:
    return [part.strip().partition(":")[0] for part in (sort or "").split(",") if part.strip()]


def _map_sort(sort: str, rename: Callable[[str], str]) -> str:
    parts = []
    for part in sort.split(","):
        name, colon, direction = part.strip().partition(":")
        parts.append(f"{rename(name)}{colon}{direction}")
    return ",".join(parts)


def _with_relation(definition: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``definition`` joining through ``new`` instead of ``old`` (its ``old.x`` names too)."""

    def moved(name: str) -> str:
        return f"{new}.{name[len(old) + 1 :]}" if name.startswith(f"{old}.") else name

    definition["join"] = {**definition["join"], "relation": new}
    definition["projection"] = [moved(name) for name in definition["projection"]]
    definition["filters"] = [
        {**item, "field": moved(item["field"])} for item in definition.get("filters", [])
    ]
    if definition.get("sort"):
        definition["sort"] = _map_sort(definition["sort"], moved)
    return definition
