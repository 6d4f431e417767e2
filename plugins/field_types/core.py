"""The plugin ``field_types.core``: string, text, integer, float, boolean, date, datetime, json.

Coercion is strict about JSON types (``"5"`` is not an integer in a body) and lenient in
query strings, where every value arrives as text (numbers there are written as in JSON,
in ASCII digits). Date-times are stored with time zone; a
value without an offset is taken as UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from kernel import (
    INT64_MAX,
    INT64_MIN,
    ConversionContext,
    FieldType,
    FieldValueError,
    PluginInfo,
    check_json_scalar,
    hookimpl,
    parse_int64,
)

ORDERED = frozenset({"eq", "ne", "in", "gt", "lt", "gte", "lte", "between", "is_null"})
TEXTUAL = ORDERED | {"contains"}
#: Decimal numbers in query strings: ASCII digits only, as in JSON (no ``+5``, ``1_000``).
NUMBER_TEXT = re.compile(r"-?[0-9]{1,400}(\.[0-9]{1,400})?([eE][+-]?[0-9]{1,4})?")
#: The largest integer every float next to it still tells apart (2**53).
EXACT_FLOAT_INTEGER = 2**53


def _refuse_nul(value: str) -> None:
    """PostgreSQL text cannot hold NUL: refuse it as a field error, not a database error."""
    if "\x00" in value:
        raise FieldValueError("invalid_character", "must not contain NUL characters")


class StringOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_length: int = Field(default=255, ge=1, le=10_485_760, description="maximum characters")


class StringType(FieldType):
    name = "string"
    label = "Short text"
    Options = StringOptions
    operators = TEXTUAL
    widget = "text"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(self.options.max_length)

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldValueError("invalid_type", "must be a string")
        _refuse_nul(value)
        if len(value) > self.options.max_length:
            raise FieldValueError(
                "max_length", f"must be at most {self.options.max_length} characters"
            )
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.options.max_length}

    def convert_to(
        self, target: FieldType, column: ColumnElement[Any], context: ConversionContext
    ) -> ColumnElement[Any] | None:
        if isinstance(target, TextType):
            return sa.cast(column, sa.Text())
        if isinstance(target, StringType) and target.options.max_length >= self.options.max_length:
            return sa.cast(column, target.sql_type())
        return None


class TextType(FieldType):
    name = "text"
    label = "Long text"
    operators = TEXTUAL
    widget = "textarea"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise FieldValueError("invalid_type", "must be a string")
        _refuse_nul(value)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string"}


class IntegerType(FieldType):
    name = "integer"
    label = "Integer"
    operators = ORDERED
    widget = "number"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    def coerce(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldValueError("invalid_type", "must be an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise FieldValueError("invalid_type", "must be an integer")
            # Past 2**53 a float is no longer exact: 2.0**63 may have been -2**63 - 1 once.
            if abs(value) > EXACT_FLOAT_INTEGER:
                raise FieldValueError(
                    "out_of_range", "must be written as an integer that fits in 64 bits"
                )
            value = int(value)
        if not INT64_MIN <= value <= INT64_MAX:
            raise FieldValueError("out_of_range", "must fit in 64 bits")
        return value

    def parse_text(self, raw: str) -> int:
        return parse_int64(raw.strip())

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "format": "int64"}

    def convert_to(
        self, target: FieldType, column: ColumnElement[Any], context: ConversionContext
    ) -> ColumnElement[Any] | None:
        if isinstance(target, FloatType):
            return sa.cast(column, sa.Double())
        return None


class FloatType(FieldType):
    name = "float"
    label = "Decimal number"
    operators = ORDERED
    widget = "number"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Double()

    def coerce(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldValueError("invalid_type", "must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise FieldValueError("invalid_type", "must be a finite number")
        return number

    def parse_text(self, raw: str) -> float:
        text = raw.strip()
        if NUMBER_TEXT.fullmatch(text) is None:
            raise FieldValueError("invalid_type", f"{raw!r} is not a number")
        return self.coerce(float(text))

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number", "format": "double"}


class BooleanType(FieldType):
    name = "boolean"
    label = "Yes / no"
    operators = frozenset({"eq", "ne", "is_null"})
    widget = "checkbox"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Boolean()

    def coerce(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise FieldValueError("invalid_type", "must be true or false")
        return value

    def parse_text(self, raw: str) -> bool:
        lowered = raw.strip().lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise FieldValueError("invalid_type", f"{raw!r} is not true or false")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class DateType(FieldType):
    name = "date"
    label = "Date"
    operators = ORDERED
    widget = "date"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Date()

    def coerce(self, value: Any) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if not isinstance(value, str):
            raise FieldValueError("invalid_type", "must be a date like 2024-12-31")
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise FieldValueError(
                "invalid_date", f"{value!r} is not a date like 2024-12-31"
            ) from None

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date"}

    def convert_to(
        self, target: FieldType, column: ColumnElement[Any], context: ConversionContext
    ) -> ColumnElement[Any] | None:
        if isinstance(target, DateTimeType):
            # Midnight of that day in the project's time zone, stored as an instant.
            midnight = sa.cast(column, sa.DateTime(timezone=False))
            return sa.func.timezone(sa.literal(context.timezone, sa.Text()), midnight)
        return None


class DateTimeType(FieldType):
    name = "datetime"
    label = "Date and time"
    operators = ORDERED
    widget = "datetime"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.DateTime(timezone=True)

    def coerce(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise FieldValueError(
                    "invalid_datetime", f"{value!r} is not an ISO 8601 date-time"
                ) from None
        else:
            raise FieldValueError("invalid_type", "must be an ISO 8601 date-time string")
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


class JsonType(FieldType):
    name = "json"
    label = "JSON"
    operators = frozenset({"is_null"})
    widget = "json"
    sortable = False

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return JSONB()

    def coerce(self, value: Any) -> Any:
        # Arrays and objects in a record body reach here checked by the kernel (nesting,
        # size, NUL, 64-bit integers: kernel.json_values); a scalar is checked here.
        if not isinstance(value, dict | list):
            check_json_scalar(value)
        return value

    def parse_text(self, raw: str) -> Any:
        raise FieldValueError("not_filterable", "JSON fields can only be filtered with is_null")

    def json_schema(self) -> dict[str, Any]:
        return {}


CORE_TYPES: list[type[FieldType]] = [
    StringType,
    TextType,
    IntegerType,
    FloatType,
    BooleanType,
    DateType,
    DateTimeType,
    JsonType,
]


@hookimpl
def plugin_info() -> PluginInfo:
    return PluginInfo(description="Core field types: " + ", ".join(t.name for t in CORE_TYPES))


@hookimpl
def register_field_types() -> list[type[FieldType]]:
    return list(CORE_TYPES)
