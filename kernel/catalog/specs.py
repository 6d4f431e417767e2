"""Field specifications as clients send them, and their validation against field types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel.catalog.names import MAX_IDENTIFIER, check_name
from kernel.errors import ErrorItem, ValidationFailed
from kernel.fields import FieldType, FieldValueError
from kernel.json_values import JsonLimits, check_json_value
from kernel.registry import Registry


class FieldSpec(BaseModel):
    """A new field: ``{name, type, required?, unique?, default?, options?}``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    display_name: str | None = Field(default=None, max_length=200)
    required: bool = False
    unique: bool = False
    default: Any = None
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """A field spec checked against its type: options validated, default coerced."""

    name: str
    display_name: str
    type_name: str
    column: str
    options: dict[str, Any]
    required: bool
    unique: bool
    has_default: bool
    default: Any
    field_type: FieldType
    default_value: Any


def resolve_field(spec: FieldSpec, field_types: Registry[FieldType], where: str) -> ResolvedField:
    """Validate ``spec``; errors name the offending key under ``where`` (``fields[1]``)."""
    check_name(spec.name, what="field", field=f"{where}.name")
    type_class = field_types.get(spec.type)
    if type_class is None:
        raise ValidationFailed(
            f"unknown field type {spec.type!r}; available: {', '.join(sorted(field_types))}",
            code="unknown_type",
            field=f"{where}.type",
        )
    try:
        options = type_class.Options.model_validate(spec.options)
    except ValidationError as error:
        raise ValidationFailed(
            items=[
                ErrorItem(
                    "invalid_option",
                    problem["msg"],
                    ".".join([f"{where}.options", *(str(p) for p in problem["loc"])]),
                )
                for problem in error.errors()
            ]
        ) from None
    field_type = type_class(options)
    column = spec.name + type_class.column_suffix
    if len(column) > MAX_IDENTIFIER:
        raise ValidationFailed(
            f"field name {spec.name!r} is too long for a {spec.type} field",
            code="invalid_name",
            field=f"{where}.name",
        )
    has_default = "default" in spec.model_fields_set and spec.default is not None
    default_value = None
    if has_default:
        try:
            check_json_value(spec.default, JsonLimits())
            default_value = field_type.coerce(spec.default)
        except FieldValueError as error:
            raise ValidationFailed(
                f"default {error.message}", code=error.code, field=f"{where}.default"
            ) from None
    return ResolvedField(
        name=spec.name,
        display_name=spec.display_name or spec.name.replace("_", " ").capitalize(),
        type_name=spec.type,
        column=column,
        options=options.model_dump(mode="json"),
        required=spec.required,
        unique=spec.unique,
        has_default=has_default,
        default=spec.default if has_default else None,
        field_type=field_type,
        default_value=default_value,
    )
