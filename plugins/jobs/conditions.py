"""Workflow conditions: the expression language, evaluated on the event's record."""

from __future__ import annotations

from datetime import UTC, datetime

from kernel import CollectionDef, Registry, queryable_fields
from kernel.events.reader import Event
from kernel.expr import Binder, Bound, evaluate, parse


def bind_condition(text: str, collection: CollectionDef, operators: Registry) -> Bound:
    """Parse and bind; raises ``ExpressionError`` naming what is wrong."""
    fields = queryable_fields(collection, datetime.now(UTC))
    return Binder(fields, operators).bind(parse(text))


def condition_holds(bound: Bound, collection: CollectionDef, event: Event) -> bool:
    return evaluate(bound, event.stored_row(collection), {"now": datetime.now(UTC)})
