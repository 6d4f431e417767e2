"""Workflow conditions: the expression language, evaluated on the event's record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kernel import CollectionDef, FieldValueError, Registry, queryable_fields
from kernel.expr import Binder, Bound, evaluate, parse


def bind_condition(text: str, collection: CollectionDef, operators: Registry) -> Bound:
    """Parse and bind; raises ``ExpressionError`` naming what is wrong."""
    fields = queryable_fields(collection, datetime.now(UTC))
    return Binder(fields, operators).bind(parse(text))


def stored_row(collection: CollectionDef, image: dict[str, Any] | None) -> dict[str, Any]:
    """The event's JSON row image with values as the columns store them (dates as dates)."""
    if not image:
        return {}
    row = dict(image)
    for field in collection.live_fields.values():
        value = row.get(field.column)
        if value is not None:
            try:
                row[field.column] = field.type.coerce(value)
            except FieldValueError:
                row[field.column] = None
    for system in ("created_at", "updated_at"):
        if isinstance(row.get(system), str):
            row[system] = datetime.fromisoformat(row[system])
    return row


def condition_holds(bound: Bound, collection: CollectionDef, image: dict[str, Any] | None) -> bool:
    return evaluate(bound, stored_row(collection, image), {"now": datetime.now(UTC)})
