"""Bind a parsed expression to a collection: resolve fields and operators, type the values.

Binding is where an expression is validated against the catalog: unknown fields, operators
a field's type does not support and literals that do not fit their field are rejected with
an :class:`ExpressionError`. The bound tree is what the SQL compiler and the Python
evaluator share, so both see the same coerced values and the same operators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

from kernel.catalog.model import FieldDef
from kernel.expr.ast import (
    And,
    AuthRef,
    Compare,
    FieldRef,
    ListValue,
    Literal,
    Node,
    Not,
    Now,
    Or,
    Placeholder,
)
from kernel.expr.parser import ExpressionError
from kernel.fields import FieldType, FieldValueError
from kernel.operators import Operator
from kernel.registry import Registry

#: The SQL type of each ``@auth`` attribute and how a context value is normalised.
AUTH_TYPES: dict[str, TypeEngine[Any]] = {
    "id": sa.BigInteger(),
    "role": sa.Text(),
    "email": sa.Text(),
    "kind": sa.Text(),
    "project": sa.Text(),
}
_MIRRORED = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "gte": "lte", "lte": "gte"}


@dataclass(frozen=True, slots=True)
class FieldValue:
    field: FieldDef


@dataclass(frozen=True, slots=True)
class ContextValue:
    """A value read from the request context: ``auth.<attribute>`` or ``now``."""

    source: str
    sql_type: TypeEngine[Any]
    convert: Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class ConstValue:
    value: Any
    sql_type: TypeEngine[Any]


BoundValue = FieldValue | ContextValue | ConstValue


@dataclass(frozen=True, slots=True)
class BoundCompare:
    """``left <operator> right``. ``right`` is a bound value for the scalar shape, a list of
    bound values for pair (and for a literal list), one array-typed context value for a list
    placeholder, and a ``bool`` for the flag shape."""

    operator: Operator
    left: BoundValue
    right: Any


@dataclass(frozen=True, slots=True)
class BoundAnd:
    items: tuple[Bound, ...]


@dataclass(frozen=True, slots=True)
class BoundOr:
    items: tuple[Bound, ...]


@dataclass(frozen=True, slots=True)
class BoundNot:
    item: Bound


@dataclass(frozen=True, slots=True)
class BoundConst:
    value: bool


Bound = BoundCompare | BoundAnd | BoundOr | BoundNot | BoundConst


def supports(field_type: type[FieldType], operator: type[Operator]) -> bool:
    """Whether ``operator`` applies to fields of ``field_type`` (either side may claim it)."""
    return operator.name in field_type.operators or field_type.name in operator.field_types


def field_converter(field: FieldDef) -> Callable[[Any], Any]:
    """Adapt a context value (``@auth.id``, ``@now``) to ``field``'s column; ``None`` when it
    cannot be adapted, so the comparison matches nothing rather than failing the request."""
    field_type = field.type

    def convert(value: Any) -> Any:
        try:
            return field_type.coerce(value)
        except FieldValueError:
            try:
                return field_type.parse_text(str(value))
            except FieldValueError:
                return None

    return convert


def coerce_constant(field: FieldDef, value: Any) -> Any:
    """A literal as ``field`` stores it, or an :class:`ExpressionError` naming both."""
    if value is None:
        return None
    try:
        return field.type.coerce(value)
    except FieldValueError as error:
        try:
            return field.type.parse_text(str(value))
        except FieldValueError:
            raise ExpressionError(
                f"{value!r} is not a valid value for field {field.name!r}: {error.message}"
            ) from None


def _python_type(value: Any) -> TypeEngine[Any]:
    if isinstance(value, bool):
        return sa.Boolean()
    if isinstance(value, int):
        return sa.BigInteger()
    if isinstance(value, float):
        return sa.Float()
    if isinstance(value, datetime):
        return sa.DateTime(timezone=True)
    return sa.Text()


class Binder:
    """Binds expressions against one collection's fields (by name, aliases included)."""

    def __init__(self, fields: Mapping[str, FieldDef], operators: Registry[Operator]) -> None:
        self.fields = fields
        self.operators = operators

    def bind(self, node: Node) -> Bound:
        if isinstance(node, And):
            return BoundAnd(tuple(self.bind(item) for item in node.items))
        if isinstance(node, Or):
            return BoundOr(tuple(self.bind(item) for item in node.items))
        if isinstance(node, Not):
            return BoundNot(self.bind(node.item))
        if isinstance(node, Literal):
            return BoundConst(bool(node.value))
        return self.compare(node)

    def field(self, name: str) -> FieldDef:
        field = self.fields.get(name)
        if field is None:
            known = ", ".join(sorted(self.fields))
            raise ExpressionError(f"unknown field {name!r} (fields: {known})")
        return field

    def operator(self, name: str) -> Operator:
        operator_class = self.operators.get(name)
        if operator_class is None:
            raise ExpressionError(f"operator {name!r} is not available")
        return operator_class()

    def compare(self, node: Compare) -> BoundCompare:
        left, right, name = node.left, node.right, node.operator
        if name in {"eq", "ne"} and isinstance(right, Literal) and right.value is None:
            # "x = null" means "x is null": SQL's "= NULL" would match nothing.
            right, name = Literal(name == "eq"), "is_null"
        if not isinstance(left, FieldRef) and isinstance(right, FieldRef) and name in _MIRRORED:
            left, right, name = right, left, _MIRRORED[name]
        operator = self.operator(name)
        field = self.field(left.name) if isinstance(left, FieldRef) else None
        if isinstance(right, FieldRef) and field is None:
            field = self.field(right.name)
        if field is not None and not supports(type(field.type), type(operator)):
            raise ExpressionError(
                f"operator {operator.name!r} does not apply to field {field.name!r} "
                f"of type {field.type_name!r}"
            )
        bound_left = self.value(left, field)
        if operator.shape == "flag":
            return BoundCompare(operator, bound_left, bool(right.value))
        if operator.shape in {"list", "pair"}:
            if isinstance(right, Placeholder) and operator.shape == "list":
                element = field.type.sql_type() if field is not None else sa.Text()
                return BoundCompare(
                    operator, bound_left, ContextValue(right.key, ARRAY(element), None)
                )
            if not isinstance(right, ListValue):
                raise ExpressionError(f"operator {operator.name!r} takes a list of values")
            if operator.shape == "pair" and len(right.items) != 2:
                raise ExpressionError(f"operator {operator.name!r} takes exactly two values")
            items = [self.value(item, field, operator) for item in right.items]
            return BoundCompare(operator, bound_left, items)
        if isinstance(right, ListValue):
            raise ExpressionError(f"operator {operator.name!r} takes a single value")
        return BoundCompare(operator, bound_left, self.value(right, field, operator))

    def value(
        self, value: Any, field: FieldDef | None, operator: Operator | None = None
    ) -> BoundValue:
        if isinstance(value, FieldRef):
            return FieldValue(self.field(value.name))
        if isinstance(value, AuthRef):
            if field is not None:
                return ContextValue(
                    f"auth.{value.attribute}", field.type.sql_type(), field_converter(field)
                )
            return ContextValue(f"auth.{value.attribute}", AUTH_TYPES[value.attribute], None)
        if isinstance(value, Placeholder):
            sql_type = field.type.sql_type() if field is not None else sa.Text()
            return ContextValue(value.key, sql_type, None)
        if isinstance(value, Now):
            if field is not None:
                return ContextValue("now", field.type.sql_type(), field_converter(field))
            return ContextValue("now", sa.DateTime(timezone=True), None)
        constant = self.constant(value.value, field, operator)
        sql_type = (
            field.type.sql_type()
            if field is not None and operator_keeps_type(operator)
            else _python_type(constant)
        )
        return ConstValue(constant, sql_type)

    @staticmethod
    def constant(value: Any, field: FieldDef | None, operator: Operator | None) -> Any:
        if field is None or not operator_keeps_type(operator):
            return value
        return coerce_constant(field, value)


def operator_keeps_type(operator: Operator | None) -> bool:
    """Whether the right-hand value has the field's type (not so for ``contains``: a
    substring is text whatever the field)."""
    return operator is None or operator.name != "contains"
