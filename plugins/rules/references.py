"""Rules name fields: conditions (``required_if``, a record rule's ``when`` and ``check``),
required fields and unique fields. They follow renames inside the rename's transaction,
and are listed as dependents when a field they name is dropped, purged or retyped."""

from __future__ import annotations

from collections.abc import Iterator

from kernel import (
    CollectionDef,
    Dependent,
    RecordRuleDef,
    ReferenceContext,
    ReferenceHolder,
    RuleDef,
    SchemaChange,
    fields_in_condition,
    record_rule_definition,
    renamed_record_rule,
    rule_field_names,
)


class RuleReferences(ReferenceHolder):
    """Field rules and record rules of the changed collection."""

    name = "rule"

    async def dependents(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        collection = context.catalog.collection_by_id(change.collection_id)
        if collection is None or change.field is None:
            return []
        return list(self._naming(collection, change))

    def _naming(self, collection: CollectionDef, change: SchemaChange) -> Iterator[Dependent]:
        subject = change.field
        for field in collection.fields:
            for rule in field.rules:
                if field.name == subject and change.kind == "change_type":
                    yield Dependent("rule", f"{field.name}: {rule.type_name}", "rule of the field")
                elif subject in self._rule_fields(rule):
                    yield Dependent(
                        "rule", f"{field.name}: {rule.type_name}", f"condition names {subject}"
                    )
        for record_rule in collection.record_rules:
            how = self._record_rule_naming(record_rule, subject)
            if how:
                yield Dependent("rule", record_rule.name, how)

    def _rule_fields(self, rule: RuleDef) -> set[str]:
        return rule_field_names(self.tessera.rule_types, rule)

    @staticmethod
    def _record_rule_naming(rule: RecordRuleDef, subject: str | None) -> str | None:
        if subject in rule.unique:
            return f"unique on {', '.join(rule.unique)}"
        if subject in rule.require:
            return f"requires {subject}"
        if subject in fields_in_condition(rule.when) | fields_in_condition(rule.check):
            return f"condition names {subject}"
        return None

    async def rewrite(self, context: ReferenceContext, change: SchemaChange) -> list[Dependent]:
        collection = context.catalog.collection_by_id(change.collection_id)
        writer = context.writer
        if (
            collection is None
            or change.field is None
            or change.kind != "rename"
            or writer is None
            or change.new_name is None
        ):
            return []
        old, new = change.field, change.new_name
        rewritten = []
        for field in collection.fields:
            rules = [self._renamed_rule(rule, old, new) for rule in field.rules]
            if rules != list(field.rules):
                await writer.set_field_rules(field.id, rules)
                rewritten.append(Dependent("rule", f"{field.name} rules", change.describe()))
        for record_rule in collection.record_rules:
            definition = renamed_record_rule(record_rule, old, new)
            if definition != record_rule_definition(record_rule):
                await writer.update_record_rule(record_rule.id, definition)
                rewritten.append(Dependent("rule", record_rule.name, change.describe()))
        return rewritten

    def _renamed_rule(self, rule: RuleDef, old: str, new: str) -> RuleDef:
        rule_class = self.tessera.rule_types.get(rule.type_name)
        if rule_class is None or old not in self._rule_fields(rule):
            return rule
        value = rule_class.rename_field(rule.value, old, new)
        return RuleDef(rule.type_name, value, rule.constraint)
