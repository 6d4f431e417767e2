"""Rules on whole records, as schema operations: ``add_record_rule``, ``drop_record_rule``
and their compound-uniqueness shorthands ``add_unique`` and ``drop_unique``.

A record rule is ``{name, when?, require?, check?}`` (when ``when`` holds, the ``require``
fields must have a value and ``check`` must hold; the kernel checks it on every write) or
``{name, unique: [fields]}`` (a real unique index over those columns; its preview counts
the records that already collide and shows a sample, and apply is refused while any do).

On a table of ``ddl_concurrent_index_rows`` rows or more (the planner's estimate), the
unique index is built with ``CREATE UNIQUE INDEX CONCURRENTLY`` before the op's
transaction (a concurrent step: writes go on during the build), and the transaction checks
it is valid and writes the catalog; a build that fails is undone, leaving everything as it
was. Smaller tables get the index inside the transaction.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from alembic.operations import Operations
from pydantic import BaseModel, ConfigDict, Field

from kernel import (
    CatalogWriter,
    CollectionDef,
    ConcurrentStep,
    Conflict,
    DdlOperation,
    FieldDef,
    NotFound,
    Plan,
    RecordRuleDef,
    RuleDefinitionError,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_name,
    queryable_fields,
    record_rule_index_name,
    refuse_duplicates,
)
from plugins.rules.conditions import bind_condition

#: Most record rules one collection may have.
MAX_RECORD_RULES = 100
#: Colliding groups shown in a preview.
SAMPLE_SIZE = 5


class RecordRuleSpec(BaseModel):
    """``{name, when?, require?, check?}`` or ``{name, unique}``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    when: str | None = Field(default=None, max_length=2000)
    require: list[str] = Field(default_factory=list, max_length=100)
    check: str | None = Field(default=None, max_length=2000)
    unique: list[str] | None = Field(default=None, min_length=1, max_length=32)


class AddRecordRuleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    rule: RecordRuleSpec


def index_name(collection: CollectionDef, rule: str) -> str:
    """The unique index of a rule, in the kernel's shape for it (the reconciler drops one
    that no rule names)."""
    return record_rule_index_name(collection.id, rule)


def _create_unique(
    schema: str,
    table: str,
    name: str,
    columns: list[str],
    ops: Operations,
    *,
    concurrently: bool = False,
) -> None:
    ops.create_index(
        name, table, columns, unique=True, schema=schema, postgresql_concurrently=concurrently
    )


