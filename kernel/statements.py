"""Statements built with SQLAlchemy Core, compiled once, executed many times on asyncpg.

A statement's shape (which columns, which filters, which operators) is fixed when it is
built; every value is a bind parameter. Parameters are either *static* (a literal from a
policy, known at build time) or *dynamic* (``auth.id``, ``now``, a filter value, a cursor
value), supplied per request from a context dict. Compiling to PostgreSQL text happens once
per shape; asyncpg then prepares and caches the statement per connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import dialect as AsyncpgDialect
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

DIALECT = AsyncpgDialect()


@dataclass(frozen=True, slots=True)
class Param:
    """One bind parameter: a static ``value``, or a ``source`` key read from the context."""

    name: str
    value: Any = None
    source: str | None = None
    convert: Callable[[Any], Any] | None = None

    def resolve(self, context: Mapping[str, Any]) -> Any:
        if self.source is None:
            return self.value
        value = context.get(self.source)
        if self.convert is not None and value is not None:
            return self.convert(value)
        return value


class Params:
    """Collects the bind parameters of one statement under unique names."""

    def __init__(self) -> None:
        self.by_name: dict[str, Param] = {}

    def _add(self, param: Param, sql_type: TypeEngine[Any]) -> BindParameter[Any]:
        self.by_name[param.name] = param
        return sa.bindparam(param.name, type_=sql_type)

    def static(self, value: Any, sql_type: TypeEngine[Any]) -> BindParameter[Any]:
        """A parameter whose value is known now (a literal in a policy)."""
        return self._add(Param(f"s{len(self.by_name)}", value=value), sql_type)

    def dynamic(
        self,
        source: str,
        sql_type: TypeEngine[Any],
        convert: Callable[[Any], Any] | None = None,
    ) -> BindParameter[Any]:
        """A parameter read from the per-request context under ``source``.

        One source used several times gets one parameter per use (SQL needs a type per use).
        ``convert`` adapts the context value to the column (``None`` passes through).
        """
        return self._add(Param(f"d{len(self.by_name)}", source=source, convert=convert), sql_type)


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """PostgreSQL text with ``$n`` placeholders and how to fill them from a context."""

    sql: str
    params: tuple[Param, ...]

    def args(self, context: Mapping[str, Any]) -> list[Any]:
        return [param.resolve(context) for param in self.params]


def compile_statement(statement: sa.ClauseElement, params: Params) -> CompiledStatement:
    """Compile ``statement`` for asyncpg. Parameters come from ``params``; any other bound
    value in the statement (a constant an operator wrote, like ``> 0``) stays static."""
    compiled = statement.compile(dialect=DIALECT)
    order = tuple(
        params.by_name.get(name) or Param(name, value=compiled.binds[name].effective_value)
        for name in compiled.positiontup or ()
    )
    return CompiledStatement(compiled.string, order)
