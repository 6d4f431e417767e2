"""The field rule types of ``rules.core``: min_length, max_length, min, max, pattern, enum
and required_if.

Each rule's ``value`` is validated when the rule is defined (a negative length, a pattern
RE2 cannot compile, an enum value the field's type refuses, a condition naming an unknown
field are 422s then), so checking a write only compares. Bounds are inclusive. Patterns run
on RE2, whose time is linear in the input whatever the pattern: user patterns never reach
Python's backtracking ``re``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import re2
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel import (
    FieldDef,
    FieldValueError,
    RuleContext,
    RuleDefinitionError,
    RuleType,
    RuleViolation,
)
from kernel.expr import (
    Bound,
    evaluate,
    field_names,
    parse,
    rename_field,
    to_fixed_sql,
    to_text,
)
from plugins.rules.conditions import bind_condition

TEXT_TYPES = frozenset({"string", "text"})
NUMBER_TYPES = frozenset({"integer", "float"})
#: Field types whose values an ``enum`` can also enforce as a CHECK constraint.
ENUM_CHECK_TYPES = TEXT_TYPES | NUMBER_TYPES
#: Field types whose enum is also a JSON Schema ``enum`` (the values as clients send them).
ENUM_SCHEMA_TYPES = ENUM_CHECK_TYPES | {"boolean"}
#: Longest pattern accepted, in characters.
MAX_PATTERN_LENGTH = 1000
#: Most values an enum may list.
MAX_ENUM_VALUES = 500
#: Memory RE2 may use for one compiled pattern (bytes); a pattern needing more is refused.
PATTERN_MAX_MEMORY = 8 << 20


class FieldRule(RuleType):
    """A rule that remembers its field's name, for messages a person can act on."""

    field_name: str = "value"

    def bind(self, context: RuleContext) -> None:
        self.field_name = context.field.name

    def violation(self, message: str) -> RuleViolation:
        return RuleViolation(self.name, f"{self.field_name} {message}")


class LengthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: int = Field(ge=0, le=10_000_000, description="a number of characters")


