"""The plugin ``schema.core``: create_collection, add_field, drop_collection, set_policies.

These are the operations every deployment needs; they register through the same
``register_ddl_operations`` hook as any third-party operation and use only the kernel's
public API.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kernel import (
    ACTIONS,
    SYSTEM_COLUMNS,
    CatalogWriter,
    DdlOperation,
    FieldSpec,
    Plan,
    PluginInfo,
    ResolvedField,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_name,
    count_breaking_rows,
    hookimpl,
    queryable_fields,
    refuse_breaking_rows,
    resolve_field,
    rule_constraint_names,
    validate_policies,
    with_rules,
)
from plugins.schema.naming import check_collection_name_free, check_field_name_free
from plugins.schema.steps import add_column, create_table, new_field_steps


def describe_resolved(field: ResolvedField) -> dict[str, Any]:
    described = {"name": field.name, "type": field.type_name, "column": field.column}
    if field.rules:
        described["rules"] = [rule.definition().describe() for rule in field.rules]
    return described


class CreateCollectionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    display_name: str | None = Field(default=None, max_length=200)
    fields: list[FieldSpec] = Field(default_factory=list, max_length=500)


class CreateCollection(DdlOperation):
    """A new collection: a table with the system columns and the given fields."""

    name = "create_collection"
    label = "Create collection"
    Args = CreateCollectionArgs

    def plan(self) -> Plan:
        args = self.args
        name = check_name(args.name, what="collection")
        check_collection_name_free(self.context, name)
        tessera = self.context.tessera
        new_fields: list[tuple[FieldSpec, ResolvedField, str]] = []
        columns: set[str] = set(SYSTEM_COLUMNS)
        for index, spec in enumerate(args.fields):
            resolved = resolve_field(spec, tessera.field_types, f"fields[{index}]")
            if resolved.column in columns or resolved.name in {f.name for _, f, _ in new_fields}:
                raise ValidationFailed(
                    f"field {resolved.name!r} is given twice",
                    code="duplicate",
                    field=f"fields[{index}].name",
                )
            columns.add(resolved.column)
            new_fields.append((spec, resolved, f"fields[{index}]"))
        self.fields = with_rules(new_fields, {}, tessera.rule_types, tessera.operators, set())
        schema = self.context.schema
        steps = [Step(f"create table {name}", partial(create_table, schema, name, self.fields))]
        paths = [f"fields[{index}]" for index in range(len(self.fields))]
        extra = new_field_steps(self.context.catalog, name, name, self.fields, paths)
        return Plan(steps=steps + extra)

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        display = self.args.display_name or self.args.name.replace("_", " ").capitalize()
        collection_id = await writer.insert_collection(self.args.name, display, self.args.name)
        for position, field in enumerate(self.fields):
            await writer.insert_field(collection_id, field, position)
        return {
            "collection": self.args.name,
            "fields": [describe_resolved(field) for field in self.fields],
        }


class AddFieldArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    field: FieldSpec


class AddField(DdlOperation):
    """A new column on an existing collection (a constant default fills existing rows)."""

    name = "add_field"
    label = "Add field"
    Args = AddFieldArgs

    def plan(self) -> Plan:
        self.collection = self.context.collection(self.args.collection)
        tessera = self.context.tessera
        resolved = resolve_field(self.args.field, tessera.field_types, "field")
        (self.resolved,) = with_rules(
            [(self.args.field, resolved, "field")],
            queryable_fields(self.collection, self.context.now),
            tessera.rule_types,
            tessera.operators,
            rule_constraint_names(self.collection.fields),
        )
        check_field_name_free(
            self.context,
            self.collection,
            self.resolved.name,
            self.resolved.column,
            field="field.name",
        )
        schema, table = self.context.schema, self.collection.table
        warnings = []
        if self.resolved.required and not self.resolved.has_default:
            warnings.append(
                "the field is required and has no default: this fails if the collection "
                "already has records"
            )
        if self.resolved.unique and self.resolved.has_default:
            warnings.append(
                "the field is unique and has a default, which every existing record gets: "
                "this fails if the collection has more than one record"
            )
        steps = [
            Step(
                f"add column {self.resolved.column}",
                partial(add_column, schema, table, self.resolved),
            )
        ]
        extra = new_field_steps(
            self.context.catalog, self.collection.name, table, [self.resolved], ["field"]
        )
        return Plan(steps=steps + extra, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=False)
        if any(rule.condition is not None for rule in self.resolved.rules):
            impact["constraints"] = await count_breaking_rows(
                inspector, self.collection, self.resolved.rules, self.resolved
            )
        return impact

    def refuse(self, impact: dict[str, Any]) -> None:
        refuse_breaking_rows(self.resolved.name, impact.get("constraints", []))

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field.name}"

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        position = max((f.position for f in self.collection.fields), default=-1) + 1
        await writer.insert_field(self.collection.id, self.resolved, position)
        return {"collection": self.collection.name, "field": describe_resolved(self.resolved)}


class CollectionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str


class DropCollection(DdlOperation):
    """Soft drop: the collection leaves the API at once; table and data stay."""

    name = "drop_collection"
    label = "Drop collection"
    Args = CollectionArgs

    def plan(self) -> Plan:
        self.collection = self.context.collection(self.args.collection)
        return Plan(
            warnings=[
                f"{self.collection.name!r} disappears from the API and the admin at once; its "
                "table and records are kept and restore_collection brings it back"
            ]
        )

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

    def before(self) -> Any:
        return {"collection": self.collection.name, "is_deleted": False}

    def changes(self) -> list[SchemaChange]:
        return [SchemaChange("drop", self.collection.id, self.collection.name)]

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.update_collection(self.collection.id, is_deleted=True, deleted_at=writer.now)
        return {"collection": self.collection.name, "is_deleted": True}


class SetPoliciesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str
    policies: dict[str, str | None]


class SetPolicies(DdlOperation):
    """Replace a collection's policies (an action left out becomes admins-only)."""

    name = "set_policies"
    label = "Set policies"
    Args = SetPoliciesArgs

    def plan(self) -> Plan:
        self.collection = self.context.collection(self.args.collection)
        fields = queryable_fields(self.collection, self.context.now)
        checked = validate_policies(self.args.policies, fields, self.context.tessera.operators)
        self.rules = {action: checked.get(action) for action in ACTIONS}
        open_actions = [action for action, rule in self.rules.items() if rule == ""]
        warnings = (
            [f"anyone, signed in or not, may {', '.join(open_actions)} records"]
            if open_actions
            else []
        )
        return Plan(warnings=warnings)

    def target(self) -> tuple[str, str]:
        return "policies", self.args.collection

    def before(self) -> Any:
        return {action: self.collection.policy(action) for action in ACTIONS}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.set_policies(self.collection.id, self.rules)
        return {"collection": self.collection.name, "policies": self.rules}


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="Core schema operations: create_collection, add_field, drop_collection, "
        "set_policies"
    )


@hookimpl
def register_ddl_operations() -> list[type[DdlOperation]]:
    return [CreateCollection, AddField, DropCollection, SetPolicies]
