"""Field specifications as clients send them, and their validation against field types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel.catalog.model import NO_DEFAULT, FieldDef
from kernel.catalog.names import MAX_IDENTIFIER, check_name
from kernel.catalog.rules import RuleSpec, resolve_rules
from kernel.catalog.system import SYSTEM_FIELDS
from kernel.errors import ErrorItem, ValidationFailed
from kernel.fields import FieldType, FieldValueError
from kernel.json_values import JsonLimits, check_json_value
from kernel.operators import Operator
from kernel.registry import Registry
from kernel.rules import RuleType

if TYPE_CHECKING:
    from kernel.catalog.rules import ResolvedRule


class FieldSpec(BaseModel):
    """A new field: ``{name, type, required?, unique?, default?, options?, rules?}``.

    ``rules`` are checked by the operation once every field of the collection is known
    (:func:`kernel.catalog.rules.resolve_rules`), since a condition may name another."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    display_name: str | None = Field(default=None, max_length=200)
    required: bool = False
    unique: bool = False
    default: Any = None
    options: dict[str, Any] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)


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
    #: Set by the operation with :func:`kernel.catalog.rules.resolve_rules`.
    rules: tuple[ResolvedRule, ...] = ()

    def as_field(self, position: int = 0) -> FieldDef:
        """The field as the catalog will hold it (id 0 until written), to bind rules and
        conditions against before it exists."""
        return FieldDef(
            id=0,
            name=self.name,
            display_name=self.display_name,
            type_name=self.type_name,
            column=self.column,
            options=self.options,
            required=self.required,
            unique=self.unique,
            default=self.default if self.has_default else NO_DEFAULT,
            position=position,
            is_deleted=False,
            deleted_at=None,
            type=self.field_type,
        )


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


def with_rules(
    new_fields: Sequence[tuple[FieldSpec, ResolvedField, str]],
    existing: Mapping[str, FieldDef],
    rule_types: Registry[RuleType],
    operators: Registry[Operator],
    taken: set[str],
) -> list[ResolvedField]:
    """The resolved fields with their specs' rules checked and attached.

    ``new_fields`` are ``(spec, resolved, where)``; a rule's condition may name the
    system columns, ``existing`` fields (by name and column) and any of the new fields.
    ``taken`` holds the table's constraint names and receives the new ``CHECK``
    constraints' names. Raises one 422 per field with bad rules (see
    :func:`kernel.catalog.rules.resolve_rules`)."""
    names: dict[str, FieldDef] = {**SYSTEM_FIELDS, **existing}
    for _, resolved, _ in new_fields:
        provisional = resolved.as_field()
        names[provisional.name] = provisional
        names.setdefault(provisional.column, provisional)
    attached = []
    for spec, resolved, where in new_fields:
        if spec.rules:
            rules = resolve_rules(
                spec.rules,
                names[resolved.name],
                names,
                rule_types,
                operators,
                where=f"{where}.rules",
                taken=taken,
            )
            taken.update(rule.constraint for rule in rules if rule.constraint)
            resolved = replace(resolved, rules=rules)
        attached.append(resolved)
    return attached
