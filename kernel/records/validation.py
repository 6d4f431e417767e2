"""Validation rules on the write path: every field rule and record rule of a collection,
bound once per catalog snapshot, checked on the candidate record of each write.

A create checks the record it would insert (defaults filled in); an update checks the
stored record with the patch applied. Every failing rule is reported, in a fixed order
(fields in their collection order, each field's rules in their order, then record rules
in the order they were added), so the same input always gives the same errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel.catalog.model import CollectionDef, FieldDef, ProjectCatalog, RecordRuleDef
from kernel.catalog.rules import build_rule
from kernel.errors import ErrorItem
from kernel.expr import Binder, Bound, ExpressionError, evaluate, parse
from kernel.operators import Operator
from kernel.registry import Registry
from kernel.rules import RuleDefinitionError, RuleType

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BoundRecordRule:
    """A record rule ready to check: ``when`` (``None``: always), the fields it requires
    and the condition that must hold."""

    name: str
    when: Bound | None
    require: tuple[FieldDef, ...]
    check: Bound | None
    text: str


class RecordRules:
    """The rules of one collection; falsy when it has none (writes then skip the step)."""

    def __init__(
        self,
        collection: CollectionDef,
        fields: Mapping[str, FieldDef],
        rule_types: Registry[RuleType],
        operators: Registry[Operator],
    ) -> None:
        self.collection = collection
        self.field_rules: list[tuple[FieldDef, list[RuleType]]] = []
        for field in collection.live_fields.values():
            bound = [
                rule
                for definition in field.rules
                if (rule := _field_rule(rule_types, definition, field, fields, operators))
            ]
            if bound:
                self.field_rules.append((field, bound))
        binder = Binder(fields, operators)
        self.record_rules = [
            rule
            for definition in collection.record_rules
            if not definition.unique and (rule := _record_rule(binder, definition, fields))
        ]

    def __bool__(self) -> bool:
        return bool(self.field_rules or self.record_rules)

    def json_schemas(self) -> dict[str, list[dict[str, Any]]]:
        """Column → the JSON Schema keywords of each of that field's rules
        (:meth:`kernel.rules.RuleType.json_schema`), for the project's OpenAPI document."""
        schemas: dict[str, list[dict[str, Any]]] = {}
        for field, rules in self.field_rules:
            keywords = [schema for rule in rules if (schema := rule.json_schema())]
            if keywords:
                schemas[field.column] = keywords
        return schemas

    def errors(self, record: Mapping[str, Any]) -> list[ErrorItem]:
        """Every rule ``record`` (column → value) breaks; empty when it passes them all."""
        found: list[ErrorItem] = []
        row = dict(record)
        for field, rules in self.field_rules:
            value = row.get(field.column)
            for rule in rules:
                if value is None and not rule.checks_absent:
                    continue
                violation = rule.check(value, row)
                if violation is not None:
                    found.append(ErrorItem(violation.code, violation.message, field.name))
        for rule in self.record_rules:
            if rule.when is not None and not evaluate(rule.when, row, {}):
                continue
            for field in rule.require:
                if row.get(field.column) is None:
                    found.append(
                        ErrorItem(
                            rule.name,
                            f"{field.name} is required{rule.text} (rule {rule.name})",
                            field.name,
                        )
                    )
            if rule.check is not None and not evaluate(rule.check, row, {}):
                found.append(ErrorItem(rule.name, f"the record breaks the rule {rule.name}", None))
        return found


def rules_for(
    catalog: ProjectCatalog,
    collection: CollectionDef,
    fields: Mapping[str, FieldDef],
    rule_types: Registry[RuleType],
    operators: Registry[Operator],
) -> RecordRules:
    """The collection's rules in this snapshot, bound on first use (``fields``: what
    conditions may name, as the records runtime resolves them)."""
    key = ("rules", collection.id)
    rules = catalog.runtime.get(key)
    if rules is None:
        rules = RecordRules(collection, fields, rule_types, operators)
        catalog.runtime[key] = rules
    return rules


def _field_rule(
    rule_types: Registry[RuleType],
    definition: Any,
    field: FieldDef,
    fields: Mapping[str, FieldDef],
    operators: Registry[Operator],
) -> RuleType | None:
    """A stored rule bound for checking; one that no longer builds (its plugin was
    disabled, its condition names a dropped field) is skipped with an error in the log:
    its ``CHECK`` constraint, if any, still holds."""
    try:
        return build_rule(
            rule_types, definition.type_name, definition.value, field, fields, operators
        )
    except RuleDefinitionError as error:
        log.error("rule %s on field %s is skipped: %s", definition.type_name, field.name, error)
        return None


def _record_rule(
    binder: Binder, definition: RecordRuleDef, fields: Mapping[str, FieldDef]
) -> BoundRecordRule | None:
    try:
        when = binder.bind(parse(definition.when)) if definition.when else None
        check = binder.bind(parse(definition.check)) if definition.check else None
        require = tuple(binder.field(name) for name in definition.require)
    except ExpressionError as error:
        log.error("record rule %s is skipped: %s", definition.name, error)
        return None
    text = f" when {definition.when}" if definition.when else ""
    return BoundRecordRule(definition.name, when, require, check, text)
