"""Relation options name collections and fields: the target, its display field.

The holder keeps them true through renames (in the op's transaction) and reports relation
fields as dependents: a collection that live relation fields of other live collections
link to cannot be dropped (blocking), and not purged while any relation field, dropped or not,
still links to it (its foreign key would dangle); a dropped or purged display field is
reported (the admin falls back to the id).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kernel import (
    CollectionDef,
    Dependent,
    FieldDef,
    ProjectCatalog,
    ReferenceContext,
    ReferenceHolder,
    SchemaChange,
)

TYPE_NAME = "relation"


def relation_fields(catalog: ProjectCatalog) -> Iterator[tuple[CollectionDef, FieldDef]]:
    """Every relation field of the project, in soft-dropped collections and fields too
    (their foreign keys still exist, and they may be restored)."""
    for collection in catalog.collections.values():
        for field in collection.fields:
            if field.type_name == TYPE_NAME:
                yield collection, field


class RelationReferences(ReferenceHolder):
    name = "relation"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        found = []
        for collection, field in _naming(context.catalog, change):
            subject = f"{collection.name}.{field.name}"
            if change.field is not None:
                found.append(Dependent("relation", subject, f"shows {change.field}"))
            elif change.kind == "rename":
                found.append(Dependent("relation", subject, f"links to {change.collection}"))
            elif collection.id != change.collection_id:  # a self-relation goes with it
                found.append(
                    Dependent(
                        "relation",
                        subject,
                        f"links to {change.collection}: drop that field first",
                        blocking=not (field.is_deleted or collection.is_deleted),
                    )
                )
        return found

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        if context.writer is None or change.new_name is None:
            return []
        key = "target" if change.field is None else "display_field"
        rewritten = []
        for collection, field in _naming(context.catalog, change):
            options: dict[str, Any] = {**field.options, key: change.new_name}
            await context.writer.update_field(field.id, options=options)
            subject = f"{collection.name}.{field.name}"
            rewritten.append(Dependent("relation", subject, change.describe()))
        return rewritten


def _naming(
    catalog: ProjectCatalog, change: SchemaChange
) -> Iterator[tuple[CollectionDef, FieldDef]]:
    """Relation fields whose options name ``change``'s subject: the target collection, or
    (for a field change) the target's display field."""
    for collection, field in relation_fields(catalog):
        options = field.options
        if options.get("target") != change.collection:
            continue
        if change.field is None or options.get("display_field") == change.field:
            yield collection, field
