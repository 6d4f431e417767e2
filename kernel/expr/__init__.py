"""The expression language: ``status = 'paid' and (amount > 100 or @auth.role = 'admin')``.

Parse text with :func:`parse`, bind it to a collection with :class:`Binder`, then compile
the bound tree to SQL (:func:`to_sql`) or evaluate it in Python (:func:`evaluate`).
"""

from kernel.expr.bind import Binder, Bound, supports
from kernel.expr.evaluate import evaluate
from kernel.expr.parser import ExpressionError, parse, to_text
from kernel.expr.sql import to_sql

__all__ = [
    "Binder",
    "Bound",
    "ExpressionError",
    "evaluate",
    "parse",
    "supports",
    "to_sql",
    "to_text",
]
