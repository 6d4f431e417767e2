"""``swap_fields``: the last step of the copy-and-swap wizard of a type change. The
replacement takes the field's name, its required/unique flags and its rules
(:mod:`plugins.schema.evolution.carried_rules`); the old field is kept, soft-dropped.

The swap builds what the replacement needs and lacks: the field's unique index, the
compound unique indexes of record rules that name the field, the ``CHECK`` constraints
of the rules it carries, and a scan proving it has a value in every record when it
becomes required. Inside the op's transaction each of those holds the table's lock for
the length of a scan or a build. On a table of ``ddl_concurrent_index_rows`` rows or more
(the planner's estimate) they are built before the transaction instead, writes going on
(:mod:`kernel.ddl.prebuilt`), and the transaction only renames them — and
``SET NOT NULL`` skips its scan, a validated ``CHECK (column IS NOT NULL)`` proving it. A
build that fails, or a transaction that fails after it, is undone: tables and catalog are
as before. Smaller tables get them inside the transaction.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from pydantic import Field

from kernel import (
    CatalogWriter,
    ConcurrentStep,
    DdlOperation,
    Plan,
    PrebuiltCheck,
    PrebuiltIndex,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    build_before,
    build_steps,
    check_name,
    refuse_duplicates,
    refuse_missing,
    transient_name,
    unique_index_name,
)
from plugins.schema.evolution.carried_rules import CarriedRules
from plugins.schema.evolution.common import StrictArgs, free_field_name, live_field
from plugins.schema.evolution.prebuilt import value_proof
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
        self.needs_index = self.field.unique and not self.replacement.unique
        self.needs_value = self.field.required and not self.replacement.required
        self.indexes, self.checks = self._prebuilt()
        self.build: dict[str, Any] = {"concurrently": context.concurrent_done}
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
        if self.needs_value:
            steps.append(
                Step(
                    f"make {self.new_column} required",
                    partial(set_nullable, schema, table, self.new_column, False),
                )
            )
        if context.concurrent_done:  # built before the transaction; preflight checks them
            steps += [item.swap_in() for item in [*self.indexes, *self.checks]]
        else:
            if self.needs_index:
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

    def _prebuilt(self) -> tuple[list[PrebuiltIndex], list[PrebuiltCheck]]:
        """What the swap builds, as it would be built before the transaction: the carried
        rules' indexes and constraints, the field's unique index, the proof that the
        replacement has a value in every record."""
        schema, table = self.context.schema, self.collection.table
        collection_id, column = self.collection.id, self.replacement.column
        indexes, checks = self.carried.prebuilt()
        if self.needs_index:
            name = unique_index_name(table, [self.new_column])
            indexes.insert(
                0,
                PrebuiltIndex(
                    schema,
                    table,
                    name,
                    transient_name(collection_id, name, column),
                    [column],
                    self.field.name,
                ),
            )
        if self.needs_value:
            checks.append(
                value_proof(schema, table, collection_id, column, self.new_column, self.field.name)
            )
        return indexes, checks

    async def concurrent_steps(self, inspector: SchemaInspector) -> list[ConcurrentStep]:
        """The indexes and constraints the swap builds, built before its transaction on a
        table of ``ddl_concurrent_index_rows`` rows or more (estimated)."""
        wanted = bool(self.indexes or self.checks)
        self.build = await build_before(self.context, inspector, self.collection, wanted)
        return build_steps(self.indexes, self.checks) if self.build["concurrently"] else []

    async def preflight(self, inspector: SchemaInspector) -> None:
        if self.context.concurrent_done:
            await refuse_missing(inspector, self.collection, [*self.indexes, *self.checks])

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        """Besides the table's size: the stored records that break the carried rules,
        collide under the field's unique index or have no value for a required field —
        none when the transaction follows a build that proved it (nothing is read) — and
        which way the build goes (``index_build``)."""
        impact = await inspector.impact(self.collection, rewrite=False)
        proven = self.context.concurrent_done
        impact["rules"] = await self.carried.impact(inspector, proven=proven)
        column = self.replacement.column
        if self.needs_index and not proven:
            impact["duplicates"] = await inspector.duplicates(
                self.collection, {self.field.name: column}
            )
        if self.needs_value and not proven:
            impact["empty_values"] = await inspector.empty_values(self.collection, column)
        return {**impact, "index_build": self.build}

    def refuse(self, impact: dict[str, Any]) -> None:
        self.carried.refuse(impact["rules"])
        if "duplicates" in impact:
            refuse_duplicates([self.field.name], impact["duplicates"])
        if impact.get("empty_values"):
            raise ValidationFailed(
                f"{impact['empty_values']} records have no value in {self.replacement.name!r}, "
                f"and {self.field.name!r} is required: fill them in, then swap again",
                code="has_empty_values",
                field="replacement",
            )

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
