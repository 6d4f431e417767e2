"""The expression language: ``status = 'paid' and (amount > 100 or @auth.role = 'admin')``.

Parse text with :func:`parse`, bind it to a collection with :class:`Binder`, then compile
the bound tree to SQL (:func:`to_sql`) or evaluate it in Python (:func:`evaluate`).
"""

from kernel.expr.ast import (
    And,
    Compare,
    FieldRef,
    ListValue,
    Literal,
    Node,
    Placeholder,
    context_names,
    field_names,
    rename_field,
)
from kernel.expr.bind import Binder, Bound, supports
from kernel.expr.evaluate import evaluate
from kernel.expr.parser import ExpressionError, parse, to_text
from kernel.expr.sql import to_fixed_sql, to_sql

__all__ = [
    "And",
    "Binder",
    "Bound",
    "Compare",
    "ExpressionError",
    "FieldRef",
    "ListValue",
    "Literal",
    "Node",
    "Placeholder",
    "context_names",
    "evaluate",
    "field_names",
    "parse",
    "rename_field",
    "supports",
    "to_fixed_sql",
    "to_sql",
    "to_text",
]