def _drop_invalid(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_index(
        name, table_name=table, schema=schema, postgresql_concurrently=True, if_exists=True
    )


def _drop_index(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_index(name, table_name=table, schema=schema)


class AddRecordRule(DdlOperation):
    """Add a rule on the collection's records (a condition, or compound uniqueness)."""

    name = "add_record_rule"
    label = "Add record rule"
    Args = AddRecordRuleArgs

    def spec(self) -> RecordRuleSpec:
        return self.args.rule

    def plan(self) -> Plan:
        self.collection = self.context.collection(self.args.collection)
        spec = self.spec()
        check_name(spec.name, what="rule", field="rule.name")
        if self.collection.record_rule(spec.name) is not None:
            raise Conflict(
                f"{self.collection.name!r} already has a rule named {spec.name!r}",
                code="duplicate",
                field="rule.name",
            )
        if len(self.collection.record_rules) >= MAX_RECORD_RULES:
            raise ValidationFailed(
                f"a collection has at most {MAX_RECORD_RULES} record rules",
                code="too_many_rules",
            )
        if spec.unique is not None:
            return self._plan_unique(spec)
        return self._plan_condition(spec)

    def _field(self, name: str, where: str) -> FieldDef:
        field = self.collection.live_fields.get(name)
        if field is None:
            raise ValidationFailed(
                f"{self.collection.name!r} has no field {name!r}",
                code="unknown_field",
                field=where,
            )
        return field

    def _plan_condition(self, spec: RecordRuleSpec) -> Plan:
        if spec.check is None and not spec.require:
            raise ValidationFailed(
                "a record rule needs require or check (and optionally when), or unique",
                code="invalid_rule",
                field="rule",
            )
        fields = queryable_fields(self.collection, self.context.now)
        operators = self.context.tessera.operators
        for key in ("when", "check"):
            text = getattr(spec, key)
            if text is None:
                continue
            try:
                bind_condition(text, fields, operators)
            except RuleDefinitionError as error:
                raise ValidationFailed(
                    str(error), code="invalid_rule", field=f"rule.{key}"
                ) from None
        require = [
            self._field(name, f"rule.require[{index}]").name
            for index, name in enumerate(spec.require)
        ]
        self.definition: dict[str, Any] = {"when": spec.when, "require": require}
        if spec.check is not None:
            self.definition["check"] = spec.check
        return Plan(
            warnings=[
                "stored records are not checked against the rule: each record is checked "
                "the next time it is written"
            ]
        )

    def _plan_unique(self, spec: RecordRuleSpec) -> Plan:
        if spec.when or spec.check or spec.require:
            raise ValidationFailed(
                "a unique rule takes only name and unique", code="invalid_rule", field="rule"
            )
        self.unique = [
            self._field(name, f"rule.unique[{index}]") for index, name in enumerate(spec.unique)
        ]
        if len({field.id for field in self.unique}) != len(self.unique):
            raise ValidationFailed("a field is listed twice", code="duplicate", field="rule.unique")
        self.index = index_name(self.collection, spec.name)
        self.definition = {"unique": [field.name for field in self.unique], "index": self.index}
        self.columns = [field.column for field in self.unique]
        self.build: dict[str, Any] = {"concurrently": self.context.concurrent_done}
        if self.context.concurrent_done:  # built before the transaction; preflight checks it
            return Plan()
        schema, table = self.context.schema, self.collection.table
        step = Step(
            f"unique index {self.index} on {', '.join(self.definition['unique'])}",
            partial(_create_unique, schema, table, self.index, self.columns),
        )
        return Plan(steps=[step])

    async def concurrent_steps(self, inspector: SchemaInspector) -> list[ConcurrentStep]:
        """The unique index, built concurrently, on a table of ``ddl_concurrent_index_rows``
        rows or more (estimated)."""
        if self.spec().unique is None:
            return []
        threshold = self.context.tessera.settings.ddl_concurrent_index_rows
        estimate = await inspector.estimated_rows(self.collection, threshold)
        self.build = {
            "concurrently": estimate >= threshold,
            "estimated_rows": estimate,
            "threshold": threshold,
        }
        if estimate < threshold:
            return []
        schema, table = self.context.schema, self.collection.table
        return [
            ConcurrentStep(
                f"build unique index {self.index} on {', '.join(self.definition['unique'])} "
                "concurrently (writes go on)",
                partial(_create_unique, schema, table, self.index, self.columns, concurrently=True),
                partial(_drop_invalid, schema, table, self.index),
            )
        ]

    async def preflight(self, inspector: SchemaInspector) -> None:
        if self.spec().unique is None or not self.context.concurrent_done:
            return
        if not await inspector.valid_unique_index(self.collection, self.index, self.columns):
            raise Conflict(
                f"the unique index on {', '.join(self.definition['unique'])} built before "
                "this change is missing or not valid; nothing changed: apply again",
                code="concurrent_step_failed",
                field="unique",
            )

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        size = await inspector.table_size(self.collection)
        if self.spec().unique is None:
            return {"rows": size["rows"]}
        if self.context.concurrent_done:  # a valid unique index admits no duplicates
            return {"rows": size["rows"], "index_build": self.build}
        columns = {field.name: field.column for field in self.unique}
        duplicates = await inspector.duplicates(self.collection, columns, SAMPLE_SIZE)
        return {"rows": size["rows"], "duplicates": duplicates, "index_build": self.build}

    def refuse(self, impact: dict[str, Any]) -> None:
        duplicates = impact.get("duplicates")
        if duplicates:
            refuse_duplicates(self.definition["unique"], duplicates)

    def target(self) -> tuple[str, str]:
        return "record_rule", f"{self.args.collection}.{self.spec().name}"

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        name = self.spec().name
        await writer.insert_record_rule(self.collection.id, name, self.definition)
        described = {"name": name, **self.definition}
        described.pop("index", None)
        return {"collection": self.collection.name, "rule": described}


class AddUniqueArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    fields: list[str] = Field(min_length=1, max_length=32)
    name: str | None = None


class AddUnique(AddRecordRule):
    """Compound uniqueness: ``{collection, fields, name?}`` (the rule's name defaults to
    ``unique_<field>_<field>``)."""

    name = "add_unique"
    label = "Add unique index"
    Args = AddUniqueArgs

    def spec(self) -> RecordRuleSpec:
        name = self.args.name or "unique_" + "_".join(self.args.fields)
        return RecordRuleSpec(name=name[:63], unique=self.args.fields)


class DropRecordRuleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    name: str


class DropRecordRule(DdlOperation):
    """Remove a record rule (and the unique index of a unique rule)."""

    name = "drop_record_rule"
    label = "Drop record rule"
    Args = DropRecordRuleArgs

    def find(self) -> RecordRuleDef:
        rule = self.collection.record_rule(self.args.name)
        if rule is None:
            raise NotFound(
                f"{self.collection.name!r} has no rule named {self.args.name!r}",
                code="rule_not_found",
                field="name",
            )
        return rule

    def plan(self) -> Plan:
        self.collection = self.context.collection(self.args.collection)
        self.rule = self.find()
        if self.rule.index is None:
            return Plan()
        schema, table = self.context.schema, self.collection.table
        step = Step(
            f"drop unique index {self.rule.index}",
            partial(_drop_index, schema, table, self.rule.index),
        )
        return Plan(steps=[step])

    def target(self) -> tuple[str, str]:
        return "record_rule", f"{self.args.collection}.{self.rule.name}"

    def before(self) -> Any:
        return self.rule.describe()

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.delete_record_rule(self.rule.id)
        return {"collection": self.collection.name, "dropped": self.rule.name}


class DropUniqueArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    fields: list[str] | None = Field(default=None, min_length=1)
    name: str | None = None


class DropUnique(DropRecordRule):
    """Remove a compound unique index, by its rule's ``name`` or its ``fields``."""

    name = "drop_unique"
    label = "Drop unique index"
    Args = DropUniqueArgs

    def find(self) -> RecordRuleDef:
        for rule in self.collection.record_rules:
            if rule.unique and (
                rule.name == self.args.name or list(rule.unique) == self.args.fields
            ):
                return rule
        raise NotFound(
            f"{self.collection.name!r} has no unique rule "
            f"{self.args.name or ', '.join(self.args.fields or [])}",
            code="rule_not_found",
            field="name" if self.args.name else "fields",
        )


RECORD_RULE_OPERATIONS: list[type[DdlOperation]] = [
    AddRecordRule,
    AddUnique,
    DropRecordRule,
    DropUnique,
]
