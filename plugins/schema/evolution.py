"""The plugin ``schema.evolution``: change a live schema without breaking its clients.

Operations: rename_collection, rename_field (each leaving an alias for a grace period),
drop_field (soft), restore_field, purge_field (admin, confirmed, after retention),
change_field_type (safe conversions in place; otherwise a copy-and-swap wizard made of
add_field, copy_field and swap_fields), restore_collection, purge_collection and
retire_alias. All run through the kernel's DDL engine like any other operation.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, Literal

import sqlalchemy as sa
from alembic.operations import Operations
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel import (
    SYSTEM_COLUMNS,
    AliasDef,
    CatalogWriter,
    CollectionDef,
    Conflict,
    ConversionContext,
    DdlOperation,
    FieldDef,
    FieldType,
    FieldValueError,
    NotFound,
    OpContext,
    Plan,
    PluginInfo,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_name,
    hookimpl,
    server_default,
    unique_index_name,
)
from kernel.expr import field_names, parse, rename_field, to_text
from plugins.schema.core import check_collection_name_free

_PG = postgresql.dialect()
SAMPLE_FAILURES = 10
COPY_BATCH = 5000


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def expiry(context: OpContext, grace_days: int | None) -> datetime:
    days = (
        grace_days if grace_days is not None else context.catalog.project.settings.alias_grace_days
    )
    return context.now + timedelta(days=days)


def derived_display_name(name: str) -> str:
    return name.replace("_", " ").capitalize()


def policies_using(collection: CollectionDef, field: str) -> list[str]:
    """Actions whose rule names ``field``."""
    return [
        action
        for action, rule in collection.policies.items()
        if rule and field in field_names(parse(rule))
    ]


def _rename_table(schema: str, old: str, new: str, ops: Operations) -> None:
    ops.rename_table(old, new, schema=schema)


def _rename_column(schema: str, table: str, old: str, new: str, ops: Operations) -> None:
    ops.alter_column(table, old, new_column_name=new, schema=schema)


def _set_nullable(schema: str, table: str, column: str, nullable: bool, ops: Operations) -> None:
    ops.alter_column(table, column, nullable=nullable, schema=schema)


def _drop_column(schema: str, table: str, column: str, ops: Operations) -> None:
    ops.drop_column(table, column, schema=schema)


def _drop_table(schema: str, table: str, ops: Operations) -> None:
    ops.drop_table(table, schema=schema)


def _set_default(schema: str, table: str, column: str, default: Any, ops: Operations) -> None:
    ops.alter_column(table, column, server_default=default, schema=schema)


def _change_type(
    schema: str, table: str, column: str, sql_type: Any, using: str, ops: Operations
) -> None:
    ops.alter_column(table, column, type_=sql_type, postgresql_using=using, schema=schema)


def _create_unique(schema: str, table: str, column: str, ops: Operations) -> None:
    ops.create_index(
        unique_index_name(table, [column]), table, [column], unique=True, schema=schema
    )


def _rename_index(schema: str, old: str, new: str, ops: Operations) -> None:
    quote = _PG.identifier_preparer.quote
    ops.execute(f"ALTER INDEX IF EXISTS {quote(schema)}.{quote(old)} RENAME TO {quote(new)}")


def unique_index_rename(
    schema: str, table: str, column: str, new_table: str, new_column: str
) -> Step:
    """Rename a unique field's index along with its table or column: the index must keep the
    name ``unique_index_name`` gives it, or purge mistakes it for a dependent and a new
    unique field reusing the old name collides with it."""
    old, new = unique_index_name(table, [column]), unique_index_name(new_table, [new_column])
    return Step(f"rename index {old} to {new}", partial(_rename_index, schema, old, new))


def check_field_name_free(
    context: OpContext, collection: CollectionDef, name: str, column: str, field_id: int | None
) -> None:
    """409 when ``name`` or ``column`` is taken in ``collection`` by anything but the field
    ``field_id`` itself (renaming a field back to an old name of its own is fine)."""
    existing = collection.field(name)
    if existing is not None and existing.id != field_id:
        reason = "already exists" if not existing.is_deleted else "was dropped; purge it first"
        raise Conflict(f"field {name!r} {reason}", code="duplicate", field="new_name")
    alias = collection.live_field_aliases(context.now).get(name)
    if alias is not None and alias[0].id != field_id:
        raise Conflict(
            f"{name!r} is an old name of {alias[0].name!r}; retire that alias first",
            code="alias_name",
            field="new_name",
        )
    taken = {f.column for f in collection.fields if f.id != field_id} | set(SYSTEM_COLUMNS)
    if column in taken:
        raise Conflict(f"column {column!r} is already used", code="duplicate", field="new_name")


def live_field(context: OpContext, collection: CollectionDef, name: str) -> FieldDef:
    field = context.field(collection, name)
    if field.type is None:
        raise Conflict(
            f"field {name!r} has type {field.type_name!r}, whose plugin is not enabled",
            code="type_unavailable",
            field="field",
        )
    return field


# -- renames ---------------------------------------------------------------------------


class RenameCollectionArgs(_Args):
    collection: str
    new_name: str
    display_name: str | None = Field(default=None, max_length=200)
    grace_days: int | None = Field(default=None, ge=0, le=3650)


class RenameCollection(DdlOperation):
    """Rename a collection's table; the old name keeps working as an alias for a while."""

    name = "rename_collection"
    label = "Rename collection"
    Args = RenameCollectionArgs

    @classmethod
    def lock_names(cls, args: BaseModel) -> list[str]:
        return [args.collection, args.new_name]

    def plan(self) -> Plan:
        args, context = self.args, self.context
        self.collection = context.collection(args.collection)
        new = check_name(args.new_name, what="collection", field="new_name")
        if new == self.collection.name:
            raise ValidationFailed(
                "the new name is the current name", code="same_name", field="new_name"
            )
        self.own_alias = next(
            (
                alias
                for old, (target, alias) in context.catalog.live_collection_aliases(
                    context.now
                ).items()
                if old == new and target.id == self.collection.id
            ),
            None,
        )
        if self.own_alias is None:
            check_collection_name_free(context, new, field="new_name")
        self.expires_at = expiry(context, args.grace_days)
        old = self.collection.name
        warnings = (
            [
                f"clients may keep using {old!r} until {self.expires_at:%Y-%m-%d}; responses "
                "through the old name carry Deprecation headers"
            ]
            if self.expires_at > context.now
            else [f"the old name {old!r} stops working at once (no grace period)"]
        )
        step = Step(
            f"rename table {self.collection.table} to {new}",
            partial(_rename_table, context.schema, self.collection.table, new),
        )
        indexes = [
            unique_index_rename(context.schema, self.collection.table, f.column, new, f.column)
            for f in self.collection.fields
            if f.unique
        ]
        return Plan(steps=[step, *indexes], warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=False)
        existing = [
            alias.id
            for _, (target, alias) in self.context.catalog.live_collection_aliases(
                self.context.now
            ).items()
            if target.id == self.collection.id
        ]
        return {**impact, "old_names": await inspector.alias_usage(existing)}

    def target(self) -> tuple[str, str]:
        return "collection", self.args.collection

    def before(self) -> Any:
        return {"name": self.collection.name, "display_name": self.collection.display_name}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        old, new = self.collection.name, self.args.new_name
        display = self.args.display_name or (
            derived_display_name(new)
            if self.collection.display_name == derived_display_name(old)
            else self.collection.display_name
        )
        await writer.update_collection(
            self.collection.id, name=new, sql_table_name=new, display_name=display
        )
        if self.own_alias is not None:
            await writer.retire_alias(self.own_alias.id)
        alias_expires = None
        if self.expires_at > writer.now:
            await writer.insert_alias(
                kind="collection",
                old_name=old,
                collection_id=self.collection.id,
                field_id=None,
                expires_at=self.expires_at,
            )
            alias_expires = self.expires_at.isoformat()
        await writer.rename_in_api_keys(old, new)
        return {"collection": new, "previous_name": old, "alias_expires_at": alias_expires}


