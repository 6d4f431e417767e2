"""The ``RuleType`` base class: a no-code validation rule on a field's value.

A rule is stored with its field as ``{type, value}``. The kernel builds one instance per
rule and catalog snapshot (``RuleType(Options.model_validate(value))``), binds it to the
collection once (:meth:`RuleType.bind`), then calls :meth:`RuleType.check` on every write.
Which rules exist is entirely up to plugins (hook ``register_rule_types``): the kernel
never names one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from kernel.catalog.model import FieldDef
    from kernel.operators import Operator
    from kernel.registry import Registry


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """Why a value breaks a rule: a stable ``code`` and a message for people."""

    code: str
    message: str


class RuleDefinitionError(ValueError):
    """A rule that cannot apply to its field (a condition naming an unknown field, a rule
    for another type); refused with a 422 when the rule is defined."""


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule is bound to: its ``field``, every field an expression may name
    (``fields``, system columns included) and the operators of the deployment."""

    field: FieldDef
    fields: Mapping[str, FieldDef]
    operators: Registry[Operator]


class RuleType(ABC):
    """Base class of validation rule types (``min_length``, ``pattern``, ``required_if`` ...).

    Class attributes: ``name`` (unique across plugins; it is also the ``code`` of the error
    a failing rule reports), ``label``, ``Options`` (pydantic model of the rule's
    ``value``: a model with one field ``value``, validated when the rule is defined, so a
    bad value is refused then and never at write time; a rule without a value uses
    :class:`kernel.NoOptions`), ``field_types`` (names of the field types the
    rule applies to; empty means every type) and ``checks_absent`` (``False``: the rule is
    skipped when the field has no value, the usual case; ``True``: it is checked anyway,
    as a conditional "required" must be). An instance is bound to one rule's options.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    field_types: ClassVar[frozenset[str]] = frozenset()
    checks_absent: ClassVar[bool] = False

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    def bind(self, context: RuleContext) -> None:
        """Prepare the rule for its field (parse and bind a condition). Raise
        :class:`RuleDefinitionError` when it cannot apply. The default does nothing."""

    @abstractmethod
    def check(self, value: Any, record: dict[str, Any]) -> RuleViolation | None:
        """Check ``value`` (already coerced; ``None`` only when ``checks_absent``) within
        the whole candidate ``record`` (column name → value; for an update, the stored
        record with the patch applied). Return ``None`` when it passes. Must be pure and
        deterministic."""

    def check_constraint(self, column: ColumnElement[Any]) -> ColumnElement[bool] | None:
        """The same rule as a SQL condition on ``column`` when it has an exact database
        form (installed as a ``CHECK`` constraint, so writes that bypass the API obey it
        too); ``None`` (the default) when it has none. Rows where the column is null must
        pass, as SQL's CHECK lets them."""
        return None

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema keywords (``minLength``, ``maximum``, ``pattern``, ``enum`` ...) that
        say this rule in the project's OpenAPI document, merged into the field's value
        schema in the create and update bodies. Only keywords that accept exactly the
        values the rule accepts; ``{}`` (the default) when there are none. Called on the
        bound instance."""
        return {}

    @classmethod
    def field_names(cls, value: Any) -> set[str]:
        """Names of other fields ``value`` refers to (a condition's fields), so renames
        rewrite them and drops list the rule as a dependent. Default: none."""
        return set()

    @classmethod
    def rename_field(cls, value: Any, old: str, new: str) -> Any:
        """``value`` with field ``old`` renamed to ``new``. Default: unchanged."""
        return value
