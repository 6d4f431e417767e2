"""``swap_fields``: the last step of the copy-and-swap wizard of a type change. The
replacement takes the field's name, its required/unique flags and its rules
(:mod:`plugins.schema.evolution.carried_rules`); the old field is kept, soft-dropped."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from pydantic import Field

from kernel import (
    CatalogWriter,
    DdlOperation,
    Plan,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_name,
)
from plugins.schema.evolution.carried_rules import CarriedRules
from plugins.schema.evolution.common import StrictArgs, free_field_name, live_field
from plugins.schema.naming import check_field_name_free
from plugins.schema.steps import (
    create_unique,
    rename_column,
    set_nullable,
    unique_index_rename,
)


class SwapFieldsArgs(StrictArgs):
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
            context,
            self.collection,
            self.keep_as,
            self.keep_column,
            field="keep_as",
            field_id=self.field.id,
        )
        self.new_column = self.field.name + self.replacement.type.column_suffix
        table = self.collection.table
        renamed = dataclasses.replace(
            self.replacement, name=self.field.name, column=self.new_column
        )
        self.carried = CarriedRules(
            context, self.collection, self.field, renamed, replaced=self.replacement
        )
        steps = [
            *self.carried.drop_steps(),
            Step(
                f"rename {self.field.column} to {self.keep_column}",
                partial(rename_column, schema, table, self.field.column, self.keep_column),
            ),
            Step(
                f"rename {self.replacement.column} to {self.new_column}",
                partial(rename_column, schema, table, self.replacement.column, self.new_column),
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
                    partial(set_nullable, schema, table, self.keep_column, True),
                )
            )
            if not self.replacement.required:
                steps.append(
                    Step(
                        f"make {self.new_column} required",
                        partial(set_nullable, schema, table, self.new_column, False),
                    )
                )
        if self.field.unique and not self.replacement.unique:
            steps.append(
                Step(
                    f"unique index on {self.new_column}",
                    partial(create_unique, schema, table, self.new_column),
                )
            )
        steps += self.carried.create_steps()
        warnings = [
            f"{self.replacement.name!r} becomes {self.field.name!r}, with its rules and unique "
            f"rules; the old field is kept as {self.keep_as!r}, soft-dropped without rules "
            "(restore_field brings it back)"
        ]
        return Plan(steps=steps, warnings=warnings)

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        impact = await inspector.impact(self.collection, rewrite=False)
        return {**impact, "rules": await self.carried.impact(inspector)}

    def refuse(self, impact: dict[str, Any]) -> None:
        self.carried.refuse(impact["rules"])

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def changes(self) -> list[SchemaChange]:
        """What names the field now compares values of another type."""
        collection = self.collection
        return [SchemaChange("change_type", collection.id, collection.name, self.field.name)]

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
        await self.carried.write(writer)
        return {
            "collection": self.collection.name,
            "field": field.name,
            "type": replacement.type_name,
            "previous_kept_as": self.keep_as,
        }
