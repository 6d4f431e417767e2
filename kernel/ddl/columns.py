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

from kernel.catalog.names import constraint_name
from kernel.catalog.rules import ResolvedRule
from kernel.catalog.specs import ResolvedField
from kernel.ddl.operation import Step
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


def _create_check(schema: str, table: str, name: str, condition: Any, ops: Operations) -> None:
    ops.create_check_constraint(name, table, condition, schema=schema)


def _drop_check(schema: str, table: str, name: str, ops: Operations) -> None:
    ops.drop_constraint(name, table, type_="check", schema=schema)


def check_steps(schema: str, table: str, rules: Iterable[ResolvedRule]) -> list[Step]:
    """A ``CHECK`` constraint for each rule with a database form
    (:meth:`kernel.rules.RuleType.check_constraint`), under the rule's constraint name."""
    return [
        Step(
            f"check constraint {rule.constraint} ({rule.type_name})",
            partial(_create_check, schema, table, rule.constraint, rule.condition),
        )
        for rule in rules
        if rule.constraint is not None and rule.condition is not None
    ]


def drop_check_step(schema: str, table: str, name: str) -> Step:
    """Drop the ``CHECK`` constraint ``name`` (a rule that is replaced or removed)."""
    return Step(f"drop check constraint {name}", partial(_drop_check, schema, table, name))
