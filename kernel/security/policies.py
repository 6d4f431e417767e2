"""Collection policies: who may list, read, create, update and delete which records.

Each action has a rule: ``None`` (admins only), ``""`` (anyone, signed in or not) or an
expression such as ``owner = @auth.id or @auth.role = 'editor'``. For list, read, update
and delete the rule becomes part of the SQL ``WHERE``; for create it is evaluated on the
candidate record. Admins bypass policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from kernel.catalog.model import ACTIONS, FieldDef
from kernel.errors import ErrorItem, Forbidden, TesseraError, Unauthorized, ValidationFailed
from kernel.expr import Binder, Bound, ExpressionError, parse
from kernel.operators import Operator
from kernel.registry import Registry
from kernel.security.principal import Principal


class Access(Enum):
    ADMINS_ONLY = "admins_only"
    ANYONE = "anyone"


PolicyRule = Access | Bound


def policy_refusal(principal: Principal, reason: str) -> TesseraError:
    """The error for a policy that says no: a 401 ``unauthorized`` to a caller without
    credentials (signing in may change the answer), a 403 ``policy_denied`` to one whose
    credentials are not enough."""
    if principal.kind == "anonymous":
        return Unauthorized(f"{reason}; sign in or send an API key", code="unauthorized")
    return Forbidden(reason, code="policy_denied")


def bind_policy(
    rule: str | None, fields: Mapping[str, FieldDef], operators: Registry[Operator]
) -> PolicyRule:
    """The bound form of one rule; raises :class:`ExpressionError` for a bad expression."""
    if rule is None:
        return Access.ADMINS_ONLY
    if not rule.strip():
        return Access.ANYONE
    return Binder(fields, operators).bind(parse(rule))


def validate_policies(
    rules: Mapping[str, str | None],
    fields: Mapping[str, FieldDef],
    operators: Registry[Operator],
) -> dict[str, str | None]:
    """Check every action's rule against the collection; 422 naming each bad action."""
    problems = []
    checked: dict[str, str | None] = {}
    for action, rule in rules.items():
        if action not in ACTIONS:
            problems.append(
                ErrorItem("unknown_action", f"actions are {', '.join(ACTIONS)}", action)
            )
            continue
        if rule is not None and not isinstance(rule, str):
            problems.append(ErrorItem("invalid_rule", 'must be null, "" or an expression', action))
            continue
        try:
            bind_policy(rule, fields, operators)
        except ExpressionError as error:
            problems.append(ErrorItem("invalid_expression", str(error), action))
            continue
        checked[action] = rule
    if problems:
        raise ValidationFailed(items=problems)
    return checked
