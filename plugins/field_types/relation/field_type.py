"""The ``relation`` field type: a many-to-one reference to a record of another collection
(or the same one) of the project, stored as ``<field>_id bigint`` under a real foreign key.

Its extra DDL adds the foreign key (with the referential action PostgreSQL enforces) and an
index on the column. The names of both are left to PostgreSQL, which never reuses a taken
one, so a field renamed and then re-added under the old name cannot collide.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects import postgresql

from kernel import (
    FieldPlacement,
    FieldType,
    FieldValueError,
    ForeignKey,
    OnDelete,
    Step,
    ValidationFailed,
    check_name,
    parse_int64,
)

_QUOTE = postgresql.dialect().identifier_preparer.quote
#: ``on_delete`` as PostgreSQL spells it.
ACTIONS_SQL: dict[str, str] = {
    "restrict": "RESTRICT",
    "cascade": "CASCADE",
    "set_null": "SET NULL",
}


class RelationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(
        description="the linked collection (same project)",
        json_schema_extra={"x-choices": "collections"},  # the admin offers a choice
    )
    on_delete: OnDelete = Field(
        default="restrict", description="what deleting a referenced record does"
    )
    display_field: str | None = Field(
        default=None, description="the target's field the admin shows for a linked record"
    )
    reverse: str | None = Field(
        default=None,
        description="name under which the target includes the records pointing at it",
    )


def add_foreign_key(
    schema: str, table: str, column: str, target_table: str, on_delete: str, ops: Operations
) -> None:
    ops.execute(
        f"ALTER TABLE {_QUOTE(schema)}.{_QUOTE(table)} ADD FOREIGN KEY ({_QUOTE(column)}) "
        f"REFERENCES {_QUOTE(schema)}.{_QUOTE(target_table)} (id) "
        f"ON DELETE {ACTIONS_SQL[on_delete]}"
    )


def drop_foreign_key(schema: str, table: str, column: str, ops: Operations) -> None:
    """Drop the foreign key(s) on ``column``, whatever PostgreSQL named them."""
    relation = f"{_QUOTE(schema)}.{_QUOTE(table)}"
    literal = "'" + relation.replace("'", "''") + "'"
    ops.execute(
        "DO $$DECLARE name text; BEGIN FOR name IN SELECT conname FROM pg_constraint "
        f"WHERE contype = 'f' AND conrelid = {literal}::regclass AND conkey = ARRAY["
        f"(SELECT attnum FROM pg_attribute WHERE attrelid = {literal}::regclass AND attname = "
        f"'{column}')] LOOP EXECUTE 'ALTER TABLE {relation.replace(chr(39), chr(39) * 2)} "
        "DROP CONSTRAINT ' || quote_ident(name); END LOOP; END$$"
    )


def add_index(schema: str, table: str, column: str, ops: Operations) -> None:
    ops.execute(f"CREATE INDEX ON {_QUOTE(schema)}.{_QUOTE(table)} ({_QUOTE(column)})")


class RelationType(FieldType):
    name = "relation"
    label = "Link to a record"
    Options = RelationOptions
    operators = frozenset({"eq", "ne", "in", "is_null"})
    widget = "number"  # the id; a record picker is the admin's to add
    column_suffix = "_id"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    def coerce(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldValueError("invalid_type", "must be the id of a record (an integer)")
        if not 1 <= value <= 2**63 - 1:
            raise FieldValueError("not_found", f"has no record with id {value}")
        return value

    def parse_text(self, raw: str) -> int:
        return parse_int64(raw.strip())

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "format": "int64",
            "description": f"id of a record of {self.options.target}",
        }

    def foreign_key(self) -> ForeignKey:
        options = self.options
        return ForeignKey(options.target, options.on_delete, options.reverse, options.display_field)

    def extra_ddl(
        self, schema: str, table: str, column: str, placement: FieldPlacement
    ) -> list[Step]:
        target_table = self.target_table(table, placement)
        return [
            self.foreign_key_step(schema, table, column, target_table),
            Step(f"index on {column}", partial(add_index, schema, table, column)),
        ]

    def foreign_key_step(self, schema: str, table: str, column: str, target_table: str) -> Step:
        options = self.options
        return Step(
            f"foreign key {column} → {options.target}.id on delete {options.on_delete}",
            partial(add_foreign_key, schema, table, column, target_table, options.on_delete),
        )

    def target_table(self, table: str, placement: FieldPlacement) -> str:
        """The target's table, checking the options against the catalog: the target must
        be a live collection of the same project (or the field's own collection), with
        the display field and without a field named like the reverse name; ``set_null``
        needs an optional field. Raises ``ValidationFailed`` naming the option."""
        options = self.options
        where = f"{placement.where}.options"
        if options.on_delete == "set_null" and placement.required:
            raise ValidationFailed(
                "on_delete set_null needs an optional field (required is true)",
                code="set_null_required",
                field=f"{where}.on_delete",
            )
        if options.reverse is not None:
            check_name(options.reverse, what="reverse name", field=f"{where}.reverse")
            if _reverse_taken(placement, options.target, options.reverse):
                raise ValidationFailed(
                    f"{options.reverse!r} already names a field or a reverse relation of "
                    f"{options.target!r}",
                    code="reverse_taken",
                    field=f"{where}.reverse",
                )
        if options.target == placement.collection:
            return table
        target = placement.catalog.live_collections.get(options.target)
        if target is None:
            raise ValidationFailed(
                f"the target collection {options.target!r} does not exist in this project",
                code="unknown_target",
                field=f"{where}.target",
            )
        names = {name for name in target.live_fields} | {
            f.column for f in target.live_fields.values()
        }
        if options.display_field is not None and options.display_field not in names:
            raise ValidationFailed(
                f"{target.name!r} has no field {options.display_field!r}",
                code="unknown_field",
                field=f"{where}.display_field",
            )
        return target.table


def _reverse_taken(placement: FieldPlacement, target: str, reverse: str) -> bool:
    """Whether ``reverse`` already names a field of ``target`` (this new field included,
    for a self-relation) or another relation's reverse side there."""
    if target == placement.collection and reverse == placement.field:
        return True
    for collection in placement.catalog.live_collections.values():
        if collection.name == target and reverse in collection.live_fields:
            return True
        for field in collection.live_fields.values():
            if collection.name == placement.collection and field.name == placement.field:
                continue  # the field itself, when an op changes it
            key = field.type.foreign_key() if field.type is not None else None
            if key is not None and key.target == target and key.reverse == reverse:
                return True
    return False
