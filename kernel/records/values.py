"""Turn a JSON body into column values, reporting every field problem at once."""

from __future__ import annotations

from typing import Any

from kernel.catalog.model import SYSTEM_COLUMNS, AliasDef
from kernel.errors import FieldErrors, ValidationFailed
from kernel.fields import FieldValueError
from kernel.json_values import JsonLimits, check_json_value
from kernel.records.runtime import CollectionRuntime


def coerce_body(
    runtime: CollectionRuntime, body: Any, *, partial: bool, limits: JsonLimits
) -> tuple[dict[str, Any], list[AliasDef]]:
    """Column → value for a create (``partial=False``) or an update (``partial=True``).

    Accepts field names, column names (``customer_id``) and live old names. Rejects, with
    one 422 listing them all: unknown or soft-dropped fields, system columns, values their
    type refuses, nulls in required fields and (on create) missing required fields.

    An array or object value, whatever the field's type, must first pass
    :func:`~kernel.json_values.check_json_value` within ``limits`` (nesting, size, NUL,
    64-bit integers), so field types receive only containers PostgreSQL can store and
    Tessera can send back; scalars are each type's business.
    """
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", code="invalid_body")
    collection = runtime.collection
    errors = FieldErrors()
    values: dict[str, Any] = {}
    given_by: dict[str, str] = {}
    aliases: list[AliasDef] = []
    for key, raw in body.items():
        if key in SYSTEM_COLUMNS:
            errors.add(key, "read_only", f"{key} is set by Tessera")
            continue
        resolved = runtime.resolve(key)
        if resolved is None or resolved[0].column in SYSTEM_COLUMNS:
            dropped = collection.deleted_fields.get(key)
            if dropped is not None:
                errors.add(key, "field_dropped", f"{key} was removed from {collection.name}")
            else:
                errors.add(key, "unknown_field", f"{collection.name} has no field {key!r}")
            continue
        field, alias = resolved
        if alias is not None:
            aliases.append(alias)
        if field.column in given_by:
            errors.add(key, "duplicate_field", f"{key} and {given_by[field.column]} name one field")
            continue
        given_by[field.column] = key
        if raw is None:
            if field.required:
                errors.add(key, "required", f"{field.name} is required")
            else:
                values[field.column] = None
            continue
        try:
            if isinstance(raw, dict | list):
                check_json_value(raw, limits)
            values[field.column] = field.type.coerce(raw)
        except FieldValueError as error:
            errors.add(key, error.code, f"{field.name} {error.message}")
    if not partial:
        for field in collection.live_fields.values():
            missing = field.column not in values and field.column not in given_by
            if field.required and not field.has_default and missing:
                errors.add(field.name, "required", f"{field.name} is required")
    errors.raise_if_any()
    return values, aliases


def candidate_row(runtime: CollectionRuntime, values: dict[str, Any]) -> dict[str, Any]:
    """The row a create would produce as far as Python can tell (defaults filled in), for
    evaluating the create policy before anything is written."""
    row: dict[str, Any] = {"id": None, "created_at": None, "updated_at": None}
    for field in runtime.collection.live_fields.values():
        if field.column in values:
            row[field.column] = values[field.column]
        elif field.has_default:
            row[field.column] = field.type.coerce(field.default)
        else:
            row[field.column] = None
    return row
