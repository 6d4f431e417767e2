"""The plugin ``schema.core``: create_collection, add_field, drop_collection, set_policies.

These are the operations every deployment needs; they register through the same
``register_ddl_operations`` hook as any third-party operation and use only the kernel's
public API.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from alembic.operations import Operations
from pydantic import BaseModel, ConfigDict, Field

from kernel import (
    ACTIONS,
    SYSTEM_COLUMNS,
    CatalogWriter,
    CollectionDef,
    Conflict,
    DdlOperation,
    FieldSpec,
    OpContext,
    Plan,
    PluginInfo,
    ResolvedField,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_name,
    field_column,
    hookimpl,
    queryable_fields,
    resolve_field,
    system_columns,
    unique_index_name,
    validate_policies,
)


def check_collection_name_free(context: OpContext, name: str, field: str = "name") -> None:
    """409 when ``name`` is taken by a collection (live or dropped) or a live alias."""
    existing = context.catalog.collections.get(name)
    if existing is not None and not existing.is_deleted:
        raise Conflict(f"collection {name!r} already exists", code="duplicate", field=field)
    if existing is not None:
        raise Conflict(
            f"a dropped collection named {name!r} still exists; restore or purge it first",
            code="name_taken",
            field=field,
        )
    alias = context.catalog.live_collection_aliases(context.now).get(name)
    if alias is not None:
        target, entry = alias
        raise Conflict(
            f"{name!r} is an old name of {target.name!r} until {entry.expires_at:%Y-%m-%d}; "
            "retire that alias first",
            code="alias_name",
            field=field,
        )


def check_field_name_free(
    context: OpContext, collection: CollectionDef, resolved: ResolvedField, where: str
) -> None:
    """409 when the field's name or column is taken in ``collection``."""
    existing = collection.field(resolved.name)
    if existing is not None:
        reason = "already exists" if not existing.is_deleted else "was dropped; restore or purge it"
        raise Conflict(f"field {resolved.name!r} {reason}", code="duplicate", field=f"{where}.name")
    if resolved.name in collection.live_field_aliases(context.now):
        raise Conflict(
            f"{resolved.name!r} is an old name of another field; retire that alias first",
            code="alias_name",
            field=f"{where}.name",
        )
    taken = {f.column for f in collection.fields} | set(SYSTEM_COLUMNS)
    if resolved.column in taken:
        raise Conflict(
            f"column {resolved.column!r} is already used in {collection.name!r}",
            code="duplicate",
            field=f"{where}.name",
        )


def add_field_steps(schema: str, table: str, fields: list[ResolvedField]) -> list[Step]:
    """The unique index of each unique field and the DDL its type adds (an FK, an index);
    columns come with the table or add_column."""
    steps = []
    for field in fields:
        if field.unique:
            steps.append(
                Step(
                    f"unique index on {field.name}",
                    partial(_create_unique, schema, table, field.column),
                )
            )
        steps += field.field_type.extra_ddl(schema, table, field.column)
    return steps


def _create_unique(schema: str, table: str, column: str, ops: Operations) -> None:
    ops.create_index(
        unique_index_name(table, [column]), table, [column], unique=True, schema=schema
    )


def _create_table(schema: str, table: str, fields: list[ResolvedField], ops: Operations) -> None:
    ops.create_table(table, *system_columns(), *(field_column(f) for f in fields), schema=schema)


def _add_column(schema: str, table: str, field: ResolvedField, ops: Operations) -> None:
    ops.add_column(table, field_column(field), schema=schema)


def describe_resolved(field: ResolvedField) -> dict[str, Any]:
    return {"name": field.name, "type": field.type_name, "column": field.column}


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
        self.fields: list[ResolvedField] = []
        columns: set[str] = set(SYSTEM_COLUMNS)
        for index, spec in enumerate(args.fields):
            resolved = resolve_field(spec, self.context.tessera.field_types, f"fields[{index}]")
            if resolved.column in columns or resolved.name in {f.name for f in self.fields}:
                raise ValidationFailed(
                    f"field {resolved.name!r} is given twice",
                    code="duplicate",
                    field=f"fields[{index}].name",
                )
            columns.add(resolved.column)
            self.fields.append(resolved)
        schema = self.context.schema
        steps = [Step(f"create table {name}", partial(_create_table, schema, name, self.fields))]
        return Plan(steps=steps + add_field_steps(schema, name, self.fields))

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
        self.resolved = resolve_field(self.args.field, self.context.tessera.field_types, "field")
        check_field_name_free(self.context, self.collection, self.resolved, "field")
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
                partial(_add_column, schema, table, self.resolved),
            )
        ]
        return Plan(
            steps=steps + add_field_steps(schema, table, [self.resolved]), warnings=warnings
        )

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

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
