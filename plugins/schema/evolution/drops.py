"""Drops and their undoing: ``drop_field`` (soft), ``restore_field``, ``purge_field``,
``restore_collection`` and ``purge_collection`` (admins only, confirmed, after the
retention window)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from pydantic import Field

from kernel import (
    CatalogWriter,
    CollectionDef,
    Conflict,
    DdlOperation,
    FieldDef,
    NotFound,
    OpContext,
    Plan,
    ProvesBeforehand,
    ResolvedRule,
    RuleSpec,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    check_steps,
    count_breaking_rows,
    drop_check_step,
    queryable_fields,
    resolve_rules,
    rule_constraint_names,
    unique_index_name,
)
from plugins.schema.evolution.common import CollectionArgs, FieldArgs
from plugins.schema.evolution.prebuilt import value_proof
from plugins.schema.steps import drop_column, drop_table, set_nullable


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
        warnings = [
            f"{self.field.name!r} disappears from the API and the admin at once and writes "
            "naming it are refused; its data is kept and restore_field brings it back"
        ]
        # Writes leave a dropped field empty: its rules' constraints would refuse them.
        own = [rule.constraint for rule in self.field.rules if rule.constraint]
        steps = [drop_check_step(context.schema, self.collection.table, name) for name in own]
        if own:
            warnings.append(
                "its rules are not enforced while it is dropped; restore_field installs their "
                "CHECK constraints again"
            )
        if self.field.required:
            warnings.append("the column accepts empty values while the field is dropped")
            steps.append(
                Step(
                    f"make {self.field.column} optional",
                    partial(
                        set_nullable,
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

    def changes(self) -> list[SchemaChange]:
        return [SchemaChange("drop", self.collection.id, self.collection.name, self.field.name)]

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


def restored_rules(
    context: OpContext, collection: CollectionDef, field: FieldDef
) -> tuple[ResolvedRule, ...]:
    """The rules of a dropped field, bound again as it comes back (a 422 names a rule that
    no longer can: its condition names a field dropped meanwhile)."""
    fields = {**queryable_fields(collection, context.now), field.name: field}
    fields.setdefault(field.column, field)
    own = {rule.constraint for rule in field.rules if rule.constraint}
    return resolve_rules(
        [RuleSpec(type=rule.type_name, value=rule.value) for rule in field.rules],
        field,
        fields,
        context.tessera.rule_types,
        context.tessera.operators,
        where="rules",
        taken=rule_constraint_names(collection.fields) - own,
    )


class RestoreFieldArgs(FieldArgs):
    required: bool | None = Field(
        default=None, description="restore as required or optional; default: as it was"
    )


class RestoreField(ProvesBeforehand, DdlOperation):
    """Bring a soft-dropped field back, with its data.

    Restored required, its column is set ``NOT NULL``, a scan of the table under the lock
    that blocks its reads and writes. On a table of ``ddl_concurrent_index_rows`` rows or
    more (estimated), a ``CHECK (column IS NOT NULL)`` is added ``NOT VALID`` and validated
    before the transaction instead, reads and writes going on
    (:mod:`kernel.ddl.prebuilt`): ``SET NOT NULL`` then skips its scan, the
    constraint proving it, and the transaction drops the constraint. From the moment it is
    added, a write that leaves the field empty is refused — as it is once the field is
    required again. A record without a value refuses the op (``has_empty_values``) with
    nothing changed, whichever way it goes."""

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
        self.rules = restored_rules(context, self.collection, self.field)
        schema, table, column = context.schema, self.collection.table, self.field.column
        self.proofs = (
            [value_proof(schema, table, self.collection.id, column, column, self.field.name)]
            if self.required
            else []
        )
        self.build = {"concurrently": context.concurrent_done}
        steps = []
        if self.required:
            steps.append(
                Step(
                    f"make {column} required again",
                    partial(set_nullable, schema, table, column, False),
                )
            )
        if context.concurrent_done:  # validated before the transaction; preflight checks it
            steps += [proof.swap_in() for proof in self.proofs]
        # Records written while the field was dropped have no value in it: the constraints
        # bind writes from now on, and the preview counts the stored records they would refuse.
        steps += check_steps(schema, table, self.rules, validate=False)
        return Plan(
            steps=steps,
            warnings=[f"{self.field.name!r} returns to the API with the data it had"],
        )

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        """The stored records that break the restored rules (``constraints``), those with
        no value when it returns required (``empty_values``: none read when a validated
        proof says so) and which way ``SET NOT NULL`` goes (``index_build``)."""
        breaking = await count_breaking_rows(inspector, self.collection, self.rules)
        impact: dict[str, Any] = {"constraints": breaking, "index_build": self.build}
        if self.required and not self.context.concurrent_done:
            impact["empty_values"] = await inspector.empty_values(
                self.collection, self.field.column
            )
        return impact

    def refuse(self, impact: dict[str, Any]) -> None:
        empty = impact.get("empty_values")
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
        await writer.set_field_rules(self.field.id, [rule.definition() for rule in self.rules])
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
            partial(drop_column, context.schema, self.collection.table, self.field.column),
        )
        return Plan(steps=[step], warnings=[f"the data of {expected} is deleted for good"])

    async def preflight(self, inspector: SchemaInspector) -> None:
        # What goes with the column: its unique index and its own rules' CHECK constraints.
        own = {f"index {unique_index_name(self.collection.table, [self.field.column])}"} | {
            f"constraint {rule.constraint}" for rule in self.field.rules if rule.constraint
        }
        dependents = [
            dependent
            for dependent in await inspector.column_dependents(self.collection, self.field.column)
            if dependent not in own
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

    def changes(self) -> list[SchemaChange]:
        return [SchemaChange("purge", self.collection.id, self.collection.name, self.field.name)]

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.delete_field(self.field.id)
        return {"collection": self.collection.name, "field": self.field.name, "purged": True}


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
            partial(drop_table, context.schema, self.collection.table),
        )
        return Plan(steps=[step], warnings=["every record of the collection is deleted for good"])

    async def impact(self, inspector: SchemaInspector) -> dict[str, Any]:
        return await inspector.impact(self.collection, rewrite=False)

    def before(self) -> Any:
        return {
            "collection": self.collection.name,
            "fields": [f.name for f in self.collection.fields],
        }

    def changes(self) -> list[SchemaChange]:
        return [SchemaChange("purge", self.collection.id, self.collection.name)]

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        await writer.delete_collection(self.collection.id)
        return {"collection": self.collection.name, "purged": True}
