"""Rules that go with a field through a type change.

A field's rules (and their ``CHECK`` constraints), the rules of other fields whose
condition names it, and the compound unique indexes of record rules that include it must
hold the same way once the field has its new type:

* in place (``change_field_type``), the field keeps its column: its rules are bound again
  for the new type and their ``CHECK`` constraints dropped before the conversion and
  installed again after it;
* by copy and swap (``swap_fields``), the replacement takes the field's name, and with it
  the field's rules (a rule type the replacement already has keeps the replacement's); the
  ``CHECK`` constraints and unique indexes that named the old column are rebuilt on the
  new one, and the old field, soft-dropped, keeps none.

Record rules go along too: in a swap, those naming the replacement (in ``unique``,
``require`` or a condition) follow it to the field's name; and a ``when``/``check``
condition naming the field must still hold for its new type (``status = 'paid'`` once
``status`` is an integer does not).

A rule that cannot apply to the new type (``min_length`` on an integer, that condition) is
refused with a 422 naming it, in the preview too: change or remove it first
(``set_field_rules``, ``drop_record_rule``). The
preview counts stored records that break a rebuilt constraint or collide under a rebuilt
unique index; apply is refused while any do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import partial
from typing import Any

from alembic.operations import Operations

from kernel import (
    CatalogWriter,
    CollectionDef,
    ErrorItem,
    FieldDef,
    OpContext,
    PrebuiltCheck,
    PrebuiltIndex,
    RecordRuleDef,
    ResolvedRule,
    RuleDef,
    RuleSpec,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_steps,
    compiled_condition,
    count_breaking_rows,
    drop_check_step,
    fields_in_condition,
    queryable_fields,
    record_rule_definition,
    refuse_breaking_rows,
    refuse_duplicates,
    renamed_record_rule,
    resolve_rules,
    rule_constraint_names,
    rule_field_names,
    transient_name,
)
from kernel.expr import Binder, ExpressionError, parse


def _drop_index(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_index(name, table_name=table, schema=schema)


def _create_unique(schema: str, table: str, name: str, columns: list[str], ops: Operations) -> None:
    ops.create_index(name, table, columns, unique=True, schema=schema)


def _specs(rules: tuple[RuleDef, ...] | list[RuleDef]) -> list[RuleSpec]:
    return [RuleSpec(type=rule.type_name, value=rule.value) for rule in rules]


class CarriedRules:
    """What a type change does to the rules around the field ``old``, which becomes
    ``new`` (same name; maybe another type; for a swap, ``new`` is the ``replaced`` field
    under the old name, with the column it gets). Built in ``plan()``; gives the steps to
    run before and after the change, checks stored records in ``impact``/``refuse`` and
    writes the rules."""

    def __init__(
        self,
        context: OpContext,
        collection: CollectionDef,
        old: FieldDef,
        new: FieldDef,
        replaced: FieldDef | None = None,
    ) -> None:
        self.context = context
        self.collection = collection
        self.old, self.new, self.replaced = old, new, replaced
        self.schema, self.table = context.schema, collection.table
        gone = {old.id} | ({replaced.id} if replaced else set())
        # The fields whose rules move or are bound again: the field itself, and every other
        # live field with a rule whose condition names the field (or the replacement).
        subjects = {old.name} | ({replaced.name} if replaced else set())
        self.others = [
            field
            for field in collection.live_fields.values()
            if field.id not in gone
            and any(subjects & rule_field_names(context.tessera.rule_types, r) for r in field.rules)
        ]
        self.old_constraints = rule_constraint_names([old, *self.others]) | (
            rule_constraint_names([replaced]) if replaced else set()
        )
        taken = rule_constraint_names(collection.fields) - self.old_constraints
        # Bound twice: on the columns after the change (the constraints installed, the
        # catalog) and on the columns as they are (counting stored records that break them).
        self.current = dataclasses.replace(new, column=replaced.column) if replaced else new
        self.rules = self._resolve(self._fields(new), taken)
        self.counted = self._resolve(self._fields(self.current), taken)
        self.record_rules = self._record_rules()
        # In place, PostgreSQL rebuilds the indexes on the converted column itself.
        self.uniques = [
            rule
            for rule in collection.record_rules
            if replaced is not None and rule.unique and old.name in rule.unique
        ]

    def _fields(self, new: FieldDef) -> dict[str, FieldDef]:
        """The names conditions may use once ``old`` is ``new``."""
        moved = {self.old.id} | ({self.replaced.id} if self.replaced else set())
        fields = {
            name: field
            for name, field in queryable_fields(self.collection, self.context.now).items()
            if field.id not in moved
        }
        fields[new.name] = new
        fields.setdefault(new.column, new)
        return fields

    def _carried(self) -> list[RuleDef]:
        """The new field's rules: the replacement's own, then the old field's of types
        the replacement lacks."""
        own = list(self.replaced.rules) if self.replaced else []
        kinds = {rule.type_name for rule in own}
        return own + [rule for rule in self.old.rules if rule.type_name not in kinds]

    def _resolve(
        self, fields: Mapping[str, FieldDef], taken: set[str]
    ) -> list[tuple[FieldDef, tuple[ResolvedRule, ...]]]:
        tessera = self.context.tessera
        resolved = []
        problems: list[ErrorItem] = []
        new = fields[self.new.name]
        for field, rules in [(new, self._carried()), *((f, f.rules) for f in self.others)]:
            try:
                bound = resolve_rules(
                    _specs(rules),
                    field,
                    fields,
                    tessera.rule_types,
                    tessera.operators,
                    where=f"{field.name}.rules",
                    taken=taken,
                )
            except ValidationFailed as error:
                problems += [
                    ErrorItem(
                        "rule_not_applicable",
                        f"a rule of {field.name} cannot hold after the change ({item.message});"
                        " change or remove it first (set_field_rules)",
                        item.field,
                    )
                    for item in error.items
                ]
                continue
            taken = taken | {rule.constraint for rule in bound if rule.constraint}
            resolved.append((field, bound))
        if problems:
            raise ValidationFailed(items=problems)
        return resolved

    def _record_rules(self) -> list[tuple[RecordRuleDef, dict[str, Any]]]:
        """The record rules the change rewrites, with their new definitions (a swap: the
        replacement's name becomes the field's). Raises 422 ``rule_not_applicable`` naming
        each rule whose condition on the field no longer binds to its new type, or that
        would name one field twice (it named both the field and the replacement)."""
        fields = self._fields(self.new)
        subjects = {self.old.name} | ({self.replaced.name} if self.replaced else set())
        binder = Binder(fields, self.context.tessera.operators)
        rewritten: list[tuple[RecordRuleDef, dict[str, Any]]] = []
        problems: list[ErrorItem] = []
        for rule in self.collection.record_rules:
            stored = record_rule_definition(rule)
            definition = stored
            if self.replaced is not None:
                definition = renamed_record_rule(rule, self.replaced.name, self.new.name)
            where = f"record_rules.{rule.name}"
            for key in ("unique", "require"):
                names = definition.get(key) or []
                if len(set(names)) != len(names):
                    problems.append(
                        ErrorItem(
                            "rule_not_applicable",
                            f"record rule {rule.name!r} names {self.old.name} and "
                            f"{self.replaced.name if self.replaced else ''}, which become one "
                            "field; drop it first (drop_record_rule)",
                            f"{where}.{key}",
                        )
                    )
            for key in ("when", "check"):
                text = definition.get(key)
                if not text or not subjects & fields_in_condition(getattr(rule, key)):
                    continue
                try:
                    binder.bind(parse(text))
                except ExpressionError as error:
                    problems.append(
                        ErrorItem(
                            "rule_not_applicable",
                            f"the {key} condition of record rule {rule.name!r} cannot hold "
                            f"after the change ({error}); change or remove the rule first "
                            "(drop_record_rule)",
                            f"{where}.{key}",
                        )
                    )
            if definition != stored:
                rewritten.append((rule, definition))
        if problems:
            raise ValidationFailed(items=problems)
        return rewritten

    def drop_steps(self) -> list[Step]:
        """Before the change: the constraints and indexes that name the old column."""
        steps = [
            drop_check_step(self.schema, self.table, name) for name in sorted(self.old_constraints)
        ]
        steps += [
            Step(
                f"drop unique index {rule.index} (rebuilt on the new column)",
                partial(_drop_index, self.schema, self.table, rule.index),
            )
            for rule in self.uniques
        ]
        return steps

    def create_steps(self, *, validate: bool = True) -> list[Step]:
        """After the change: the constraints and unique indexes again, on the new column;
        ``validate`` False adds the constraints ``NOT VALID`` (no scan: proven otherwise)."""
        steps = [
            step
            for _, rules in self.rules
            for step in check_steps(self.schema, self.table, rules, validate=validate)
        ]
        for rule in self.uniques:
            columns = self._unique_columns(rule, self.new)
            steps.append(
                Step(
                    f"unique index {rule.index} on {', '.join(rule.unique)}",
                    partial(_create_unique, self.schema, self.table, rule.index, columns),
                )
            )
        return steps

    def _unique_columns(self, rule: RecordRuleDef, new: FieldDef) -> list[str]:
        live = self.collection.live_fields
        return [new.column if name == new.name else live[name].column for name in rule.unique]

    def prebuilt(self) -> tuple[list[PrebuiltIndex], list[PrebuiltCheck]]:
        """What :meth:`create_steps` installs, to build before a swap's transaction instead
        (:mod:`kernel.ddl.prebuilt`): the unique indexes and the constraints,
        on the columns as they are, each under a transient name."""
        schema, table, collection_id = self.schema, self.table, self.collection.id
        checks = [
            PrebuiltCheck(
                schema,
                table,
                rule.constraint,
                transient_name(collection_id, rule.constraint, compiled_condition(now.condition)),
                now.condition,
                f"{rule.type_name} of {field.name}",
            )
            for (field, bound), (_, counted) in zip(self.rules, self.counted, strict=True)
            for rule, now in zip(bound, counted, strict=True)
            if rule.constraint is not None and rule.condition is not None
        ]
        indexes = []
        for rule in self.uniques:
            columns = self._unique_columns(rule, self.current)
            indexes.append(
                PrebuiltIndex(
                    schema,
                    table,
                    rule.index,
                    transient_name(collection_id, rule.index, ",".join(columns)),
                    columns,
                    ", ".join(rule.unique),
                )
            )
        return indexes, checks

    async def impact(self, inspector: SchemaInspector, *, proven: bool = False) -> dict[str, Any]:
        """Stored records that break a rebuilt constraint or collide under a rebuilt
        unique index (read before the change, on the columns as they are). ``proven``:
        none can — the constraints were validated and the indexes built before the
        transaction — so nothing is read."""
        rules = [rule for _, bound in self.counted for rule in bound]
        breaking = [] if proven else await count_breaking_rows(inspector, self.collection, rules)
        impact: dict[str, Any] = {
            "rules": {field.name: [r.type_name for r in bound] for field, bound in self.rules},
            "constraints": breaking,
        }
        if self.uniques and not proven:
            impact["unique"] = {
                rule.name: await inspector.duplicates(
                    self.collection,
                    dict(zip(rule.unique, self._unique_columns(rule, self.current), strict=True)),
                )
                for rule in self.uniques
            }
        return impact

    def refuse(self, impact: dict[str, Any]) -> None:
        refuse_breaking_rows(self.new.name, impact["constraints"])
        for rule in self.uniques:
            if rule.name in impact.get("unique", {}):
                refuse_duplicates(list(rule.unique), impact["unique"][rule.name])

    async def write(self, writer: CatalogWriter) -> None:
        """The rules as they now are: the new field's, the other fields', and none left on
        the old field when it was replaced."""
        for field, bound in self.rules:
            await writer.set_field_rules(field.id, [rule.definition() for rule in bound])
        if self.replaced is not None:
            await writer.set_field_rules(self.old.id, [])
        for rule, definition in self.record_rules:
            await writer.update_record_rule(rule.id, definition)