class RenameFieldArgs(_Args):
    collection: str
    field: str
    new_name: str
    display_name: str | None = Field(default=None, max_length=200)
    grace_days: int | None = Field(default=None, ge=0, le=3650)


class RenameField(DdlOperation):
    """Rename a field's column; the old name keeps working in reads, writes, filters and
    sorts as an alias for a while. Policies naming the field are rewritten."""

    name = "rename_field"
    label = "Rename field"
    Args = RenameFieldArgs

    def plan(self) -> Plan:
        args, context = self.args, self.context
        self.collection = context.collection(args.collection)
        self.field = live_field(context, self.collection, args.field)
        new = check_name(args.new_name, what="field", field="new_name")
        if new == self.field.name:
            raise ValidationFailed(
                "the new name is the current name", code="same_name", field="new_name"
            )
        self.new_column = new + self.field.type.column_suffix
        check_field_name_free(context, self.collection, new, self.new_column, self.field.id)
        self.own_alias = next(
            (
                alias
                for old, (target, alias) in self.collection.live_field_aliases(context.now).items()
                if old == new and target.id == self.field.id
            ),
            None,
        )
        self.expires_at = expiry(context, args.grace_days)
        self.policies = {
            action: to_text(rename_field(parse(rule), self.field.name, new)) if rule else rule
            for action, rule in self.collection.policies.items()
        }
        changed = [a for a, rule in self.policies.items() if rule != self.collection.policies[a]]
        warnings = []
        if self.expires_at > context.now:
            warnings.append(
                f"clients may keep using {self.field.name!r} until {self.expires_at:%Y-%m-%d}: "
                "reads return both keys, writes, filters and sorts accept the old one"
            )
        else:
            warnings.append(f"the old name {self.field.name!r} stops working at once")
        if changed:
            warnings.append(f"policies rewritten to the new name: {', '.join(sorted(changed))}")
        step = Step(
            f"rename column {self.field.column} to {self.new_column}",
            partial(
                _rename_column,
                context.schema,
                self.collection.table,
                self.field.column,
                self.new_column,
            ),
        )
        steps = [step]
        if self.field.unique:
            table = self.collection.table
            steps.append(
                unique_index_rename(
                    context.schema, table, self.field.column, table, self.new_column
                )
            )
        return Plan(steps=steps, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=False)
        existing = [
            alias.id for alias in self.collection.field_aliases if alias.field_id == self.field.id
        ]
        return {**impact, "old_names": await inspector.alias_usage(existing)}

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return {"name": self.field.name, "column": self.field.column}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        old, new = self.field.name, self.args.new_name
        display = self.args.display_name or (
            derived_display_name(new)
            if self.field.display_name == derived_display_name(old)
            else self.field.display_name
        )
        await writer.update_field(
            self.field.id, name=new, sql_column_name=self.new_column, display_name=display
        )
        if self.own_alias is not None:
            await writer.retire_alias(self.own_alias.id)
        alias_expires = None
        if self.expires_at > writer.now:
            await writer.insert_alias(
                kind="field",
                old_name=old,
                collection_id=self.collection.id,
                field_id=self.field.id,
                expires_at=self.expires_at,
            )
            alias_expires = self.expires_at.isoformat()
        if self.policies != dict(self.collection.policies):
            await writer.set_policies(self.collection.id, self.policies)
        return {
            "collection": self.collection.name,
            "field": new,
            "previous_name": old,
            "alias_expires_at": alias_expires,
        }