class Limit(FieldRule):
    """A bound, included, on the value or on its length: ``at_least`` says which side."""

    at_least: ClassVar[bool]
    #: The JSON Schema keyword of the bound (``minimum``, ``maxLength`` ...).
    keyword: ClassVar[str]
    #: How the message says it: "must have at least 3 characters", "must be at most 9".
    verb: ClassVar[str] = "be"
    unit: ClassVar[str] = ""

    def measure(self, value: Any) -> Any:
        return value

    def measure_sql(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return column

    def check(self, value: Any, record: dict[str, Any]) -> RuleViolation | None:
        measured, bound = self.measure(value), self.options.value
        if (measured >= bound) if self.at_least else (measured <= bound):
            return None
        side = "at least" if self.at_least else "at most"
        return self.violation(f"must {self.verb} {side} {bound}{self.unit}")

    def check_constraint(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        measured, bound = self.measure_sql(column), self.options.value
        return measured >= bound if self.at_least else measured <= bound

    def json_schema(self) -> dict[str, Any]:
        return {self.keyword: self.options.value}


class LengthLimit(Limit):
    Options = LengthOptions
    field_types = TEXT_TYPES
    verb = "have"
    unit = " characters"

    def measure(self, value: Any) -> Any:
        return len(value)

    def measure_sql(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.char_length(column)


class MinLength(LengthLimit):
    """At least ``value`` characters."""

    name = "min_length"
    label = "Minimum length"
    at_least = True
    keyword = "minLength"


class MaxLength(LengthLimit):
    """At most ``value`` characters."""

    name = "max_length"
    label = "Maximum length"
    at_least = False
    keyword = "maxLength"


class BoundOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: int | float = Field(description="the bound, included")

    @field_validator("value")
    @classmethod
    def _finite(cls, value: int | float) -> int | float:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if isinstance(value, int) and abs(value) > 2**63 - 1:
            raise ValueError("must fit in 64 bits")
        return value


class Min(Limit):
    """At least ``value`` (inclusive)."""

    name = "min"
    label = "Minimum"
    Options = BoundOptions
    field_types = NUMBER_TYPES
    at_least = True
    keyword = "minimum"


class Max(Limit):
    """At most ``value`` (inclusive)."""

    name = "max"
    label = "Maximum"
    Options = BoundOptions
    field_types = NUMBER_TYPES
    at_least = False
    keyword = "maximum"


def compile_pattern(text: str) -> Any:
    """The RE2 program for ``text``; ``ValueError`` when RE2 refuses it (bad syntax,
    constructs it does not support such as backreferences, too big)."""
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEMORY
    options.log_errors = False
    try:
        return re2.compile(text, options)
    except re2.error as error:
        reason = error.args[0] if error.args else "refused"
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ValueError(f"not a valid pattern: {reason}") from None


#: Escapes that mean the same in RE2 and ECMA-262 (not ``\s``: its spaces differ).
_PORTABLE_ESCAPES = frozenset("dDwWbBntrfv")


def ecma_portable(text: str) -> bool:
    """Whether an RE2 expression reads the same as an ECMA-262 one (JSON Schema's
    ``pattern``). Conservative: flags and named groups ``(?…)`` other than ``(?:``, escapes
    such as ``\\A \\z \\pL \\Q \\s \\x``, POSIX classes ``[:alpha:]`` and ``{,n}`` make
    it RE2-only."""
    if "[:" in text or "{," in text:
        return False
    index = 0
    while index < len(text):
        char = text[index]
        following = text[index + 1 : index + 2]
        if char == "\\":
            if following.isalnum() and following not in _PORTABLE_ESCAPES:
                return False
            index += 2
            continue
        if char == "(" and following == "?" and text[index + 2 : index + 3] != ":":
            return False
        index += 1
    return True


class PatternOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(
        min_length=1,
        max_length=MAX_PATTERN_LENGTH,
        description="an RE2 regular expression, searched anywhere in the value",
    )

    @field_validator("value")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_pattern(value)
        return value


class Pattern(FieldRule):
    """The value matches the RE2 expression ``value`` (anchor it with ``^…$`` to match
    the whole value)."""

    name = "pattern"
    label = "Pattern"
    Options = PatternOptions
    field_types = TEXT_TYPES

    def __init__(self, options: BaseModel) -> None:
        super().__init__(options)
        self.program = compile_pattern(options.value)

    def check(self, value: Any, record: dict[str, Any]) -> RuleViolation | None:
        if self.program.search(value) is not None:
            return None
        return self.violation(f"must match the pattern {self.options.value}")

    def json_schema(self) -> dict[str, Any]:
        """``pattern`` when the expression is written in the syntax RE2 shares with
        JSON Schema's ECMA-262 dialect; always ``x-re2-pattern``, the expression as run."""
        text = self.options.value
        schema: dict[str, Any] = {"x-re2-pattern": text}
        if ecma_portable(text):
            schema["pattern"] = text
        return schema


Scalar = str | int | float | bool


class EnumOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: list[Scalar] = Field(
        min_length=1, max_length=MAX_ENUM_VALUES, description="the allowed values"
    )


class Enum(FieldRule):
    """One of the listed values (each must be a value of the field's type)."""

    name = "enum"
    label = "Allowed values"
    Options = EnumOptions

    def bind(self, context: RuleContext) -> None:
        super().bind(context)
        field = context.field
        if field.type_name not in ENUM_CHECK_TYPES | {"boolean", "date", "datetime"}:
            raise RuleDefinitionError(f"enum does not apply to a {field.type_name} field")
        self.field_type_name = field.type_name
        try:
            self.allowed = [field.type.coerce(item) for item in self.options.value]
        except FieldValueError as error:
            raise RuleDefinitionError(f"an allowed value {error.message}") from None
        self.allowed_set = frozenset(self.allowed)

    def check(self, value: Any, record: dict[str, Any]) -> RuleViolation | None:
        if value in self.allowed_set:
            return None
        listed = ", ".join(str(item) for item in self.options.value)
        return self.violation(f"must be one of: {listed}")

    def check_constraint(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool] | None:
        if self.field_type_name not in ENUM_CHECK_TYPES:
            return None
        return column.in_(self.allowed)

    def json_schema(self) -> dict[str, Any]:
        # Dates are compared as values, not as the text a client sends: no exact form.
        if self.field_type_name not in ENUM_SCHEMA_TYPES:
            return {}
        return {"enum": list(self.allowed)}


class ConditionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(
        min_length=1, max_length=2000, description="a condition on the record, e.g. status = 'paid'"
    )


class RequiredIf(FieldRule):
    """The field must have a value when the condition ``value`` holds for the record."""

    name = "required_if"
    label = "Required if"
    Options = ConditionOptions
    checks_absent: ClassVar[bool] = True

    def bind(self, context: RuleContext) -> None:
        super().bind(context)
        self.condition: Bound = bind_condition(
            self.options.value, context.fields, context.operators
        )

    def check(self, value: Any, record: dict[str, Any]) -> RuleViolation | None:
        if value is not None or not evaluate(self.condition, record, {}):
            return None
        return self.violation(f"is required when {self.options.value}")

    def check_constraint(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        # "Not null under a condition": a comparison with an empty field is false, as in
        # Python, so an unknown condition counts as false.
        condition = to_fixed_sql(self.condition, _column_of)
        return sa.or_(column.is_not(None), sa.not_(sa.func.coalesce(condition, sa.false())))

    @classmethod
    def field_names(cls, value: Any) -> set[str]:
        return field_names(parse(value))

    @classmethod
    def rename_field(cls, value: Any, old: str, new: str) -> Any:
        return to_text(rename_field(parse(value), old, new))


def _column_of(field: FieldDef) -> sa.ColumnElement[Any]:
    return sa.column(field.column, field.type.sql_type())


RULE_TYPES: list[type[RuleType]] = [MinLength, MaxLength, Min, Max, Pattern, Enum, RequiredIf]
