"""The installed field types as the admin offers them: label, plugin, options form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from admin.forms import OptionInput, option_inputs, widget_input
from kernel.runtime import Tessera


@dataclass(frozen=True, slots=True)
class TypeChoice:
    """One entry of a type picker, with the inputs of that type's options form."""

    name: str
    label: str
    plugin: str
    widget: str
    options: list[OptionInput]

    def input_name(self, key: str) -> str:
        """The name of option ``key``'s input (prefixed by type: every type's options form
        is on the page, only the chosen one is enabled)."""
        return f"opt.{self.name}.{key}"


def type_choices(tessera: Tessera, collections: Sequence[str] = ()) -> list[TypeChoice]:
    """Every registered field type, in registration order; options naming a collection
    choose among ``collections`` (the project's)."""
    return [
        TypeChoice(
            name=name,
            label=type_class.label,
            plugin=tessera.field_types.owner(name),
            widget=widget_input(type_class),
            options=option_inputs(type_class.Options, collections),
        )
        for name, type_class in tessera.field_types.items()
    ]


def option_error_input(type_name: str, kernel_field: str) -> str | None:
    """The options-form input a kernel error field names (``field.options.max_length`` or
    ``options.max_length``), else ``None``."""
    _, found, key = kernel_field.partition("options.")
    return f"opt.{type_name}.{key}" if found and key else None
