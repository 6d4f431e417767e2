"""The field names a record rule holds (``unique``, ``require`` and its conditions), and
the same rule with one of them renamed — for whoever moves a field's name: a rename
(plugin ``rules.core``'s reference holder), a swap (plugin ``schema.core``)."""

from __future__ import annotations

from typing import Any

from kernel.catalog.model import RecordRuleDef
from kernel.expr import ExpressionError, field_names, parse, rename_field, to_text


def fields_in_condition(text: str | None) -> set[str]:
    """The fields condition ``text`` names (none for an empty or unreadable one)."""
    if not text:
        return set()
    try:
        return field_names(parse(text))
    except ExpressionError:
        return set()


def record_rule_definition(rule: RecordRuleDef) -> dict[str, Any]:
    """``rule`` as the catalog stores it (``record_rules.definition``)."""
    if rule.unique:
        return {"unique": list(rule.unique), "index": rule.index}
    definition: dict[str, Any] = {"when": rule.when, "require": list(rule.require)}
    if rule.check is not None:
        definition["check"] = rule.check
    return definition


def renamed_record_rule(rule: RecordRuleDef, old: str, new: str) -> dict[str, Any]:
    """:func:`record_rule_definition` of ``rule`` with field ``old`` named ``new``."""

    def follow(names: tuple[str, ...]) -> list[str]:
        return [new if name == old else name for name in names]

    if rule.unique:
        return {"unique": follow(rule.unique), "index": rule.index}
    definition: dict[str, Any] = {
        "when": _renamed_condition(rule.when, old, new),
        "require": follow(rule.require),
    }
    if rule.check is not None:
        definition["check"] = _renamed_condition(rule.check, old, new)
    return definition


def _renamed_condition(text: str | None, old: str, new: str) -> str | None:
    if not text or old not in fields_in_condition(text):
        return text
    return to_text(rename_field(parse(text), old, new))
