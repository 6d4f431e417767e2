"""SQLAlchemy columns and constraints for fields, as the DDL steps create them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import partial
from typing import Any

import orjson
import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from kernel.catalog.model import CollectionDef
from kernel.catalog.names import constraint_name
from kernel.catalog.rules import ResolvedRule
from kernel.catalog.specs import ResolvedField
from kernel.ddl.inspect import SchemaInspector
from kernel.ddl.operation import Step
from kernel.errors import Conflict
from kernel.fields import FieldType

_PG = postgresql.dialect()


def server_default(field_type: FieldType, value: Any) -> sa.TextClause:
    """``CAST('<value>' AS <type>)`` for a column default, quoted by SQLAlchemy."""
    sql_type = field_type.sql_type()
    if isinstance(sql_type, JSONB):
        text = orjson.dumps(value).decode()
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(value).decode()
    expression = sa.cast(sa.literal(text, sa.Text()), sql_type)
    return sa.text(str(expression.compile(dialect=_PG, compile_kwargs={"literal_binds": True})))


def field_column(field: ResolvedField) -> sa.Column:
    """The column of a new field (uniqueness is a separate, named index)."""
    return sa.Column(
        field.column,
        field.field_type.sql_type(),
        nullable=not field.required,
        server_default=(
            server_default(field.field_type, field.default_value) if field.has_default else None
        ),
    )


def system_columns() -> list[sa.Column]:
    """``id``, ``created_at``, ``updated_at``: the columns every collection table starts with."""
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def unique_index_name(table: str, columns: list[str] | tuple[str, ...]) -> str:
    return constraint_name("uq", table, columns)


def _create_check(
    schema: str, table: str, name: str, condition: Any, validate: bool, ops: Operations
) -> None:
    ops.create_check_constraint(
        name, table, condition, schema=schema, postgresql_not_valid=not validate
    )


def _drop_check(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_constraint(name, table, type_="check", schema=schema)


def check_steps(
    schema: str, table: str, rules: Iterable[ResolvedRule], *, validate: bool = True
) -> list[Step]:
    """A ``CHECK`` constraint for each rule with a database form
    (:meth:`kernel.rules.RuleType.check_constraint`), under the rule's constraint name.
    ``validate`` False: ``NOT VALID``, enforced on writes from now on but not checked
    against the stored rows."""
    return [
        Step(
            f"check constraint {rule.constraint} ({rule.type_name})",
            partial(_create_check, schema, table, rule.constraint, rule.condition, validate),
        )
        for rule in rules
        if rule.constraint is not None and rule.condition is not None
    ]


def drop_check_step(schema: str, table: str, name: str) -> Step:
    """Drop the ``CHECK`` constraint ``name`` (a rule that is replaced or removed)."""
    return Step(f"drop check constraint {name}", partial(_drop_check, schema, table, name))


async def count_breaking_rows(
    inspector: SchemaInspector,
    collection: CollectionDef,
    rules: Iterable[ResolvedRule],
    new_field: ResolvedField | None = None,
) -> list[dict[str, Any]]:
    """For each rule with a ``CHECK`` form: how many stored records break it (a preview's
    ``impact.constraints``). ``new_field`` is a field being added: its column reads as its
    default (or null) in every stored record."""
    source: sa.FromClause = sa.table(collection.table, schema=inspector.schema)
    if new_field is not None:
        sql_type = new_field.field_type.sql_type()
        value = new_field.default_value if new_field.has_default else None
        added = sa.cast(sa.literal(value, type_=sql_type), sql_type).label(new_field.column)
        source = sa.select(sa.text("*"), added).select_from(source).subquery()
    counted = []
    for rule in rules:
        if rule.condition is None:
            continue
        statement = sa.select(sa.func.count()).select_from(source).where(sa.not_(rule.condition))
        rows = (await inspector.conn.execute(statement)).scalar_one()
        counted.append({"rule": rule.type_name, "constraint": rule.constraint, "rows": rows})
    return counted


def refuse_breaking_rows(field: str, counted: list[dict[str, Any]]) -> None:
    """409 when stored records break a rule's constraint about to be installed (what
    :func:`count_breaking_rows` found)."""
    broken = [item for item in counted if item["rows"]]
    if broken:
        listed = "; ".join(f"{item['rows']} break {item['rule']}" for item in broken)
        raise Conflict(
            f"existing records break the new rules of {field} ({listed}): fix them, then "
            "apply again",
            code="existing_records_break_rule",
            field="rules",
        )


def refuse_duplicates(fields: list[str], duplicates: dict[str, Any]) -> None:
    """409 ``duplicates_exist`` when stored records collide on ``fields`` (what
    :meth:`kernel.ddl.inspect.SchemaInspector.duplicates` found), with a sample."""
    if not duplicates["groups"]:
        return
    sample = "; ".join(
        ", ".join(f"{name}={value!r}" for name, value in group["values"].items())
        + f" ({group['count']} records)"
        for group in duplicates["sample"]
    )
    raise Conflict(
        f"{duplicates['rows']} records share values of {', '.join(fields)} "
        f"({duplicates['groups']} groups, e.g. {sample}): make them unique, then apply again "
        "(the preview lists more)",
        code="duplicates_exist",
        field="unique",
    )