# -- drop, restore, purge --------------------------------------------------------------


class FieldArgs(_Args):
    collection: str
    field: str


class DropField(DdlOperation):
    """Soft drop: the field leaves the API and the admin at once, writes naming it are
    refused, its data stays. ``restore_field`` undoes it; ``purge_field`` removes it."""

    name = "drop_field"
    label = "Drop field"
    Args = FieldArgs

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection)
        self.field = context.field(self.collection, self.args.field)
        used_by = policies_using(self.collection, self.field.name)
        if used_by:
            raise Conflict(
                f"{self.field.name!r} is used by the {', '.join(used_by)} policies; "
                "change them first",
                code="field_in_use",
                field="field",
            )
        warnings = [
            f"{self.field.name!r} disappears from the API and the admin at once and writes "
            "naming it are refused; its data is kept and restore_field brings it back"
        ]
        steps = []
        if self.field.required:
            warnings.append("the column accepts empty values while the field is dropped")
            steps.append(
                Step(
                    f"make {self.field.column} optional",
                    partial(
                        _set_nullable,
                        context.schema,
                        self.collection.table,
                        self.field.column,
                        True,
                    ),
                )
            )
        return Plan(steps=steps, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=False)
        existing = [a.id for a in self.collection.field_aliases if a.field_id == self.field.id]
        return {**impact, "old_names": await inspector.alias_usage(existing)}

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return {"field": self.field.name, "is_deleted": False}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.update_field(self.field.id, is_deleted=True, deleted_at=writer.now)
        purge_from = writer.now + timedelta(
            days=self.context.catalog.project.settings.purge_retention_days
        )
        return {
            "collection": self.collection.name,
            "field": self.field.name,
            "is_deleted": True,
            "purge_possible_from": purge_from.isoformat(),
        }


