"""A third-party validation rule: ``{"type": "even", "value": true}`` on an integer field.

``value`` true asks for even numbers, false for odd ones. The rule has an exact database
form, so Tessera also installs it as a CHECK constraint, and an exact JSON Schema form, so
the project's OpenAPI document shows it in the record bodies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kernel import PluginInfo, RuleType, RuleViolation, hookimpl


class EvenOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: bool = True


class Even(RuleType):
    name = "even"
    label = "Even (or odd) numbers"
    Options = EvenOptions
    field_types = frozenset({"integer"})

    def check(self, value, record):
        if (value % 2 == 0) == self.options.value:
            return None
        wanted = "even" if self.options.value else "odd"
        return RuleViolation(self.name, f"must be an {wanted} number")

    def check_constraint(self, column):
        return (column % 2 == 0) if self.options.value else (column % 2 != 0)

    def json_schema(self):
        even = {"multipleOf": 2}
        return even if self.options.value else {"not": even}


@hookimpl
def plugin_info():
    return PluginInfo(description="A validation rule: even (or odd) numbers only")


@hookimpl
def register_rule_types():
    return [Even]
