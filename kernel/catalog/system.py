"""The system columns every collection table has: ``id``, ``created_at``, ``updated_at``.

They are queryable like fields (filters, sorts, expressions) but are not fields: no plugin
provides their types, so the kernel carries two small types of its own for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from kernel.catalog.model import NO_DEFAULT, CollectionDef, FieldDef
from kernel.fields import FieldType, FieldValueError
from kernel.numbers import INT64_MAX, INT64_MIN, parse_int64

_COMPARABLE = frozenset({"eq", "ne", "in", "gt", "lt", "gte", "lte", "between", "is_null"})


class RecordId(FieldType):
    """The identity primary key."""

    name = "system_id"
    label = "ID"
    operators = _COMPARABLE

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    def coerce(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldValueError("invalid_type", "must be an integer id")
        if not INT64_MIN <= value <= INT64_MAX:
            raise FieldValueError("out_of_range", "must be a 64-bit id")
        return value

    def parse_text(self, raw: str) -> int:
        return parse_int64(raw.strip())

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "format": "int64", "readOnly": True}


class Timestamp(FieldType):
    """``created_at`` and ``updated_at``."""

    name = "system_timestamp"
    label = "Timestamp"
    operators = _COMPARABLE

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
        return {"type": "string", "format": "date-time", "readOnly": True}


def _system_field(name: str, field_type: FieldType, position: int) -> FieldDef:
    return FieldDef(
        id=0,
        name=name,
        display_name=name.replace("_", " ").capitalize(),
        type_name=field_type.name,
        column=name,
        options=MappingProxyType({}),
        required=True,
        unique=name == "id",
        default=NO_DEFAULT,
        position=position,
        is_deleted=False,
        deleted_at=None,
        type=field_type,
    )


SYSTEM_FIELDS: dict[str, FieldDef] = {
    "id": _system_field("id", RecordId(), -3),
    "created_at": _system_field("created_at", Timestamp(), -2),
    "updated_at": _system_field("updated_at", Timestamp(), -1),
}


def queryable_fields(collection: CollectionDef, now: datetime) -> dict[str, FieldDef]:
    """Every name an expression or filter on ``collection`` may use at ``now``: system
    columns, live fields by name and by column, and live old names."""
    names: dict[str, FieldDef] = dict(SYSTEM_FIELDS)
    for field in collection.live_fields.values():
        names[field.name] = field
        names.setdefault(field.column, field)
    for old, (field, _) in collection.live_field_aliases(now).items():
        names.setdefault(old, field)
    return names