def dropped_field(context: OpContext, collection: CollectionDef, name: str) -> FieldDef:
    field = collection.field(name)
    if field is None:
        raise NotFound(f"field {name!r} not found", code="field_not_found", field="field")
    if not field.is_deleted:
        raise Conflict(f"field {name!r} is not dropped", code="not_dropped", field="field")
    return field


class RestoreFieldArgs(FieldArgs):
    required: bool | None = Field(
        default=None, description="restore as required or optional; default: as it was"
    )


class RestoreField(DdlOperation):
    """Bring a soft-dropped field back, with its data."""

    name = "restore_field"
    label = "Restore field"
    Args = RestoreFieldArgs

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection)
        self.field = dropped_field(context, self.collection, self.args.field)
        alias = self.collection.live_field_aliases(context.now).get(self.field.name)
        if alias is not None:
            raise Conflict(
                f"{self.field.name!r} is now an old name of {alias[0].name!r}; retire it first",
                code="alias_name",
                field="field",
            )
        self.required = self.field.required if self.args.required is None else self.args.required
        steps = []
        if self.required:
            steps.append(
                Step(
                    f"make {self.field.column} required again",
                    partial(
                        _set_nullable,
                        self.context.schema,
                        self.collection.table,
                        self.field.column,
                        False,
                    ),
                )
            )
        return Plan(
            steps=steps,
            warnings=[f"{self.field.name!r} returns to the API with the data it had"],
        )

    async def preflight(self, inspector: SchemaInspector) -> None:
        if not self.required:
            return
        empty = await inspector.empty_values(self.collection, self.field.column)
        if empty:
            raise ValidationFailed(
                f"{empty} records were written without {self.field.name!r} while it was "
                "dropped; restore it with required: false, then fill them in",
                code="has_empty_values",
                field="required",
            )

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.update_field(
            self.field.id, is_deleted=False, deleted_at=None, required=self.required
        )
        return {"collection": self.collection.name, "field": self.field.name, "is_deleted": False}


class PurgeFieldArgs(FieldArgs):
    confirm: str = Field(description="must be exactly '<collection>.<field>'")


def check_retention(context: OpContext, deleted_at: datetime | None, what: str) -> None:
    days = context.catalog.project.settings.purge_retention_days
    ready = (deleted_at or context.now) + timedelta(days=days)
    if ready > context.now:
        raise Conflict(
            f"{what} was dropped less than {days} days ago; it can be purged from "
            f"{ready:%Y-%m-%d %H:%M} UTC",
            code="retention_window",
        )


class PurgeField(DdlOperation):
    """Physically drop a soft-dropped field's column (admins only, confirmed, after the
    retention window, and only when nothing depends on the column)."""

    name = "purge_field"
    label = "Purge field"
    Args = PurgeFieldArgs
    admin_only = True

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection, include_deleted=True)
        self.field = dropped_field(context, self.collection, self.args.field)
        expected = f"{self.collection.name}.{self.field.name}"
        if self.args.confirm != expected:
            raise ValidationFailed(
                f"purging deletes the data for good; confirm with {expected!r}",
                code="confirmation_required",
                field="confirm",
            )
        check_retention(context, self.field.deleted_at, f"field {self.field.name!r}")
        step = Step(
            f"drop column {self.field.column}",
            partial(_drop_column, context.schema, self.collection.table, self.field.column),
        )
        return Plan(steps=[step], warnings=[f"the data of {expected} is deleted for good"])

    async def preflight(self, inspector: SchemaInspector) -> None:
        own_index = f"index {unique_index_name(self.collection.table, [self.field.column])}"
        dependents = [
            dependent
            for dependent in await inspector.column_dependents(self.collection, self.field.column)
            if dependent != own_index
        ]
        if dependents:
            raise Conflict(
                f"{self.field.name!r} cannot be purged while these depend on it: "
                + "; ".join(dependents),
                code="has_dependents",
                field="field",
            )

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return self.field.describe()

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.delete_field(self.field.id)
        return {"collection": self.collection.name, "field": self.field.name, "purged": True}


