"""Field rules as clients send them (``{type, value}``), checked against the rule types
the plugins registered and bound to the field's collection.

Schema operations call :func:`resolve_rules` when a field gets rules (create_collection,
add_field, a rule change): an unknown type, a bad value or a rule that cannot apply to its
field is a 422 naming the rule, so a broken rule never reaches the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.dialects import postgresql

from kernel.catalog.model import FieldDef, RuleDef
from kernel.catalog.names import MAX_IDENTIFIER
from kernel.errors import ErrorItem, ValidationFailed
from kernel.expr.parser import ExpressionError
from kernel.operators import Operator
from kernel.registry import Registry
from kernel.rules import RuleContext, RuleDefinitionError, RuleType

_PG = postgresql.dialect()
#: Most rules one field may carry.
MAX_FIELD_RULES = 20


class RuleSpec(BaseModel):
    """One field rule as a client sends it: ``{"type": "min_length", "value": 3}``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """A rule checked against its type and field: ``value`` normalised, and the ``CHECK``
    constraint (``constraint`` name, ``condition``) when the rule has a database form."""

    type_name: str
    value: Any
    constraint: str | None
    condition: sa.ColumnElement[bool] | None

    def definition(self) -> RuleDef:
        return RuleDef(self.type_name, self.value, self.constraint)


def build_rule(
    rule_types: Registry[RuleType],
    type_name: str,
    value: Any,
    field: FieldDef,
    fields: Mapping[str, FieldDef],
    operators: Registry[Operator],
) -> RuleType:
    """The rule instance bound to ``field``; raises :class:`RuleDefinitionError` (unknown
    type, bad value, not for this field type, a condition that does not bind)."""
    rule_class = rule_types.get(type_name)
    if rule_class is None:
        available = ", ".join(sorted(rule_types)) or "none"
        raise RuleDefinitionError(f"unknown rule type {type_name!r}; available: {available}")
    if rule_class.field_types and field.type_name not in rule_class.field_types:
        raise RuleDefinitionError(
            f"rule {type_name!r} does not apply to a {field.type_name} field "
            f"(it applies to {', '.join(sorted(rule_class.field_types))})"
        )
    takes_value = "value" in rule_class.Options.model_fields
    if not takes_value and value is not None:
        raise RuleDefinitionError(f"rule {type_name!r} takes no value")
    try:
        options = rule_class.Options.model_validate({"value": value} if takes_value else {})
    except ValidationError as error:
        problems = "; ".join(problem["msg"] for problem in error.errors())
        raise RuleDefinitionError(problems) from None
    rule = rule_class(options)
    rule.bind(RuleContext(field, fields, operators))
    return rule


def resolve_rules(
    specs: Sequence[RuleSpec],
    field: FieldDef,
    fields: Mapping[str, FieldDef],
    rule_types: Registry[RuleType],
    operators: Registry[Operator],
    *,
    where: str,
    taken: Iterable[str] = (),
) -> tuple[ResolvedRule, ...]:
    """Check every rule of ``field`` (``fields``: what conditions may name); one 422
    lists every bad rule under ``where`` (``fields[0].rules[1]``). ``taken`` are the
    constraint names the table already uses: each new ``CHECK`` gets a free one."""
    if len(specs) > MAX_FIELD_RULES:
        raise ValidationFailed(
            f"a field has at most {MAX_FIELD_RULES} rules", code="too_many_rules", field=where
        )
    used = set(taken)
    problems: list[ErrorItem] = []
    resolved: list[ResolvedRule] = []
    column = sa.column(field.column, field.type.sql_type()) if field.type else None
    for index, spec in enumerate(specs):
        try:
            rule = build_rule(rule_types, spec.type, spec.value, field, fields, operators)
        except RuleDefinitionError as error:
            problems.append(ErrorItem("invalid_rule", str(error), f"{where}[{index}]"))
            continue
        value = rule.options.model_dump(mode="json").get("value")
        condition = rule.check_constraint(column) if column is not None else None
        if condition is not None and not _renders_as_ddl(condition):
            condition = None
        name = None
        if condition is not None:
            name = _free_name(f"rule_{field.column}_{spec.type}", used)
            used.add(name)
        resolved.append(ResolvedRule(spec.type, value, name, condition))
    if problems:
        raise ValidationFailed(items=problems)
    return tuple(resolved)


def _renders_as_ddl(condition: sa.ColumnElement[bool]) -> bool:
    """Whether a ``CHECK`` condition compiles with its values inlined, as DDL needs (a
    value type PostgreSQL's dialect cannot write as a literal leaves the rule in Python)."""
    try:
        condition.compile(dialect=_PG, compile_kwargs={"literal_binds": True})
    except (sa.exc.CompileError, NotImplementedError, TypeError):
        return False
    return True


def _free_name(wanted: str, used: set[str]) -> str:
    base = wanted[:MAX_IDENTIFIER]
    candidate, counter = base, 2
    while candidate in used:
        suffix = f"_{counter}"
        candidate = base[: MAX_IDENTIFIER - len(suffix)] + suffix
        counter += 1
    return candidate


def rule_constraint_names(fields: Iterable[FieldDef]) -> set[str]:
    """The ``CHECK`` constraints the rules of ``fields`` installed."""
    return {rule.constraint for field in fields for rule in field.rules if rule.constraint}


def rule_field_names(rule_types: Registry[RuleType], rule: RuleDef) -> set[str]:
    """The fields a stored rule's value names (a condition's); none when its type is not
    registered or its value no longer parses."""
    rule_class = rule_types.get(rule.type_name)
    if rule_class is None:
        return set()
    try:
        return rule_class.field_names(rule.value)
    except ExpressionError:
        return set()
