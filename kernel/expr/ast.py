"""The expression language's syntax tree.

Values: :class:`FieldRef`, :class:`AuthRef`, :class:`Now`, :class:`Literal`,
:class:`Placeholder` (built by the query contract, never parsed) and :class:`ListValue`.
Conditions: :class:`Compare` (an operator applied to two values), :class:`And`,
:class:`Or`, :class:`Not`, and a boolean :class:`Literal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AUTH_ATTRIBUTES = ("id", "role", "email", "kind", "project")

#: Comparison symbols of the language and the operator each one names.
SYMBOL_OPERATORS = {
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "<>": "ne",
    ">": "gt",
    "<": "lt",
    ">=": "gte",
    "<=": "lte",
}
OPERATOR_SYMBOLS = {"eq": "=", "ne": "!=", "gt": ">", "lt": "<", "gte": ">=", "lte": "<="}


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str


@dataclass(frozen=True, slots=True)
class AuthRef:
    attribute: str


@dataclass(frozen=True, slots=True)
class Now:
    pass


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A value supplied per request under ``key`` (a parsed filter value). Statements built
    from expressions with placeholders compile once per shape, whatever the values."""

    key: str


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Literal | Placeholder, ...]


Value = FieldRef | AuthRef | Now | Literal | Placeholder


@dataclass(frozen=True, slots=True)
class Compare:
    """``left <operator> right``; ``operator`` is a registered operator's name."""

    operator: str
    left: Value
    right: Value | ListValue


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Compare | And | Or | Not | Literal


def field_names(node: Node) -> set[str]:
    """Every field an expression mentions."""
    if isinstance(node, Compare):
        return {side.name for side in (node.left, node.right) if isinstance(side, FieldRef)}
    if isinstance(node, And | Or):
        return set().union(*(field_names(item) for item in node.items))
    if isinstance(node, Not):
        return field_names(node.item)
    return set()


def context_names(node: Node) -> set[str]:
    """Every request value an expression reads (``auth.id``, ``now`` ...): what a
    condition that must judge a record alone, such as a validation rule, cannot use."""
    if isinstance(node, Compare):
        return {
            f"auth.{side.attribute}" if isinstance(side, AuthRef) else "now"
            for side in (node.left, node.right)
            if isinstance(side, AuthRef | Now)
        }
    if isinstance(node, And | Or):
        return set().union(*(context_names(item) for item in node.items))
    if isinstance(node, Not):
        return context_names(node.item)
    return set()


def rename_field(node: Node, old: str, new: str) -> Node:
    """The same expression with field ``old`` renamed to ``new``."""
    if isinstance(node, Compare):
        return Compare(node.operator, _rename(node.left, old, new), _rename(node.right, old, new))
    if isinstance(node, And):
        return And(tuple(rename_field(item, old, new) for item in node.items))
    if isinstance(node, Or):
        return Or(tuple(rename_field(item, old, new) for item in node.items))
    if isinstance(node, Not):
        return Not(rename_field(node.item, old, new))
    return node


def _rename(value: Any, old: str, new: str) -> Any:
    return FieldRef(new) if isinstance(value, FieldRef) and value.name == old else value