class CollectionArgs(_Args):
    collection: str


class RestoreCollection(DdlOperation):
    """Bring a soft-dropped collection back."""

    name = "restore_collection"
    label = "Restore collection"
    Args = CollectionArgs

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection, include_deleted=True)
        if not self.collection.is_deleted:
            raise Conflict(
                f"collection {self.collection.name!r} is not dropped", code="not_dropped"
            )
        alias = context.catalog.live_collection_aliases(context.now).get(self.collection.name)
        if alias is not None:
            raise Conflict(
                f"{self.collection.name!r} is now an old name of {alias[0].name!r}; "
                "retire that alias first",
                code="alias_name",
            )
        return Plan(warnings=[f"{self.collection.name!r} returns to the API with its records"])

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.update_collection(self.collection.id, is_deleted=False, deleted_at=None)
        return {"collection": self.collection.name, "is_deleted": False}


class PurgeCollectionArgs(CollectionArgs):
    confirm: str = Field(description="must repeat the collection's name")


class PurgeCollection(DdlOperation):
    """Drop a soft-dropped collection's table for good (admins only, confirmed, after the
    retention window)."""

    name = "purge_collection"
    label = "Purge collection"
    Args = PurgeCollectionArgs
    admin_only = True

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection, include_deleted=True)
        if not self.collection.is_deleted:
            raise Conflict(
                f"drop collection {self.collection.name!r} before purging it", code="not_dropped"
            )
        if self.args.confirm != self.collection.name:
            raise ValidationFailed(
                f"purging deletes every record for good; confirm with {self.collection.name!r}",
                code="confirmation_required",
                field="confirm",
            )
        check_retention(context, self.collection.deleted_at, f"collection {self.collection.name!r}")
        step = Step(
            f"drop table {self.collection.table}",
            partial(_drop_table, context.schema, self.collection.table),
        )
        return Plan(steps=[step], warnings=["every record of the collection is deleted for good"])

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

    def before(self) -> Any:
        return {
            "collection": self.collection.name,
            "fields": [f.name for f in self.collection.fields],
        }

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.delete_collection(self.collection.id)
        return {"collection": self.collection.name, "purged": True}


class RetireAliasArgs(_Args):
    alias_id: int


class RetireAlias(DdlOperation):
    """End an old name's grace period now."""

    name = "retire_alias"
    label = "Retire old name"
    Args = RetireAliasArgs

    @classmethod
    def lock_names(cls, args: BaseModel) -> list[str]:
        return []

    def plan(self) -> Plan:
        catalog = self.context.catalog
        candidates: list[AliasDef] = list(catalog.collection_aliases)
        for collection in catalog.collections.values():
            candidates.extend(collection.field_aliases)
        self.alias = next(
            (a for a in candidates if a.id == self.args.alias_id and a.live(self.context.now)), None
        )
        if self.alias is None:
            raise NotFound(f"no live alias {self.args.alias_id}", code="alias_not_found")
        return Plan(warnings=[f"requests using {self.alias.old_name!r} fail from now on"])

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return {"old_names": await inspector.alias_usage([self.alias.id])}

    def target(self) -> tuple[str, str]:
        return "alias", self.alias.old_name

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.retire_alias(self.alias.id)
        return {"alias": self.alias.old_name, "kind": self.alias.kind, "retired": True}


# -- type changes ----------------------------------------------------------------------


class ChangeFieldTypeArgs(FieldArgs):
    new_type: str
    options: dict[str, Any] = Field(default_factory=dict)


