"""The plugin ``operators.core``: eq ne in contains gt lt gte lte between is_null.

SQL and Python agree on nulls: a comparison with a missing value is false, except ``ne``,
which treats null as a value (``status != 'paid'`` includes records with no status), and
``is_null``. ``contains`` is a case-insensitive substring test.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from kernel import Operator, PluginInfo, hookimpl


class Eq(Operator):
    name = "eq"
    label = "equals"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left == right

    def evaluate(self, left: Any, right: Any) -> bool:
        return left is not None and right is not None and left == right


class Ne(Operator):
    name = "ne"
    label = "is not"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left.is_distinct_from(right)

    def evaluate(self, left: Any, right: Any) -> bool:
        return left != right


class _Ordering(Operator):
    def evaluate(self, left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        try:
            return self.holds(left, right)
        except TypeError:
            return False

    @abstractmethod
    def holds(self, left: Any, right: Any) -> bool:
        """The comparison on two non-null values."""


class Gt(_Ordering):
    name = "gt"
    label = "greater than"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left > right

    def holds(self, left: Any, right: Any) -> bool:
        return left > right


class Lt(_Ordering):
    name = "lt"
    label = "less than"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left < right

    def holds(self, left: Any, right: Any) -> bool:
        return left < right


class Gte(_Ordering):
    name = "gte"
    label = "at least"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left >= right

    def holds(self, left: Any, right: Any) -> bool:
        return left >= right


class Lte(_Ordering):
    name = "lte"
    label = "at most"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left <= right

    def holds(self, left: Any, right: Any) -> bool:
        return left <= right


class In(Operator):
    name = "in"
    label = "is one of"
    shape = "list"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left == sa.any_(right)

    def evaluate(self, left: Any, right: Any) -> bool:
        return left is not None and left in right


class Contains(Operator):
    name = "contains"
    label = "contains"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        # strpos needs no LIKE escaping, so % and _ in the value are plain characters.
        return sa.func.strpos(sa.func.lower(left), sa.func.lower(right)) > 0

    def evaluate(self, left: Any, right: Any) -> bool:
        if left is None or right is None:
            return False
        return str(right).lower() in str(left).lower()


class Between(Operator):
    name = "between"
    label = "between"
    shape = "pair"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        low, high = right
        return left.between(low, high)

    def evaluate(self, left: Any, right: Any) -> bool:
        low, high = right
        if left is None or low is None or high is None:
            return False
        try:
            return low <= left <= high
        except TypeError:
            return False


class IsNull(Operator):
    name = "is_null"
    label = "is empty"
    shape = "flag"

    def to_sql(self, left: ColumnElement[Any], right: Any) -> ColumnElement[bool]:
        return left.is_(None) if right else left.is_not(None)

    def evaluate(self, left: Any, right: Any) -> bool:
        return (left is None) == bool(right)


CORE_OPERATORS: list[type[Operator]] = [Eq, Ne, In, Contains, Gt, Lt, Gte, Lte, Between, IsNull]


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(description="Core operators: " + " ".join(o.name for o in CORE_OPERATORS))


@hookimpl
def register_operators() -> list[type[Operator]]:
    return list(CORE_OPERATORS)
