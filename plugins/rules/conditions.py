"""Conditions of rules (``required_if``, record rules): the expression language, judged on
the record alone.

A condition names fields of its collection, compares them with literals and combines the
comparisons with and/or/not. The parser already refuses calls, loops and oversized input;
here a condition is also refused when it reads the request (``@auth``, ``@now``), since the
same record must always give the same verdict, whoever writes it and whenever.
"""

from __future__ import annotations

from collections.abc import Mapping

from kernel import FieldDef, Operator, Registry, RuleDefinitionError
from kernel.expr import Binder, Bound, ExpressionError, context_names, parse

#: Longest condition text accepted.
MAX_CONDITION_LENGTH = 2000


def bind_condition(
    text: str, fields: Mapping[str, FieldDef], operators: Registry[Operator]
) -> Bound:
    """``text`` bound to the collection's ``fields``; :class:`RuleDefinitionError` says why
    it cannot be (syntax, unknown field, operator not for a type, request values)."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise RuleDefinitionError(f"a condition has at most {MAX_CONDITION_LENGTH} characters")
    try:
        node = parse(text)
        used = context_names(node)
        if used:
            names = ", ".join(f"@{name}" for name in sorted(used))
            raise RuleDefinitionError(
                f"a rule's condition judges the record alone; {names} cannot be used"
            )
        return Binder(fields, operators).bind(node)
    except ExpressionError as error:
        raise RuleDefinitionError(f"invalid condition: {error}") from None
