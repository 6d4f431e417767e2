"""Evaluate a bound expression on a Python row (a create's candidate row, an event image)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.expr.bind import (
    Bound,
    BoundAnd,
    BoundCompare,
    BoundConst,
    BoundNot,
    BoundOr,
    ConstValue,
    ContextValue,
    FieldValue,
)


def evaluate(bound: Bound, row: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Whether ``row`` (column name → value as stored) satisfies ``bound`` in ``context``
    (``auth.id``, ``auth.role`` ..., ``now``). Agrees with the SQL compilation."""
    if isinstance(bound, BoundAnd):
        return all(evaluate(item, row, context) for item in bound.items)
    if isinstance(bound, BoundOr):
        return any(evaluate(item, row, context) for item in bound.items)
    if isinstance(bound, BoundNot):
        return not evaluate(bound.item, row, context)
    if isinstance(bound, BoundConst):
        return bound.value
    return _compare(bound, row, context)


def _compare(bound: BoundCompare, row: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    left = _value(bound.left, row, context)
    right = bound.right
    if bound.operator.shape == "flag":
        return bound.operator.evaluate(left, right)
    if isinstance(right, list):
        return bound.operator.evaluate(left, [_value(item, row, context) for item in right])
    return bound.operator.evaluate(left, _value(right, row, context))


def _value(value: Any, row: Mapping[str, Any], context: Mapping[str, Any]) -> Any:
    if isinstance(value, FieldValue):
        return row.get(value.field.column)
    if isinstance(value, ContextValue):
        raw = context.get(value.source)
        if raw is None or value.convert is None:
            return raw
        return value.convert(raw)
    if isinstance(value, ConstValue):
        return value.value
    raise TypeError(f"not a bound value: {value!r}")
