"""Compile a bound expression into a SQLAlchemy condition with bind parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from kernel.catalog.model import FieldDef
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
from kernel.expr.parser import ExpressionError
from kernel.statements import Params


def to_sql(
    bound: Bound, column: Callable[[FieldDef], ColumnElement[Any]], params: Params
) -> ColumnElement[bool]:
    """The condition for ``bound``; ``column`` maps a field to its table column."""
    if isinstance(bound, BoundAnd):
        return sa.and_(*(to_sql(item, column, params) for item in bound.items))
    if isinstance(bound, BoundOr):
        return sa.or_(*(to_sql(item, column, params) for item in bound.items))
    if isinstance(bound, BoundNot):
        # SQL's NOT NULL is NULL; the language says a comparison with a missing value is
        # false, so "not" of it is true, exactly as in Python.
        return sa.not_(sa.func.coalesce(to_sql(bound.item, column, params), sa.false()))
    if isinstance(bound, BoundConst):
        return sa.true() if bound.value else sa.false()
    return _compare(bound, column, params)


def to_fixed_sql(
    bound: Bound, column: Callable[[FieldDef], ColumnElement[Any]]
) -> ColumnElement[bool]:
    """The condition with every value inlined, for DDL (a ``CHECK`` constraint); raises
    :class:`ExpressionError` when it reads the request (``@auth``, ``@now``), which a
    constraint cannot."""
    params = Params()
    condition = to_sql(bound, column, params)
    if any(param.source is not None for param in params.by_name.values()):
        raise ExpressionError("a condition that reads the request has no fixed SQL form")
    values = {name: param.value for name, param in params.by_name.items()}

    def fill(bind: BindParameter[Any]) -> None:
        bind.value = values[bind.key]
        bind.required = False

    return visitors.cloned_traverse(condition, {}, {"bindparam": fill})


def _compare(
    bound: BoundCompare, column: Callable[[FieldDef], ColumnElement[Any]], params: Params
) -> ColumnElement[bool]:
    left = _value(bound.left, column, params)
    shape = bound.operator.shape
    if shape == "flag":
        right: Any = bound.right
    elif shape == "list" and isinstance(bound.right, ContextValue):
        right = _value(bound.right, column, params)
    elif shape == "list":
        values = [item.value for item in bound.right]
        right = params.static(values, ARRAY(left.type))
    elif shape == "pair":
        right = tuple(_value(item, column, params) for item in bound.right)
    else:
        right = _value(bound.right, column, params)
    return bound.operator.to_sql(left, right)


def _value(
    value: Any, column: Callable[[FieldDef], ColumnElement[Any]], params: Params
) -> ColumnElement[Any]:
    if isinstance(value, FieldValue):
        return column(value.field)
    if isinstance(value, ContextValue):
        return params.dynamic(value.source, value.sql_type, value.convert)
    if isinstance(value, ConstValue):
        return params.static(value.value, value.sql_type)
    raise TypeError(f"not a bound value: {value!r}")
