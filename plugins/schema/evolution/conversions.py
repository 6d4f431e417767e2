"""Type changes: ``change_field_type`` in place when every value converts safely, else the
copy-and-swap wizard made of ``add_field``, ``copy_field`` and ``swap_fields``
(:mod:`plugins.schema.evolution.swaps`).

In place, the ``CHECK`` constraints of the rules around the field are dropped before the
``ALTER COLUMN ... TYPE`` and added again after it (PostgreSQL would otherwise check each
again, scanning, even when the type change itself rewrites nothing), so inside the op's
transaction each is validated by a scan holding the table's lock. When the conversion keeps
every stored value as it is — PostgreSQL changes the type without rewriting the table
(:func:`keeps_stored_values`: a character type to text or to one at least as long) — and
the table has ``ddl_concurrent_index_rows`` rows or more, that scan goes before the
transaction instead, reads and writes going on:

1. before the transaction, each rule's constraint is added ``NOT VALID`` on the column as
   it is, under a transient name, then validated (:mod:`kernel.ddl.prebuilt`):
   a *proof* that every stored record keeps the rule, and from then on every write must;
2. in the transaction (under ``ACCESS EXCLUSIVE`` from its first DDL statement to its commit),
   the old constraints and the proofs are dropped, the type changed, and the constraints
   added again ``NOT VALID`` — no scan.

Why this order: validating *after* the commit would report the change made before
knowing a stored record keeps the rule, and a record that breaks it would leave the
change made, with no way back but another change; validated before, such a record fails
the step, the step is undone and the op refused (``existing_records_break_rule``) with
nothing changed. Between the proof and the commit no write escapes a constraint: until the
transaction the proof (and the old constraint) refuse it; from the transaction's first
DDL statement on, nothing else writes to the table. So when the op reports success every
stored record keeps every rule and every write is checked; PostgreSQL still marks the
constraints ``NOT VALID`` (it was told by the proof, not by a scan of their own), which
changes nothing about what they refuse — ``VALIDATE CONSTRAINT`` on one succeeds at any
time. Values changed by the conversion (integer → float, date → datetime) could break a
rule the old values kept, and the table is rewritten under the lock anyway: those
conversions validate inside the transaction, as smaller tables do.

``copy_field`` copies inside its transaction however large the table: see
:class:`CopyField`.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from functools import partial
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field, ValidationError
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
    ProvesBeforehand,
    SchemaChange,
    SchemaInspector,
    Step,
    ValidationFailed,
    compiled_condition,
    server_default,
)
from plugins.schema.evolution.carried_rules import CarriedRules
from plugins.schema.evolution.common import FieldArgs, StrictArgs, free_field_name, live_field
from plugins.schema.steps import (
    change_type,
    set_default,
)

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


def keeps_stored_values(old: sa.types.TypeEngine[Any], new: sa.types.TypeEngine[Any]) -> bool:
    """Whether a plain cast from SQL type ``old`` to ``new`` keeps every stored value as it
    is, so that PostgreSQL changes a column's type without rewriting the table (nor its
    indexes): a character type to text, or to a character type at least as long. Other
    conversions are taken to rewrite it."""
    character = (sa.String, sa.Text)
    if type(old) not in character or type(new) not in character:
        return False
    if type(new) is sa.Text or new.length is None:
        return True
    return type(old) is sa.String and old.length is not None and new.length >= old.length


def json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


class ChangeFieldType(ProvesBeforehand, DdlOperation):
    """Change a field's type in place when every value converts safely (integer → float,
    string → text, date → datetime, wider strings, and what type plugins declare);
    otherwise refuse, and preview the copy-and-swap wizard instead. On a large table, a
    conversion that keeps every stored value has its rules proven before its transaction
    (``proofs``; see the module's docstring)."""

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
        self.keeps_values = False
        self.proofs = []
        self.build = {"concurrently": context.concurrent_done}
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
        using = compiled_condition(conversion)
        schema, table, column = context.schema, self.collection.table, self.field.column
        new_sql = self.new_type.sql_type()
        self.keeps_values = using == compiled_condition(
            sa.cast(sa.column(column), new_sql)
        ) and keeps_stored_values(self.field.type.sql_type(), new_sql)
        if self.keeps_values:
            _, checks = self.carried.prebuilt()
            self.proofs = [dataclasses.replace(check, name=None) for check in checks]
        steps = self.carried.drop_steps()
        if context.concurrent_done:  # validated before; dropped before the type change
            steps += [proof.swap_in() for proof in self.proofs]
        if self.field.has_default:
            steps.append(
                Step("remove the old default", partial(set_default, schema, table, column, None))
            )
        steps.append(
            Step(
                f"convert {column} to {args.new_type}",
                partial(change_type, schema, table, column, new_sql, using),
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
        validate = not context.concurrent_done
        return Plan(steps=steps + self.carried.create_steps(validate=validate))

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
        """Besides the table's size (and whether the conversion rewrites it): for a safe
        conversion, the stored records that break the rules bound again (none read when
        validated proofs say so) and which way their constraints are checked
        (``index_build``); else how many values convert."""
        impact = await inspector.impact(self.collection, rewrite=not self.keeps_values)
        if not self.safe:
            impact["conversion"] = await analyse_conversion(
                inspector.conn, self.context.schema, self.collection, self.field, self.new_type
            )
        else:
            proven = self.context.concurrent_done
            impact["rules"] = await self.carried.impact(inspector, proven=proven)
            impact["index_build"] = self.build
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
    """Copy every value of one field into another, converting it (a wizard step).

    The copy runs inside the op's transaction, in batches of ``COPY_BATCH`` records, on a
    large table too. It changes no column, so it takes no table lock that blocks reads or
    inserts; it holds the lock of each record it copied until its commit (a write to such
    a record waits for the commit). It is not moved before the transaction, in batches
    committed one by one, because:

    * a failed copy must leave the target as it was, and batches already committed would
      have overwritten its values for good (``on_error: "fail"`` refuses once any value
      does not convert, which the last batch may find);
    * values are converted by the field types in Python
      (:meth:`kernel.FieldType.convert_value`), so no trigger could convert a write
      arriving during the copy;
      catching those writes up afterwards needs a mark of every changed record that
      writes bypassing the API (SQL) do not leave.

    A record written after the copy read it (or created after the last batch) keeps the
    target's value as written; as for records written after the copy, a client moving to
    the new field writes both until the swap, or copies again."""

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