def target_type(context: OpContext, name: str, options: dict[str, Any]) -> FieldType:
    type_class = context.tessera.field_types.get(name)
    if type_class is None:
        raise ValidationFailed(
            f"unknown field type {name!r}", code="unknown_type", field="new_type"
        )
    try:
        return type_class(type_class.Options.model_validate(options))
    except ValidationError as error:
        problem = error.errors()[0]
        raise ValidationFailed(
            problem["msg"], code="invalid_option", field=f"options.{problem['loc'][0]}"
        ) from None


def json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def free_field_name(collection: CollectionDef, wanted: str) -> str:
    taken = {f.name for f in collection.fields} | {f.column for f in collection.fields}
    candidate, counter = wanted[:60], 2
    while candidate in taken or candidate in SYSTEM_COLUMNS:
        candidate = f"{wanted[:57]}_{counter}"
        counter += 1
    return candidate


class ChangeFieldType(DdlOperation):
    """Change a field's type in place when every value converts safely (integer → float,
    string → text, date → datetime, wider strings, and what type plugins declare);
    otherwise refuse, and preview the copy-and-swap wizard instead."""

    name = "change_field_type"
    label = "Change field type"
    Args = ChangeFieldTypeArgs

    def plan(self) -> Plan:
        context, args = self.context, self.args
        self.collection = context.collection(args.collection)
        self.field = live_field(context, self.collection, args.field)
        self.new_type = target_type(context, args.new_type, args.options)
        options = self.new_type.options.model_dump(mode="json")
        if args.new_type == self.field.type_name and options == dict(self.field.options):
            raise ValidationFailed(
                "the field already has this type", code="same_type", field="new_type"
            )
        self.options = options
        timezone = context.catalog.project.settings.timezone
        conversion = self.field.type.convert_to(
            self.new_type, sa.column(self.field.column), ConversionContext(timezone=timezone)
        )
        self.new_default = None
        if self.field.has_default:
            try:
                converted = self.field.type.convert_value(
                    self.field.type.coerce(self.field.default), self.new_type
                )
                self.new_default = json_value(converted)
                self.default_value = converted
            except FieldValueError:
                conversion = None
        self.safe = conversion is not None
        if conversion is None:
            return Plan(
                safe=False,
                warnings=[
                    f"{self.field.type_name} → {args.new_type} is not a safe conversion: some "
                    "values could fail or change. Use the guided steps instead."
                ],
                wizard=self.wizard(),
            )
        using = str(conversion.compile(dialect=_PG, compile_kwargs={"literal_binds": True}))
        schema, table, column = context.schema, self.collection.table, self.field.column
        steps = []
        if self.field.has_default:
            steps.append(
                Step("remove the old default", partial(_set_default, schema, table, column, None))
            )
        steps.append(
            Step(
                f"convert {column} to {args.new_type}",
                partial(_change_type, schema, table, column, self.new_type.sql_type(), using),
            )
        )
        if self.field.has_default:
            steps.append(
                Step(
                    "set the converted default",
                    partial(
                        _set_default,
                        schema,
                        table,
                        column,
                        server_default(self.new_type, self.default_value),
                    ),
                )
            )
        return Plan(steps=steps)

    def wizard(self) -> dict[str, Any]:
        field, collection = self.field, self.collection
        temporary = free_field_name(collection, f"{field.name}_{self.args.new_type}")
        return {
            "kind": "copy_and_swap",
            "steps": [
                {
                    "op": "add_field",
                    "args": {
                        "collection": collection.name,
                        "field": {
                            "name": temporary,
                            "type": self.args.new_type,
                            "options": self.options,
                        },
                    },
                    "description": f"add {temporary!r} of type {self.args.new_type}",
                },
                {
                    "op": "copy_field",
                    "args": {
                        "collection": collection.name,
                        "source": field.name,
                        "target": temporary,
                        "on_error": "fail",
                    },
                    "description": "copy every value, converted; its preview counts the values "
                    "that convert and shows a sample of those that would fail",
                },
                {
                    "op": "swap_fields",
                    "args": {
                        "collection": collection.name,
                        "field": field.name,
                        "replacement": temporary,
                    },
                    "description": f"{temporary!r} takes the name {field.name!r}; the old column "
                    "is kept, soft-dropped, so the change can be undone",
                },
            ],
        }

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=True)
        if not self.safe:
            impact["conversion"] = await analyse_conversion(
                inspector.conn, self.context.schema, self.collection, self.field, self.new_type
            )
        return impact

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return {"type": self.field.type_name, "options": dict(self.field.options)}

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        values: dict[str, Any] = {"type": self.args.new_type, "options": self.options}
        if self.field.has_default:
            values["default"] = self.new_default
        await writer.update_field(self.field.id, **values)
        return {
            "collection": self.collection.name,
            "field": self.field.name,
            "type": self.args.new_type,
            "options": self.options,
        }


