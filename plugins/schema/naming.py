"""Name checks shared by the schema operations: is a collection or field name free?"""

from __future__ import annotations

from kernel import SYSTEM_COLUMNS, CollectionDef, Conflict, OpContext


def check_collection_name_free(context: OpContext, name: str, field: str = "name") -> None:
    """409 when ``name`` is taken by a collection (live or dropped) or a live alias."""
    existing = context.catalog.collections.get(name)
    if existing is not None and not existing.is_deleted:
        raise Conflict(f"collection {name!r} already exists", code="duplicate", field=field)
    if existing is not None:
        raise Conflict(
            f"a dropped collection named {name!r} still exists; restore or purge it first",
            code="name_taken",
            field=field,
        )
    alias = context.catalog.live_collection_aliases(context.now).get(name)
    if alias is not None:
        target, entry = alias
        raise Conflict(
            f"{name!r} is an old name of {target.name!r} until {entry.expires_at:%Y-%m-%d}; "
            "retire that alias first",
            code="alias_name",
            field=field,
        )


def check_field_name_free(
    context: OpContext,
    collection: CollectionDef,
    name: str,
    column: str,
    *,
    field: str,
    field_id: int | None = None,
) -> None:
    """409 (naming ``field``) when ``name`` or ``column`` is taken in ``collection`` by
    anything but the field ``field_id`` itself (renaming a field back to an old name of its
    own is fine)."""
    existing = collection.field(name)
    if existing is not None and existing.id != field_id:
        reason = "already exists" if not existing.is_deleted else "was dropped; restore or purge it"
        raise Conflict(f"field {name!r} {reason}", code="duplicate", field=field)
    alias = collection.live_field_aliases(context.now).get(name)
    if alias is not None and alias[0].id != field_id:
        raise Conflict(
            f"{name!r} is an old name of {alias[0].name!r}; retire that alias first",
            code="alias_name",
            field=field,
        )
    taken = {f.column for f in collection.fields if f.id != field_id} | set(SYSTEM_COLUMNS)
    if column in taken:
        raise Conflict(
            f"column {column!r} is already used in {collection.name!r}",
            code="duplicate",
            field=field,
        )
