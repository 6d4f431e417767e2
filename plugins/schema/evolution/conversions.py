"""Type changes: ``change_field_type`` in place when every value converts safely, else the
copy-and-swap wizard made of ``add_field``, ``copy_field`` and ``swap_fields``
(:mod:`plugins.schema.evolution.swaps`)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from functools import partial
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field, ValidationError
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel import (
    CatalogWriter,
    CollectionDef,
    ConversionContext,
    DdlOperation,
    FieldDef,
    FieldType,
    FieldValueError,
    OpContext,
    Plan,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    server_default,
)
from plugins.schema.evolution.carried_rules import CarriedRules
from plugins.schema.evolution.common import FieldArgs, StrictArgs, free_field_name, live_field
from plugins.schema.steps import (
    change_type,
    set_default,
)

_PG = postgresql.dialect()
SAMPLE_FAILURES = 10
COPY_BATCH = 5000


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
        converted = dataclasses.replace(
            self.field, type=self.new_type, type_name=args.new_type, options=options
        )
        if conversion is None:
            return Plan(
                safe=False,
                warnings=[
                    f"{self.field.type_name} → {args.new_type} is not a safe conversion: some "
                    "values could fail or change. Use the guided steps instead.",
                    *self._rules_that_cannot_follow(converted),
                ],
                wizard=self.wizard(),
            )
        self.carried = CarriedRules(context, self.collection, self.field, converted)
        using = str(conversion.compile(dialect=_PG, compile_kwargs={"literal_binds": True}))
        schema, table, column = context.schema, self.collection.table, self.field.column
        steps = self.carried.drop_steps()
        if self.field.has_default:
            steps.append(
                Step("remove the old default", partial(set_default, schema, table, column, None))
            )
        steps.append(
            Step(
                f"convert {column} to {args.new_type}",
                partial(change_type, schema, table, column, self.new_type.sql_type(), using),
            )
        )
        if self.field.has_default:
            steps.append(
                Step(
                    "set the converted default",
                    partial(
                        set_default,
                        schema,
                        table,
                        column,
                        server_default(self.new_type, self.default_value),
                    ),
                )
            )
        return Plan(steps=steps + self.carried.create_steps())

    def _rules_that_cannot_follow(self, converted: FieldDef) -> list[str]:
        """Warnings for the rules the guided steps' swap will refuse to carry."""
        try:
            CarriedRules(self.context, self.collection, self.field, converted)
        except ValidationFailed as error:
            return [f"{item.message} (swap_fields refuses until then)" for item in error.items]
        return []

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
        else:
            impact["rules"] = await self.carried.impact(inspector)
        return impact

    def refuse(self, impact: dict[str, Any]) -> None:
        self.carried.refuse(impact["rules"])

    def target(self) -> tuple[str, str]:
        return "field", f"{self.args.collection}.{self.args.field}"

    def before(self) -> Any:
        return {"type": self.field.type_name, "options": dict(self.field.options)}

    def changes(self) -> list[SchemaChange]:
        """What names the field now compares values of another type."""
        collection = self.collection
        return [SchemaChange("change_type", collection.id, collection.name, self.field.name)]

    async def write_catalog(self, writer: CatalogWriter) -> dict[str, Any]:
        values: dict[str, Any] = {"type": self.args.new_type, "options": self.options}
        if self.field.has_default:
            values["default"] = self.new_default
        await writer.update_field(self.field.id, **values)
        await self.carried.write(writer)
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


class CopyFieldArgs(StrictArgs):
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
