"""The visual condition builder's server side, for the admin's pages and plugins' panels alike.

A condition (``status = 'paid' and amount > 100``) shows as rows of field, operator and
value joined by "all" (and) or "any" (or). The browser half (admin.js,
``[data-condition-builder]``) draws the rows and writes the expression into the text box the
builder sits next to; this module gives it

- :func:`condition_fields`: per field, its label, the operators its type supports that the
  language writes, whether its values are written quoted, and the request values
  (``@auth.id``, ``@auth.role``, ``@now``) it may be compared with;
- :func:`condition_rows`: an existing expression read back into rows, or None when rows
  cannot say it exactly (nested groups, ``not``, a field compared with a field ...): the text
  box ("advanced") then stays the only editor;
- :func:`condition_text`: rows written as the expression, exactly as the browser writes it;
- :func:`condition_builder_html`: the builder's markup for one text box.

The text box always holds the truth and is what a form posts; the rows only write into it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from kernel.catalog.model import CollectionDef, FieldDef
from kernel.catalog.system import queryable_fields
from kernel.expr import ExpressionError, parse, supports, to_text
from kernel.expr.ast import And, AuthRef, Compare, FieldRef, ListValue, Literal, Now, Or
from kernel.fields import FieldValueError
from kernel.operators import Operator
from kernel.registry import Registry

#: Operators the expression language writes, and so the only ones the builder offers.
WRITABLE = ("eq", "ne", "gt", "lt", "gte", "lte", "in", "contains", "between", "is_null")

#: The request values a builder may offer, each with a sample a field type must accept for
#: the value to be offered on a field of that type.
CONTEXT_VALUES: dict[str, Any] = {
    "@auth.id": 1,
    "@auth.role": "staff",
    "@now": datetime(2000, 1, 1, tzinfo=UTC),
}

_CONTEXT = re.compile(r"@(auth\.[a-z_]+|now)")
_BARE = re.compile(r"-?[0-9]+(\.[0-9]+)?|true|false|null")

Menu = dict[str, dict[str, Any]]
Rows = dict[str, Any]


def _accepts(field: FieldDef, sample: Any) -> bool:
    try:
        field.type.coerce(sample)
    except (FieldValueError, TypeError, ValueError):
        return False
    return True


def _suggestions(field: FieldDef, context_values: list[str]) -> list[str]:
    flags = ["true", "false"] if _accepts(field, True) and not _accepts(field, "text") else []
    return flags + [name for name in context_values if _accepts(field, CONTEXT_VALUES[name])]


def condition_fields(
    fields: Iterable[FieldDef],
    operators: Registry[Operator],
    context_values: Iterable[str] = (),
) -> Menu:
    """The builder's menu for ``fields``: per field name ``{label, type, operators, quoted,
    values}``.

    ``operators`` are those the field's type supports that the language writes, in
    :data:`WRITABLE` order, with ``not_null`` after ``is_null``; ``quoted`` says values are
    always written as text (the type takes any text); ``values`` are the values the value box
    suggests: ``true`` and ``false`` for a type that takes booleans, and those of
    ``context_values`` (names in :data:`CONTEXT_VALUES`) the type takes — pass only those
    the condition's evaluator knows (a rule judges the record alone: none; a workflow:
    ``@now``; a policy: all three).
    """
    wanted = [name for name in context_values if name in CONTEXT_VALUES]
    menu: Menu = {}
    for field in fields:
        offered = [
            name
            for name in WRITABLE
            if (operator := operators.get(name)) is not None
            and supports(type(field.type), operator)
        ]
        if "is_null" in offered:
            offered.append("not_null")
        menu[field.name] = {
            "label": field.display_name,
            "type": field.type_name,
            "operators": offered,
            "quoted": _accepts(field, "text"),
            "values": _suggestions(field, wanted) if set(offered) - {"is_null", "not_null"} else [],
        }
    return menu


def collection_condition_fields(
    collection: CollectionDef,
    operators: Registry[Operator],
    context_values: Iterable[str] = (),
) -> Menu:
    """:func:`condition_fields` of a collection's system columns and live fields (each once,
    by its own name): what a condition on its records may name."""
    names = queryable_fields(collection, datetime.now(UTC))
    fields = [field for name, field in names.items() if field.name == name]
    return condition_fields(fields, operators, context_values)


def _value_text(node: Any) -> str | None:
    """A value as the builder's input shows it (strings bare); None for a field name."""
    if isinstance(node, AuthRef):
        return f"@auth.{node.attribute}"
    if isinstance(node, Now):
        return "@now"
    if not isinstance(node, Literal):
        return None
    value = node.value
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _row(node: Any, menu: Menu) -> dict[str, str] | None:
    if not isinstance(node, Compare) or not isinstance(node.left, FieldRef):
        return None
    entry = menu.get(node.left.name)
    if entry is None:
        return None
    if node.operator == "is_null":
        op = "is_null" if node.right.value else "not_null"
        if op not in entry["operators"]:
            return None
        return {"field": node.left.name, "op": op, "value": ""}
    if node.operator not in entry["operators"]:
        return None
    if isinstance(node.right, ListValue):
        items = [_value_text(item) for item in node.right.items]
        if any(item is None for item in items):
            return None
        return {"field": node.left.name, "op": node.operator, "value": ", ".join(items)}
    value = _value_text(node.right)
    if value is None:
        return None
    return {"field": node.left.name, "op": node.operator, "value": value}