async def analyse_conversion(
    conn: AsyncConnection,
    schema: str,
    collection: CollectionDef,
    field: FieldDef,
    target: FieldType,
) -> dict[str, Any]:
    """How many stored values convert to ``target``, with a sample of those that fail."""
    table = sa.table(collection.table, sa.column("id"), sa.column(field.column), schema=schema)
    convertible = failing = empty = 0
    sample: list[dict[str, Any]] = []
    async for batch in _batches(conn, table, field.column):
        for record_id, value in batch:
            if value is None:
                empty += 1
                continue
            try:
                field.type.convert_value(value, target)
                convertible += 1
            except FieldValueError as error:
                failing += 1
                if len(sample) < SAMPLE_FAILURES:
                    sample.append(
                        {"id": record_id, "value": json_value(value), "error": error.message}
                    )
    return {
        "convertible": convertible,
        "failing": failing,
        "empty": empty,
        "sample_failures": sample,
    }


async def _batches(conn: AsyncConnection, table: Any, column: str) -> Any:
    after = 0
    while True:
        rows = (
            await conn.execute(
                sa.select(table.c.id, table.c[column])
                .where(table.c.id > after)
                .order_by(table.c.id)
                .limit(COPY_BATCH)
            )
        ).all()
        if not rows:
            return
        yield [(row[0], row[1]) for row in rows]
        after = rows[-1][0]


class CopyFieldArgs(_Args):
    collection: str
    source: str
    target: str
    on_error: Literal["fail", "null"] = Field(
        default="fail", description="fail: refuse if any value cannot convert; null: leave it empty"
    )


class CopyField(DdlOperation):
    """Copy every value of one field into another, converting it (a wizard step)."""

    name = "copy_field"
    label = "Copy field values"
    Args = CopyFieldArgs

    def plan(self) -> Plan:
        context = self.context
        self.collection = context.collection(self.args.collection)
        self.source = live_field(context, self.collection, self.args.source)
        self.destination = live_field(context, self.collection, self.args.target)
        if self.source.id == self.destination.id:
            raise ValidationFailed(
                "source and target are the same field", code="same_field", field="target"
            )
        return Plan(
            warnings=[
                f"overwrites every value of {self.destination.name!r} with the converted value "
                f"of {self.source.name!r}"
            ]
        )

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=True)
        impact["conversion"] = await analyse_conversion(
            inspector.conn, self.context.schema, self.collection, self.source, self.destination.type
        )
        return impact

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.target}"

    async def migrate_data(self, conn: AsyncConnection) -> None:
        schema = self.context.schema
        source, destination = self.source, self.destination
        table = sa.table(
            self.collection.table,
            sa.column("id"),
            sa.column(source.column),
            sa.column(destination.column, destination.type.sql_type()),
            schema=schema,
        )
        update = (
            table.update()
            .where(table.c.id == sa.bindparam("record_id"))
            .values({destination.column: sa.bindparam("converted")})
        )
        self.copied = self.failed = 0
        first_failure: dict[str, Any] | None = None
        async for batch in _batches(conn, table, source.column):
            changes = []
            for record_id, value in batch:
                converted = None
                if value is not None:
                    try:
                        converted = source.type.convert_value(value, destination.type)
                    except FieldValueError as error:
                        self.failed += 1
                        first_failure = first_failure or {"id": record_id, "error": error.message}
                        continue
                changes.append({"record_id": record_id, "converted": converted})
            if changes:
                await conn.execute(update, changes)
                self.copied += len(changes)
        if self.failed and self.args.on_error == "fail":
            raise ValidationFailed(
                f"{self.failed} values cannot be converted (first: record {first_failure['id']}: "
                f"{first_failure['error']}); fix them, or copy with on_error 'null'",
                code="conversion_failed",
            )

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        return {
            "collection": self.collection.name,
            "source": self.source.name,
            "target": self.destination.name,
            "copied": self.copied,
            "left_empty": self.failed,
        }


