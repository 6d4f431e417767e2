"""Renames: ``rename_collection``, ``rename_field`` (each leaving an alias for a grace
period) and ``retire_alias`` (ending a grace period now)."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, Field

from kernel import (
    AliasDef,
    CatalogWriter,
    DdlOperation,
    NotFound,
    Plan,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_name,
)
from plugins.schema.evolution.common import StrictArgs, derived_display_name, expiry, live_field
from plugins.schema.naming import check_collection_name_free, check_field_name_free
from plugins.schema.steps import rename_column, rename_table, unique_index_rename


class RenameCollectionArgs(StrictArgs):
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
            partial(rename_table, context.schema, self.collection.table, new),
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

    def changes(self) -> list[SchemaChange]:
        return [
            SchemaChange(
                "rename", self.collection.id, self.collection.name, new_name=self.args.new_name
            )
        ]

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
        return {"collection": new, "previous_name": old, "alias_expires_at": alias_expires}


class RenameFieldArgs(StrictArgs):
    collection: str
    field: str
    new_name: str
    display_name: str | None = Field(default=None, max_length=200)
    grace_days: int | None = Field(default=None, ge=0, le=3650)


class RenameField(DdlOperation):
    """Rename a field's column; the old name keeps working in reads, writes, filters and
    sorts as an alias for a while. Whatever is stored naming the field (policies,
    workflows, any plugin's references) is rewritten by its holder in the same transaction."""

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
        check_field_name_free(
            context, self.collection, new, self.new_column, field="new_name", field_id=self.field.id
        )
        self.own_alias = next(
            (
                alias
                for old, (target, alias) in self.collection.live_field_aliases(context.now).items()
                if old == new and target.id == self.field.id
            ),
            None,
        )
        self.expires_at = expiry(context, args.grace_days)
        warnings = []
        if self.expires_at > context.now:
            warnings.append(
                f"clients may keep using {self.field.name!r} until {self.expires_at:%Y-%m-%d}: "
                "reads return both keys, writes, filters and sorts accept the old one"
            )
        else:
            warnings.append(f"the old name {self.field.name!r} stops working at once")
        step = Step(
            f"rename column {self.field.column} to {self.new_column}",
            partial(
                rename_column,
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

    def changes(self) -> list[SchemaChange]:
        collection = self.collection
        return [
            SchemaChange(
                "rename", collection.id, collection.name, self.field.name, self.args.new_name
            )
        ]

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
        return {
            "collection": self.collection.name,
            "field": new,
            "previous_name": old,
            "alias_expires_at": alias_expires,
        }


class RetireAliasArgs(StrictArgs):
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