def condition_rows(text: str | None, menu: Menu) -> Rows | None:
    """``{"join": "and" | "or", "rows": [{field, op, value}]}`` for a condition the builder
    can show with ``menu`` (``{"join": "and", "rows": []}`` for an empty one), or None:
    unparsable, nested, a field or operator the menu lacks, or rows that would not write
    the same condition back (a comma inside a list item, a quoted number ...)."""
    if not text or not text.strip():
        return {"join": "and", "rows": []}
    try:
        node = parse(text)
    except ExpressionError:
        return None
    join = "or" if isinstance(node, Or) else "and"
    items = node.items if isinstance(node, And | Or) else (node,)
    rows = [_row(item, menu) for item in items]
    if any(row is None for row in rows):
        return None
    condition = {"join": join, "rows": rows}
    try:
        same = parse(condition_text(condition, menu)) == node
    except ExpressionError:
        return None
    return condition if same else None


def _literal(raw: str, quoted: bool) -> Any:
    """A value typed in a row as a syntax-tree value, as admin.js's ``literal`` reads it."""
    value = raw.strip()
    if _CONTEXT.fullmatch(value):
        return AuthRef(value[6:]) if value.startswith("@auth.") else Now()
    if not quoted and _BARE.fullmatch(value):
        if value in {"true", "false", "null"}:
            return Literal({"true": True, "false": False, "null": None}[value])
        return Literal(float(value) if "." in value else int(value))
    return Literal(value)


def _comparison(row: Mapping[str, str], entry: Mapping[str, Any]) -> Compare:
    field, op, raw = FieldRef(row["field"]), row["op"], row.get("value", "")
    quoted = entry["quoted"]
    if op in {"is_null", "not_null"}:
        return Compare("is_null", field, Literal(op == "is_null"))
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if op == "between":  # as the browser: the first two parts, a missing one empty
        parts = [*parts, "", ""][:2]
    if op in {"in", "between"}:
        return Compare(op, field, ListValue(tuple(_literal(part, quoted) for part in parts)))
    if op == "contains":
        return Compare(op, field, _literal(raw, True))
    return Compare(op, field, _literal(raw, quoted))


def condition_text(condition: Rows, menu: Menu) -> str:
    """The expression ``condition``'s rows say (rows naming no field of ``menu`` are
    skipped, as in the browser); ``""`` for none."""
    compares = [
        _comparison(row, menu[row["field"]]) for row in condition["rows"] if row["field"] in menu
    ]
    if not compares:
        return ""
    node = (
        compares[0]
        if len(compares) == 1
        else (Or if condition["join"] == "or" else And)(tuple(compares))
    )
    return to_text(node)


def condition_builder_html(
    target_id: str,
    text: str | None,
    menus: Mapping[str, Menu],
    *,
    follow: str | None = None,
    chosen: str | None = None,
) -> str:
    """The builder for the text box ``id=target_id`` holding ``text``.

    ``menus`` maps a collection name to its :func:`condition_fields` menu; ``text`` is read
    back into rows with the menu of ``chosen`` (default: the first). Without ``follow`` the
    builder offers that collection's fields. With ``follow``, the id of a ``<select>`` whose
    option values are collection names, it offers the fields of the collection chosen there
    and starts over when the choice changes (select ``chosen`` initially). Put the markup
    next to the text box, inside the same form; the page must load the admin's script
    (every admin page and panel does); without it the text box alone still works. With no
    menus at all (no collection to name) there are no rows to offer: ``""``.
    """
    if not menus:
        return ""
    chosen = chosen if chosen in menus else next(iter(menus))
    rows = condition_rows(text, menus[chosen])
    attributes = {
        "class": "condition-builder stack",
        "data-condition-builder": "",
        "data-target": target_id,
        "data-rows": orjson.dumps(rows).decode(),
        "data-menus": orjson.dumps(menus).decode(),
        "data-chosen": chosen,
    }
    if follow is not None:
        attributes["data-follow"] = follow
    written = " ".join(f'{name}="{html.escape(value)}"' for name, value in attributes.items())
    return f"<div {written}></div>"
