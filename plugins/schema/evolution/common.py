"""What the evolution operations share: strict arguments, alias expiry, field lookups."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from kernel import SYSTEM_COLUMNS, CollectionDef, Conflict, FieldDef, OpContext


class StrictArgs(BaseModel):
    """Arguments that refuse unknown keys (a typo is a 422, not silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class CollectionArgs(StrictArgs):
    collection: str


class FieldArgs(StrictArgs):
    collection: str
    field: str


def expiry(context: OpContext, grace_days: int | None) -> datetime:
    """When an alias made now expires: ``grace_days``, else the project's default."""
    days = (
        grace_days if grace_days is not None else context.catalog.project.settings.alias_grace_days
    )
    return context.now + timedelta(days=days)


def derived_display_name(name: str) -> str:
    return name.replace("_", " ").capitalize()


def live_field(context: OpContext, collection: CollectionDef, name: str) -> FieldDef:
    """The live field ``name`` whose type plugin is enabled (404 / 409 otherwise)."""
    field = context.field(collection, name)
    if field.type is None:
        raise Conflict(
            f"field {name!r} has type {field.type_name!r}, whose plugin is not enabled",
            code="type_unavailable",
            field="field",
        )
    return field


def free_field_name(collection: CollectionDef, wanted: str) -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3`` ... whichever no field or column uses."""
    taken = {f.name for f in collection.fields} | {f.column for f in collection.fields}
    candidate, counter = wanted[:60], 2
    while candidate in taken or candidate in SYSTEM_COLUMNS:
        candidate = f"{wanted[:57]}_{counter}"
        counter += 1
    return candidate
