"""What changed between two versions of a view, part by part, in words a person reads.

:func:`diff_definitions` compares two stored definitions (the JSON of ``view_versions``)
and returns one :class:`PartChange` per part that differs — description, base collection,
columns, join, filters, sort, parameters, limits — each as readable lines ("status =
\"paid\"", "customer_id (integer, required, example 1)"), with the lines only one side has.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: How a filter's operator reads; operators from other plugins read by their name.
OPERATOR_WORDS = {"eq": "=", "ne": "≠", "gt": ">", "lt": "<", "gte": "≥", "lte": "≤"}


@dataclass(frozen=True, slots=True)
class PartChange:
    """One part of a definition that differs between two versions.

    ``before`` and ``after`` are the part's readable lines in each version; ``removed`` and
    ``added`` the lines only one of them has (empty with a ``note`` when only the order
    changed).
    """

    part: str
    label: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    removed: tuple[str, ...]
    added: tuple[str, ...]
    note: str = ""


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def filter_text(spec: dict[str, Any]) -> str:
    """``status = "paid"``, ``customer = :customer_id``, ``amount between 1, 5``."""
    field, op = spec.get("field", "?"), spec.get("op", "?")
    if op == "is_null":
        return f"{field} is {'empty' if spec.get('value', True) else 'not empty'}"
    right = f":{spec['param']}" if spec.get("param") else _value(spec.get("value"))
    return f"{field} {OPERATOR_WORDS.get(op, op)} {right}"


def param_text(spec: dict[str, Any]) -> str:
    """``customer_id (integer, required, example 1)``."""
    traits = [spec.get("type", "?"), "required" if spec.get("required") else "optional"]
    for key in ("default", "example"):
        if spec.get(key) is not None:
            traits.append(f"{key} {_value(spec[key])}")
    text = f"{spec.get('name', '?')} ({', '.join(traits)})"
    return f"{text} — {spec['description']}" if spec.get("description") else text


def sort_text(sort: str | None) -> str:
    """``amount:desc,title`` → ``amount descending, then title ascending``."""
    if not sort:
        return "by id (the default)"
    keys = []
    for part in sort.split(","):
        name, _, direction = part.strip().partition(":")
        keys.append(f"{name} {'descending' if direction == 'desc' else 'ascending'}")
    return ", then ".join(keys)


def _join(definition: dict[str, Any]) -> list[str]:
    join = definition.get("join")
    joins = join if isinstance(join, list) else [join] if join else []
    return [f"through {item.get('relation')}" for item in joins] or ["no join"]


def _limit(definition: dict[str, Any]) -> list[str]:
    limit = definition.get("limit") or {}
    return [f"{limit.get('default', 25)} rows by default, at most {limit.get('max', 200)}"]


#: Each part: its key, its label, and its readable lines in a definition.
PARTS: tuple[tuple[str, str, Callable[[dict[str, Any]], list[str]]], ...] = (
    ("description", "Description", lambda d: [d.get("description") or "(none)"]),
    ("base_collection", "Base collection", lambda d: [str(d.get("base_collection"))]),
    ("projection", "Columns", lambda d: list(d.get("projection") or [])),
    ("join", "Join", _join),
    ("filters", "Filters", lambda d: [filter_text(f) for f in d.get("filters") or []]),
    ("sort", "Sort", lambda d: [sort_text(d.get("sort"))]),
    ("params", "Parameters", lambda d: [param_text(p) for p in d.get("params") or []]),
    ("limit", "Limits", _limit),
)


def diff_definitions(before: dict[str, Any], after: dict[str, Any]) -> list[PartChange]:
    """The parts that differ from ``before`` to ``after``, in the order of :data:`PARTS`."""
    changes = []
    for part, label, lines_of in PARTS:
        old, new = lines_of(before), lines_of(after)
        if old == new:
            continue
        removed = Counter(old) - Counter(new)
        added = Counter(new) - Counter(old)
        changes.append(
            PartChange(
                part=part,
                label=label,
                before=tuple(old),
                after=tuple(new),
                removed=tuple(line for line in old if removed[line]),
                added=tuple(line for line in new if added[line]),
                note="" if removed or added else "same items, another order",
            )
        )
    return changes
