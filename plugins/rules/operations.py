"""Schema operations that change field rules: ``set_field_rules``.

Rules set with a field (``rules`` on create_collection and add_field) are checked and
stored by those operations through the kernel; this operation replaces them later, with a
preview that shows the ``CHECK`` constraints it installs and how many existing records
break each of them (apply is refused while any does).

Adding a ``CHECK`` constraint scans the stored records while holding the table's ``ACCESS
EXCLUSIVE`` lock. On a table of ``ddl_concurrent_index_rows`` rows or more (the planner's
estimate) each new constraint is instead added ``NOT VALID`` under a transient name and
validated before the op's transaction, writes going on (:class:`kernel.PrebuiltCheck`);
the transaction drops the old constraints and renames the new ones to their final names.
A stored record that breaks a new rule fails the validation: the steps are undone and the
op refused (``existing_records_break_rule``) with nothing changed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kernel import (
    CatalogWriter,
    Conflict,
    DdlOperation,
    FieldDef,
    Plan,
    PrebuiltCheck,
    ProvesBeforehand,
    RuleSpec,
    SchemaInspector,
    check_steps,
    compiled_condition,
    count_breaking_rows,
    drop_check_step,
    queryable_fields,
    refuse_breaking_rows,
    resolve_rules,
    rule_constraint_names,
    transient_name,
)


class SetFieldRulesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    field: str
    rules: list[RuleSpec] = Field(default_factory=list)


class SetFieldRules(ProvesBeforehand, DdlOperation):
    """Replace a field's rules. Rules with an exact database form are also installed as
    ``CHECK`` constraints (the field's previous ones are dropped); on a large table they
    are validated before the transaction (the module's docstring)."""

    name = "set_field_rules"
    label = "Set field rules"
    Args = SetFieldRulesArgs

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection)
        self.field: FieldDef = context.field(self.collection, self.args.field)
        if self.field.type is None:
            raise Conflict(
                f"field {self.field.name!r} has type {self.field.type_name!r}, whose plugin "
                "is not enabled",
                code="type_unavailable",
                field="field",
            )
        old = [rule.constraint for rule in self.field.rules if rule.constraint]
        self.rules = resolve_rules(
            self.args.rules,
            self.field,
            queryable_fields(self.collection, context.now),
            context.tessera.rule_types,
            context.tessera.operators,
            where="rules",
            taken=rule_constraint_names(self.collection.fields) - set(old),
        )
        schema, table = context.schema, self.collection.table
        self.proofs = [
            PrebuiltCheck(
                schema,
                table,
                rule.constraint,
                transient_name(self.collection.id, rule.constraint, compiled_condition(condition)),
                condition,
                f"{rule.type_name} of {self.field.name}",
            )
            for rule in self.rules
            if rule.constraint is not None and (condition := rule.condition) is not None
        ]
        self.build = {"concurrently": context.concurrent_done}
        steps = [drop_check_step(schema, table, name) for name in old]
        if context.concurrent_done:  # validated before the transaction; preflight checks them
            steps += [check.swap_in() for check in self.proofs]
        else:
            steps += check_steps(schema, table, self.rules)
        unchecked = sorted({rule.type_name for rule in self.rules if rule.condition is None})
        warnings = []
        if unchecked:
            warnings.append(
                f"stored records are not checked against {', '.join(unchecked)}: each record "
                "is checked the next time it is written"
            )
        return Plan(steps=steps, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        """The stored records that break each new constraint (``constraints``: none read
        once they were validated before the transaction) and which way they are checked
        (``index_build``)."""
        size = await inspector.table_size(self.collection)
        proven = self.context.concurrent_done
        breaking = (
            [] if proven else await count_breaking_rows(inspector, self.collection, self.rules)
        )
        return {"rows": size["rows"], "constraints": breaking, "index_build": self.build}

    def refuse(self, impact: dict[str, Any]) -> None:
        refuse_breaking_rows(self.field.name, impact["constraints"])

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return {"rules": [rule.describe() for rule in self.field.rules]}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.set_field_rules(self.field.id, [rule.definition() for rule in self.rules])
        return {
            "collection": self.collection.name,
            "field": self.field.name,
            "rules": [rule.definition().describe() for rule in self.rules],
        }
