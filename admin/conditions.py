"""The visual condition builder's server side: an expression read back into rows.

The builder (admin.js, ``[data-condition-builder]``) shows a condition as rows of field,
operator and value joined by "all" (and) or "any" (or), and writes the expression text as
the rows change. What it cannot show as rows — nested groups, ``not``, a field compared
with a field — stays in the text box ("advanced"), which always holds the truth.
"""

from __future__ import annotations

from typing import Any

from kernel import FieldDef, Operator, Registry
from kernel.expr import ExpressionError, parse, supports

#: Operators the expression language writes, and so the only ones the builder offers.
WRITABLE = ("eq", "ne", "gt", "lt", "gte", "lte", "in", "contains", "between", "is_null")


def _value_text(node: Any) -> str | None:
    """A value as the builder's input shows it (strings bare); None for a field name."""
    kind = type(node).__name__
    if kind == "Literal":
        value = node.value
        if isinstance(value, str):
            return value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(value)
    if kind == "AuthRef":
        return f"@auth.{node.attribute}"
    if kind == "Now":
        return "@now"
    return None


def _row(node: Any) -> dict[str, str] | None:
    if type(node).__name__ != "Compare" or type(node.left).__name__ != "FieldRef":
        return None
    field = node.left.name
    if node.operator == "is_null":
        return {"field": field, "op": "is_null", "value": "true" if node.right.value else "false"}
    if node.operator in {"in", "between"}:
        items = [_value_text(item) for item in node.right.items]
        if any(item is None for item in items):
            return None
        return {"field": field, "op": node.operator, "value": ", ".join(items)}
    value = _value_text(node.right)
    if value is None or node.operator not in WRITABLE:
        return None
    return {"field": field, "op": node.operator, "value": value}


def condition_rows(text: str | None) -> dict[str, Any] | None:
    """``{"join": "and" | "or", "rows": [{field, op, value}]}`` for a condition the
    builder can show; ``{"join": "and", "rows": []}`` for an empty one; None otherwise."""
    if not text or not text.strip():
        return {"join": "and", "rows": []}
    try:
        node = parse(text)
    except ExpressionError:
        return None
    kind = type(node).__name__
    join = "or" if kind == "Or" else "and"
    items = node.items if kind in {"And", "Or"} else (node,)
    rows = [_row(item) for item in items]
    if any(row is None for row in rows):
        return None
    return {"join": join, "rows": rows}


def condition_menu(operators: Registry[Operator], fields: list[FieldDef]) -> dict[str, Any]:
    """Per field: its label, its type and the operators the builder may offer for it
    (those its type supports that the language writes; ``not_null`` with ``is_null``)."""
    menu: dict[str, Any] = {}
    for field in fields:
        field_type = type(field.type)
        offered = [
            name
            for name in WRITABLE
            if (operator := operators.get(name)) is not None and supports(field_type, operator)
        ]
        if "is_null" in offered:
            offered.append("not_null")
        menu[field.name] = {
            "label": field.display_name,
            "type": field.type_name,
            "operators": offered,
        }
    return menu