class SwapFieldsArgs(_Args):
    collection: str
    field: str
    replacement: str
    keep_as: str | None = Field(default=None, description="name for the old field (soft-dropped)")


class SwapFields(DdlOperation):
    """The replacement takes the field's name (and required/unique); the old field is kept
    under ``keep_as`` (default ``<field>_previous``), soft-dropped, so it can be restored."""

    name = "swap_fields"
    label = "Swap fields"
    Args = SwapFieldsArgs

    def plan(self) -> Plan:
        context = self.context
        schema = context.schema
        self.collection = context.collection(self.args.collection)
        self.field = live_field(context, self.collection, self.args.field)
        self.replacement = live_field(context, self.collection, self.args.replacement)
        if self.field.id == self.replacement.id:
            raise ValidationFailed(
                "a field cannot replace itself", code="same_field", field="replacement"
            )
        keep = self.args.keep_as or free_field_name(self.collection, f"{self.field.name}_previous")
        self.keep_as = check_name(keep, what="field", field="keep_as")
        self.keep_column = self.keep_as + self.field.type.column_suffix
        check_field_name_free(
            context, self.collection, self.keep_as, self.keep_column, self.field.id
        )
        self.new_column = self.field.name + self.replacement.type.column_suffix
        table = self.collection.table
        steps = [
            Step(
                f"rename {self.field.column} to {self.keep_column}",
                partial(_rename_column, schema, table, self.field.column, self.keep_column),
            ),
            Step(
                f"rename {self.replacement.column} to {self.new_column}",
                partial(_rename_column, schema, table, self.replacement.column, self.new_column),
            ),
        ]
        # The old field's index first: it frees the name the replacement's index takes.
        if self.field.unique:
            steps.append(
                unique_index_rename(schema, table, self.field.column, table, self.keep_column)
            )
        if self.replacement.unique:
            steps.append(
                unique_index_rename(schema, table, self.replacement.column, table, self.new_column)
            )
        if self.field.required:
            steps.append(
                Step(
                    f"make {self.keep_column} optional",
                    partial(_set_nullable, schema, table, self.keep_column, True),
                )
            )
            if not self.replacement.required:
                steps.append(
                    Step(
                        f"make {self.new_column} required",
                        partial(_set_nullable, schema, table, self.new_column, False),
                    )
                )
        if self.field.unique and not self.replacement.unique:
            steps.append(
                Step(
                    f"unique index on {self.new_column}",
                    partial(_create_unique, schema, table, self.new_column),
                )
            )
        warnings = [
            f"{self.replacement.name!r} becomes {self.field.name!r}; the old field is kept as "
            f"{self.keep_as!r}, soft-dropped (restore_field brings it back)"
        ]
        if policies_using(self.collection, self.field.name):
            warnings.append(f"policies naming {self.field.name!r} now compare the new values")
        return Plan(steps=steps, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        field, replacement = self.field, self.replacement
        await writer.update_field(
            field.id,
            name=self.keep_as,
            sql_column_name=self.keep_column,
            is_deleted=True,
            deleted_at=writer.now,
        )
        await writer.update_field(
            replacement.id,
            name=field.name,
            sql_column_name=self.new_column,
            display_name=field.display_name,
            required=field.required or replacement.required,
            is_unique=field.unique or replacement.unique,
        )
        await writer.repoint_field_aliases(field.id, replacement.id)
        return {
            "collection": self.collection.name,
            "field": field.name,
            "type": replacement.type_name,
            "previous_kept_as": self.keep_as,
        }


OPERATIONS: list[type[DdlOperation]] = [
    RenameCollection,
    RenameField,
    DropField,
    RestoreField,
    PurgeField,
    ChangeFieldType,
    CopyField,
    SwapFields,
    RestoreCollection,
    PurgeCollection,
    RetireAlias,
]


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(
        description="Schema evolution: renames with aliases, soft drops, safe type changes",
        requires=["schema.core"],
    )


@hookimpl
def register_ddl_operations() -> list[type[DdlOperation]]:
    return list(OPERATIONS)
