"""Between HTML forms and the kernel: typed values from form text, and errors back to inputs.

Form values are text; the kernel wants JSON values. Record fields are read by their type's
``widget``; field-type options by their pydantic model's JSON schema. Kernel errors
(:class:`~kernel.TesseraError` items naming a field) are mapped back to input names so each
message shows next to its input, and everything else becomes a general message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.datastructures import ImmutableMultiDict

from kernel import FieldType, TesseraError

#: A field type's ``widget`` → the input the admin renders for it.
WIDGET_INPUTS = {
    "text": "text",
    "textarea": "textarea",
    "number": "number",
    "checkbox": "checkbox",
    "date": "date",
    "datetime": "datetime-local",
    "json": "json",
}
INTEGER = re.compile(r"^[+-]?\d+$")


class Missing:
    """The marker of a form value that was left empty (so the key is left out)."""


MISSING: Any = Missing()


class FormValueError(ValueError):
    """Form text that cannot be read as the input's kind (JSON that does not parse);
    ``key`` names the option it came from, when it came from an options form."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


@dataclass
class FormErrors:
    """Messages by input name, plus messages that belong to no input."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> None:
        if name is None:
            self.general.append(message)
        else:
            self.fields.setdefault(name, []).append(message)

    def get(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    @classmethod
    def from_error(
        cls, error: TesseraError, inputs: Callable[[str], str | None] | None = None
    ) -> FormErrors:
        """``error``'s items, each next to the input ``inputs(item.field)`` names; an item
        whose field has no input becomes a general message that names the field."""
        errors = cls()
        for item in error.items:
            name = inputs(item.field) if inputs is not None and item.field else None
            if name is None and item.field:
                errors.add(None, f"{item.field}: {item.message}")
            else:
                errors.add(name, item.message)
        return errors

    @classmethod
    def from_validation(
        cls, error: ValidationError, inputs: Callable[[str], str | None] | None = None
    ) -> FormErrors:
        """A pydantic error, each problem next to the input its location names."""
        errors = cls()
        for problem in error.errors():
            location = ".".join(str(part) for part in problem["loc"])
            name = inputs(location) if inputs is not None and location else location or None
            message = str(problem["msg"]).removeprefix("Value error, ")
            if name is None and location:
                errors.add(None, f"{location}: {message}")
            else:
                errors.add(name, message)
        return errors


def text(form: ImmutableMultiDict | Mapping[str, Any], name: str) -> str:
    """A form value as stripped text (``""`` when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def checked(form: ImmutableMultiDict, name: str) -> bool:
    """A checkbox rendered after a hidden ``false`` input of the same name: the last value
    wins, so an unticked box reads ``False`` and a ticked one ``True``."""
    values = [v for v in form.getlist(name) if isinstance(v, str)]
    return bool(values) and values[-1] in {"true", "on", "1"}


# -- record values --------------------------------------------------------------------


def widget_input(field_type: FieldType | type[FieldType] | None) -> str:
    """The input kind for a field type (``text`` for widgets the admin does not know)."""
    if field_type is None:
        return "text"
    return WIDGET_INPUTS.get(field_type.widget, "text")


def number_step(field_type: FieldType) -> str:
    return "1" if field_type.json_schema().get("type") == "integer" else "any"


def read_value(kind: str, raw: str) -> Any:
    """The JSON value for form text of input ``kind``; :data:`MISSING` for empty text.

    Numbers that do not parse are passed on as text, so the field type's own message (the
    same one the API gives) is what the person sees.
    """
    if kind == "checkbox":
        return raw in {"true", "on", "1"}
    if raw.strip() == "":
        return MISSING
    if kind == "number":
        stripped = raw.strip()
        if INTEGER.fullmatch(stripped):
            return int(stripped)
        try:
            return float(stripped)
        except ValueError:
            return stripped
    if kind == "json":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise FormValueError(f"not valid JSON: {error}") from None
    return raw


def show_value(kind: str, value: Any) -> str:
    """A stored value as the text an input of ``kind`` expects."""
    if value is None:
        return ""
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    if kind == "datetime-local":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.replace(tzinfo=None).isoformat(timespec="seconds")
    if kind == "date" and isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- options forms from a pydantic model ----------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionInput:
    """One input of a generated options form."""

    key: str
    label: str
    kind: str  # integer, number, checkbox, select, text, json
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False


#: An option whose JSON schema says ``"x-choices": "collections"`` names a collection of
#: the project: the admin offers the project's collections to choose from.
CHOICES_KEY = "x-choices"


def option_inputs(model: type[BaseModel], collections: Sequence[str] = ()) -> list[OptionInput]:
    """Inputs for ``model``'s fields, from its JSON schema (type, default, bounds, enum);
    an option marked ``"x-choices": "collections"`` is a choice among ``collections``."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", []))
    inputs = []
    for key, prop in schema.get("properties", {}).items():
        resolved = _resolve(prop, definitions)
        choices = tuple(str(choice) for choice in resolved.get("enum", ()))
        if prop.get(CHOICES_KEY) == "collections" and collections:
            choices = tuple(collections)
        inputs.append(
            OptionInput(
                key=key,
                label=str(prop.get("title") or key.replace("_", " ").capitalize()),
                kind="select" if choices else _kind(resolved),
                default=prop.get("default"),
                description=str(prop.get("description") or resolved.get("description") or ""),
                minimum=resolved.get("minimum"),
                maximum=resolved.get("maximum"),
                choices=choices,
                required=key in required,
            )
        )
    return inputs


def _resolve(prop: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    typed = [option for option in prop.get("anyOf", ()) if option.get("type") != "null"]
    if len(typed) == 1:  # an optional value (``str | None``): the input of its one type
        prop = {**prop, **typed[0]}
    reference = prop.get("$ref")
    if isinstance(reference, str):
        return definitions.get(reference.rsplit("/", 1)[-1], {})
    return prop


def _kind(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return "select"
    return {"integer": "integer", "number": "number", "boolean": "checkbox", "string": "text"}.get(
        prop.get("type", ""), "json"
    )


def read_options(model: type[BaseModel], form: ImmutableMultiDict, prefix: str) -> dict[str, Any]:
    """The options a form filled in for ``model`` (inputs named ``prefix + key``); empty
    inputs are left out, so the model's defaults apply. Raises :class:`FormValueError`
    (with ``.key``) for JSON that does not parse."""
    options: dict[str, Any] = {}
    for option in option_inputs(model):
        name = prefix + option.key
        if option.kind == "checkbox":
            if form.getlist(name):
                options[option.key] = checked(form, name)
            continue
        raw = text(form, name)
        if not raw:
            continue
        if option.kind in {"integer", "number"}:
            options[option.key] = read_value("number", raw)
        elif option.kind == "json":
            try:
                options[option.key] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise FormValueError("not valid JSON", key=option.key) from None
        else:
            options[option.key] = raw
    return options
